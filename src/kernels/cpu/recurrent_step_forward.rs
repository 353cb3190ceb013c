//! CPU twin of shaders/recurrent_step_forward.wgsl: the same buffers, layouts and cell math.

use std::ops::Range;

use super::sgemm::PackedB;
use super::{Float, RowsMut};
use crate::kernels::recurrent_step_forward::{sequence_steps, Params};

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

/// One step (one phase) of `cell` for every row of the batch, or with `whole_sequence` every
/// step of the sequence `p` describes (`p.t`, `p.slot` and `p.phase` unused), as
/// `sequence_steps` orders them. The batch rows are split over the pool once per launch: each
/// task multiplies its rows of h_prev by W_hhᵀ and runs their cells, step after step. A row's
/// state depends on its own previous state only, so the tasks of a whole sequence never wait
/// for one another (one fork per sequence, not one per step; W_hhᵀ packed once for it). A
/// launch too small to split runs on the caller, its GEMM free to split itself.
pub(crate) fn recurrent_step_forward<F: Float>(
    cell: u32,
    p: &Params,
    whole_sequence: bool,
    inputs: Inputs<'_, F>,
    state: &mut [F],
    gates: &mut [F],
    y: &mut [F],
) {
    check(cell, p, inputs, state, gates, y);
    let (state, gates, y) = (RowsMut::new(state), RowsMut::new(gates), RowsMut::new(y));
    let (batch, h) = (p.batch as usize, p.hidden as usize);
    let steps = if whole_sequence { p.steps as usize } else { 1 };
    let chunk = super::batch_rows_per_task(batch, steps * batch * h * cell_gates(cell) * h);
    let packed = if whole_sequence {
        // W_hhᵀ [H, G·H]; the candidate is its columns 2H.. (W_hnᵀ).
        let gh = cell_gates(cell) * h;
        Packed::new(cell, p, inputs.w_t, [h, gh], 2 * h, gh)
    } else {
        Packed::default()
    };
    super::each_row_run(batch, chunk, |b0, n| {
        for q in sequence_steps(cell, p, whole_sequence, false) {
            step_rows(cell, &q, inputs, &packed, b0..b0 + n, state, gates, y);
        }
    });
}

/// Panics unless every buffer holds what the steps of `p` address (the slices the tasks make
/// are bounds-checked too; this says which launch was wrong, once).
fn check<F>(cell: u32, p: &Params, inputs: Inputs<'_, F>, state: &[F], gates: &[F], y: &[F]) {
    let (batch, h, steps) = (p.batch as usize, p.hidden as usize, p.steps as usize);
    let gh = cell_gates(cell) * h;
    let planes = if cell == 2 { 2 } else { 1 };
    let last_y = (steps * batch).saturating_sub(1) * p.y_stride as usize + p.y_off as usize + h;
    assert!(
        p.y_stride >= p.hidden
            && state.len() >= planes * (steps + 1) * batch * h
            && gates.len() >= steps * batch * cell_saved(cell) * h
            && y.len() >= last_y
            && inputs.xg.len() >= steps * batch * gh
            && inputs.w_t.len() >= h * gh
            && inputs.b_hh.len() >= gh
            && inputs.lengths.len() >= batch,
        "recurrent_step_forward: buffers too small"
    );
}

/// The recurrent weights packed once for a whole sequence's GEMMs (W_hhᵀ for the forward, W_hh
/// for the backward), where the GEMM packs (f32 with a microkernel) and the tasks have more than
/// one row: every step's product then reads the same packed strips. `candidate` is the
/// reset-before GRU's second-phase block (W_hnᵀ or W_hn).
#[derive(Default)]
pub(crate) struct Packed {
    pub(crate) rec: Option<PackedB>,
    pub(crate) candidate: Option<PackedB>,
}

