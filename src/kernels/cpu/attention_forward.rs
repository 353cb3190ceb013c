//! CPU twin of shaders/attention_forward.wgsl: the same masks, outputs and log-sum-exp.
//!
//! [`attention_forward`] is blocked as FlashAttention is: per (batch·head, query block) a task on
//! the thread pool computes S = Q·Kᵀ one key tile at a time by GEMM, keeps a running max and sum
//! (online softmax), and accumulates P·V by GEMM, so memory is O(L·d) and every product runs
//! through the CPU GEMM. [`reference::attention_forward`] is the oracle it is tested against: row
//! by row, exact two-pass softmax.

use rayon::prelude::*;

use super::Float;
use crate::kernels::attention_forward::Params;

/// Query rows per task and keys per tile. 64 × 64 beat 128 × 128, 128 × 64 and 256 × 128 on the
/// bench's causal rows (larger blocks compute more masked scores and give fewer tasks), though
/// the GEMM then spends about as long packing the tiles as multiplying them (measured with
/// matrixmultiply, before the engine's own microkernels).
pub(crate) const ROWS: usize = 64;
pub(crate) const KEYS: usize = 64;

/// The kernel's read-only bindings, in their order.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub q: &'a [F],
    pub k: &'a [F],
    pub v: &'a [F],
    pub lengths: &'a [F],
}

/// The keys row `i` of a block sees: the first `kv_len`, and with the causal mask those ≤ i.
pub(crate) fn visible_keys(causal: bool, kv_len: usize, i: usize) -> usize {
    if causal {
        kv_len.min(i + 1)
    } else {
        kv_len
    }
}

/// Log-sum-exp stored for a row that sees no key (the shader's value).
pub(crate) fn empty_lse<F: Float>() -> F {
    F::from_f64(3.0e38)
}

