//! Device-free checks that each kernel's WGSL and its Rust owner describe the same kernel, so a
//! change made on one side only fails here, not as wrong numbers or as a pipeline that some
//! backend refuses:
//! - the entry point is the kernel's name, a compute shader whose workgroup memory fits wgpu's
//!   downlevel limit;
//! - binding 0 is `@group(0) var<uniform> p: Params`; bindings 1..=n are group 0 storage buffers,
//!   each a runtime-sized array of 32-bit scalars, with the access `KernelDesc::bindings` gives;
//!   none missing, none extra;
//! - the shader's `struct Params` has the Rust `Params`' size and the same members: name, offset
//!   and size (and type, where both are scalars). Padding may be split differently (`_pad: [u32;
//!   3]` against `_pad0`, `_pad1`, `_pad2`): once every other member lines up and the sizes
//!   agree, it covers the same bytes;
//! - the module validates with naga's default capabilities and, with its overrides at their
//!   defaults, translates to SPIR-V, MSL and HLSL: what Vulkan, Metal and DX12 are given.
//!
//! Every failure names the kernel, the binding or field, and what the Rust side expects against
//! what the WGSL has; all failures of all kernels are reported together.

use naga::back::{hlsl, msl, pipeline_constants, spv, PipelineConstants};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{
    AddressSpace, ArraySize, Handle, Module, ResourceBinding, ScalarKind, ShaderStage,
    StorageAccess, Type, TypeInner,
};

use super::Kernel;
use crate::gpu::pipelines::Access;

/// One field of a Rust `Params`, as `kernels::params!` records it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParamsField {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    /// The type as written: `u32`, `f32`, `[u32; 8]`.
    pub ty: &'static str,
}

/// The Rust side of one kernel: what the WGSL must agree with.
struct RustSide<'a> {
    name: &'a str,
    source: &'a str,
    bindings: &'a [Access],
    params_size: usize,
    params: &'a [ParamsField],
}

impl RustSide<'static> {
    fn of(k: Kernel) -> Self {
        let desc = k.desc();
        let (params_size, params) = k.params();
        RustSide {
            name: desc.name,
            source: k.source(),
            bindings: desc.bindings,
            params_size,
            params,
        }
    }
}

/// Every way the WGSL of `rust.name` disagrees with `rust`, or fails to translate; empty when
/// they agree.
fn problems(rust: &RustSide<'_>) -> Vec<String> {
    let source = rust.source;
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(m) => m,
        Err(e) => {
            return vec![format!(
                "WGSL does not parse:\n{}",
                e.emit_to_string(source)
            )]
        }
    };
    let info =
        match Validator::new(ValidationFlags::all(), Capabilities::default()).validate(&module) {
            Ok(info) => info,
            Err(e) => {
                return vec![format!(
                    "WGSL does not validate with the default capabilities:\n{}",
                    e.emit_to_string(source)
                )]
            }
        };
    let Some(entry) = module.entry_points.iter().find(|e| e.name == rust.name) else {
        let found: Vec<&str> = module.entry_points.iter().map(|e| &*e.name).collect();
        return vec![format!(
            "no entry point named `{}` (found {found:?})",
            rust.name
        )];
    };
    if entry.stage != ShaderStage::Compute {
        return vec![format!(
            "entry point `{}` is not a compute shader",
            rust.name
        )];
    }
    let mut out = Vec::new();
    check_bindings(&module, rust.bindings, &mut out);
    check_params(&module, rust, &mut out);
    // What a pipeline compiles: the overrides at their defaults, the module cut down to this
    // entry point (`create_compute_pipeline` does the same before handing it to a backend).
    let (module, info) = match pipeline_constants::process_overrides(
        &module,
        &info,
        Some((ShaderStage::Compute, rust.name)),
        &PipelineConstants::default(),
    ) {
        Ok((m, i)) => (m.into_owned(), i.into_owned()),
        Err(e) => {
            out.push(format!("overrides at their defaults: {e}"));
            return out;
        }
    };
    check_workgroup_memory(&module, &info, rust.name, &mut out);
    translate(&module, &info, rust, &mut out);
    out
}

