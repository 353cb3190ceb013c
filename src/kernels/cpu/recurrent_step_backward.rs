//! CPU twin of shaders/recurrent_step_backward.wgsl.

use std::ops::Range;

use super::recurrent_step_forward::{cell_gates, cell_saved, Packed};
use super::{Float, RowsMut};
use crate::kernels::recurrent_step_forward::{sequence_steps, Params};

/// The kernel's read-only bindings, in their order.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub dy: &'a [F],
    pub w_hh: &'a [F],
    pub gates: &'a [F],
    pub state: &'a [F],
    pub lengths: &'a [F],
}

/// One BPTT step (one phase) of `cell` for every row of the batch, or with `whole_sequence`
/// the whole sweep `p` describes (every step, last first, as `sequence_steps` orders them). As
/// the forward: the batch rows split over the pool once per launch, each task taking its rows'
/// recurrent term dG_h[slot + 1] · W_hh by one GEMM into its thread's scratch (no allocation
/// per step; the same sums whatever the rows) and running their cells, step after step (a row's
/// gradients reach only its own earlier state).
pub(crate) fn recurrent_step_backward<F: Float>(
    cell: u32,
    p: &Params,
    whole_sequence: bool,
    inputs: Inputs<'_, F>,
    dg: &mut [F],
    carry: &mut [F],
) {
    check(cell, p, inputs, dg, carry);
    let (dg, carry) = (RowsMut::new(dg), RowsMut::new(carry));
    let batch = p.batch as usize;
    let steps = if whole_sequence { p.steps as usize } else { 1 };
    let chunk = super::batch_rows_per_task(batch, steps * batch * step_macs(cell, p));
    let packed = if whole_sequence {
        // W_hh [G·H, H], its first `depth` rows; the candidate is rows 2H.. (W_hn).
        let h = p.hidden as usize;
        Packed::new(cell, p, inputs.w_hh, [depth(cell, h), h], 2 * h * h, h)
    } else {
        Packed::default()
    };
    super::each_row_run(batch, chunk, |b0, n| {
        for q in sequence_steps(cell, p, whole_sequence, true) {
            back_rows(cell, &q, inputs, &packed, b0..b0 + n, dg, carry);
        }
    });
}

/// Rows of W_hh the recurrent GEMM reads: all G·H, but for the reset-before GRU, whose n rows
/// reach h through r ⊙ h (its second phase), not this product.
fn depth(cell: u32, h: usize) -> usize {
    if cell == 4 {
        2 * h
    } else {
        cell_gates(cell) * h
    }
}

/// Multiply-adds of one batch row's recurrent GEMM in a step.
fn step_macs(cell: u32, p: &Params) -> usize {
    let h = p.hidden as usize;
    depth(cell, h) * h
}

/// Panics unless every buffer holds what the steps of `p` address (the slices the tasks make
/// are bounds-checked too; this says which launch was wrong, once).
fn check<F>(cell: u32, p: &Params, inputs: Inputs<'_, F>, dg: &[F], carry: &[F]) {
    let (batch, h, steps) = (p.batch as usize, p.hidden as usize, p.steps as usize);
    let gh = cell_gates(cell) * h;
    let planes = if cell == 2 { 2 } else { 1 };
    let last_dy = (steps * batch).saturating_sub(1) * p.y_stride as usize + p.y_off as usize + h;
    assert!(
        p.y_stride >= p.hidden
            && dg.len() >= 2 * steps * batch * gh
            && carry.len() >= planes * (steps + 1) * batch * h
            && inputs.state.len() >= planes * (steps + 1) * batch * h
            && inputs.gates.len() >= steps * batch * cell_saved(cell) * h
            && inputs.dy.len() >= last_dy
            && inputs.w_hh.len() >= gh * h
            && inputs.lengths.len() >= batch,
        "recurrent_step_backward: buffers too small"
    );
}

