//! CPU twin of shaders/batch_norm_forward.wgsl: channel statistics in parallel over channels,
//! the normalisation in parallel over (image, channel) runs.

use rayon::prelude::*;

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
    let eps = F::from_f64(f64::from(p.eps));
    // Channel ch of image i is the contiguous run x[(i·C + ch)·S ..][..S].
    let run = |i: usize, ch: usize| &x[(i * c + ch) * s..][..s];
    // Batch statistics per channel, channels in parallel (each sums its runs in image order).
    let moment = |ch: usize| {
        let mut sum = F::ZERO;
        for i in 0..n {
            for &v in run(i, ch) {
                sum += v;
            }
        }
        let mean = sum / F::from_f64(count as f64);
        let mut var = F::ZERO;
        for i in 0..n {
            for &v in run(i, ch) {
                var += (v - mean) * (v - mean);
            }
        }
        (mean, var)
    };
    let moments: Vec<(F, F)> = match (p.training == 1, super::worth_parallel(count * c)) {
        (false, _) => Vec::new(),
        (true, true) => (0..c).into_par_iter().map(moment).collect(),
        (true, false) => (0..c).map(moment).collect(),
    };
    let mut affine_of = vec![(F::ZERO, F::ZERO); c];
    for ch in 0..c {
        let (mean, rstd) = if p.training == 1 {
            let (mean, v) = moments[ch];
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
        affine_of[ch] = match affine {
            Some((g, b)) => (rstd * g[ch], b[ch] - mean * rstd * g[ch]),
            None => (rstd, -mean * rstd),
        };
        stats[ch] = mean;
        stats[c + ch] = rstd;
    }
    if s == 0 {
        return;
    }
    // y, run by run in parallel: run r is channel r mod C.
    super::for_each_chunk(&mut y[..n * c * s], s, |r, out| {
        let (scale, shift) = affine_of[r % c];
        for (o, &v) in out.iter_mut().zip(&x[r * s..][..s]) {
            *o = v * scale + shift;
        }
    });
}
