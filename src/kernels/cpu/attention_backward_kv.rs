//! CPU twin of shaders/attention_backward_kv.wgsl and attention_backward_q.wgsl: dQ, dK and dV
//! from the saved log-sum-exp and D = rowsum(dO ⊙ O).
//!
//! [`attention_backward`] is FlashAttention's backward on a CPU: per batch·head a task on the
//! thread pool walks key tiles × query tiles, recomputes P = exp(S − lse) by GEMM and forms dV,
//! dP, dK and dQ with four more GEMMs per tile pair, in O(L·d) memory.
//! [`reference::attention_backward`] is the oracle, one score at a time.

use rayon::prelude::*;

use super::attention_forward::{visible_keys, KEYS, ROWS};
use super::Float;
use crate::kernels::attention_backward_kv::Params;

/// The kernels' read-only bindings, in their order.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub q: &'a [F],
    pub k: &'a [F],
    pub v: &'a [F],
    pub d_o: &'a [F],
    pub stats: &'a [F],
    pub lengths: &'a [F],
}

/// Writes dQ into `dq` and dK ‖ dV into `dkv` ([2, BH, L, D]).
pub(crate) fn attention_backward<F: Float>(
    p: &Params,
    dim: usize,
    inputs: Inputs<'_, F>,
    dq: &mut [F],
    dkv: &mut [F],
) {
    let (len, bh) = (p.len as usize, p.bh as usize);
    let plane = len * dim;
    let all = bh * plane;
    let Inputs { q, k, v, d_o, .. } = inputs;
    assert!(
        [q.len(), k.len(), v.len(), d_o.len()]
            .iter()
            .all(|&n| n >= all)
            && inputs.stats.len() >= 2 * bh * len
            && dq.len() >= all
            && dkv.len() >= 2 * all,
        "attention_backward: buffers shorter than [BH, L, D]"
    );
    let (dk, dv) = dkv[..2 * all].split_at_mut(all);
    let heads = dq[..all]
        .chunks_mut(plane)
        .zip(dk.chunks_mut(plane))
        .zip(dv.chunks_mut(plane));
    let tasks: Vec<_> = heads.map(|((q, k), v)| [q, k, v]).enumerate().collect();
    let run = |(b, [dq_b, dk_b, dv_b]): (usize, [&mut [F]; 3])| {
        head_backward(p, dim, b, inputs, dq_b, dk_b, dv_b)
    };
    if super::may_fork() {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
}

/// dQ, dK, dV of batch·head `b`.
fn head_backward<F: Float>(
    p: &Params,
    dim: usize,
    b: usize,
    inputs: Inputs<'_, F>,
    dq: &mut [F],
    dk: &mut [F],
    dv: &mut [F],
) {
    let Inputs {
        q,
        k,
        v,
        d_o,
        stats,
        lengths,
    } = inputs;
    let (len, bh) = (p.len as usize, p.bh as usize);
    let causal = p.causal == 1;
    let scale = F::from_f64(f64::from(p.scale));
    let kv_len = len.min(lengths[b / p.heads as usize].to_f64() as usize);
    let base = b * len * dim;
    let (q, k, v, d_o) = (&q[base..], &k[base..], &v[base..], &d_o[base..]);
    let (lse, dsum) = (
        &stats[b * len..][..len],
        &stats[bh * len + b * len..][..len],
    );
    for x in dq.iter_mut().chain(dk.iter_mut()).chain(dv.iter_mut()) {
        *x = F::ZERO;
    }
    let mut pt = vec![F::ZERO; ROWS * KEYS];
    let mut dp = vec![F::ZERO; ROWS * KEYS];
    for j0 in (0..kv_len).step_by(KEYS) {
        let cols = KEYS.min(kv_len - j0);
        // Causal: query rows before j0 see none of this tile.
        let first = if causal { j0 / ROWS * ROWS } else { 0 };
        for i0 in (first..len).step_by(ROWS) {
            let rows = ROWS.min(len - i0);
            let (q_i, do_i) = (&q[i0 * dim..], &d_o[i0 * dim..]);
            let (k_j, v_j) = (&k[j0 * dim..], &v[j0 * dim..]);
            // SAFETY (all five products): the Q, dO, dQ tiles are rows×D, the K, V, dK, dV
            // tiles cols×D inside their [L, D] planes; P and dP are rows×cols with row stride
            // KEYS.
            unsafe {
                // S = scale · Q_i · K_jᵀ, into `pt`.
                F::gemm(
                    [rows, dim, cols],
                    scale,
                    (q_i.as_ptr(), dim as isize, 1),
                    (k_j.as_ptr(), 1, dim as isize),
                    F::ZERO,
                    (pt.as_mut_ptr(), KEYS as isize, 1),
                );
                // dP = dO_i · V_jᵀ.
                F::gemm(
                    [rows, dim, cols],
                    F::ONE,
                    (do_i.as_ptr(), dim as isize, 1),
                    (v_j.as_ptr(), 1, dim as isize),
                    F::ZERO,
                    (dp.as_mut_ptr(), KEYS as isize, 1),
                );
            }
            // P = exp(S − lse) where the key is visible; dS = P ⊙ (dP − D), into `dp`.
            for r in 0..rows {
                let valid = visible_keys(causal, kv_len, i0 + r)
                    .saturating_sub(j0)
                    .min(cols);
                let (p_r, dp_r) = (&mut pt[r * KEYS..][..cols], &mut dp[r * KEYS..][..cols]);
                let (l, d) = (lse[i0 + r], dsum[i0 + r]);
                p_r[..valid].iter_mut().for_each(|x| *x = *x - l);
                F::exp_slice(&mut p_r[..valid]);
                for (dp, &p) in dp_r[..valid].iter_mut().zip(&p_r[..valid]) {
                    *dp = p * (*dp - d);
                }
                p_r[valid..].fill(F::ZERO);
                dp_r[valid..].fill(F::ZERO);
            }
            // SAFETY: as above.
            unsafe {
                // dV_j += Pᵀ · dO_i.
                F::gemm(
                    [cols, rows, dim],
                    F::ONE,
                    (pt.as_ptr(), 1, KEYS as isize),
                    (do_i.as_ptr(), dim as isize, 1),
                    F::ONE,
                    (dv[j0 * dim..].as_mut_ptr(), dim as isize, 1),
                );
                // dK_j += scale · dSᵀ · Q_i.
                F::gemm(
                    [cols, rows, dim],
                    scale,
                    (dp.as_ptr(), 1, KEYS as isize),
                    (q_i.as_ptr(), dim as isize, 1),
                    F::ONE,
                    (dk[j0 * dim..].as_mut_ptr(), dim as isize, 1),
                );
                // dQ_i += scale · dS · K_j.
                F::gemm(
                    [rows, cols, dim],
                    scale,
                    (dp.as_ptr(), KEYS as isize, 1),
                    (k_j.as_ptr(), dim as isize, 1),
                    F::ONE,
                    (dq[i0 * dim..].as_mut_ptr(), dim as isize, 1),
                );
            }
        }
    }
}

/// The oracle: every score, one at a time.
#[cfg(test)]
pub(crate) mod reference {
    use super::{Float, Inputs, Params};

    /// Writes dQ into `dq` and dK ‖ dV into `dkv` ([2, BH, L, D]).
    pub(crate) fn attention_backward<F: Float>(
        p: &Params,
        dim: usize,
        inputs: Inputs<'_, F>,
        dq: &mut [F],
        dkv: &mut [F],
    ) {
        let Inputs {
            q,
            k,
            v,
            d_o,
            stats,
            lengths,
        } = inputs;
        let (len, bh) = (p.len as usize, p.bh as usize);
        let scale = F::from_f64(f64::from(p.scale));
        let plane = bh * len * dim;
        dq[..plane].iter_mut().for_each(|x| *x = F::ZERO);
        dkv[..2 * plane].iter_mut().for_each(|x| *x = F::ZERO);
        for b in 0..bh {
            let kv_len = len.min(lengths[b / p.heads as usize].to_f64() as usize);
            let base = b * len * dim;
            for i in 0..len {
                let (lse, d) = (stats[b * len + i], stats[bh * len + b * len + i]);
                for j in 0..kv_len {
                    if p.causal == 1 && j > i {
                        continue;
                    }
                    let (mut s, mut dp) = (F::ZERO, F::ZERO);
                    for c in 0..dim {
                        s += q[base + i * dim + c] * k[base + j * dim + c];
                        dp += d_o[base + i * dim + c] * v[base + j * dim + c];
                    }
                    let pij = (s * scale - lse).exp();
                    let ds = pij * (dp - d);
                    for c in 0..dim {
                        dq[base + i * dim + c] += ds * scale * k[base + j * dim + c];
                        dkv[base + j * dim + c] += ds * scale * q[base + i * dim + c];
                        dkv[plane + base + j * dim + c] += pij * d_o[base + i * dim + c];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::attention_forward::Params as Fwd;
    use crate::kernels::cpu::attention_forward::{attention_forward, awkward_lengths, AWKWARD};
    use crate::testing::{assert_gradient, randn64};

    /// The blocked backward against the oracle in f64 on awkward shapes (one row, primes, past a
    /// block, key lengths ending inside a tile and at zero), with both masks.
    #[test]
    fn blocked_matches_the_oracle() {
        for (bh, heads, len, dim) in AWKWARD {
            for causal in [0u32, 1] {
                let n = bh * len * dim;
                let (q, k, v, d_o) = (randn64(1, n), randn64(2, n), randn64(3, n), randn64(4, n));
                let lengths = awkward_lengths(bh, heads, len);
                // Any finite log-sum-exp and D exercise the same arithmetic as real ones.
                let stats: Vec<f64> = randn64(5, 2 * bh * len).iter().map(|x| x + 4.0).collect();
                let p = Params {
                    len: len as u32,
                    heads,
                    causal,
                    scale: 0.4,
                    bh: bh as u32,
                    ..Params::default()
                };
                let inputs = super::Inputs {
                    q: &q,
                    k: &k,
                    v: &v,
                    d_o: &d_o,
                    stats: &stats,
                    lengths: &lengths,
                };
                let (mut dq, mut dkv) = (vec![f64::NAN; n], vec![f64::NAN; 2 * n]);
                let (mut dq_ref, mut dkv_ref) = (vec![0.0; n], vec![0.0; 2 * n]);
                attention_backward(&p, dim, inputs, &mut dq, &mut dkv);
                reference::attention_backward(&p, dim, inputs, &mut dq_ref, &mut dkv_ref);
                let what = format!("bh={bh} L={len} d={dim} causal={causal}");
                for (name, got, want) in [("dQ", &dq, &dq_ref), ("dKV", &dkv, &dkv_ref)] {
                    for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                        let tol = 1e-9 * (1.0 + b.abs());
                        assert!((a - b).abs() <= tol, "{what}: {name}[{i}] {a} vs {b}");
                    }
                }
            }
        }
    }

    /// dQ, dK, dV against central differences of the forward twin, in f64, with both masks.
    #[test]
    fn matches_finite_differences() {
        let (bh, len, dim) = (2usize, 5usize, 3usize);
        let n = bh * len * dim;
        let lengths = [4.0f64];
        for causal in [0u32, 1] {
            let (q, k, v, w) = (randn64(1, n), randn64(2, n), randn64(3, n), randn64(4, n));
            let fwd = Fwd {
                len: len as u32,
                heads: 2,
                causal,
                scale: 0.6,
                ..Fwd::default()
            };
            let run = |q: &[f64], k: &[f64], v: &[f64]| {
                let (mut o, mut lse) = (vec![0.0; n], vec![0.0; bh * len]);
                attention_forward(
                    &fwd,
                    dim,
                    bh,
                    super::super::attention_forward::Inputs {
                        q,
                        k,
                        v,
                        lengths: &lengths,
                    },
                    &mut o,
                    &mut lse,
                );
                (o, lse)
            };
            let loss = |o: &[f64]| o.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
            let (o, lse) = run(&q, &k, &v);
            let dsum: Vec<f64> = (0..bh * len)
                .map(|r| (0..dim).map(|c| w[r * dim + c] * o[r * dim + c]).sum())
                .collect();
            let stats: Vec<f64> = lse.iter().chain(&dsum).copied().collect();
            let p = Params {
                len: len as u32,
                heads: 2,
                causal,
                scale: 0.6,
                bh: bh as u32,
                ..Params::default()
            };
            let (mut dq, mut dkv) = (vec![0.0; n], vec![0.0; 2 * n]);
            attention_backward(
                &p,
                dim,
                super::Inputs {
                    q: &q,
                    k: &k,
                    v: &v,
                    d_o: &w,
                    stats: &stats,
                    lengths: &lengths,
                },
                &mut dq,
                &mut dkv,
            );
            assert_gradient(
                &format!("dQ causal={causal}"),
                |x| loss(&run(x, &k, &v).0),
                &q,
                &dq,
                1e-6,
            );
            assert_gradient(
                &format!("dK causal={causal}"),
                |x| loss(&run(&q, x, &v).0),
                &k,
                &dkv[..n],
                1e-6,
            );
            assert_gradient(
                &format!("dV causal={causal}"),
                |x| loss(&run(&q, &k, x).0),
                &v,
                &dkv[n..],
                1e-6,
            );
        }
    }
}
