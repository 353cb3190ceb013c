//! CPU twin of shaders/recurrent_step_forward.wgsl: the same buffers, layouts and cell math.

use rayon::prelude::*;

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
    // Rows of the batch per pool task: each task multiplies its rows of h_prev by W_hhᵀ and runs
    // the cell on them, one fork per step (not one for the GEMM and another for the cells). A
    // step too small to split runs on the caller, its GEMM free to split itself.
    let chunk = super::rows_per_step_task(batch, batch * h * gh);
    cells(cell, p, inputs, chunk, state, gates, y);
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

/// The step for every row of the batch, `chunk` rows per pool task (each chunk's outputs are
/// its own slices): rec = h_prev · W_hhᵀ for the chunk's rows by one GEMM into the thread's
/// scratch (no allocation per step; the shader's per-invocation dot products, summed in another
/// order, and the same order whatever the chunk), then the cell row by row.
fn cells<F: Float>(
    cell: u32,
    p: &Params,
    inputs: Inputs<'_, F>,
    chunk: usize,
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
    let (batch, h) = (p.batch as usize, p.hidden as usize);
    let (t, slot) = (p.t as usize, p.slot as usize);
    let gh = cell_gates(cell) * h;
    let sv = cell_saved(cell) * h;
    let rows = batch * h;
    // state = [h planes (steps + 1) × B × H | c planes (steps + 1) × B × H]: h[slot] is read,
    // h[slot + 1] written, and for the LSTM c[slot] read and c[slot + 1] written.
    let (lo, hi) = state.split_at_mut((slot + 1) * rows);
    let h_prev = &lo[slot * rows..][..rows];
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
    let task = |i: usize, h_next: &mut [F], c_next: &mut [F], saved: &mut [F], y: &mut [F]| {
        let (b0, n) = (i * chunk, h_next.len() / h);
        F::with_scratch(n * gh, |rec| {
            // SAFETY: rows b0..b0 + n of h_prev are n×H inside `h_prev`, W_hhᵀ is H×G·H
            // (asserted by the caller), rec is n×G·H.
            unsafe {
                F::gemm(
                    [n, h, gh],
                    F::ONE,
                    (h_prev[b0 * h..].as_ptr(), h as isize, 1),
                    (w_t.as_ptr(), gh as isize, 1),
                    F::ZERO,
                    (rec.as_mut_ptr(), gh as isize, 1),
                );
            }
            for r in 0..n {
                let b = b0 + r;
                let row = Row {
                    xg: &xg[b * gh..][..gh],
                    rec: &rec[r * gh..][..gh],
                    h_prev: &h_prev[b * h..][..h],
                    c_prev: &c_prev[b * c_len..][..c_len],
                    h_next: &mut h_next[r * h..][..h],
                    c_next: &mut c_next[r * c_len..][..c_len],
                    saved: &mut saved[r * sv..][..sv],
                    y: &mut y[r * ys..][..h],
                    valid: (t as f64) < lengths[b].to_f64(),
                };
                cell_row(cell, h, b_hh, row);
            }
        });
    };
    if chunk >= batch {
        return task(0, h_next, c_next, saved, y);
    }
    let chunks = h_next
        .par_chunks_mut(chunk * h)
        .zip(saved.par_chunks_mut(chunk * sv))
        .zip(y.par_chunks_mut(chunk * ys))
        .enumerate();
    if c_len > 0 {
        chunks
            .zip(c_next.par_chunks_mut(chunk * h))
            .for_each(|((i, ((h_next, saved), y)), c_next)| task(i, h_next, c_next, saved, y));
    } else {
        chunks.for_each(|(i, ((h_next, saved), y))| task(i, h_next, &mut [], saved, y));
    }
}