/// Binding 0 the uniform `Params`, 1..=n storage buffers with `bindings`' access, all in group 0.
fn check_bindings(module: &Module, bindings: &[Access], out: &mut Vec<String>) {
    let mut seen = vec![false; bindings.len() + 1];
    for (_, g) in module.global_variables.iter() {
        let Some(ResourceBinding { group, binding }) = g.binding else {
            continue;
        };
        let var = g.name.as_deref().unwrap_or("?");
        let at = format!("binding {binding} `{var}`");
        if group != 0 {
            out.push(format!("{at}: expected group 0, got group {group}"));
        }
        let Some(slot) = seen.get_mut(binding as usize) else {
            out.push(format!(
                "{at}: expected no such binding (KernelDesc::bindings gives bindings 1..={}), \
                 got one declared in WGSL",
                bindings.len()
            ));
            continue;
        };
        if std::mem::replace(slot, true) {
            out.push(format!("{at}: declared twice in WGSL"));
        }
        let ty = type_name(module, g.ty);
        if binding == 0 {
            if g.space != AddressSpace::Uniform
                || module.types[g.ty].name.as_deref() != Some("Params")
            {
                out.push(format!(
                    "{at}: expected var<uniform> of type Params, got var<{}> of type {ty}",
                    space_name(g.space)
                ));
            }
            continue;
        }
        let index = binding as usize - 1;
        let want = bindings[index];
        let want_access = match want {
            Access::Read => StorageAccess::LOAD,
            Access::ReadWrite => StorageAccess::LOAD | StorageAccess::STORE,
        };
        match g.space {
            AddressSpace::Storage { access } if access == want_access => {}
            space => out.push(format!(
                "{at}: expected var<storage, {}> (KernelDesc::bindings[{index}] = {want:?}), \
                 got var<{}>",
                access_name(want_access),
                space_name(space)
            )),
        }
        let element_ok = match module.types[g.ty].inner {
            TypeInner::Array {
                base,
                size: ArraySize::Dynamic,
                ..
            } => matches!(module.types[base].inner, TypeInner::Scalar(s) if s.width == 4),
            _ => false,
        };
        if !element_ok {
            out.push(format!(
                "{at}: expected a runtime-sized array of f32, u32 or i32, got {ty}"
            ));
        }
    }
    for (binding, _) in seen.iter().enumerate().filter(|(_, &seen)| !seen) {
        let want = match binding {
            0 => "var<uniform> p: Params".to_string(),
            b => format!(
                "storage, {:?} (KernelDesc::bindings[{}])",
                bindings[b - 1],
                b - 1
            ),
        };
        out.push(format!(
            "binding {binding}: expected {want}, got nothing: WGSL declares no binding {binding}"
        ));
    }
}

