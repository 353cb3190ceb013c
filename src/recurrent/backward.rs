//! The backward of one recurrent layer, per direction: the planned step launches in reverse
//! (`recurrent_step_backward`), then the weight gradients as single GEMMs over all timesteps
//! (K = T·B), the bias gradients as column sums, dX as one GEMM and dh0 as one more.

use super::forward::Saved;
use super::plan::SequencePlan;
use super::{span, CellKind, DirectionWeights};
use crate::error::Result;
use crate::ops::matmul::Matmul;
use crate::ops::recurrent::{recurrent_step_backward, StepBackward};
use crate::tensor::autodiff::Grads;
use crate::tensor::Tensor;

/// Everything the layer's node keeps for its backward (detached tensors only).
pub(crate) struct Backward {
    pub plan: SequencePlan,
    /// [T·B, I]: the input.
    pub x2: Tensor,
    pub lengths: Tensor,
    pub saved: Vec<Saved>,
    pub weights: Vec<DirectionWeights>,
    /// Where the first direction's weights start among the node's inputs (x, h0, c0?, ...).
    pub first_weight: usize,
    pub has_c0: bool,
}

impl Backward {
    /// Hands the node's inputs their gradients from dp, the gradient of the packed result.
    pub fn run(&self, grads: &mut Grads<'_>, dp: &Tensor) -> Result<()> {
        let plan = &self.plan;
        let (steps, batch, hidden, g) = (plan.steps, plan.batch, plan.hidden, plan.gates());
        let slot = plan.slot_len();
        let dp = dp.contiguous()?;
        let dy = span(&dp, 0, plan.y_len())?;
        let mut dx: Option<Tensor> = None;
        let dh0 = self
            .x2
            .output_like(&[plan.dirs, batch, hidden], "recurrent dh0")?;
        let dc0 = self
            .x2
            .output_like(&[plan.dirs, batch, hidden], "recurrent dc0")?;
        for (d, (saved, w)) in self.saved.iter().zip(&self.weights).enumerate() {
            let carry = self
                .x2
                .output_like(&[2, steps + 1, batch, hidden], "recurrent carry")?;
            // dh_n (and dc_n) enter at slot T.
            span(&carry, steps * slot, slot)?.axpy_from(
                &span(&dp, plan.y_len() + d * slot, slot)?,
                1.0,
                0.0,
            )?;
            if plan.lstm() {
                span(&carry, plan.plane() + steps * slot, slot)?.axpy_from(
                    &span(&dp, plan.y_len() + plan.s_len() + d * slot, slot)?,
                    1.0,
                    0.0,
                )?;
            }
            let dg = self
                .x2
                .output_like(&[2, steps, batch, g * hidden], "recurrent dg")?;
            let w_hh = w.w_hh.contiguous()?;
            let b = StepBackward {
                dy: &dy,
                w_hh: &w_hh,
                gates: &saved.gates,
                state: &saved.state,
                lengths: &self.lengths,
                dg: &dg,
                carry: &carry,
            };
            for p in plan.launches(d, true) {
                recurrent_step_backward(plan.code(), &p, plan.whole_sequence, &b)?;
            }
            self.weight_gradients(grads, d, saved, &dg)?;
            if grads.wants(0) {
                let rows = steps * batch;
                let dgx = span(&dg, 0, rows * g * hidden)?.reshape(&[rows, g * hidden])?;
                let part = Matmul::new(&dgx, &w.w_ih).compute()?;
                dx = Some(match dx {
                    Some(acc) => acc.add(&part)?,
                    None => part,
                });
            }
            // dh0 = direct carry into slot 0 + dG_h[slot 0]·W_hh.
            let dh0_d = span(&dh0, d * slot, slot)?.reshape(&[batch, hidden])?;
            dh0_d
                .reshape(&[slot])?
                .axpy_from(&span(&carry, 0, slot)?, 1.0, 0.0)?;
            let dgh0 = span(&dg, steps * batch * g * hidden, batch * g * hidden)?
                .reshape(&[batch, g * hidden])?;
            if plan.cell == CellKind::GruResetBefore {
                // Only r and z reach h0 through W_hh; the n path is in the carry already.
                let rz = dgh0.narrow(1, 0, 2 * hidden)?;
                Matmul::new(&rz, &w_hh.narrow(0, 0, 2 * hidden)?).accumulate_into(&dh0_d, 1.0)?;
            } else {
                Matmul::new(&dgh0, &w_hh).accumulate_into(&dh0_d, 1.0)?;
            }
            if plan.lstm() {
                span(&dc0, d * slot, slot)?.axpy_from(
                    &span(&carry, plan.plane(), slot)?,
                    1.0,
                    0.0,
                )?;
            }
        }
        if let Some(dx) = dx {
            grads.add(0, dx.reshape(&[steps, batch, plan.input])?)?;
        }
        grads.add(1, dh0)?;
        if self.has_c0 {
            grads.add(2, dc0)?;
        }
        Ok(())
    }

    /// dW_ih, dW_hh, db_ih, db_hh of direction `d`: one GEMM each over all T·B rows,
    /// accumulated into the parameters.
    fn weight_gradients(
        &self,
        grads: &mut Grads<'_>,
        d: usize,
        saved: &Saved,
        dg: &Tensor,
    ) -> Result<()> {
        let plan = &self.plan;
        let (hidden, g) = (plan.hidden, plan.gates());
        let rows = plan.steps * plan.batch;
        let dgx = span(dg, 0, rows * g * hidden)?.reshape(&[rows, g * hidden])?;
        let dgh = span(dg, rows * g * hidden, rows * g * hidden)?.reshape(&[rows, g * hidden])?;
        let hs = span(&saved.state, 0, rows * hidden)?.reshape(&[rows, hidden])?; // h before each step
        let base = self.first_weight + 4 * d;
        if grads.wants(base) {
            grads.add_term(base, Matmul::new(&dgx.t()?, &self.x2))?;
        }
        if grads.wants(base + 1) {
            if plan.cell == CellKind::GruResetBefore {
                // W_hr, W_hz pair with h; W_hn pairs with r ⊙ h (saved in the gates, stride 4H).
                let rz = Matmul::new(&dgh.narrow(1, 0, 2 * hidden)?.t()?, &hs).compute()?;
                let rh = saved
                    .gates
                    .reshape(&[rows, 4 * hidden])?
                    .narrow(1, 3 * hidden, hidden)?;
                let n = Matmul::new(&dgh.narrow(1, 2 * hidden, hidden)?.t()?, &rh).compute()?;
                grads.add(base + 1, Tensor::cat0(&[&rz, &n])?)?;
            } else {
                grads.add_term(base + 1, Matmul::new(&dgh.t()?, &hs))?;
            }
        }
        // dG_x and dG_h hold the same values except in the reset-after GRU's n columns (where
        // dG_h carries the factor r): elsewhere one column sum is both bias gradients.
        let same = plan.cell != CellKind::Gru;
        let db_x = if grads.wants(base + 2) || (same && grads.wants(base + 3)) {
            Some(dgx.sum(0)?)
        } else {
            None
        };
        if grads.wants(base + 3) {
            let db_h = match (&db_x, same) {
                (Some(db), true) => db.clone(),
                _ => dgh.sum(0)?,
            };
            grads.add(base + 3, db_h)?;
        }
        if let (Some(db), true) = (db_x, grads.wants(base + 2)) {
            grads.add(base + 2, db)?;
        }
        Ok(())
    }
}
