//! The timestep scheduler: turns one recurrent layer (all directions) over a sequence into a
//! short, fixed list of launches, and one node on the tape. The plan (`plan.rs`: sizes, packed
//! layout, launch order and `Params`) is built once per call and shared by the forward
//! (`forward.rs`) and the backward (`backward.rs`). Everything is recorded into the pending
//! encoder: nothing here submits or waits.

mod backward;
mod forward;
mod plan;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::is_grad_enabled;
use crate::ops::recurrent::cell_gates;
use crate::tensor::autodiff::{no_grad, record};
use crate::tensor::{DType, Tensor};
use backward::Backward;
use plan::SequencePlan;

/// The recurrent cell, with PyTorch's semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// h' = tanh(W_ih x + b_ih + W_hh h + b_hh), `nn.RNN` with `nonlinearity='tanh'`.
    RnnTanh,
    /// h' = relu(...), `nn.RNN` with `nonlinearity='relu'`.
    RnnRelu,
    /// `nn.LSTM`: gates i, f, g, o.
    Lstm,
    /// `nn.GRU`: gates r, z, n, reset applied after the hidden projection.
    Gru,
    /// GRU in the form of Cho et al. (2014): n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), the
    /// reset applied before the hidden projection. Same parameters and names as `Gru`; two
    /// dispatches a step.
    GruResetBefore,
}

impl CellKind {
    pub(crate) fn code(self) -> u32 {
        match self {
            CellKind::RnnTanh => 0,
            CellKind::RnnRelu => 1,
            CellKind::Lstm => 2,
            CellKind::Gru => 3,
            CellKind::GruResetBefore => 4,
        }
    }

    /// Gates per hidden unit: 1, 4 or 3.
    pub fn gates(self) -> usize {
        cell_gates(self.code())
    }
}

/// The four parameters of one layer direction, PyTorch's layouts.
#[derive(Clone)]
pub(crate) struct DirectionWeights {
    /// [G·H, I]
    pub w_ih: Tensor,
    /// [G·H, H]
    pub w_hh: Tensor,
    /// [G·H]
    pub b_ih: Tensor,
    /// [G·H]
    pub b_hh: Tensor,
}

/// What one layer returns: the outputs of every step and the final states.
pub(crate) struct LayerOutput {
    /// [T, B, dirs·H]
    pub y: Tensor,
    /// [dirs, B, H]
    pub h_n: Tensor,
    /// [dirs, B, H], LSTM only.
    pub c_n: Option<Tensor>,
}

/// A contiguous element range of a contiguous tensor, as a 1-D view.
fn span(t: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    t.reshape(&[t.numel()])?.narrow(0, start, len)
}

/// f16 weights run forward only: the backward kernels read f32 weights, and f16 ones are not
/// trained. So with f16 weights nothing may need this layer's gradients while the tape records.
fn check_half_weights(
    x: &Tensor,
    h0: &Tensor,
    c0: Option<&Tensor>,
    dirs: &[DirectionWeights],
) -> Result<()> {
    let half = dirs
        .iter()
        .flat_map(|w| [&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh])
        .any(|t| t.dtype() == DType::F16);
    let tracked = [Some(x), Some(h0), c0]
        .into_iter()
        .flatten()
        .chain(
            dirs.iter()
                .flat_map(|w| [&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh]),
        )
        .any(Tensor::tracks_grad);
    if half && tracked && is_grad_enabled() {
        return Err(Error::Unsupported {
            op: "Recurrent::forward",
            message: "f16 weights with inputs or weights that track gradients: f16 recurrent layers run forward only (inference); run under no_grad, or keep a trained layer in f32 (Recurrent::to_dtype(DType::F32))".into(),
        });
    }
    Ok(())
}

/// Runs one layer over x [T, B, I] with initial states h0 (and c0) [dirs, B, H] and per-sequence
/// `lengths` [B] (f32, ≤ T), as one node on the tape.
pub(crate) fn layer(
    cell: CellKind,
    x: &Tensor,
    h0: &Tensor,
    c0: Option<&Tensor>,
    dirs: &[DirectionWeights],
    lengths: &Tensor,
    persistent: Option<bool>,
) -> Result<LayerOutput> {
    let plan = SequencePlan::new(cell, x.shape(), dirs, persistent)?;
    check_half_weights(x, h0, c0, dirs)?;
    let (steps, batch, hidden, nd) = (plan.steps, plan.batch, plan.hidden, plan.dirs);

    // Everything inside runs detached: the node below is the only thing the tape sees.
    let x2 = x
        .detach()
        .contiguous()?
        .reshape(&[steps * batch, plan.input])?;
    let h0d = h0.detach().contiguous()?;
    let c0d = c0.map(|c| c.detach().contiguous()).transpose()?;
    // The kernels read lengths[b] from element 0 of the buffer: a view into a larger tensor is
    // copied to a buffer of its own.
    let lengths = lengths.owned()?;
    let packed = x.output_like(&[plan.packed_len()], "recurrent")?;
    let inputs = forward::Inputs {
        x2: &x2,
        h0: &h0d,
        c0: c0d.as_ref(),
        lengths: &lengths,
    };
    let saved = no_grad(|| forward::run(&plan, &inputs, dirs, &packed))?;

    let mut node_inputs: Vec<&Tensor> = vec![x, h0];
    if let Some(c0) = c0 {
        node_inputs.push(c0);
    }
    let first_weight = node_inputs.len();
    for w in dirs {
        node_inputs.extend([&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh]);
    }
    let backward = Backward {
        plan,
        x2,
        lengths,
        saved,
        weights: dirs
            .iter()
            .map(|w| DirectionWeights {
                w_ih: w.w_ih.detach(),
                w_hh: w.w_hh.detach(),
                b_ih: w.b_ih.detach(),
                b_hh: w.b_hh.detach(),
            })
            .collect(),
        first_weight,
        has_c0: c0.is_some(),
    };
    let packed = record(packed, "recurrent", &node_inputs, move |grads, dp| {
        backward.run(grads, dp)
    });
    let (y_len, s_len) = (plan.y_len(), plan.s_len());
    let y = packed
        .narrow(0, 0, y_len)?
        .reshape(&[steps, batch, nd * hidden])?;
    let h_n = packed
        .narrow(0, y_len, s_len)?
        .reshape(&[nd, batch, hidden])?;
    let c_n = if plan.lstm() {
        Some(
            packed
                .narrow(0, y_len + s_len, s_len)?
                .reshape(&[nd, batch, hidden])?,
        )
    } else {
        None
    };
    Ok(LayerOutput { y, h_n, c_n })
}
