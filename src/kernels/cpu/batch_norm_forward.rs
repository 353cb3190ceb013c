//! CPU twin of shaders/batch_norm_forward.wgsl.

use super::Float;
use crate::kernels::batch_norm_forward::Params;

/// `running` is (mean, var), read in evaluation and updated in training when `p.track` is 1.
pub(crate) fn batch_norm_forward<F: Float>(
    p: &Params,
    x: &[F],
    affine: Option<(&[F], &[F])>,
    running: (&mut [F], &mut [F]),
    y: &mut [F],
    stats: &mut [F],
) {
    let (n, c, s) = (p.n as usize, p.c as usize, p.s as usize);
    let count = n * s;
    let (rm, rv) = running;
    let at = |ch: usize, e: usize| ((e / s) * c + ch) * s + e % s;
    let eps = F::from_f64(f64::from(p.eps));
    for ch in 0..c {
        let (mean, rstd) = if p.training == 1 {
            let mut sum = F::ZERO;
            for e in 0..count {
                sum += x[at(ch, e)];
            }
            let mean = sum / F::from_f64(count as f64);
            let mut v = F::ZERO;
            for e in 0..count {
                let d = x[at(ch, e)] - mean;
                v += d * d;
            }
            if p.track == 1 {
                let m = F::from_f64(f64::from(p.momentum));
                let unbiased = v / F::from_f64((count.max(2) - 1) as f64);
                rm[ch] = (F::ONE - m) * rm[ch] + m * mean;
                rv[ch] = (F::ONE - m) * rv[ch] + m * unbiased;
            }
            (mean, F::ONE / (v / F::from_f64(count as f64) + eps).sqrt())
        } else {
            (rm[ch], F::ONE / (rv[ch] + eps).sqrt())
        };
        let (scale, shift) = match affine {
            Some((g, b)) => (rstd * g[ch], b[ch] - mean * rstd * g[ch]),
            None => (rstd, -mean * rstd),
        };
        for e in 0..count {
            y[at(ch, e)] = x[at(ch, e)] * scale + shift;
        }
        stats[ch] = mean;
        stats[c + ch] = rstd;
    }
}