pub(crate) fn attention_forward<F: Float>(
    p: &Params,
    dim: usize,
    bh: usize,
    inputs: Inputs<'_, F>,
    o: &mut [F],
    lse: &mut [F],
) {
    let Inputs { q, k, v, lengths } = inputs;
    let len = p.len as usize;
    let (q, k, v) = (
        &q[p.q_off as usize..],
        &k[p.k_off as usize..],
        &v[p.v_off as usize..],
    );
    let plane = len * dim;
    assert!(
        q.len() >= bh * plane && k.len() >= bh * plane && v.len() >= bh * plane,
        "attention_forward: inputs shorter than [BH, L, D]"
    );
    // One task per (batch·head, query block), listed first so the pool sees them all at once
    // (no nested parallel loops: see `may_fork`).
    let mut tasks = Vec::with_capacity(bh * len.div_ceil(ROWS));
    for (b, (o_b, lse_b)) in o[..bh * plane]
        .chunks_mut(plane)
        .zip(lse[..bh * len].chunks_mut(len))
        .enumerate()
    {
        let blocks = o_b.chunks_mut(ROWS * dim).zip(lse_b.chunks_mut(ROWS));
        tasks.extend(blocks.enumerate().map(|(blk, (o, l))| (b, blk, o, l)));
    }
    let run = |(b, blk, o_blk, lse_blk): (usize, usize, &mut [F], &mut [F])| {
        let kv_len = len.min(lengths[b / p.heads as usize].to_f64() as usize);
        let base = b * plane;
        let i0 = blk * ROWS;
        let q_blk = &q[base + i0 * dim..][..lse_blk.len() * dim];
        let kv = (&k[base..base + plane], &v[base..base + plane]);
        block_forward(p, dim, kv_len, i0, q_blk, kv, o_blk, lse_blk);
    };
    if super::may_fork() {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
}

/// One query block: rows i0.. of one batch·head (`q_blk`, `o_blk`, `lse_blk` hold its rows).
#[allow(clippy::too_many_arguments)]
fn block_forward<F: Float>(
    p: &Params,
    dim: usize,
    kv_len: usize,
    i0: usize,
    q_blk: &[F],
    (k, v): (&[F], &[F]),
    o_blk: &mut [F],
    lse_blk: &mut [F],
) {
    let rows = lse_blk.len();
    let causal = p.causal == 1;
    let scale = F::from_f64(f64::from(p.scale));
    let keys = visible_keys(causal, kv_len, i0 + rows - 1);
    let mut s = vec![F::ZERO; rows * KEYS];
    let mut m = vec![F::from_f64(f64::NEG_INFINITY); rows];
    let mut l = vec![F::ZERO; rows];
    o_blk.iter_mut().for_each(|x| *x = F::ZERO);
    for j0 in (0..keys).step_by(KEYS) {
        let cols = KEYS.min(keys - j0);
        // S = scale · Q_blk · K_tileᵀ: K's row j is column j of Kᵀ (row stride 1, column stride D).
        // SAFETY: Q_blk is rows×D, the K tile cols×D, S rows×KEYS.
        unsafe {
            F::gemm(
                [rows, dim, cols],
                scale,
                (q_blk.as_ptr(), dim as isize, 1),
                (k[j0 * dim..].as_ptr(), 1, dim as isize),
                F::ZERO,
                (s.as_mut_ptr(), KEYS as isize, 1),
            );
        }
        for r in 0..rows {
            let valid = visible_keys(causal, kv_len, i0 + r)
                .saturating_sub(j0)
                .min(cols);
            let s_r = &mut s[r * KEYS..][..cols];
            if valid == 0 {
                s_r.iter_mut().for_each(|x| *x = F::ZERO);
                continue;
            }
            let tile_max = s_r[..valid].iter().fold(m[r], |a, &x| a.max(x));
            let correction = (m[r] - tile_max).exp();
            m[r] = tile_max;
            let p_r = &mut s_r[..valid];
            p_r.iter_mut().for_each(|x| *x = *x - tile_max);
            F::exp_slice(p_r);
            let sum = p_r.iter().fold(F::ZERO, |a, &x| a + x);
            s_r[valid..].iter_mut().for_each(|x| *x = F::ZERO);
            l[r] = l[r] * correction + sum;
            if correction != F::ONE {
                o_blk[r * dim..][..dim]
                    .iter_mut()
                    .for_each(|x| *x = *x * correction);
            }
        }
        // O_blk += P · V_tile.
        // SAFETY: P is rows×cols (row stride KEYS), the V tile cols×D, O_blk rows×D.
        unsafe {
            F::gemm(
                [rows, cols, dim],
                F::ONE,
                (s.as_ptr(), KEYS as isize, 1),
                (v[j0 * dim..].as_ptr(), dim as isize, 1),
                F::ONE,
                (o_blk.as_mut_ptr(), dim as isize, 1),
            );
        }
    }
    for r in 0..rows {
        let o_r = &mut o_blk[r * dim..][..dim];
        if visible_keys(causal, kv_len, i0 + r) > 0 {
            let inv = F::ONE / l[r];
            o_r.iter_mut().for_each(|x| *x = *x * inv);
            lse_blk[r] = m[r] + l[r].ln();
        } else {
            o_r.iter_mut().for_each(|x| *x = F::ZERO);
            lse_blk[r] = empty_lse();
        }
    }
}

/// The oracle: row by row, with an exact (two-pass) softmax.
#[cfg(test)]
pub(crate) mod reference {
    use super::{empty_lse, visible_keys, Float, Inputs, Params};

    pub(crate) fn attention_forward<F: Float>(
        p: &Params,
        dim: usize,
        bh: usize,
        inputs: Inputs<'_, F>,
        o: &mut [F],
        lse: &mut [F],
    ) {
        let Inputs { q, k, v, lengths } = inputs;
        let len = p.len as usize;
        let scale = F::from_f64(f64::from(p.scale));
        for b in 0..bh {
            let kv_len = len.min(lengths[b / p.heads as usize].to_f64() as usize);
            let base = b * len * dim;
            for i in 0..len {
                let keys = visible_keys(p.causal == 1, kv_len, i);
                let qi = &q[p.q_off as usize + base + i * dim..][..dim];
                let scores: Vec<F> = (0..keys)
                    .map(|j| {
                        let kj = &k[p.k_off as usize + base + j * dim..][..dim];
                        let mut s = F::ZERO;
                        for c in 0..dim {
                            s += qi[c] * scale * kj[c];
                        }
                        s
                    })
                    .collect();
                let m = scores.iter().fold(F::from_f64(-3.0e38), |a, &s| a.max(s));
                let weights: Vec<F> = scores.iter().map(|&s| (s - m).exp()).collect();
                let mut l = F::ZERO;
                for &e in &weights {
                    l += e;
                }
                let oi = &mut o[base + i * dim..][..dim];
                oi.iter_mut().for_each(|x| *x = F::ZERO);
                for (j, &e) in weights.iter().enumerate() {
                    let vj = &v[p.v_off as usize + base + j * dim..][..dim];
                    for c in 0..dim {
                        oi[c] += e * vj[c];
                    }
                }
                for x in oi.iter_mut() {
                    *x = if keys > 0 { *x / l } else { F::ZERO };
                }
                lse[b * len + i] = if keys > 0 { m + l.ln() } else { empty_lse() };
            }
        }
    }
}

/// (BH, heads, L, d) for the blocked-vs-oracle tests: one row, primes, a whole block, one past
/// it, several blocks; and each shape's key lengths per batch entry (the whole row, half, none,
/// one short), so masks end inside a tile and at zero.
#[cfg(test)]
pub(crate) const AWKWARD: [(usize, u32, usize, usize); 6] = [
    (1, 1, 1, 1),
    (2, 2, 7, 3),
    (3, 1, 64, 16),
    (4, 2, 65, 5),
    (4, 2, 131, 17),
    (1, 1, 200, 64),
];

#[cfg(test)]
pub(crate) fn awkward_lengths(bh: usize, heads: u32, len: usize) -> Vec<f64> {
    (0..bh / heads as usize)
        .map(|b| [len, len / 2, 0, len.saturating_sub(1)][b % 4] as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::randn64;

    /// The blocked kernel against the oracle in f64 on awkward shapes: one row, primes, rows
    /// past a block, lengths that end inside a tile and at zero, packed Q/K/V offsets.
    #[test]
    fn blocked_matches_the_oracle() {
        for (bh, heads, len, dim) in AWKWARD {
            for causal in [0u32, 1] {
                let n = bh * len * dim;
                let off = 3;
                let qkv = randn64(len as u64, off + 3 * n);
                let lengths = awkward_lengths(bh, heads, len);
                let p = Params {
                    len: len as u32,
                    heads,
                    causal,
                    scale: 0.7,
                    q_off: off as u32,
                    k_off: (off + n) as u32,
                    v_off: (off + 2 * n) as u32,
                    bh: bh as u32,
                };
                let inputs = Inputs {
                    q: &qkv,
                    k: &qkv,
                    v: &qkv,
                    lengths: &lengths,
                };
                let (mut o, mut lse) = (vec![f64::NAN; n], vec![f64::NAN; bh * len]);
                let (mut o_ref, mut lse_ref) = (vec![0.0; n], vec![0.0; bh * len]);
                attention_forward(&p, dim, bh, inputs, &mut o, &mut lse);
                reference::attention_forward(&p, dim, bh, inputs, &mut o_ref, &mut lse_ref);
                let what = format!("bh={bh} L={len} d={dim} causal={causal}");
                for (i, (a, b)) in o.iter().zip(&o_ref).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                        "{what}: o[{i}] {a} vs {b}"
                    );
                }
                for (i, (a, b)) in lse.iter().zip(&lse_ref).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                        "{what}: lse[{i}] {a} vs {b}"
                    );
                }
            }
        }
    }
}