/// `out[j] = x[j] + (b[j] + r[j])`: a gate's pre-activation, x·W_ih + b_ih plus b_hh + h·W_hh
/// summed as the shader sums them.
fn preact<F: Float>(out: &mut [F], x: &[F], b: &[F], r: &[F]) {
    let n = out.len();
    for (((o, &x), &b), &r) in out.iter_mut().zip(&x[..n]).zip(&b[..n]).zip(&r[..n]) {
        *o = x + (b + r);
    }
}

/// The cell's arithmetic for one row, the shader's math in passes over whole gate blocks: the
/// pre-activations into `saved` (laid out as the gates), σ and tanh over them a block at a time
/// (`Float::sigmoid_slice`, `tanh_slice`: vectorised for f32), then the state update.
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
    let one = F::ONE;
    let (h_prev, h_next, y) = (&h_prev[..h], &mut h_next[..h], &mut y[..h]);
    match cell {
        2 | 4 => {
            // LSTM: i, f, g, o; phase 0 of reset-before: r, z (the candidate is phase 1).
            let whole = if cell == 2 { 4 * h } else { 2 * h };
            preact(&mut saved[..whole], xg, b_hh, rec);
            F::sigmoid_slice(&mut saved[..2 * h]);
            if cell == 4 {
                let (rz, rest) = saved.split_at_mut(2 * h);
                let rh = &mut rest[h..2 * h];
                for ((o, &r), &hp) in rh.iter_mut().zip(&rz[..h]).zip(h_prev) {
                    *o = r * hp;
                }
                return;
            }
            F::tanh_slice(&mut saved[2 * h..3 * h]);
            F::sigmoid_slice(&mut saved[3 * h..4 * h]);
            let (c_prev, c_next) = (&c_prev[..h], &mut c_next[..h]);
            if !valid {
                c_next.copy_from_slice(c_prev);
                h_next.copy_from_slice(h_prev);
                y.fill(F::ZERO);
                return;
            }
            let (ig, rest) = saved.split_at(h);
            let (fg, rest) = rest.split_at(h);
            let (gg, og) = rest.split_at(h);
            for j in 0..h {
                let c_new = fg[j] * c_prev[j] + ig[j] * gg[j];
                c_next[j] = c_new;
                h_next[j] = c_new;
            }
            F::tanh_slice(h_next);
            for (hn, &o) in h_next.iter_mut().zip(&og[..h]) {
                *hn = o * *hn;
            }
            y.copy_from_slice(h_next);
        }
        3 => {
            // GRU (reset-after): r, z, n = tanh(x_n + r ⊙ (W_hn h + b_hn)), and W_hn h + b_hn
            // saved for the backward.
            preact(&mut saved[..2 * h], xg, b_hh, rec);
            F::sigmoid_slice(&mut saved[..2 * h]);
            let (rz, rest) = saved.split_at_mut(2 * h);
            let (n, hn) = rest.split_at_mut(h);
            let (bn, rn, xn) = (&b_hh[2 * h..3 * h], &rec[2 * h..3 * h], &xg[2 * h..3 * h]);
            for j in 0..h {
                hn[j] = bn[j] + rn[j];
                n[j] = xn[j] + rz[j] * hn[j];
            }
            F::tanh_slice(n);
            if !valid {
                h_next.copy_from_slice(h_prev);
                y.fill(F::ZERO);
                return;
            }
            let z = &rz[h..2 * h];
            for j in 0..h {
                h_next[j] = (one - z[j]) * n[j] + z[j] * h_prev[j];
            }
            y.copy_from_slice(h_next);
        }
        _ => {
            // Elman RNN: tanh (0) or ReLU (1); the saved float is h itself.
            let s = &mut saved[..h];
            if !valid {
                s.copy_from_slice(h_prev);
                h_next.copy_from_slice(h_prev);
                y.fill(F::ZERO);
                return;
            }
            preact(s, xg, b_hh, rec);
            if cell == 1 {
                s.iter_mut().for_each(|v| *v = v.max(F::ZERO));
            } else {
                F::tanh_slice(s);
            }
            h_next.copy_from_slice(s);
            y.copy_from_slice(s);
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
