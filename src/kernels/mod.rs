//! One Rust owner per WGSL kernel: its `Params` (mirroring the shader's struct field for field),
//! its bindings, its dispatch geometry, its `launch` and, at the bottom, its parity test against
//! `crate::kernels::cpu`. A launch is the one place a kernel meets a device: on a GPU tensor it records the
//! dispatch into the pending encoder, on a host tensor it runs the CPU twin, with the same
//! `Params` either way. The ops in `crate::ops` check devices and shapes before they launch.

pub(crate) mod attention_backward_kv;
pub(crate) mod attention_backward_q;
pub(crate) mod attention_forward;
pub(crate) mod axpy;
pub(crate) mod batch_norm_backward;
pub(crate) mod batch_norm_forward;
pub(crate) mod binary;
pub(crate) mod clip_scale;
pub(crate) mod conv2d_backward_data;
pub(crate) mod conv2d_backward_weight;
pub(crate) mod conv2d_forward;
pub(crate) mod cpu;
pub(crate) mod cross_entropy_backward;
pub(crate) mod cross_entropy_forward;
pub(crate) mod dropout;
pub(crate) mod embedding_backward;
pub(crate) mod embedding_forward;
pub(crate) mod fma_peak;
pub(crate) mod layer_norm_backward;
pub(crate) mod layer_norm_forward;
pub(crate) mod matmul;
pub(crate) mod optimizer_step;
pub(crate) mod pool2d_backward;
pub(crate) mod pool2d_forward;
pub(crate) mod recurrent_step_backward;
pub(crate) mod recurrent_step_forward;
pub(crate) mod reduce;
pub(crate) mod softmax_backward;
pub(crate) mod softmax_forward;
pub(crate) mod unary;
pub(crate) mod unary_backward;

use crate::error::{Error, Result};
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::KernelDesc;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::{Storage, Tensor};

/// Where a launch runs: read off one of its tensors (the op checked that all share a device).
pub(crate) enum On<'a> {
    /// Record the dispatch on this GPU.
    Gpu(&'a GpuInner),
    /// Run the CPU twin.
    Cpu,
}

/// The device `t` lives on, for a launch.
pub(crate) fn on(t: &Tensor) -> On<'_> {
    match &t.storage {
        Storage::Gpu(s) => On::Gpu(&s.gpu.inner),
        Storage::Cpu(_) => On::Cpu,
    }
}

/// Declares every kernel once: its variant and the owner's description (name, composed WGSL,
/// binding access). `Kernel::ALL`, `name`, `source` and `bindings` all come from this one list.
macro_rules! kernel_table {
    ($($variant:ident => $desc:path,)*) => {
        /// Every WGSL kernel timeloom compiles. The entry point of each is its name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum Kernel {
            $($variant,)*
        }

        impl Kernel {
            /// Every kernel, in declaration order.
            #[cfg(test)]
            pub const ALL: &'static [Kernel] = &[$(Kernel::$variant,)*];

            /// What the device layer needs to compile and bind this kernel.
            pub fn desc(self) -> &'static KernelDesc {
                match self {
                    $(Kernel::$variant => &$desc,)*
                }
            }
        }
    };
}

