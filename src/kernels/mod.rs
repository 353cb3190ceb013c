//! One Rust owner per WGSL kernel: its `Params` (mirroring the shader's struct field for field),
//! its bindings, its dispatch geometry, its `launch` and, at the bottom, its parity test against
//! its CPU twin in `cpu/`. A launch is the one place a kernel meets a device: on a GPU tensor it
//! records the dispatch into the pending encoder, on a host tensor it runs the CPU twin, with
//! the same `Params` either way. The ops in `crate::ops` check devices and shapes before they
//! launch.

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
pub(crate) mod convert;
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
pub(crate) mod sample_categorical;
pub(crate) mod softmax_backward;
pub(crate) mod softmax_forward;
pub(crate) mod unary;
pub(crate) mod unary_backward;

#[cfg(test)]
mod layout_check;

use crate::error::{Error, Result};
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::KernelDesc;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::{host_read, Storage, Tensor};

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

/// Runs `f` on the host data of `tensors`, read-locking each distinct storage once: `a + a` or
/// `a·aᵀ` name one storage twice, and a second read lock taken by one thread can deadlock
/// behind another thread waiting to write.
pub(crate) fn with_host_reads<R>(tensors: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> R {
    let mut guards: Vec<(&Tensor, std::sync::RwLockReadGuard<'_, Vec<f32>>)> = Vec::new();
    let mut slot = Vec::with_capacity(tensors.len());
    for &t in tensors {
        match guards.iter().position(|(g, _)| g.shares_storage(t)) {
            Some(i) => slot.push(i),
            None => {
                slot.push(guards.len());
                guards.push((t, host_read(t)));
            }
        }
    }
    let slices: Vec<&[f32]> = slot.iter().map(|&i| guards[i].1.as_slice()).collect();
    f(&slices)
}

/// Declares every kernel once: its variant, the owner's description (name, composed WGSL,
/// binding access) and the Rust `Params` its uniform mirrors (kept here, not in the description:
/// the device layer binds bytes and never needs it). `Kernel::ALL`, `desc`, `name`, `source` and
/// the layout test's `params` all come from this one list.
macro_rules! kernel_table {
    ($($variant:ident => ($desc:path, $params:ty),)*) => {
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

            /// The Rust `Params` of this kernel: its size and its `FIELDS` (name, offset, size, type).
            #[cfg(test)]
            pub fn params(self) -> (usize, &'static [layout_check::ParamsField]) {
                match self {
                    $(Kernel::$variant => (std::mem::size_of::<$params>(), <$params>::FIELDS),)*
                }
            }
        }
    };
}

kernel_table! {
    Matmul => (matmul::KERNEL, matmul::Params),
    Unary => (unary::KERNEL, unary::Params),
    UnaryBackward => (unary_backward::KERNEL, unary_backward::Params),
    Binary => (binary::KERNEL, binary::Params),
    Axpy => (axpy::KERNEL, axpy::Params),
    Reduce => (reduce::KERNEL, reduce::Params),
    SoftmaxForward => (softmax_forward::KERNEL, softmax_forward::Params),
    SoftmaxBackward => (softmax_backward::KERNEL, softmax_backward::Params),
    CrossEntropyForward => (cross_entropy_forward::KERNEL, cross_entropy_forward::Params),
    CrossEntropyBackward => (cross_entropy_backward::KERNEL, cross_entropy_backward::Params),
    OptimizerStep => (optimizer_step::KERNEL, optimizer_step::Params),
    ClipScale => (clip_scale::KERNEL, clip_scale::Params),
    Dropout => (dropout::KERNEL, dropout::Params),
    RecurrentStepForward => (recurrent_step_forward::KERNEL, recurrent_step_forward::Params),
    RecurrentStepBackward => (recurrent_step_backward::KERNEL, recurrent_step_forward::Params),
    RecurrentSequenceForward =>
        (recurrent_step_forward::SEQUENCE_KERNEL, recurrent_step_forward::Params),
    RecurrentSequenceBackward =>
        (recurrent_step_backward::SEQUENCE_KERNEL, recurrent_step_forward::Params),
    LayerNormForward => (layer_norm_forward::KERNEL, layer_norm_forward::Params),
    LayerNormBackward => (layer_norm_backward::KERNEL, layer_norm_backward::Params),
    EmbeddingForward => (embedding_forward::KERNEL, embedding_forward::Params),
    EmbeddingBackward => (embedding_backward::KERNEL, embedding_forward::Params),
    AttentionForward => (attention_forward::KERNEL, attention_forward::Params),
    AttentionBackwardKv => (attention_backward_kv::KERNEL, attention_backward_kv::Params),
    AttentionBackwardQ => (attention_backward_q::KERNEL, attention_backward_kv::Params),
    Pool2dForward => (pool2d_forward::KERNEL, pool2d_forward::Params),
    Pool2dBackward => (pool2d_backward::KERNEL, pool2d_forward::Params),
    Conv2dForward => (conv2d_forward::KERNEL, conv2d_forward::Params),
    Conv2dBackwardData => (conv2d_backward_data::KERNEL, conv2d_forward::Params),
    Conv2dBackwardWeight => (conv2d_backward_weight::KERNEL, conv2d_forward::Params),
    BatchNormForward => (batch_norm_forward::KERNEL, batch_norm_forward::Params),
    BatchNormBackward => (batch_norm_backward::KERNEL, batch_norm_backward::Params),
    FmaPeak => (fma_peak::KERNEL, fma_peak::Params),
    Convert => (convert::KERNEL, convert::Params),
    SampleCategorical => (sample_categorical::KERNEL, sample_categorical::Params),
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
    overrides: &[(&'static str, f64)],
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
        overrides,
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
    record_flat_with(gpu, kernel, &[], params, buffers, elements)
}

/// [`record_flat`] with `override` constants (an f16 operand's flag, say).
pub(crate) fn record_flat_with(
    gpu: &GpuInner,
    kernel: Kernel,
    overrides: &[(&'static str, f64)],
    params: &[u8],
    buffers: &[&RawBuffer],
    elements: u64,
) -> Result<()> {
    record_grid(
        gpu,
        kernel,
        overrides,
        params,
        buffers,
        elements.div_ceil(256),
    )
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
        &[],
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
    record_grid(gpu, kernel, &[], params, buffers, rows)
}

/// Declares an owner's `Params` as written (attributes, docs and all) and, for tests, its layout
/// as `Params::FIELDS`: name, byte offset, byte size and type of every field in order, which
/// `layout_check` compares with the shader's `struct Params` member for member.
macro_rules! params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
        }

        #[cfg(test)]
        impl $name {
            pub(crate) const FIELDS: &'static [$crate::kernels::layout_check::ParamsField] = &[
                $($crate::kernels::layout_check::ParamsField {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                    size: std::mem::size_of::<$ty>(),
                    ty: stringify!($ty),
                },)*
            ];
        }
    };
}
pub(crate) use params;

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
