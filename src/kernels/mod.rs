//! One Rust owner per WGSL kernel: its `Params` (mirroring the shader's struct field for field),
//! its bindings, its dispatch geometry and, at the bottom, its parity test against `crate::cpu`.
//! Owners record into the pending encoder; the ops in `crate::ops` check shapes before they call.

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
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

/// Every WGSL kernel timeloom compiles. The entry point of each is its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul,
    Unary,
    UnaryBackward,
    Binary,
    Axpy,
    Reduce,
    SoftmaxForward,
    SoftmaxBackward,
    CrossEntropyForward,
    CrossEntropyBackward,
    OptimizerStep,
    ClipScale,
    Dropout,
    RecurrentStepForward,
    RecurrentStepBackward,
    RecurrentSequenceForward,
    RecurrentSequenceBackward,
    LayerNormForward,
    LayerNormBackward,
    EmbeddingForward,
    EmbeddingBackward,
    AttentionForward,
    AttentionBackwardKv,
    AttentionBackwardQ,
    Pool2dForward,
    Pool2dBackward,
    Conv2dForward,
    Conv2dBackwardData,
    Conv2dBackwardWeight,
    BatchNormForward,
    BatchNormBackward,
    FmaPeak,
}

/// How a kernel binds a storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

impl Kernel {
    #[cfg(test)]
    pub const ALL: [Kernel; 32] = [
        Kernel::Matmul,
        Kernel::Unary,
        Kernel::UnaryBackward,
        Kernel::Binary,
        Kernel::Axpy,
        Kernel::Reduce,
        Kernel::SoftmaxForward,
        Kernel::SoftmaxBackward,
        Kernel::CrossEntropyForward,
        Kernel::CrossEntropyBackward,
        Kernel::OptimizerStep,
        Kernel::ClipScale,
        Kernel::Dropout,
        Kernel::RecurrentStepForward,
        Kernel::RecurrentStepBackward,
        Kernel::RecurrentSequenceForward,
        Kernel::RecurrentSequenceBackward,
        Kernel::LayerNormForward,
        Kernel::LayerNormBackward,
        Kernel::EmbeddingForward,
        Kernel::EmbeddingBackward,
        Kernel::AttentionForward,
        Kernel::AttentionBackwardKv,
        Kernel::AttentionBackwardQ,
        Kernel::Pool2dForward,
        Kernel::Pool2dBackward,
        Kernel::Conv2dForward,
        Kernel::Conv2dBackwardData,
        Kernel::Conv2dBackwardWeight,
        Kernel::BatchNormForward,
        Kernel::BatchNormBackward,
        Kernel::FmaPeak,
    ];