kernel_table! {
    Matmul => matmul::KERNEL,
    Unary => unary::KERNEL,
    UnaryBackward => unary_backward::KERNEL,
    Binary => binary::KERNEL,
    Axpy => axpy::KERNEL,
    Reduce => reduce::KERNEL,
    SoftmaxForward => softmax_forward::KERNEL,
    SoftmaxBackward => softmax_backward::KERNEL,
    CrossEntropyForward => cross_entropy_forward::KERNEL,
    CrossEntropyBackward => cross_entropy_backward::KERNEL,
    OptimizerStep => optimizer_step::KERNEL,
    ClipScale => clip_scale::KERNEL,
    Dropout => dropout::KERNEL,
    RecurrentStepForward => recurrent_step_forward::KERNEL,
    RecurrentStepBackward => recurrent_step_backward::KERNEL,
    RecurrentSequenceForward => recurrent_step_forward::SEQUENCE_KERNEL,
    RecurrentSequenceBackward => recurrent_step_backward::SEQUENCE_KERNEL,
    LayerNormForward => layer_norm_forward::KERNEL,
    LayerNormBackward => layer_norm_backward::KERNEL,
    EmbeddingForward => embedding_forward::KERNEL,
    EmbeddingBackward => embedding_backward::KERNEL,
    AttentionForward => attention_forward::KERNEL,
    AttentionBackwardKv => attention_backward_kv::KERNEL,
    AttentionBackwardQ => attention_backward_q::KERNEL,
    Pool2dForward => pool2d_forward::KERNEL,
    Pool2dBackward => pool2d_backward::KERNEL,
    Conv2dForward => conv2d_forward::KERNEL,
    Conv2dBackwardData => conv2d_backward_data::KERNEL,
    Conv2dBackwardWeight => conv2d_backward_weight::KERNEL,
    BatchNormForward => batch_norm_forward::KERNEL,
    BatchNormBackward => batch_norm_backward::KERNEL,
    FmaPeak => fma_peak::KERNEL,
}

impl Kernel {
    /// The kernel's name: its WGSL file, entry point, Rust owner and CPU twin.
    pub fn name(self) -> &'static str {
        self.desc().name
    }

    /// The composed WGSL source: the kernel file first, then the snippets it needs.
    #[cfg(test)]
    pub fn source(self) -> &'static str {
        self.desc().source
    }
}

/// Spreads `workgroups` over x and y when it exceeds `max` per dimension; kernels recover the
/// linear index with `linear_workgroup` (shaders/common/grid.wgsl) and skip the overhang.
pub(crate) fn fold_grid(op: &'static str, workgroups: u64, max: u32) -> Result<[u32; 3]> {
    if workgroups <= u64::from(max) {
        return Ok([workgroups as u32, 1, 1]);
    }
    let y = workgroups.div_ceil(u64::from(max));
    if y > u64::from(max) {
        return Err(Error::TooLarge {
            op,
            what: format!("a grid of {workgroups} workgroups"),
            bytes: workgroups,
            limit: u64::from(max) * u64::from(max),
            limit_name: "max_compute_workgroups_per_dimension squared",
        });
    }
    Ok([max, y as u32, 1])
}

/// The largest workgroup count per grid dimension.
pub(crate) fn max_grid(gpu: &GpuInner) -> u32 {
    gpu.limits.max_compute_workgroups_per_dimension
}

/// A grid of `x` workgroups for each of `rows` rows, the rows folded into y and z past the
/// dimension limit (`folded_row` in shaders/common/grid.wgsl recovers the row).
pub(crate) fn fold_rows(op: &'static str, x: u32, rows: u32, max: u32) -> Result<[u32; 3]> {
    if x > max {
        return Err(Error::TooLarge {
            op,
            what: format!("a grid {x} workgroups wide"),
            bytes: u64::from(x),
            limit: u64::from(max),
            limit_name: "max_compute_workgroups_per_dimension",
        });
    }
    let y = rows.min(max).max(1);
    let z = rows.div_ceil(y);
    if z > max {
        return Err(Error::TooLarge {
            op,
            what: format!("a grid of {x} × {rows} workgroups"),
            bytes: u64::from(x) * u64::from(rows),
            limit: u64::from(max) * u64::from(max),
            limit_name: "max_compute_workgroups_per_dimension squared",
        });
    }
    Ok([x, y, z])
}

/// Records `kernel` over `workgroups` workgroups, folded into x and y past the dimension limit.
fn record_grid(
    gpu: &GpuInner,
    kernel: Kernel,
    params: &[u8],
    buffers: &[&RawBuffer],
    workgroups: u64,
) -> Result<()> {
    let workgroups = fold_grid(
        kernel.name(),
        workgroups,
        gpu.limits.max_compute_workgroups_per_dimension,
    )?;
    gpu.record(&Dispatch {
        kernel: kernel.desc(),
        overrides: &[],
        params,
        buffers,
        workgroups,
    })
}

