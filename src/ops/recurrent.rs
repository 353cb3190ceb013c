//! The fused recurrent cell steps: the scheduler (`crate::recurrent`) plans which steps run, in
//! what order and with which `Params`; these check that every tensor is on one device and launch.

use crate::error::Result;
use crate::kernels::{recurrent_step_backward as bwd, recurrent_step_forward as fwd};
use crate::ops::{same_device, same_device_any_dtype};

pub(crate) use crate::kernels::recurrent_step_backward::Bindings as StepBackward;
pub(crate) use crate::kernels::recurrent_step_forward::{
    cell_gates, cell_saved, persistent, phases, Bindings as StepForward, Params as StepParams,
};

/// One forward step of `cell` (or, with `whole_sequence`, all of them).
pub(crate) fn recurrent_step_forward(
    cell: u32,
    p: &StepParams,
    whole_sequence: bool,
    b: &StepForward<'_>,
) -> Result<()> {
    let op = "recurrent_step_forward";
    // W_hhᵀ may be f16 (inference; the scheduler refuses it where gradients are wanted).
    same_device_any_dtype(op, "w_t", b.xg, b.w_t)?;
    for (arg, t) in [
        ("b_hh", b.b_hh),
        ("lengths", b.lengths),
        ("state", b.state),
        ("gates", b.gates),
        ("y", b.y),
    ] {
        same_device(op, arg, b.xg, t)?;
    }
    fwd::launch(cell, p, whole_sequence, b)
}

/// One BPTT step of `cell` (or, with `whole_sequence`, the whole sweep).
pub(crate) fn recurrent_step_backward(
    cell: u32,
    p: &StepParams,
    whole_sequence: bool,
    b: &StepBackward<'_>,
) -> Result<()> {
    let op = "recurrent_step_backward";
    for (arg, t) in [
        ("w_hh", b.w_hh),
        ("gates", b.gates),
        ("state", b.state),
        ("lengths", b.lengths),
        ("dg", b.dg),
        ("carry", b.carry),
    ] {
        same_device(op, arg, b.dy, t)?;
    }
    bwd::launch(cell, p, whole_sequence, b)
}
