//! CPU twin of shaders/recurrent_step_forward.wgsl: the same buffers, layouts and cell math.

use super::activations::sigmoid;
use super::Float;
use crate::kernels::recurrent_step_forward::Params;

/// Gates per cell: RNN 1, LSTM 4, GRU 3.
pub(crate) fn cell_gates(cell: u32) -> usize {
    match cell {
        2 => 4,
        3 | 4 => 3,
        _ => 1,
    }
}

/// Floats saved per hidden unit for the backward.
pub(crate) fn cell_saved(cell: u32) -> usize {
    match cell {
        2..=4 => 4,
        _ => 1,
    }
}

/// The kernel's read-only bindings, in their order.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub xg: &'a [F],
    pub w_t: &'a [F],
    pub b_hh: &'a [F],
    pub lengths: &'a [F],
}

pub(crate) fn recurrent_step_forward<F: Float>(
    cell: u32,
    p: &Params,
    inputs: Inputs<'_, F>,
    state: &mut [F],
    gates: &mut [F],
    y: &mut [F],
) {
    let Inputs {
        xg,
        w_t,
        b_hh,
        lengths,
    } = inputs;
    if cell == 4 && p.phase == 1 {
        return cho_candidate(p, inputs, state, gates, y);
    }
    let (batch, h) = (p.batch as usize, p.hidden as usize);
    let (t, slot) = (p.t as usize, p.slot as usize);
    let gh = cell_gates(cell) * h;
    let c_plane = (p.steps as usize + 1) * batch * h;
    // The recurrent pre-activations for every row at once: rec = h_prev [B, H] · W_hhᵀ [H, G·H],
    // one GEMM (as the shader's per-invocation dot products, summed in another order).
    let mut rec = vec![F::ZERO; batch * gh];
    let prev0 = slot * batch * h;
    assert!(
        state.len() >= prev0 + batch * h && w_t.len() >= h * gh,
        "recurrent_step_forward: buffers too small"
    );
    // SAFETY: h_prev is B×H at prev0 inside `state`, W_hhᵀ is H×G·H, rec is B×G·H.
    unsafe {
        F::gemm(
            [batch, h, gh],
            F::ONE,
            (state[prev0..].as_ptr(), h as isize, 1),
            (w_t.as_ptr(), gh as isize, 1),
            F::ZERO,
            (rec.as_mut_ptr(), gh as isize, 1),
        );
    }
    for b in 0..batch {
        let prev = (slot * batch + b) * h; // state[0, slot, b, :]
        let next = ((slot + 1) * batch + b) * h;
        let valid = (t as f64) < lengths[b].to_f64();
        for j in 0..h {
            let mut acc = [F::ZERO; 4];
            for (g, a) in acc.iter_mut().enumerate().take(cell_gates(cell)) {
                *a = b_hh[g * h + j] + rec[b * gh + g * h + j];
            }
            let xb = (t * batch + b) * gh + j; // xg[t, b, j]
            let h_prev = state[prev + j];
            let saved = (slot * batch + b) * cell_saved(cell) * h + j;
            let mut h_new = h_prev;
            match cell {
                4 => {
                    // Phase 0 of reset-before: r, z and r ⊙ h_prev; the candidate is phase 1.
                    let r = sigmoid(xg[xb] + acc[0]);
                    gates[saved] = r;
                    gates[saved + h] = sigmoid(xg[xb + h] + acc[1]);
                    gates[saved + 3 * h] = r * h_prev;
                    continue;
                }
                2 => {
                    let ig = sigmoid(xg[xb] + acc[0]);
                    let fg = sigmoid(xg[xb + h] + acc[1]);
                    let gg = (xg[xb + 2 * h] + acc[2]).tanh();
                    let og = sigmoid(xg[xb + 3 * h] + acc[3]);
                    let c_prev = state[c_plane + prev + j];
                    let mut c_new = c_prev;
                    if valid {
                        c_new = fg * c_prev + ig * gg;
                        h_new = og * c_new.tanh();
                    }
                    state[c_plane + next + j] = c_new;
                    gates[saved] = ig;
                    gates[saved + h] = fg;
                    gates[saved + 2 * h] = gg;
                    gates[saved + 3 * h] = og;
                }
                3 => {
                    let r = sigmoid(xg[xb] + acc[0]);
                    let z = sigmoid(xg[xb + h] + acc[1]);
                    let n = (xg[xb + 2 * h] + r * acc[2]).tanh();
                    if valid {
                        h_new = (F::ONE - z) * n + z * h_prev;
                    }
                    gates[saved] = r;
                    gates[saved + h] = z;
                    gates[saved + 2 * h] = n;
                    gates[saved + 3 * h] = acc[2];
                }
                _ => {
                    let pre = xg[xb] + acc[0];
                    if valid {
                        h_new = if cell == 1 {
                            pre.max(F::ZERO)
                        } else {
                            pre.tanh()
                        };
                    }
                    gates[saved] = h_new;
                }
            }
            state[next + j] = h_new;
            y[(t * batch + b) * p.y_stride as usize + p.y_off as usize + j] =
                if valid { h_new } else { F::ZERO };
        }
    }
}

/// Phase 1 of the reset-before GRU: n = tanh(W_in x + b_in + W_hn·(r ⊙ h) + b_hn), h' = (1 − z)n + z·h.
fn cho_candidate<F: Float>(
    p: &Params,
    inputs: Inputs<'_, F>,
    state: &mut [F],
    gates: &mut [F],
    y: &mut [F],
) {
    let Inputs {
        xg,
        w_t,
        b_hh,
        lengths,
    } = inputs;
    let (batch, h, t, slot) = (
        p.batch as usize,
        p.hidden as usize,
        p.t as usize,
        p.slot as usize,
    );
    let gh = 3 * h;
    // rec = (r ⊙ h) [B, H] (row stride 4H inside `gates`) · W_hnᵀ (columns 2H.. of W_hhᵀ).
    let mut rec = vec![F::ZERO; batch * h];
    let rh0 = (slot * batch * 4 + 3) * h;
    assert!(
        gates.len() >= rh0 + (batch - 1) * 4 * h + h && w_t.len() >= h * gh,
        "recurrent_step_forward: buffers too small"
    );
    // SAFETY: the assert bounds both operands; rec is B×H.
    unsafe {
        F::gemm(
            [batch, h, h],
            F::ONE,
            (gates[rh0..].as_ptr(), (4 * h) as isize, 1),
            (w_t[2 * h..].as_ptr(), gh as isize, 1),
            F::ZERO,
            (rec.as_mut_ptr(), h as isize, 1),
        );
    }
    let c_y = |b: usize| (t * batch + b) * p.y_stride as usize + p.y_off as usize;
    for b in 0..batch {
        let (prev, next) = ((slot * batch + b) * h, ((slot + 1) * batch + b) * h);
        let valid = (t as f64) < lengths[b].to_f64();
        for j in 0..h {
            let saved = (slot * batch + b) * 4 * h + j;
            let z = gates[saved + h];
            let n =
                (xg[(t * batch + b) * gh + 2 * h + j] + rec[b * h + j] + b_hh[2 * h + j]).tanh();
            gates[saved + 2 * h] = n;
            let h_prev = state[prev + j];
            let h_new = if valid {
                (F::ONE - z) * n + z * h_prev
            } else {
                h_prev
            };
            state[next + j] = h_new;
            y[c_y(b) + j] = if valid { h_new } else { F::ZERO };
        }
    }
}
