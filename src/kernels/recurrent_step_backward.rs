//! `recurrent_step_backward`: params, bindings and geometry of one fused BPTT step of one layer
//! direction (same `Params` as the forward).

use super::recurrent_step_forward::{workgroups, Params, WG};
use super::{wgsl, Kernel};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("recurrent_step_backward", "recurrent", "cells");

/// `recurrent_sequence_backward` as the device layer sees it.
pub(crate) const SEQUENCE_KERNEL: KernelDesc = KernelDesc {
    name: "recurrent_sequence_backward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// `recurrent_step_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "recurrent_step_backward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// The buffers of one step, in binding order.
pub(crate) struct Bindings<'a> {
    pub dy: &'a RawBuffer,
    pub w_hh: &'a RawBuffer,
    pub gates: &'a RawBuffer,
    pub state: &'a RawBuffer,
    pub lengths: &'a RawBuffer,
    pub dg: &'a RawBuffer,
    pub carry: &'a RawBuffer,
}

/// Records one step, or with `whole_sequence` the whole backward sweep in one workgroup.
pub(crate) fn record(
    gpu: &GpuInner,
    cell: u32,
    p: &Params,
    b: &Bindings<'_>,
    whole_sequence: bool,
) -> Result<()> {
    let (kernel, workgroups) = if whole_sequence {
        (Kernel::RecurrentSequenceBackward, [1, 1, 1])
    } else {
        (Kernel::RecurrentStepBackward, workgroups(gpu, p)?)
    };
    gpu.record(&Dispatch {
        kernel: kernel.desc(),
        overrides: &[("CELL", f64::from(cell)), ("WG", f64::from(WG))],
        params: bytemuck::bytes_of(p),
        buffers: &[b.dy, b.w_hh, b.gates, b.state, b.lengths, b.dg, b.carry],
        workgroups,
    })
}
