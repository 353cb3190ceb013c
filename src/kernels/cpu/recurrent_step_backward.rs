//! CPU twin of shaders/recurrent_step_backward.wgsl.

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
    let c_plane = (steps + 1) * batch * h;
    // The recurrent term for every row at once: dG_h[slot + 1] [B, G·H] · W_hh [G·H, H].
    let mut rec = vec![F::ZERO; batch * h];
    if slot + 1 < steps {
        let src = plane + (slot + 1) * batch * gh;
        assert!(
            dg.len() >= src + batch * gh && w_hh.len() >= gh * h,
            "recurrent_step_backward: buffers too small"
        );
        // SAFETY: dG_h[slot + 1] is B×G·H at src inside `dg`, W_hh is G·H×H, rec is B×H.
        unsafe {
            F::gemm(
                [
                    batch,
                    // Reset-before GRU's n rows reach h through r ⊙ h: they come as a carry instead.
                    if cell == 4 { 2 * h } else { gh },
                    h,
                ],
                F::ONE,
                (dg[src..].as_ptr(), gh as isize, 1),
                (w_hh.as_ptr(), h as isize, 1),
                F::ZERO,
                (rec.as_mut_ptr(), h as isize, 1),
            );
        }
    }
    for b in 0..batch {
        let prev = (slot * batch + b) * h;
        let next = ((slot + 1) * batch + b) * h;
        let valid = (t as f64) < lengths[b].to_f64();
        for j in 0..h {
            let mut dh = carry[next + j] + rec[b * h + j];
            if valid {
                dh += dy[(t * batch + b) * p.y_stride as usize + p.y_off as usize + j];
            }
            let gx = (t * batch + b) * gh + j;
            let gr = plane + (slot * batch + b) * gh + j;
            let saved = (slot * batch + b) * cell_saved(cell) * h + j;
            if !valid {
                for g in 0..g_count {
                    dg[gx + g * h] = F::ZERO;
                    dg[gr + g * h] = F::ZERO;
                }
                carry[prev + j] = dh;
                if cell == 2 {
                    carry[c_plane + prev + j] = carry[c_plane + next + j];
                }
                continue;
            }
            let one = F::ONE;
            if cell == 4 {
                // Phase 0 of reset-before: z and n; r waits for W_hnᵀ·dn in phase 1.
                let (z, n) = (gates[saved + h], gates[saved + 2 * h]);
                let dn = dh * (one - z) * (one - n * n);
                let dz = dh * (state[prev + j] - n) * z * (one - z);
                for (g, v) in [(1, dz), (2, dn)] {
                    dg[gx + g * h] = v;
                    dg[gr + g * h] = v;
                }
                carry[prev + j] = dh * z;
                continue;
            }
            // (dG per gate, gates used): a fixed array, not an allocation per hidden unit.
            let (pre, count): ([F; 4], usize) = match cell {
                2 => {
                    let (ig, fg, gg, og) = (
                        gates[saved],
                        gates[saved + h],
                        gates[saved + 2 * h],
                        gates[saved + 3 * h],
                    );
                    let tc = state[c_plane + next + j].tanh();
                    let dc = carry[c_plane + next + j] + dh * og * (one - tc * tc);
                    carry[prev + j] = F::ZERO;
                    carry[c_plane + prev + j] = dc * fg;
                    (
                        [
                            dc * gg * ig * (one - ig),
                            dc * state[c_plane + prev + j] * fg * (one - fg),
                            dc * ig * (one - gg * gg),
                            dh * tc * og * (one - og),
                        ],
                        4,
                    )
                }
                3 => {
                    let (r, z, n, hn) = (
                        gates[saved],
                        gates[saved + h],
                        gates[saved + 2 * h],
                        gates[saved + 3 * h],
                    );
                    let dn = dh * (one - z) * (one - n * n);
                    let dz = dh * (state[prev + j] - n) * z * (one - z);
                    let dr = dn * hn * r * (one - r);
                    carry[prev + j] = dh * z;
                    dg[gr + 2 * h] = dn * r; // the recurrent n path carries the factor r
                    ([dr, dz, dn, F::ZERO], 3)
                }
                _ => {
                    let hv = gates[saved];
                    carry[prev + j] = F::ZERO;
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
                dg[gx + g * h] = v;
                if !(cell == 3 && g == 2) {
                    dg[gr + g * h] = v;
                }
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
    let mut drh = vec![F::ZERO; batch * h];
    let src = plane + slot * batch * gh + 2 * h;
    assert!(
        dg.len() >= src + (batch - 1) * gh + h && w_hh.len() >= gh * h,
        "recurrent_step_backward: buffers too small"
    );
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
}
