//! CPU twin of shaders/recurrent_step_forward.wgsl: the same buffers, layouts and cell math.

use rayon::prelude::*;

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
    if cell == 4 && p.phase == 1 {
        return cho_candidate(p, inputs, state, gates, y);
    }
    let Inputs { w_t, .. } = inputs;
    let (batch, h) = (p.batch as usize, p.hidden as usize);
    let gh = cell_gates(cell) * h;
    let prev0 = p.slot as usize * batch * h;
    assert!(
        state.len() >= prev0 + batch * h && w_t.len() >= h * gh,
        "recurrent_step_forward: buffers too small"
    );
    // The recurrent pre-activations for every row at once: rec = h_prev [B, H] · W_hhᵀ [H, G·H],
    // one GEMM (as the shader's per-invocation dot products, summed in another order), into
    // this thread's scratch: no allocation per step.
    F::with_scratch(batch * gh, |rec| {
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
        cells(cell, p, inputs, rec, state, gates, y);
    });
}

/// One row of the batch: what [`cell_row`] reads and writes.
struct Row<'a, F> {
    /// xg[t, b, :] (G·H) and rec[b, :] (G·H).
    xg: &'a [F],
    rec: &'a [F],
    h_prev: &'a [F],
    /// LSTM only: c[slot, b, :] (empty otherwise).
    c_prev: &'a [F],
    h_next: &'a mut [F],
    c_next: &'a mut [F],
    /// The saved floats of (slot, b): cell_saved·H.
    saved: &'a mut [F],
    /// y[t, b, y_off..y_off + H].
    y: &'a mut [F],
    valid: bool,
}

/// The cell after the GEMM for every row of the batch, the rows in parallel on the pool (each
/// row's outputs are its own slices).
fn cells<F: Float>(
    cell: u32,
    p: &Params,
    inputs: Inputs<'_, F>,
    rec: &[F],
    state: &mut [F],
    gates: &mut [F],
    y: &mut [F],
) {
    let Inputs {
        xg, b_hh, lengths, ..
    } = inputs;
    let (batch, h) = (p.batch as usize, p.hidden as usize);
    let (t, slot) = (p.t as usize, p.slot as usize);
    let gh = cell_gates(cell) * h;
    let sv = cell_saved(cell) * h;
    let rows = batch * h;
    // state = [h planes (steps + 1) × B × H | c planes (steps + 1) × B × H]: h[slot] is read,
    // h[slot + 1] written, and for the LSTM c[slot] read and c[slot + 1] written.
    let (lo, hi) = state.split_at_mut((slot + 1) * rows);
    let h_prev = &lo[slot * rows..];
    let (h_next, rest) = hi.split_at_mut(rows);
    let (c_prev, c_next): (&[F], &mut [F]) = if cell == 2 {
        let c_plane = (p.steps as usize + 1) * rows;
        // `rest` starts at (slot + 2)·rows; c[slot] and c[slot + 1] lie past it.
        let (a, b) = rest.split_at_mut(c_plane + (slot + 1) * rows - (slot + 2) * rows);
        (&a[a.len() - rows..], &mut b[..rows])
    } else {
        (&[], &mut [])
    };
    let c_len = if cell == 2 { h } else { 0 };
    let (ys, y0) = (
        p.y_stride as usize,
        (t * batch) * p.y_stride as usize + p.y_off as usize,
    );
    let y = &mut y[y0..y0 + (batch - 1) * ys + h];
    let saved = &mut gates[slot * batch * sv..][..batch * sv];
    let xg = &xg[t * batch * gh..][..batch * gh];
    let run = |b: usize, h_next: &mut [F], c_next: &mut [F], saved: &mut [F], y: &mut [F]| {
        let c_prev = if c_len > 0 {
            &c_prev[b * h..][..h]
        } else {
            &[][..]
        };
        let row = Row {
            xg: &xg[b * gh..][..gh],
            rec: &rec[b * gh..][..gh],
            h_prev: &h_prev[b * h..][..h],
            c_prev,
            h_next,
            c_next,
            saved,
            y: &mut y[..h],
            valid: (t as f64) < lengths[b].to_f64(),
        };
        cell_row(cell, h, b_hh, row);
    };
    // A cell costs about ten flops and two exponentials per gate and unit.
    if !super::worth_parallel(batch * gh * 8) {
        let rows = h_next
            .chunks_mut(h)
            .zip(saved.chunks_mut(sv))
            .zip(y.chunks_mut(ys))
            .enumerate();
        if c_len > 0 {
            rows.zip(c_next.chunks_mut(h))
                .for_each(|((b, ((h_next, saved), y)), c_next)| run(b, h_next, c_next, saved, y));
        } else {
            rows.for_each(|(b, ((h_next, saved), y))| run(b, h_next, &mut [], saved, y));
        }
        return;
    }
    let rows = h_next
        .par_chunks_mut(h)
        .zip(saved.par_chunks_mut(sv))
        .zip(y.par_chunks_mut(ys))
        .enumerate();
    if c_len > 0 {
        rows.zip(c_next.par_chunks_mut(h))
            .for_each(|((b, ((h_next, saved), y)), c_next)| run(b, h_next, c_next, saved, y));
    } else {
        rows.for_each(|(b, ((h_next, saved), y))| run(b, h_next, &mut [], saved, y));
    }
}

