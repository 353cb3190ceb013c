//! CPU twin of shaders/attention_forward.wgsl: the same masks, outputs and log-sum-exp, computed
//! row by row with an exact (two-pass) softmax.

use super::Float;
use crate::kernels::attention_forward::Params;

/// The kernel's read-only bindings, in their order.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub q: &'a [F],
    pub k: &'a [F],
    pub v: &'a [F],
    pub lengths: &'a [F],
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
    let scale = F::from_f64(f64::from(p.scale));
    for b in 0..bh {
        let kv_len = len.min(lengths[b / p.heads as usize].to_f64() as usize);
        let base = b * len * dim;
        for i in 0..len {
            let keys = if p.causal == 1 {
                kv_len.min(i + 1)
            } else {
                kv_len
            };
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
            // Each unnormalised probability once (not once per output column, as this loop
            // used to: L²·D exponentials instead of L²); the sums keep their order over j.
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
            lse[b * len + i] = if keys > 0 {
                m + l.ln()
            } else {
                F::from_f64(3.0e38)
            };
        }
    }
}
