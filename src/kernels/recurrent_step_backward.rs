//! `recurrent_step_backward`: params, bindings and geometry of one fused BPTT step of one layer
//! direction (same `Params` as the forward).

use super::recurrent_step_forward::{workgroups, Params, WG};
use super::{wgsl, Kernel};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("recurrent_step_backward", "cells");

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

/// Records the whole backward sweep as one dispatch (the persistent path).
pub(crate) fn record_sequence(
    gpu: &GpuInner,
    cell: u32,
    p: &Params,
    b: &Bindings<'_>,
) -> Result<()> {
    gpu.record(&Dispatch {
        kernel: Kernel::RecurrentSequenceBackward,
        overrides: &[("CELL", f64::from(cell)), ("WG", f64::from(WG))],
        params: bytemuck::bytes_of(p),
        buffers: &[b.dy, b.w_hh, b.gates, b.state, b.lengths, b.dg, b.carry],
        workgroups: [1, 1, 1],
    })
}

pub(crate) fn record(gpu: &GpuInner, cell: u32, p: &Params, b: &Bindings<'_>) -> Result<()> {
    gpu.record(&Dispatch {
        kernel: Kernel::RecurrentStepBackward,
        overrides: &[("CELL", f64::from(cell)), ("WG", f64::from(WG))],
        params: bytemuck::bytes_of(p),
        buffers: &[b.dy, b.w_hh, b.gates, b.state, b.lengths, b.dg, b.carry],
        workgroups: workgroups(gpu, p)?,
    })
}