/// The BPTT step `p` for batch rows `rows` (the calling task's own).
///
/// dg = [dG_x: T × B × G·H | dG_h: steps × B × G·H]: row t of the first and row `slot` of the
/// second are written, row slot + 1 of the second read (by the recurrent GEMM). carry = [dh:
/// (steps + 1) × B × H | dc: the same]: slot + 1 is read, slot written.
#[allow(clippy::too_many_arguments)]
fn back_rows<F: Float>(
    cell: u32,
    p: &Params,
    inputs: Inputs<'_, F>,
    packed: &Packed,
    rows: Range<usize>,
    dg: RowsMut<'_, F>,
    carry: RowsMut<'_, F>,
) {
    if cell == 4 && p.phase == 1 {
        return cho_reset(p, inputs, packed, rows, dg, carry);
    }
    let Inputs {
        dy,
        w_hh,
        gates,
        state,
        lengths,
    } = inputs;
    let (batch, h, steps) = (p.batch as usize, p.hidden as usize, p.steps as usize);
    let (t, slot) = (p.t as usize, p.slot as usize);
    let gh = cell_gates(cell) * h;
    let sv = cell_saved(cell) * h;
    let dgh_plane = steps * batch * gh;
    let plane = batch * h;
    let c_plane = c_plane_of(p);
    let lstm = cell == 2;
    let (b0, n) = (rows.start, rows.len());
    let depth = depth(cell, h);
    // SAFETY (every slice below): rows b0..b0 + n of each plane are this task's alone;
    // dG_h[slot + 1] and carry[slot + 1] (read) are other planes than dG_h[slot], dG_x[t] and
    // carry[slot] (written).
    let dgh_next: &[F] = if slot + 1 < steps {
        unsafe { dg.slice(dgh_plane + ((slot + 1) * batch + b0) * gh, n * gh) }
    } else {
        &[]
    };
    F::with_scratch(n * h, |rec| {
        if dgh_next.is_empty() {
            rec.fill(F::ZERO);
        } else {
            // SAFETY: dgh_next is n×G·H, W_hh is G·H×H (checked by the launch) and
            // `packed.rec` made from it, rec is n×H.
            unsafe {
                F::gemm_packed(
                    [n, depth, h],
                    F::ONE,
                    (dgh_next.as_ptr(), gh as isize, 1),
                    (w_hh.as_ptr(), h as isize, 1),
                    packed.rec.as_ref(),
                    F::ZERO,
                    (rec.as_mut_ptr(), h as isize, 1),
                );
            }
        }
        for r in 0..n {
            let b = b0 + r;
            let at = slot * plane + b * h;
            // SAFETY: as above.
            let row = unsafe {
                BackRow {
                    rec: &rec[r * h..][..h],
                    dy: &dy[(t * batch + b) * p.y_stride as usize + p.y_off as usize..][..h],
                    dh_next: carry.slice(at + plane, h),
                    dc_next: if lstm {
                        carry.slice(c_plane + at + plane, h)
                    } else {
                        &[]
                    },
                    saved: &gates[(slot * batch + b) * sv..][..sv],
                    h_prev: &state[at..][..h],
                    c_prev: if lstm {
                        &state[c_plane + at..][..h]
                    } else {
                        &[]
                    },
                    c_next: if lstm {
                        &state[c_plane + at + plane..][..h]
                    } else {
                        &[]
                    },
                    dgx: dg.slice((t * batch + b) * gh, gh),
                    dgh: dg.slice(dgh_plane + (slot * batch + b) * gh, gh),
                    dh_prev: carry.slice(at, h),
                    dc_prev: if lstm {
                        carry.slice(c_plane + at, h)
                    } else {
                        &mut []
                    },
                    valid: (t as f64) < lengths[b].to_f64(),
                }
            };
            back_row(cell, h, row);
        }
    });
}

/// The c plane's offset inside `state` (and `carry`): after (steps + 1) × B × H of h.
fn c_plane_of(p: &Params) -> usize {
    (p.steps as usize + 1) * p.batch as usize * p.hidden as usize
}

