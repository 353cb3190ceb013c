//! CPU twin of shaders/layer_norm_forward.wgsl, rows in parallel on the pool.

use rayon::prelude::*;

use super::Float;
use crate::kernels::layer_norm_forward::Params;

pub(crate) fn layer_norm_forward<F: Float>(
    p: &Params,
    x: &[F],
    gamma: &[F],
    beta: &[F],
    y: &mut [F],
    stats: &mut [F],
) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    if cols == 0 {
        return;
    }
    let n = F::from_f64(cols as f64);
    let x = &x[p.x_off as usize..];
    let (means, rstds) = stats[..2 * rows].split_at_mut(rows);
    let run = |(r, ((yr, mean_out), rstd_out)): (usize, ((&mut [F], &mut F), &mut F))| {
        let xr = &x[r * cols..][..cols];
        let mut s = F::ZERO;
        for &v in xr {
            s += v;
        }
        let mean = s / n;
        let mut var = F::ZERO;
        for &v in xr {
            var += (v - mean) * (v - mean);
        }
        let rstd = F::ONE / (var / n + F::from_f64(f64::from(p.eps))).sqrt();
        for (c, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
            let v = (v - mean) * rstd;
            *o = if p.affine == 1 {
                v * gamma[c] + beta[c]
            } else {
                v
            };
        }
        *mean_out = mean;
        *rstd_out = rstd;
    };
    if super::worth_parallel(rows * cols) {
        y[..rows * cols]
            .par_chunks_mut(cols)
            .zip(means.par_iter_mut())
            .zip(rstds.par_iter_mut())
            .with_min_len(super::rows_per_task(cols))
            .enumerate()
            .for_each(run);
    } else {
        y[..rows * cols]
            .chunks_mut(cols)
            .zip(means.iter_mut())
            .zip(rstds.iter_mut())
            .enumerate()
            .for_each(run);
    }
}