/// The cell's arithmetic for one row: the shader's, unit by unit.
fn cell_row<F: Float>(cell: u32, h: usize, b_hh: &[F], r: Row<'_, F>) {
    let Row {
        xg,
        rec,
        h_prev,
        c_prev,
        h_next,
        c_next,
        saved,
        y,
        valid,
    } = r;
    let pre = |g: usize, j: usize| b_hh[g * h + j] + rec[g * h + j];
    let one = F::ONE;
    for j in 0..h {
        let hp = h_prev[j];
        let mut h_new = hp;
        match cell {
            4 => {
                // Phase 0 of reset-before: r, z and r ⊙ h_prev; the candidate is phase 1.
                let r = sigmoid(xg[j] + pre(0, j));
                saved[j] = r;
                saved[h + j] = sigmoid(xg[h + j] + pre(1, j));
                saved[3 * h + j] = r * hp;
                continue;
            }
            2 => {
                let ig = sigmoid(xg[j] + pre(0, j));
                let fg = sigmoid(xg[h + j] + pre(1, j));
                let gg = (xg[2 * h + j] + pre(2, j)).tanh();
                let og = sigmoid(xg[3 * h + j] + pre(3, j));
                let mut c_new = c_prev[j];
                if valid {
                    c_new = fg * c_prev[j] + ig * gg;
                    h_new = og * c_new.tanh();
                }
                c_next[j] = c_new;
                saved[j] = ig;
                saved[h + j] = fg;
                saved[2 * h + j] = gg;
                saved[3 * h + j] = og;
            }
            3 => {
                let hn = pre(2, j);
                let r = sigmoid(xg[j] + pre(0, j));
                let z = sigmoid(xg[h + j] + pre(1, j));
                let n = (xg[2 * h + j] + r * hn).tanh();
                if valid {
                    h_new = (one - z) * n + z * hp;
                }
                saved[j] = r;
                saved[h + j] = z;
                saved[2 * h + j] = n;
                saved[3 * h + j] = hn;
            }
            _ => {
                let v = xg[j] + pre(0, j);
                if valid {
                    h_new = if cell == 1 { v.max(F::ZERO) } else { v.tanh() };
                }
                saved[j] = h_new;
            }
        }
        h_next[j] = h_new;
        y[j] = if valid { h_new } else { F::ZERO };
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
    let rh0 = (slot * batch * 4 + 3) * h;
    assert!(
        gates.len() >= rh0 + (batch - 1) * 4 * h + h && w_t.len() >= h * gh,
        "recurrent_step_forward: buffers too small"
    );
    // Into this thread's scratch: no allocation per step.
    F::with_scratch(batch * h, |rec| {
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
                let n = (xg[(t * batch + b) * gh + 2 * h + j] + rec[b * h + j] + b_hh[2 * h + j])
                    .tanh();
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
    });
}
