//! The pending command encoder: ops record dispatches into one open compute pass, and nothing is
//! submitted until a value is read or `flush` is called. Also owns the per-batch parameter arena
//! (one uniform buffer, 256-byte slots bound with dynamic offsets) and the bind-group cache, so a
//! steady training loop creates no buffers and no bind groups.
//!
//! Why buffers released during a batch wait for the submission: `queue.write_buffer` runs before
//! the next submitted command buffer, so a buffer reused and overwritten in the same batch could
//! change under a dispatch recorded earlier. After the submission, queue order protects it.

use std::collections::HashMap;

use super::context::GpuInner;
use super::lock;
use super::pipelines::{KernelDesc, Overrides};
use super::pool::{next_buffer_id, RawBuffer};
use super::profile::Profiler;
use super::stats::Counters;
use crate::error::{Error, Result};

/// Bytes of one parameter slot; every kernel's `Params` fits in it.
pub(crate) const PARAM_SLOT: u64 = 256;
const INITIAL_ARENA: u64 = 64 * 1024;
/// The arena stops growing here (16,384 dispatches a batch); a longer batch is split into
/// several submissions instead, so a loop that never reads cannot grow it without bound.
const MAX_ARENA: u64 = 4 << 20;
/// Above this many cached bind groups the cache starts over (stale keys are never hit again).
const MAX_BIND_GROUPS: usize = 4096;
/// Cache key: layout id, arena generation, then the ids of the bound buffers (0 = unused).
type BindKey = [u64; 10];

/// One compute dispatch, as a kernel owner describes it.
pub(crate) struct Dispatch<'a> {
    pub kernel: &'static KernelDesc,
    pub overrides: &'a Overrides,
    /// The kernel's `Params`, as bytes (at most [`PARAM_SLOT`]).
    pub params: &'a [u8],
    /// Storage buffers in binding order (binding 1, 2, ...); binding 0 is the params.
    pub buffers: &'a [&'a RawBuffer],
    pub workgroups: [u32; 3],
}

pub(crate) struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<u8>,
    arena: wgpu::Buffer,
    arena_capacity: u64,
    arena_generation: u64,
    grow_arena_to: u64,
    /// Params bytes of the batch so far that earlier submissions of it took because the arena
    /// was full: at the batch's end the arena grows to hold all of it, so a batch of that size
    /// (a generation loop, a training step) is one submission the next time.
    spilled: u64,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    /// Buffers released while this batch may still use them, by size class: reusable at once as
    /// a kernel's output (dispatches in one queue run in order, with barriers), but not as the
    /// target of an upload; pooled again after the submission.
    retired: HashMap<u64, Vec<RawBuffer>>,
    /// The device-time profile, when the device was made with one.
    pub profiler: Option<Profiler>,
}

