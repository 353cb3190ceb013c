//! CPU twin of shaders/attention_backward_kv.wgsl and attention_backward_q.wgsl: dQ, dK and dV
//! from the saved log-sum-exp and D = rowsum(dO ⊙ O).

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::attention_forward::Params as Fwd;
    use crate::kernels::cpu::attention_forward::attention_forward;
    use crate::testing::{assert_gradient, randn64};

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
