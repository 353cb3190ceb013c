//! `recurrent_step_forward`: params, bindings and geometry of one fused RNN/LSTM/GRU timestep of
//! one layer direction. The cell is an `override` (`CELL`), so each cell type is one pipeline.

use bytemuck::{Pod, Zeroable};

use super::{fold_grid, params, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!(
    "recurrent_step_forward",
    "recurrent",
    "activations",
    "cells"
);

/// `recurrent_sequence_forward` as the device layer sees it.
pub(crate) const SEQUENCE_KERNEL: KernelDesc = KernelDesc {
    name: "recurrent_sequence_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// `recurrent_step_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "recurrent_step_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// Invocations per workgroup: hidden units per workgroup.
pub(crate) const WG: u32 = 64;

params! {
    /// Mirrors `struct Params` in shaders/common/recurrent.wgsl (both recurrent kernels).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub batch: u32,
        pub hidden: u32,
        /// T, the steps of the sequence.
        pub steps: u32,
        /// The time index this step reads and writes.
        pub t: u32,
        /// The state slot this step reads (it writes slot + 1).
        pub slot: u32,
        /// Row stride of the output: dirs·H.
        pub y_stride: u32,
        /// Column offset of this direction in the output: d·H.
        pub y_off: u32,
        /// 1 for the reverse direction (read by the persistent path, which walks the times itself).
        pub reverse: u32,
        /// 0, or 1 for the second phase of a reset-before GRU step.
        pub phase: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The buffers of one step, in binding order.
pub(crate) struct Bindings<'a> {
    pub xg: &'a RawBuffer,
    pub w_t: &'a RawBuffer,
    pub b_hh: &'a RawBuffer,
    pub lengths: &'a RawBuffer,
    pub state: &'a RawBuffer,
    pub gates: &'a RawBuffer,
    pub y: &'a RawBuffer,
}

/// Batch rows per invocation (`BT` in the shaders).
pub(crate) const BT: u32 = 8;

/// Grid of a step: ceil(H / WG) × ceil(B / BT).
pub(crate) fn workgroups(gpu: &GpuInner, p: &Params) -> Result<[u32; 3]> {
    let max = gpu.limits.max_compute_workgroups_per_dimension;
    let (x, y) = (p.hidden.div_ceil(WG), p.batch.div_ceil(BT));
    if x > max || y > max {
        // 65,535 × 64 hidden units or × 8 batch rows: far past any layer that fits in memory.
        return fold_grid("recurrent_step", u64::from(max) + 1, 1).map(|_| [x, y, 1]);
    }
    Ok([x, y, 1])
}

/// Whether one workgroup runs the whole sequence (`recurrent_sequence_forward`/`_backward`):
/// when the state is small enough that one workgroup of WG invocations, looping over hidden
/// units and batch tiles, beats T dispatches of its own: H ≤ 128 and B·H ≤ 1024.
pub(crate) fn persistent(batch: u32, hidden: u32) -> bool {
    hidden <= 128 && u64::from(batch) * u64::from(hidden) <= 1024
}

/// Records one step, or with `whole_sequence` the persistent path: the whole sequence in one
/// workgroup (`recurrent_sequence_forward`, grid 1 × 1).
pub(crate) fn record(
    gpu: &GpuInner,
    cell: u32,
    p: &Params,
    b: &Bindings<'_>,
    whole_sequence: bool,
) -> Result<()> {
    let (kernel, workgroups) = if whole_sequence {
        (Kernel::RecurrentSequenceForward, [1, 1, 1])
    } else {
        (Kernel::RecurrentStepForward, workgroups(gpu, p)?)
    };
    gpu.record(&Dispatch {
        kernel: kernel.desc(),
        overrides: &[("CELL", f64::from(cell)), ("WG", f64::from(WG))],
        params: bytemuck::bytes_of(p),
        buffers: &[b.xg, b.w_t, b.b_hh, b.lengths, b.state, b.gates, b.y],
        workgroups,
    })
}