fn create_arena(device: &wgpu::Device, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timeloom params arena"),
        size: bytes,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl Pending {
    pub fn new(device: &wgpu::Device) -> Pending {
        Pending {
            encoder: None,
            pass: None,
            params: Vec::with_capacity(INITIAL_ARENA as usize),
            arena: create_arena(device, INITIAL_ARENA),
            arena_capacity: INITIAL_ARENA,
            arena_generation: next_buffer_id(),
            grow_arena_to: 0,
            spilled: 0,
            bind_groups: HashMap::new(),
            retired: HashMap::new(),
            profiler: None,
        }
    }

    pub fn has_work(&self) -> bool {
        self.encoder.is_some()
    }

    /// Forgets the cached bind groups that name buffer `id`.
    pub fn forget_buffer(&mut self, id: u64) {
        self.bind_groups.retain(|k, _| !k[2..].contains(&id));
    }

    /// Forgets cached bind groups (they keep their buffers alive).
    pub fn clear_bind_groups(&mut self) {
        self.bind_groups.clear();
    }
}

impl GpuInner {
    /// Records one dispatch into the pending compute pass.
    pub(crate) fn record(&self, d: &Dispatch<'_>) -> Result<()> {
        self.check_fault()?;
        debug_assert_eq!(
            d.buffers.len(),
            d.kernel.bindings.len(),
            "{}",
            d.kernel.name
        );
        debug_assert!(d.params.len() as u64 <= PARAM_SLOT);
        let max = self.limits.max_compute_workgroups_per_dimension;
        if let Some(&over) = d.workgroups.iter().find(|&&w| w > max) {
            return Err(Error::TooLarge {
                op: d.kernel.name,
                what: format!("a dispatch of {over} workgroups in one dimension"),
                bytes: u64::from(over),
                limit: u64::from(max),
                limit_name: "max_compute_workgroups_per_dimension",
            });
        }
        let storage = d.kernel.bindings.len() as u32;
        if storage > self.limits.max_storage_buffers_per_shader_stage {
            return Err(Error::Unsupported {
                op: d.kernel.name,
                message: format!(
                    "the kernel binds {storage} storage buffers; this device allows {} \
                     (`max_storage_buffers_per_shader_stage`): create the device with \
                     wgpu::Limits::default() or more, or use Device::Cpu",
                    self.limits.max_storage_buffers_per_shader_stage
                ),
            });
        }
        if d.workgroups.contains(&0) {
            return Ok(());
        }
        let compiled = self
            .pipelines
            .get(&self.device, &self.counters, d.kernel, d.overrides)?;

        let mut guard = lock(&self.pending);
        let p: &mut Pending = &mut guard;
        if p.params.len() as u64 + PARAM_SLOT > p.arena_capacity {
            // The arena is full: submit what is recorded and grow it (up to MAX_ARENA), so the
            // next batch fits.
            p.grow_arena_to = (p.arena_capacity * 2).min(MAX_ARENA);
            let spilled = p.spilled + p.params.len() as u64;
            self.flush_locked(p);
            p.spilled = spilled;
        }
        if p.profiler.as_ref().is_some_and(|f| !f.has_room(2)) {
            // The profile's query set is full (a pass's opening stamp and this dispatch's).
            self.flush_locked(p);
        }
        let offset = p.params.len() as u32;
        p.params.extend_from_slice(d.params);
        p.params.resize(offset as usize + PARAM_SLOT as usize, 0);

        let mut key: BindKey = [0; 10];
        key[0] = compiled.layout_id;
        key[1] = p.arena_generation;
        for (k, b) in key[2..].iter_mut().zip(d.buffers) {
            *k = b.id;
        }
        if !p.bind_groups.contains_key(&key) {
            if p.bind_groups.len() >= MAX_BIND_GROUPS {
                p.bind_groups.clear();
            }
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &p.arena,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAM_SLOT),
                }),
            }];
            for (i, b) in d.buffers.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: b.buffer.as_entire_binding(),
                });
            }
            let scope = self.scope();
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(d.kernel.name),
                layout: &compiled.bind_group_layout,
                entries: &entries,
            });
            self.close_scope(scope);
            Counters::add(&self.counters.bind_groups_created, 1);
            p.bind_groups.insert(key, bg);
        }
        let bg = p.bind_groups[&key].clone();
        self.open_pass(p);
        let pass = p.pass.as_mut().expect("the pass was opened above");
        pass.set_pipeline(&compiled.pipeline);
        pass.set_bind_group(0, &bg, &[offset]);
        let [x, y, z] = d.workgroups;
        pass.dispatch_workgroups(x, y, z);
        if let Some(f) = p.profiler.as_mut() {
            let i = f.close_dispatch(d.kernel.name, d.overrides);
            pass.write_timestamp(&f.query_set, i);
        }
        Counters::add(&self.counters.dispatches, 1);
        Ok(())
    }

    /// Opens the pending compute pass if none is open (with its opening timestamp when
    /// profiling).
    fn open_pass(&self, p: &mut Pending) {
        if p.pass.is_none() {
            let encoder = p.encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("timeloom"),
                    })
            });
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("timeloom"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            Counters::add(&self.counters.passes, 1);
            let pass = p.pass.insert(pass);
            if let Some(f) = p.profiler.as_mut() {
                let i = f.open_pass();
                pass.write_timestamp(&f.query_set, i);
            }
        }
    }

    /// On a host application's device, a validation error scope around timeloom's own calls, so
    /// that a timeloom bug becomes a typed error at the next call instead of reaching (and by
    /// default panicking in) the application's uncaptured-error handler. On timeloom's own device
    /// its handler does this already.
    fn scope(&self) -> Option<wgpu::ErrorScopeGuard> {
        (!self.owned).then(|| self.device.push_error_scope(wgpu::ErrorFilter::Validation))
    }

    fn close_scope(&self, scope: Option<wgpu::ErrorScopeGuard>) {
        if let Some(e) = scope.and_then(|s| pollster::block_on(s.pop())) {
            self.report_fault(e.to_string());
        }
    }

    /// The pending encoder outside any pass, for copies.
    pub(crate) fn encoder<'p>(&self, p: &'p mut Pending) -> &'p mut wgpu::CommandEncoder {
        p.pass = None; // dropping the pass ends it
        p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("timeloom"),
                })
        })
    }

    /// Submits the pending work, if any, as one command buffer.
    pub(crate) fn flush_locked(&self, p: &mut Pending) -> Option<wgpu::SubmissionIndex> {
        p.pass = None;
        // The batch's end (or an overflow, whose caller restores `spilled` after this): a batch
        // that overflowed gets an arena that holds it whole.
        let batch = p.spilled + p.params.len() as u64;
        if p.spilled > 0 {
            p.grow_arena_to = p
                .grow_arena_to
                .max(batch.next_power_of_two().min(MAX_ARENA));
        }
        p.spilled = 0;
        let mut stamps = 0;
        let index = p.encoder.take().map(|mut encoder| {
            if let Some(f) = p.profiler.as_mut() {
                stamps = f.resolve(&mut encoder);
            }
            if !p.params.is_empty() {
                self.queue.write_buffer(&p.arena, 0, &p.params);
                p.params.clear();
            }
            let scope = self.scope();
            let index = self.queue.submit([encoder.finish()]);
            self.close_scope(scope);
            Counters::add(&self.counters.submissions, 1);
            index
        });
        for (_, list) in p.retired.drain() {
            for b in list {
                self.pool.release(b);
            }
        }
        if let Some(f) = p.profiler.as_mut() {
            // Profiling makes every submission wait for its timestamps.
            if let Err(e) = f.collect(&self.device, stamps) {
                self.report_fault(e.to_string());
            }
        }
        if p.grow_arena_to > p.arena_capacity {
            p.arena_capacity = p.grow_arena_to;
            p.arena = create_arena(&self.device, p.arena_capacity);
            p.arena_generation = next_buffer_id();
            p.bind_groups.clear();
        }
        index
    }

    /// A buffer of size class `class` released during this batch, for a kernel to write.
    pub(crate) fn reuse_retired(&self, class: u64) -> Option<RawBuffer> {
        let b = lock(&self.pending).retired.get_mut(&class)?.pop()?;
        Counters::add(&self.counters.pool_hits, 1);
        Some(b)
    }

    /// Returns a pooled buffer: at once when no recorded work can use it, else after the next
    /// submission.
    pub(crate) fn retire(&self, buffer: RawBuffer) {
        let mut p = lock(&self.pending);
        if p.has_work() {
            p.retired.entry(buffer.class).or_default().push(buffer);
        } else {
            drop(p);
            self.pool.release(buffer);
        }
    }
}