/// The WGSL `struct Params` (the type of binding 0) against the Rust `Params`, member by member.
fn check_params(module: &Module, rust: &RustSide<'_>, out: &mut Vec<String>) {
    let uniform = module.global_variables.iter().find(|(_, g)| {
        g.binding
            == Some(ResourceBinding {
                group: 0,
                binding: 0,
            })
    });
    let Some((_, uniform)) = uniform else {
        return; // reported by check_bindings
    };
    let TypeInner::Struct { ref members, span } = module.types[uniform.ty].inner else {
        return; // reported by check_bindings
    };
    if span as usize != rust.params_size {
        out.push(format!(
            "Params: expected {} bytes (Rust), got {span} (WGSL)",
            rust.params_size
        ));
    }
    let is_pad = |name: &str| name.starts_with('_');
    let wgsl: Vec<(String, usize, usize, Handle<Type>)> = members
        .iter()
        .map(|m| {
            let size = module.types[m.ty].inner.size(module.to_ctx()) as usize;
            let name = m.name.clone().unwrap_or_default();
            (name, m.offset as usize, size, m.ty)
        })
        .filter(|(name, ..)| !is_pad(name))
        .collect();
    for f in rust.params.iter().filter(|f| !is_pad(f.name)) {
        let Some((_, offset, size, ty)) = wgsl.iter().find(|(name, ..)| name == f.name) else {
            out.push(format!(
                "Params field `{}`: expected at offset {}, {} bytes (Rust), got no WGSL member \
                 of that name",
                f.name, f.offset, f.size
            ));
            continue;
        };
        if (*offset, *size) != (f.offset, f.size) {
            out.push(format!(
                "Params field `{}`: expected offset {}, {} bytes (Rust), got offset {offset}, \
                 {size} bytes (WGSL)",
                f.name, f.offset, f.size
            ));
        }
        // Scalars must agree in kind too; arrays may be packed differently (`[u32; 8]` against
        // `array<vec4<u32>, 2>`), so for them offset and size are the contract.
        let wgsl_ty = type_name(module, *ty);
        let scalars = ["u32", "i32", "f32"];
        if scalars.contains(&f.ty) && scalars.contains(&wgsl_ty.as_str()) && f.ty != wgsl_ty {
            out.push(format!(
                "Params field `{}`: expected type {} (Rust), got {wgsl_ty} (WGSL)",
                f.name, f.ty
            ));
        }
    }
    for (name, offset, size, _) in &wgsl {
        if !rust.params.iter().any(|f| f.name == name) {
            out.push(format!(
                "Params member `{name}` (WGSL: offset {offset}, {size} bytes): expected a Rust \
                 field of that name, got none"
            ));
        }
    }
}

/// The workgroup memory the entry point uses, within what wgpu's downlevel defaults promise.
fn check_workgroup_memory(module: &Module, info: &ModuleInfo, name: &str, out: &mut Vec<String>) {
    let Some(ep) = module.entry_points.iter().position(|e| e.name == name) else {
        out.push(format!("entry point `{name}` lost in override processing"));
        return;
    };
    let uses = info.get_entry_point(ep);
    let shared: u32 = module
        .global_variables
        .iter()
        .filter(|&(h, g)| g.space == AddressSpace::WorkGroup && !uses[h].is_empty())
        .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
        .sum();
    let limit = wgpu::Limits::downlevel_defaults().max_compute_workgroup_storage_size;
    if shared > limit {
        out.push(format!(
            "workgroup memory: expected at most the downlevel {limit} bytes, got {shared}"
        ));
    }
}

