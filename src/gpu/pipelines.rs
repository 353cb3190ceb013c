//! Compiled pipelines, cached by (kernel, specialisation): each WGSL kernel and each set of
//! `override` constants is compiled once per device. On lavapipe a compile runs LLVM and takes
//! real time, so the set of distinct pipelines is kept small and every compile is counted.
//! Kernels reach this module only as [`KernelDesc`]s: it knows no particular kernel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::lock;
use super::stats::Counters;
use crate::error::{Error, Result};

/// How a kernel binds a storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

/// What the device layer knows of a kernel: enough to compile it and bind its buffers.
#[derive(Debug)]
pub(crate) struct KernelDesc {
    /// The entry point, and the label of every wgpu object made for it. Unique per kernel.
    pub name: &'static str,
    /// The composed WGSL (kernel file first, then its snippets).
    pub source: &'static str,
    /// Storage bindings 1, 2, ... in order (binding 0 is always the uniform `Params`).
    pub bindings: &'static [Access],
}

/// A ready pipeline with the layout its bind groups need.
pub(crate) struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group_layout: wgpu::BindGroupLayout,
    /// Process-unique id of the layout, part of the bind-group cache key.
    pub layout_id: u64,
}

/// `override` constants, as (name, value) pairs; part of the cache key.
pub(crate) type Overrides = [(&'static str, f64)];

type Key = (&'static str, Vec<(&'static str, u64)>);

#[derive(Default)]
pub(crate) struct PipelineCache {
    pipelines: Mutex<HashMap<Key, Arc<Compiled>>>,
    /// Keyed by source: two entry points of one file share a module.
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
}

impl PipelineCache {
    /// The pipeline for `kernel` specialised by `overrides`, compiled on first use.
    pub fn get(
        &self,
        device: &wgpu::Device,
        counters: &Counters,
        kernel: &'static KernelDesc,
        overrides: &Overrides,
    ) -> Result<Arc<Compiled>> {
        let key: Key = (
            kernel.name,
            overrides.iter().map(|&(n, v)| (n, v.to_bits())).collect(),
        );
        // Held across the compile: two threads asking for one pipeline compile it once.
        let mut pipelines = lock(&self.pipelines);
        if let Some(c) = pipelines.get(&key) {
            return Ok(c.clone());
        }
        let compiled = Arc::new(self.compile(device, kernel, overrides)?);
        Counters::add(&counters.pipeline_compiles, 1);
        pipelines.insert(key, compiled.clone());
        Ok(compiled)
    }

    fn compile(
        &self,
        device: &wgpu::Device,
        kernel: &'static KernelDesc,
        overrides: &Overrides,
    ) -> Result<Compiled> {
        let name = kernel.name;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = lock(&self.modules)
            .entry(kernel.source)
            .or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
                })
            })
            .clone();
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, access) in kernel.bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(name),
            entries: &entries,
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(name),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: Some(&layout),
            module: &module,
            entry_point: Some(name),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: overrides,
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::ShaderCompile {
                kernel: name,
                message: err.to_string(),
            });
        }
        Ok(Compiled {
            pipeline,
            bind_group_layout,
            layout_id: super::pool::next_buffer_id(),
        })
    }
}
