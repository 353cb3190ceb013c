//! CPU twin of shaders/recurrent_step_backward.wgsl.

use rayon::prelude::*;

use super::recurrent_step_forward::{cell_gates, cell_saved};
use super::Float;
use crate::kernels::recurrent_step_forward::Params;

/// The kernel's read-only bindings, in their order.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub dy: &'a [F],
    pub w_hh: &'a [F],
    pub gates: &'a [F],
    pub state: &'a [F],
    pub lengths: &'a [F],
}

pub(crate) fn recurrent_step_backward<F: Float>(
    cell: u32,
    p: &Params,
    inputs: Inputs<'_, F>,
    dg: &mut [F],
    carry: &mut [F],
) {
    let Inputs {
        dy,
        w_hh,
        gates,
        state,
        lengths,
    } = inputs;
    if cell == 4 && p.phase == 1 {
        return cho_reset(p, w_hh, gates, state, dg, carry);
    }
    let (batch, h, steps) = (p.batch as usize, p.hidden as usize, p.steps as usize);
    let (t, slot) = (p.t as usize, p.slot as usize);
    let g_count = cell_gates(cell);
    let gh = g_count * h;
    let plane = steps * batch * gh; // the dG_h plane of dg
    let rows = batch * h;
    assert!(
        dg.len() >= plane + (slot + 1 + usize::from(slot + 1 < steps)) * batch * gh
            && w_hh.len() >= gh * h,
        "recurrent_step_backward: buffers too small"
    );
    // dg = [dG_x: T × B × G·H | dG_h: steps × B × G·H]; row t of the first and row `slot` of
    // the second are written, row slot + 1 of the second read (by the recurrent GEMM).
    let (dgx, dgh_plane) = dg.split_at_mut(plane);
    let dgx = &mut dgx[t * batch * gh..][..batch * gh];
    let (dgh, dgh_next) = dgh_plane[slot * batch * gh..].split_at_mut(batch * gh);
    let dgh_next: &[F] = if slot + 1 < steps {
        &dgh_next[..batch * gh]
    } else {
        &[]
    };
    // carry = [dh: (steps + 1) × B × H | dc: the same]: slot + 1 is read, slot written.
    let (lo, hi) = carry.split_at_mut((slot + 1) * rows);
    let dh_prev = &mut lo[slot * rows..][..rows];
    let (dh_next, c_rest) = hi.split_at_mut(rows);
    let (dc_prev, dc_next): (&mut [F], &[F]) = if cell == 2 {
        let (_, c) = c_rest.split_at_mut(c_plane_of(p) + slot * rows - (slot + 2) * rows);
        let (a, b) = c.split_at_mut(rows);
        (a, &b[..rows])
    } else {
        (&mut [], &[])
    };
    let dh_next = &*dh_next;
    let c_len = if cell == 2 { h } else { 0 };
    // Reset-before GRU's n rows reach h through r ⊙ h: they come as a carry instead.
    let depth = if cell == 4 { 2 * h } else { gh };
    // Rows of the batch per pool task: each task takes its rows' recurrent term, dG_h[slot + 1]
    // · W_hh, by one GEMM into its thread's scratch (no allocation per step; the same sums
    // whatever the chunk) and runs their cells: one fork per step.
    let chunk = super::rows_per_step_task(batch, batch * depth * h);
    let task = |i: usize, dgx: &mut [F], dgh: &mut [F], dh_prev: &mut [F], dc_prev: &mut [F]| {
        let (b0, n) = (i * chunk, dgx.len() / gh);
        F::with_scratch(n * h, |rec| {
            if dgh_next.is_empty() {
                rec.fill(F::ZERO);
            } else {
                // SAFETY: rows b0..b0 + n of dG_h[slot + 1] are n×G·H inside `dgh_next`,
                // W_hh is G·H×H (asserted above), rec is n×H.
                unsafe {
                    F::gemm(
                        [n, depth, h],
                        F::ONE,
                        (dgh_next[b0 * gh..].as_ptr(), gh as isize, 1),
                        (w_hh.as_ptr(), h as isize, 1),
                        F::ZERO,
                        (rec.as_mut_ptr(), h as isize, 1),
                    );
                }
            }
            for r in 0..n {
                let b = b0 + r;
                let row = BackRow {
                    rec: &rec[r * h..][..h],
                    dy: &dy[(t * batch + b) * p.y_stride as usize + p.y_off as usize..][..h],
                    dh_next: &dh_next[b * h..][..h],
                    dc_next: &dc_next[b * c_len..][..c_len],
                    saved: &gates[(slot * batch + b) * cell_saved(cell) * h..]
                        [..cell_saved(cell) * h],
                    h_prev: &state[(slot * batch + b) * h..][..h],
                    c_prev: if cell == 2 {
                        &state[c_plane_of(p) + (slot * batch + b) * h..][..h]
                    } else {
                        &[]
                    },
                    c_next: if cell == 2 {
                        &state[c_plane_of(p) + ((slot + 1) * batch + b) * h..][..h]
                    } else {
                        &[]
                    },
                    dgx: &mut dgx[r * gh..][..gh],
                    dgh: &mut dgh[r * gh..][..gh],
                    dh_prev: &mut dh_prev[r * h..][..h],
                    dc_prev: &mut dc_prev[r * c_len..][..c_len],
                    valid: (t as f64) < lengths[b].to_f64(),
                };
                back_row(cell, h, row);
            }
        });
    };
    if chunk >= batch {
        return task(0, dgx, dgh, dh_prev, dc_prev);
    }
    let chunks = dgx
        .par_chunks_mut(chunk * gh)
        .zip(dgh.par_chunks_mut(chunk * gh))
        .zip(dh_prev.par_chunks_mut(chunk * h))
        .enumerate();
    if c_len > 0 {
        chunks
            .zip(dc_prev.par_chunks_mut(chunk * h))
            .for_each(|((i, ((x, g), d)), c)| task(i, x, g, d, c));
    } else {
        chunks.for_each(|(i, ((x, g), d))| task(i, x, g, d, &mut []));
    }
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

/// Phase 1 of the reset-before GRU's backward: d(r ⊙ h) = W_hnᵀ·dn, then dr and the carry
/// d(r ⊙ h) ⊙ r into the previous state.
fn cho_reset<F: Float>(
    p: &Params,
    w_hh: &[F],
    gates: &[F],
    state: &[F],
    dg: &mut [F],
    carry: &mut [F],
) {
    let (batch, h, steps, t, slot) = (
        p.batch as usize,
        p.hidden as usize,
        p.steps as usize,
        p.t as usize,
        p.slot as usize,
    );
    let gh = 3 * h;
    let plane = steps * batch * gh;
    // drh = dn [B, H] (the n columns of dG_h[slot], row stride 3H) · W_hn [H, H] (rows 2H.. of W_hh).
    let src = plane + slot * batch * gh + 2 * h;
    assert!(
        dg.len() >= src + (batch - 1) * gh + h && w_hh.len() >= gh * h,
        "recurrent_step_backward: buffers too small"
    );
    // Into this thread's scratch: no allocation per step.
    F::with_scratch(batch * h, |drh| {
        // SAFETY: the assert bounds both operands; drh is B×H.
        unsafe {
            F::gemm(
                [batch, h, h],
                F::ONE,
                (dg[src..].as_ptr(), gh as isize, 1),
                (w_hh[2 * h * h..].as_ptr(), h as isize, 1),
                F::ZERO,
                (drh.as_mut_ptr(), h as isize, 1),
            );
        }
        for b in 0..batch {
            let prev = (slot * batch + b) * h;
            for j in 0..h {
                let r = gates[(slot * batch + b) * 4 * h + j];
                let d = drh[b * h + j];
                let dr = d * state[prev + j] * r * (F::ONE - r);
                dg[(t * batch + b) * gh + j] = dr;
                dg[plane + (slot * batch + b) * gh + j] = dr;
                carry[prev + j] += d * r;
            }
        }
    });
}