/// Records `kernel` over `elements` elements, 256 per workgroup (the `@workgroup_size(256)`
/// kernels that give one invocation to each element).
pub(crate) fn record_flat(
    gpu: &GpuInner,
    kernel: Kernel,
    params: &[u8],
    buffers: &[&RawBuffer],
    elements: u64,
) -> Result<()> {
    record_grid(gpu, kernel, params, buffers, elements.div_ceil(256))
}

/// Elements each invocation of a grid-stride kernel handles (at least; the last pass of the
/// stride loop may be partial). On a CPU-backed adapter (lavapipe, SwiftShader, WARP) every
/// workgroup launch costs microseconds and lanes are few: 32 per invocation ran elementwise ops
/// 1.6–2.5× faster there than one per invocation. A GPU wants the occupancy: 4.
fn elements_per_invocation(gpu: &GpuInner) -> u64 {
    if gpu.info.device_type == wgpu::DeviceType::Cpu {
        32
    } else {
        4
    }
}

/// Records a grid-stride `kernel` (one using `grid_first` / `grid_stride` from
/// shaders/common/grid.wgsl) over `elements`.
pub(crate) fn record_strided(
    gpu: &GpuInner,
    kernel: Kernel,
    params: &[u8],
    buffers: &[&RawBuffer],
    elements: u64,
) -> Result<()> {
    let per_workgroup = 256 * elements_per_invocation(gpu);
    record_grid(
        gpu,
        kernel,
        params,
        buffers,
        elements.div_ceil(per_workgroup),
    )
}

/// Records `kernel` with one workgroup per row (the row-reduction kernels).
pub(crate) fn record_rows(
    gpu: &GpuInner,
    kernel: Kernel,
    params: &[u8],
    buffers: &[&RawBuffer],
    rows: u64,
) -> Result<()> {
    record_grid(gpu, kernel, params, buffers, rows)
}

/// Composes a kernel's source: the kernel file first (so naga's line numbers match it), then
/// the shared snippets it names.
macro_rules! wgsl {
    ($kernel:literal $(, $snippet:literal)*) => {
        concat!(
            include_str!(concat!("../../shaders/", $kernel, ".wgsl"))
            $(, "\n", include_str!(concat!("../../shaders/common/", $snippet, ".wgsl")))*
        )
    };
}
pub(crate) use wgsl;

/// Packs up to 8 sizes into the `array<vec4<u32>, 2>` layout of shaders/common/strided.wgsl.
pub(crate) fn pack8(values: &[usize]) -> [u32; 8] {
    let mut out = [0u32; 8];
    for (o, &v) in out.iter_mut().zip(values) {
        *o = v as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every composed source parses and validates with naga, without a device.
    #[test]
    fn every_source_validates_with_naga() {
        use wgpu::naga;
        for &k in Kernel::ALL {
            let module = naga::front::wgsl::parse_str(k.source())
                .unwrap_or_else(|e| panic!("{}: {}", k.name(), e.emit_to_string(k.source())));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {e:?}", k.name()));
            assert!(
                module.entry_points.iter().any(|e| e.name == k.name()),
                "{} has no entry point of its name",
                k.name()
            );
            // Workgroup memory within the smallest limit wgpu's downlevel defaults promise.
            let shared: u32 = module
                .global_variables
                .iter()
                .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
                .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
                .sum();
            let limit = wgpu::Limits::downlevel_defaults().max_compute_workgroup_storage_size;
            assert!(
                shared <= limit,
                "{}: {shared} bytes of workgroup memory, over the downlevel {limit}",
                k.name()
            );
        }
    }

    #[test]
    fn grids_fold_past_the_dimension_limit() {
        assert_eq!(fold_grid("t", 10, 65535).unwrap(), [10, 1, 1]);
        let [x, y, _] = fold_grid("t", 200_000, 65535).unwrap();
        assert!(u64::from(x) * u64::from(y) >= 200_000 && y == 4);
        assert!(matches!(
            fold_grid("t", 65536u64 * 65536, 65535),
            Err(Error::TooLarge { .. })
        ));
    }
}