/// One row of the batch: what [`back_row`] reads and writes.
struct BackRow<'a, F> {
    rec: &'a [F],
    /// dy[t, b, y_off..y_off + H].
    dy: &'a [F],
    dh_next: &'a [F],
    /// LSTM only (empty otherwise): dc[slot + 1, b, :], c[slot, b, :], c[slot + 1, b, :].
    dc_next: &'a [F],
    saved: &'a [F],
    h_prev: &'a [F],
    c_prev: &'a [F],
    c_next: &'a [F],
    /// dG_x[t, b, :] and dG_h[slot, b, :] (G·H each).
    dgx: &'a mut [F],
    dgh: &'a mut [F],
    dh_prev: &'a mut [F],
    dc_prev: &'a mut [F],
    valid: bool,
}

/// The LSTM's backward for a row inside its sequence: [`back_row`]'s arithmetic, with tanh(c)
/// first taken over the whole row (`Float::tanh_slice`, vectorised for f32) in `dh_prev`, which
/// the LSTM then zeroes (its dh reaches h_prev through dG_h and the next step's GEMM).
#[allow(clippy::too_many_arguments)]
fn lstm_back_row<F: Float>(
    h: usize,
    rec: &[F],
    dy: &[F],
    dh_next: &[F],
    dc_next: &[F],
    saved: &[F],
    c_prev: &[F],
    c_next: &[F],
    dgx: &mut [F],
    dgh: &mut [F],
    dh_prev: &mut [F],
    dc_prev: &mut [F],
) {
    let one = F::ONE;
    let tc = &mut dh_prev[..h];
    tc.copy_from_slice(&c_next[..h]);
    F::tanh_slice(tc);
    let (ig, rest) = saved[..4 * h].split_at(h);
    let (fg, rest) = rest.split_at(h);
    let (gg, og) = rest.split_at(h);
    let (dgx, dgh) = (&mut dgx[..4 * h], &mut dgh[..4 * h]);
    for j in 0..h {
        let dh = dh_next[j] + rec[j] + dy[j];
        let t = tc[j];
        let dc = dc_next[j] + dh * og[j] * (one - t * t);
        dc_prev[j] = dc * fg[j];
        let d = [
            dc * gg[j] * ig[j] * (one - ig[j]),
            dc * c_prev[j] * fg[j] * (one - fg[j]),
            dc * ig[j] * (one - gg[j] * gg[j]),
            dh * t * og[j] * (one - og[j]),
        ];
        for (g, v) in d.into_iter().enumerate() {
            dgx[g * h + j] = v;
            dgh[g * h + j] = v;
        }
    }
    tc.fill(F::ZERO);
}

/// The cell's backward for one row, unit by unit (the shader's arithmetic).
fn back_row<F: Float>(cell: u32, h: usize, r: BackRow<'_, F>) {
    let BackRow {
        rec,
        dy,
        dh_next,
        dc_next,
        saved,
        h_prev,
        c_prev,
        c_next,
        dgx,
        dgh,
        dh_prev,
        dc_prev,
        valid,
    } = r;
    let g_count = cell_gates(cell);
    let one = F::ONE;
    if cell == 2 && valid {
        return lstm_back_row(
            h, rec, dy, dh_next, dc_next, saved, c_prev, c_next, dgx, dgh, dh_prev, dc_prev,
        );
    }
    for j in 0..h {
        let mut dh = dh_next[j] + rec[j];
        if valid {
            dh += dy[j];
        }
        if !valid {
            for g in 0..g_count {
                dgx[g * h + j] = F::ZERO;
                dgh[g * h + j] = F::ZERO;
            }
            dh_prev[j] = dh;
            if cell == 2 {
                dc_prev[j] = dc_next[j];
            }
            continue;
        }
        if cell == 4 {
            // Phase 0 of reset-before: z and n; r waits for W_hnᵀ·dn in phase 1.
            let (z, n) = (saved[h + j], saved[2 * h + j]);
            let dn = dh * (one - z) * (one - n * n);
            let dz = dh * (h_prev[j] - n) * z * (one - z);
            for (g, v) in [(1, dz), (2, dn)] {
                dgx[g * h + j] = v;
                dgh[g * h + j] = v;
            }
            dh_prev[j] = dh * z;
            continue;
        }
        // (dG per gate, gates used): a fixed array, not an allocation per hidden unit.
        let (pre, count): ([F; 4], usize) = match cell {
            2 => {
                let (ig, fg, gg, og) = (saved[j], saved[h + j], saved[2 * h + j], saved[3 * h + j]);
                let tc = c_next[j].tanh();
                let dc = dc_next[j] + dh * og * (one - tc * tc);
                dh_prev[j] = F::ZERO;
                dc_prev[j] = dc * fg;
                (
                    [
                        dc * gg * ig * (one - ig),
                        dc * c_prev[j] * fg * (one - fg),
                        dc * ig * (one - gg * gg),
                        dh * tc * og * (one - og),
                    ],
                    4,
                )
            }
            3 => {
                let (r, z, n, hn) = (saved[j], saved[h + j], saved[2 * h + j], saved[3 * h + j]);
                let dn = dh * (one - z) * (one - n * n);
                let dz = dh * (h_prev[j] - n) * z * (one - z);
                let dr = dn * hn * r * (one - r);
                dh_prev[j] = dh * z;
                dgh[2 * h + j] = dn * r; // the recurrent n path carries the factor r
                ([dr, dz, dn, F::ZERO], 3)
            }
            _ => {
                let hv = saved[j];
                dh_prev[j] = F::ZERO;
                let d = if cell == 1 {
                    if hv > F::ZERO {
                        dh
                    } else {
                        F::ZERO
                    }
                } else {
                    dh * (one - hv * hv)
                };
                ([d, F::ZERO, F::ZERO, F::ZERO], 1)
            }
        };
        for (g, &v) in pre[..count].iter().enumerate() {
            dgx[g * h + j] = v;
            if !(cell == 3 && g == 2) {
                dgh[g * h + j] = v;
            }
        }
    }
}