    /// The kernel's name: its WGSL file, entry point, Rust owner and CPU twin.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Matmul => "matmul",
            Kernel::Unary => "unary",
            Kernel::UnaryBackward => "unary_backward",
            Kernel::Binary => "binary",
            Kernel::Axpy => "axpy",
            Kernel::Reduce => "reduce",
            Kernel::SoftmaxForward => "softmax_forward",
            Kernel::SoftmaxBackward => "softmax_backward",
            Kernel::CrossEntropyForward => "cross_entropy_forward",
            Kernel::CrossEntropyBackward => "cross_entropy_backward",
            Kernel::OptimizerStep => "optimizer_step",
            Kernel::ClipScale => "clip_scale",
            Kernel::Dropout => "dropout",
            Kernel::RecurrentStepForward => "recurrent_step_forward",
            Kernel::RecurrentStepBackward => "recurrent_step_backward",
            // The persistent path lives in the step kernels' files: the same step, in a loop.
            Kernel::RecurrentSequenceForward => "recurrent_sequence_forward",
            Kernel::RecurrentSequenceBackward => "recurrent_sequence_backward",
            Kernel::LayerNormForward => "layer_norm_forward",
            Kernel::LayerNormBackward => "layer_norm_backward",
            Kernel::EmbeddingForward => "embedding_forward",
            Kernel::EmbeddingBackward => "embedding_backward",
            Kernel::AttentionForward => "attention_forward",
            Kernel::AttentionBackwardKv => "attention_backward_kv",
            Kernel::AttentionBackwardQ => "attention_backward_q",
            Kernel::Pool2dForward => "pool2d_forward",
            Kernel::Pool2dBackward => "pool2d_backward",
            Kernel::Conv2dForward => "conv2d_forward",
            Kernel::Conv2dBackwardData => "conv2d_backward_data",
            Kernel::Conv2dBackwardWeight => "conv2d_backward_weight",
            Kernel::BatchNormForward => "batch_norm_forward",
            Kernel::BatchNormBackward => "batch_norm_backward",
            Kernel::FmaPeak => "fma_peak",
        }
    }

    /// The composed WGSL source: the kernel file first, then the snippets it needs.
    pub fn source(self) -> &'static str {
        match self {
            Kernel::Matmul => matmul::SOURCE,
            Kernel::Unary => unary::SOURCE,
            Kernel::UnaryBackward => unary_backward::SOURCE,
            Kernel::Binary => binary::SOURCE,
            Kernel::Axpy => axpy::SOURCE,
            Kernel::Reduce => reduce::SOURCE,
            Kernel::SoftmaxForward => softmax_forward::SOURCE,
            Kernel::SoftmaxBackward => softmax_backward::SOURCE,
            Kernel::CrossEntropyForward => cross_entropy_forward::SOURCE,
            Kernel::CrossEntropyBackward => cross_entropy_backward::SOURCE,
            Kernel::OptimizerStep => optimizer_step::SOURCE,
            Kernel::ClipScale => clip_scale::SOURCE,
            Kernel::Dropout => dropout::SOURCE,
            Kernel::RecurrentStepForward | Kernel::RecurrentSequenceForward => {
                recurrent_step_forward::SOURCE
            }
            Kernel::RecurrentStepBackward | Kernel::RecurrentSequenceBackward => {
                recurrent_step_backward::SOURCE
            }
            Kernel::LayerNormForward => layer_norm_forward::SOURCE,
            Kernel::LayerNormBackward => layer_norm_backward::SOURCE,
            Kernel::EmbeddingForward => embedding_forward::SOURCE,
            Kernel::EmbeddingBackward => embedding_backward::SOURCE,
            Kernel::AttentionForward => attention_forward::SOURCE,
            Kernel::AttentionBackwardKv => attention_backward_kv::SOURCE,
            Kernel::AttentionBackwardQ => attention_backward_q::SOURCE,
            Kernel::Pool2dForward => pool2d_forward::SOURCE,
            Kernel::Pool2dBackward => pool2d_backward::SOURCE,
            Kernel::Conv2dForward => conv2d_forward::SOURCE,
            Kernel::Conv2dBackwardData => conv2d_backward_data::SOURCE,
            Kernel::Conv2dBackwardWeight => conv2d_backward_weight::SOURCE,
            Kernel::BatchNormForward => batch_norm_forward::SOURCE,
            Kernel::BatchNormBackward => batch_norm_backward::SOURCE,
            Kernel::FmaPeak => fma_peak::SOURCE,
        }
    }

    /// Storage bindings 1, 2, ... (binding 0 is always the uniform params).
    pub fn bindings(self) -> &'static [Access] {
        use Access::*;
        match self {
            Kernel::Matmul => &[Read, Read, Read, ReadWrite],
            Kernel::Unary => &[Read, ReadWrite],
            Kernel::UnaryBackward => &[Read, Read, ReadWrite],
            Kernel::Binary => &[Read, Read, ReadWrite],
            Kernel::Axpy => &[Read, ReadWrite],
            Kernel::Reduce => &[Read, ReadWrite],
            Kernel::SoftmaxForward => &[Read, ReadWrite],
            Kernel::SoftmaxBackward => &[Read, Read, ReadWrite],
            Kernel::CrossEntropyForward => &[Read, Read, ReadWrite],
            Kernel::CrossEntropyBackward => &[Read, Read, Read, Read, Read, ReadWrite],
            Kernel::OptimizerStep => &[ReadWrite, Read, ReadWrite, ReadWrite, Read],
            Kernel::ClipScale => &[Read, ReadWrite],
            Kernel::Dropout => &[Read, ReadWrite],
            Kernel::RecurrentStepForward | Kernel::RecurrentSequenceForward => {
                &[Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite]
            }
            Kernel::RecurrentStepBackward | Kernel::RecurrentSequenceBackward => {
                &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite]
            }
            Kernel::LayerNormForward => &[Read, Read, Read, ReadWrite, ReadWrite],
            Kernel::LayerNormBackward => &[Read, Read, Read, Read, ReadWrite],
            Kernel::EmbeddingForward | Kernel::EmbeddingBackward => &[Read, Read, ReadWrite],
            Kernel::AttentionForward => &[Read, Read, Read, Read, ReadWrite, ReadWrite],
            Kernel::AttentionBackwardKv | Kernel::AttentionBackwardQ => {
                &[Read, Read, Read, Read, Read, Read, ReadWrite]
            }
            Kernel::Pool2dForward => &[Read, ReadWrite, ReadWrite],
            Kernel::Pool2dBackward => &[Read, Read, ReadWrite],
            Kernel::Conv2dForward => &[Read, Read, Read, ReadWrite],
            Kernel::Conv2dBackwardData | Kernel::Conv2dBackwardWeight => &[Read, Read, ReadWrite],
            Kernel::BatchNormForward => {
                &[Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite]
            }
            Kernel::BatchNormBackward => &[Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
            Kernel::FmaPeak => &[ReadWrite],
        }
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
        kernel,
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
        for k in Kernel::ALL {
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
