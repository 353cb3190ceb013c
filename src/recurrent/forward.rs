//! The forward of one recurrent layer, per direction: one GEMM for the input projection of all T
//! steps, one copy of W_hhᵀ, then the planned step launches (`recurrent_step_forward`), and the
//! final states copied into the packed result. Recorded, never waited on. f16 weights (inference)
//! stay f16: the GEMM and the steps widen them as they load them.

use super::plan::SequencePlan;
use super::{span, DirectionWeights};
use crate::error::Result;
use crate::ops::matmul::Matmul;
use crate::ops::recurrent::{recurrent_step_forward, StepForward};
use crate::tensor::{DType, Tensor};

/// What the backward needs of one direction.
pub(crate) struct Saved {
    /// [2, T + 1, B, H]: h (and c) before and after every step.
    pub state: Tensor,
    /// [T, B, saved·H]: the activated gates (and what else the cell saves).
    pub gates: Tensor,
}

/// The layer's inputs, detached and contiguous.
pub(crate) struct Inputs<'a> {
    /// [T·B, I]
    pub x2: &'a Tensor,
    /// [dirs, B, H]
    pub h0: &'a Tensor,
    /// [dirs, B, H], LSTM only.
    pub c0: Option<&'a Tensor>,
    /// [B], in a buffer of its own.
    pub lengths: &'a Tensor,
}

/// Runs every direction into `packed` [y ‖ h_n ‖ c_n]; returns what each saved.
pub(crate) fn run(
    plan: &SequencePlan,
    inputs: &Inputs<'_>,
    dirs: &[DirectionWeights],
    packed: &Tensor,
) -> Result<Vec<Saved>> {
    let (steps, batch, hidden) = (plan.steps, plan.batch, plan.hidden);
    let slot = plan.slot_len();
    let mut saved = Vec::with_capacity(dirs.len());
    for (d, w) in dirs.iter().enumerate() {
        let xg = Matmul::new(inputs.x2, &w.w_ih.detach().t()?)
            .bias(&w.b_ih.detach())
            .compute()?;
        let w_t = w.w_hh.detach().t()?.contiguous()?;
        let state = packed.output_like(&[2, steps + 1, batch, hidden], "recurrent state")?;
        span(&state, 0, slot)?.axpy_from(&span(inputs.h0, d * slot, slot)?, 1.0, 0.0)?;
        if let Some(c0) = inputs.c0 {
            span(&state, plan.plane(), slot)?.axpy_from(&span(c0, d * slot, slot)?, 1.0, 0.0)?;
        }
        let gates = packed.output_like(
            &[steps, batch, plan.saved_per_unit() * hidden],
            "recurrent gates",
        )?;
        // The kernel reads b_hh from element 0 of its buffer, in f32 (an f16 one is widened:
        // G·H values).
        let b_hh = w.b_hh.detach().to_dtype(DType::F32)?.owned()?;
        let b = StepForward {
            xg: &xg,
            w_t: &w_t,
            b_hh: &b_hh,
            lengths: inputs.lengths,
            state: &state,
            gates: &gates,
            y: packed,
        };
        for p in plan.launches(d, false) {
            recurrent_step_forward(plan.code(), &p, plan.whole_sequence, &b)?;
        }
        // Final states out of slot T into the packed result.
        span(packed, plan.y_len() + d * slot, slot)?.axpy_from(
            &span(&state, steps * slot, slot)?,
            1.0,
            0.0,
        )?;
        if plan.lstm() {
            span(packed, plan.y_len() + plan.s_len() + d * slot, slot)?.axpy_from(
                &span(&state, plan.plane() + steps * slot, slot)?,
                1.0,
                0.0,
            )?;
        }
        saved.push(Saved { state, gates });
    }
    Ok(saved)
}