/// Translates the pipeline's module for Vulkan, Metal and DX12, bound as the device layer binds
/// it (binding i of group 0 is buffer slot / register i): a shader one of them refuses fails.
fn translate(module: &Module, info: &ModuleInfo, rust: &RustSide<'_>, out: &mut Vec<String>) {
    let name = rust.name;
    let layout: Vec<(ResourceBinding, bool)> = std::iter::once(false)
        .chain(rust.bindings.iter().map(|&a| a == Access::ReadWrite))
        .enumerate()
        .map(|(b, writable)| {
            let binding = ResourceBinding {
                group: 0,
                binding: b as u32,
            };
            (binding, writable)
        })
        .collect();
    // The bounds checks wgpu applies by default to shaders it is given as WGSL.
    let restrict = naga::proc::BoundsCheckPolicies {
        index: naga::proc::BoundsCheckPolicy::Restrict,
        buffer: naga::proc::BoundsCheckPolicy::Restrict,
        image_load: naga::proc::BoundsCheckPolicy::Restrict,
        binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
    };

    let spv_options = spv::Options {
        fake_missing_bindings: false,
        binding_map: layout
            .iter()
            .map(|&(rb, _)| {
                let info = spv::BindingInfo {
                    descriptor_set: rb.group,
                    binding: rb.binding,
                    binding_array_size: None,
                };
                (rb, info)
            })
            .collect(),
        bounds_check_policies: restrict,
        zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
        ..spv::Options::default()
    };
    let spv_pipeline = spv::PipelineOptions {
        shader_stage: ShaderStage::Compute,
        entry_point: name.to_string(),
    };
    if let Err(e) = spv::write_vec(module, info, &spv_options, Some(&spv_pipeline)) {
        out.push(format!("SPIR-V (Vulkan): {e}"));
    }

    let resources = msl::EntryPointResources {
        resources: layout
            .iter()
            .map(|&(rb, mutable)| {
                let target = msl::BindTarget {
                    buffer: Some(rb.binding as msl::Slot),
                    mutable,
                    ..msl::BindTarget::default()
                };
                (rb, target)
            })
            .collect(),
        immediates_buffer: None,
        // Metal passes runtime-array lengths in one more buffer, after the bindings.
        sizes_buffer: Some(layout.len() as msl::Slot),
    };
    let msl_options = msl::Options {
        // The oldest Metal Shading Language wgpu's Metal backend runs compute on: macOS 10.13.
        lang_version: (2, 0),
        per_entry_point_map: [(name.to_string(), resources)].into_iter().collect(),
        fake_missing_bindings: false,
        bounds_check_policies: restrict,
        zero_initialize_workgroup_memory: false,
        ..msl::Options::default()
    };
    let msl_pipeline = msl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, name.to_string())),
        ..msl::PipelineOptions::default()
    };
    // MSL and HLSL report an entry point they cannot write in the result, not as an error.
    match msl::write_string(module, info, &msl_options, &msl_pipeline) {
        Ok((_, translated)) => {
            entry_point_written("MSL (Metal)", &translated.entry_point_names, out)
        }
        Err(e) => out.push(format!("MSL (Metal): {e}")),
    }

    let hlsl_options = hlsl::Options {
        // The lowest model wgpu's DX12 backend accepts (FXC).
        shader_model: hlsl::ShaderModel::V5_1,
        binding_map: layout
            .iter()
            .map(|&(rb, _)| {
                let target = hlsl::BindTarget {
                    space: 0,
                    register: rb.binding,
                    ..hlsl::BindTarget::default()
                };
                (rb, target)
            })
            .collect(),
        fake_missing_bindings: false,
        zero_initialize_workgroup_memory: false,
        ..hlsl::Options::default()
    };
    let hlsl_pipeline = hlsl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, name.to_string())),
    };
    let mut hlsl_source = String::new();
    match hlsl::Writer::new(&mut hlsl_source, &hlsl_options, &hlsl_pipeline)
        .write(module, info, None)
    {
        Ok(reflected) => entry_point_written("HLSL (DX12)", &reflected.entry_point_names, out),
        Err(e) => out.push(format!("HLSL (DX12): {e}")),
    }
}

/// The one entry point of a translated pipeline module was written.
fn entry_point_written<E: std::fmt::Display>(
    backend: &str,
    names: &[Result<String, E>],
    out: &mut Vec<String>,
) {
    match names {
        [Ok(_)] => {}
        [Err(e)] => out.push(format!("{backend}: {e}")),
        _ => out.push(format!(
            "{backend}: expected 1 entry point written, got {}",
            names.len()
        )),
    }
}

/// A WGSL-like name for a type, for messages.
fn type_name(module: &Module, ty: Handle<Type>) -> String {
    let t = &module.types[ty];
    if let Some(name) = t.name.as_deref() {
        return name.to_string();
    }
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (ScalarKind::Float, 4) => "f32".to_string(),
        (ScalarKind::Uint, 4) => "u32".to_string(),
        (ScalarKind::Sint, 4) => "i32".to_string(),
        (kind, width) => format!("{kind:?}{}", width * 8),
    };
    match t.inner {
        TypeInner::Scalar(s) => scalar(s),
        TypeInner::Vector { size, scalar: s } => format!("vec{}<{}>", size as u8, scalar(s)),
        TypeInner::Atomic(s) => format!("atomic<{}>", scalar(s)),
        TypeInner::Array { base, size, .. } => match size {
            ArraySize::Constant(n) => format!("array<{}, {n}>", type_name(module, base)),
            ArraySize::Pending(_) => format!("array<{}, (override)>", type_name(module, base)),
            ArraySize::Dynamic => format!("array<{}>", type_name(module, base)),
        },
        ref inner => format!("{inner:?}"),
    }
}