impl Packed {
    /// For the launch `p` (nothing for a single step or row): `rec` is the [k, n] block of `w`
    /// the steps multiply, and for the reset-before GRU `candidate` the H × H block at
    /// `candidate_at`; rows of both are `rsb` apart.
    pub(crate) fn new<F: Float>(
        cell: u32,
        p: &Params,
        w: &[F],
        rec: [usize; 2],
        candidate_at: usize,
        rsb: usize,
    ) -> Packed {
        let (batch, h, steps) = (p.batch as usize, p.hidden as usize, p.steps as usize);
        if batch < 2 || steps < 2 {
            return Packed::default();
        }
        Packed {
            rec: F::pack_b(w, rec, rsb),
            candidate: if cell == 4 {
                F::pack_b(&w[candidate_at..], [h, h], rsb)
            } else {
                None
            },
        }
    }
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

/// The step `p` for batch rows `rows` (the calling task's own): rec = h_prev · W_hhᵀ for those
/// rows by one GEMM into the thread's scratch (no allocation per step; the shader's
/// per-invocation dot products, summed in another order, and the same order whatever the rows),
/// then the cell row by row.
///
/// `state` = [h planes (steps + 1) × B × H | c planes (steps + 1) × B × H]: h[slot] is read,
/// h[slot + 1] written, and for the LSTM c[slot] read and c[slot + 1] written.
#[allow(clippy::too_many_arguments)]
fn step_rows<F: Float>(
    cell: u32,
    p: &Params,
    inputs: Inputs<'_, F>,
    packed: &Packed,
    rows: Range<usize>,
    state: RowsMut<'_, F>,
    gates: RowsMut<'_, F>,
    y: RowsMut<'_, F>,
) {
    if cell == 4 && p.phase == 1 {
        return cho_candidate(p, inputs, packed, rows, state, gates, y);
    }
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
    let plane = batch * h;
    let c_plane = (p.steps as usize + 1) * plane;
    let (b0, n) = (rows.start, rows.len());
    let lstm = cell == 2;
    // SAFETY (every slice below): rows b0..b0 + n of each plane are this task's alone, and
    // h/c[slot] (read) and h/c[slot + 1] (written) are different planes.
    let h_prev = unsafe { &*state.slice(slot * plane + b0 * h, n * h) };
    F::with_scratch(n * gh, |rec| {
        // SAFETY: h_prev is n×H, W_hhᵀ is H×G·H (checked by the launch) and `packed.rec` made
        // from it, rec is n×G·H.
        unsafe {
            F::gemm_packed(
                [n, h, gh],
                F::ONE,
                (h_prev.as_ptr(), h as isize, 1),
                (w_t.as_ptr(), gh as isize, 1),
                packed.rec.as_ref(),
                F::ZERO,
                (rec.as_mut_ptr(), gh as isize, 1),
            );
        }
        for r in 0..n {
            let b = b0 + r;
            let at = slot * plane + b * h;
            // SAFETY: as above.
            let row = unsafe {
                Row {
                    xg: &xg[(t * batch + b) * gh..][..gh],
                    rec: &rec[r * gh..][..gh],
                    h_prev: &h_prev[r * h..][..h],
                    c_prev: if lstm {
                        state.slice(c_plane + at, h)
                    } else {
                        &[]
                    },
                    h_next: state.slice(at + plane, h),
                    c_next: if lstm {
                        state.slice(c_plane + at + plane, h)
                    } else {
                        &mut []
                    },
                    saved: gates.slice((slot * batch + b) * sv, sv),
                    y: y.slice((t * batch + b) * p.y_stride as usize + p.y_off as usize, h),
                    valid: (t as f64) < lengths[b].to_f64(),
                }
            };
            cell_row(cell, h, b_hh, row);
        }
    });
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

/// Phase 1 of the reset-before GRU for batch rows `rows`: n = tanh(W_in x + b_in + W_hn·(r ⊙ h)
/// + b_hn), h' = (1 − z)n + z·h.
fn cho_candidate<F: Float>(
    p: &Params,
    inputs: Inputs<'_, F>,
    packed: &Packed,
    rows: Range<usize>,
    state: RowsMut<'_, F>,
    gates: RowsMut<'_, F>,
    y: RowsMut<'_, F>,
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
    let plane = batch * h;
    let (b0, n) = (rows.start, rows.len());
    // SAFETY (every slice below): these rows' saved floats and states are this task's alone;
    // h[slot] and h[slot + 1] are different planes.
    let saved = unsafe { gates.slice((slot * batch + b0) * 4 * h, n * 4 * h) };
    // Into this thread's scratch: no allocation per step.
    F::with_scratch(n * h, |rec| {
        // rec = (r ⊙ h) [n, H] (row stride 4H, at 3H in each row's saved floats) · W_hnᵀ
        // (columns 2H.. of W_hhᵀ). SAFETY: `saved` holds n rows of 4H, W_hhᵀ is H×3H (checked
        // by the launch); rec is n×H.
        unsafe {
            F::gemm_packed(
                [n, h, h],
                F::ONE,
                (saved[3 * h..].as_ptr(), (4 * h) as isize, 1),
                (w_t[2 * h..].as_ptr(), gh as isize, 1),
                packed.candidate.as_ref(),
                F::ZERO,
                (rec.as_mut_ptr(), h as isize, 1),
            );
        }
        for r in 0..n {
            let b = b0 + r;
            let valid = (t as f64) < lengths[b].to_f64();
            let at = slot * plane + b * h;
            // SAFETY: as above.
            let (h_prev, h_next, y) = unsafe {
                (
                    &*state.slice(at, h),
                    state.slice(at + plane, h),
                    y.slice((t * batch + b) * p.y_stride as usize + p.y_off as usize, h),
                )
            };
            let g = &mut saved[r * 4 * h..][..4 * h];
            let x = &xg[(t * batch + b) * gh + 2 * h..][..h];
            for j in 0..h {
                let z = g[h + j];
                let nv = (x[j] + rec[r * h + j] + b_hh[2 * h + j]).tanh();
                g[2 * h + j] = nv;
                let h_new = if valid {
                    (F::ONE - z) * nv + z * h_prev[j]
                } else {
                    h_prev[j]
                };
                h_next[j] = h_new;
                y[j] = if valid { h_new } else { F::ZERO };
            }
        }
    });
}