/// Phase 1 of the reset-before GRU's backward for batch rows `rows`: d(r ⊙ h) = W_hnᵀ·dn, then
/// dr and the carry d(r ⊙ h) ⊙ r into the previous state.
fn cho_reset<F: Float>(
    p: &Params,
    inputs: Inputs<'_, F>,
    packed: &Packed,
    rows: Range<usize>,
    dg: RowsMut<'_, F>,
    carry: RowsMut<'_, F>,
) {
    let Inputs {
        w_hh, gates, state, ..
    } = inputs;
    let (batch, h, steps, t, slot) = (
        p.batch as usize,
        p.hidden as usize,
        p.steps as usize,
        p.t as usize,
        p.slot as usize,
    );
    let gh = 3 * h;
    let (b0, n) = (rows.start, rows.len());
    // SAFETY (every slice below): these rows of dG_h[slot], dG_x[t] and carry[slot] are this
    // task's alone.
    let dgh = unsafe { dg.slice(steps * batch * gh + (slot * batch + b0) * gh, n * gh) };
    // Into this thread's scratch: no allocation per step.
    F::with_scratch(n * h, |drh| {
        // drh = dn [n, H] (the n columns of these rows of dG_h[slot], row stride 3H) · W_hn
        // [H, H] (rows 2H.. of W_hh). SAFETY: dgh holds n rows of 3H, W_hh is 3H×H (checked by
        // the launch); drh is n×H.
        unsafe {
            F::gemm_packed(
                [n, h, h],
                F::ONE,
                (dgh[2 * h..].as_ptr(), gh as isize, 1),
                (w_hh[2 * h * h..].as_ptr(), h as isize, 1),
                packed.candidate.as_ref(),
                F::ZERO,
                (drh.as_mut_ptr(), h as isize, 1),
            );
        }
        for r in 0..n {
            let b = b0 + r;
            let prev = (slot * batch + b) * h;
            // SAFETY: as above.
            let (dgx, dh_prev) =
                unsafe { (dg.slice((t * batch + b) * gh, h), carry.slice(prev, h)) };
            let rg = &gates[(slot * batch + b) * 4 * h..][..h];
            let h_prev = &state[prev..][..h];
            for j in 0..h {
                let d = drh[r * h + j];
                let dr = d * h_prev[j] * rg[j] * (F::ONE - rg[j]);
                dgx[j] = dr;
                dgh[r * gh + j] = dr;
                dh_prev[j] += d * rg[j];
            }
        }
    });
}