fn space_name(space: AddressSpace) -> String {
    match space {
        AddressSpace::Uniform => "uniform".to_string(),
        AddressSpace::Storage { access } => format!("storage, {}", access_name(access)),
        AddressSpace::WorkGroup => "workgroup".to_string(),
        AddressSpace::Private => "private".to_string(),
        other => format!("{other:?}"),
    }
}

fn access_name(access: StorageAccess) -> String {
    if access == StorageAccess::LOAD {
        "read".to_string()
    } else if access == StorageAccess::LOAD | StorageAccess::STORE {
        "read_write".to_string()
    } else {
        format!("{access:?}")
    }
}

/// The problems of every kernel, one line (or block) each, prefixed with the kernel's name.
fn all_problems() -> Vec<String> {
    Kernel::ALL
        .iter()
        .flat_map(|&k| {
            problems(&RustSide::of(k))
                .into_iter()
                .map(move |p| format!("{}: {p}", k.name()))
        })
        .collect()
}

#[test]
fn every_kernel_agrees_with_its_rust_owner_and_translates_for_every_backend() {
    let problems = all_problems();
    assert!(
        problems.is_empty(),
        "{} disagreement(s) between the WGSL and the Rust side:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A change to one side only is caught, and the message says where: the check itself is tested
/// on edited copies of real kernels.
#[test]
fn a_one_sided_change_fails_naming_kernel_binding_and_field() {
    let base = RustSide::of(Kernel::SoftmaxForward);
    assert!(problems(&base).is_empty());

    // The WGSL makes x writable; KernelDesc still says Read.
    let source = base.source.replace(
        "var<storage, read> x: array<f32>",
        "var<storage, read_write> x: array<f32>",
    );
    let got = problems(&RustSide {
        source: &source,
        ..RustSide::of(Kernel::SoftmaxForward)
    });
    assert_eq!(
        got,
        [
            "binding 1 `x`: expected var<storage, read> (KernelDesc::bindings[0] = Read), got \
          var<storage, read_write>"
        ]
    );

    // Rust swaps two fields; the WGSL keeps its order.
    let mut fields = base.params.to_vec();
    assert_eq!((fields[0].name, fields[1].name), ("rows", "cols"));
    (fields[0].name, fields[1].name) = ("cols", "rows");
    let got = problems(&RustSide {
        params: &fields,
        ..RustSide::of(Kernel::SoftmaxForward)
    });
    assert_eq!(
        got,
        [
            "Params field `cols`: expected offset 0, 4 bytes (Rust), got offset 4, 4 bytes (WGSL)",
            "Params field `rows`: expected offset 4, 4 bytes (Rust), got offset 0, 4 bytes (WGSL)",
        ]
    );

    // Rust drops a storage binding the WGSL still declares.
    let got = problems(&RustSide {
        bindings: &[Access::Read],
        ..RustSide::of(Kernel::SoftmaxForward)
    });
    assert_eq!(
        got[0],
        "binding 2 `y`: expected no such binding (KernelDesc::bindings gives bindings 1..=1), \
         got one declared in WGSL"
    );

    // Rust says a scalar field is u32 where the WGSL has f32 (same offset, same size).
    let norm = RustSide::of(Kernel::LayerNormForward);
    let mut fields = norm.params.to_vec();
    let eps = fields.iter_mut().find(|f| f.name == "eps").expect("eps");
    assert_eq!(eps.ty, "f32");
    eps.ty = "u32";
    let got = problems(&RustSide {
        params: &fields,
        ..RustSide::of(Kernel::LayerNormForward)
    });
    assert_eq!(
        got,
        ["Params field `eps`: expected type u32 (Rust), got f32 (WGSL)"]
    );
}
