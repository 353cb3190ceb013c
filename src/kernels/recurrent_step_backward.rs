//! `recurrent_step_backward`: params, bindings and geometry of one fused BPTT step of one layer
//! direction (same `Params` as the forward).

use super::cpu;
use super::recurrent_step_forward::{record_step, Params};
use super::{on, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

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

/// The tensors of one launch, in binding order.
pub(crate) struct Bindings<'a> {
    /// The gradient of the layer's packed output (same layout as the forward's `y`).
    pub dy: &'a Tensor,
    /// [G·H, H], contiguous.
    pub w_hh: &'a Tensor,
    /// The forward's saved gates and states.
    pub gates: &'a Tensor,
    pub state: &'a Tensor,
    pub lengths: &'a Tensor,
    /// [2, T, B, G·H]: the gate gradients on the input side, then on the hidden side.
    pub dg: &'a Tensor,
    /// [2, T + 1, B, H]: dh (and dc) flowing back into each slot.
    pub carry: &'a Tensor,
}

/// One BPTT step of `cell` for `p` where `b.dg` lives, or with `whole_sequence` the whole sweep
/// in reverse: on a GPU in one workgroup (`recurrent_sequence_backward`), on the host the twin
/// walks the steps.
pub(crate) fn launch(cell: u32, p: &Params, whole_sequence: bool, b: &Bindings<'_>) -> Result<()> {
    match on(b.dg) {
        On::Gpu(gpu) => {
            let buffers = [
                b.dy.gpu_raw(),
                b.w_hh.gpu_raw(),
                b.gates.gpu_raw(),
                b.state.gpu_raw(),
                b.lengths.gpu_raw(),
                b.dg.gpu_raw(),
                b.carry.gpu_raw(),
            ];
            let kernels = [
                Kernel::RecurrentStepBackward,
                Kernel::RecurrentSequenceBackward,
            ];
            record_step(gpu, kernels, cell, p, whole_sequence, false, &buffers)
        }
        On::Cpu => {
            let (dy, w_hh) = (host_read(b.dy), host_read(b.w_hh));
            let (gates, state) = (host_read(b.gates), host_read(b.state));
            let lengths = host_read(b.lengths);
            let mut dg = host_write(b.dg);
            let mut carry = host_write(b.carry);
            let inputs = cpu::recurrent_step_backward::Inputs {
                dy: &dy,
                w_hh: &w_hh,
                gates: &gates,
                state: &state,
                lengths: &lengths[b.lengths.offset..],
            };
            cpu::recurrent_step_backward::recurrent_step_backward(
                cell,
                p,
                whole_sequence,
                inputs,
                &mut dg,
                &mut carry,
            );
            Ok(())
        }
    }
}
