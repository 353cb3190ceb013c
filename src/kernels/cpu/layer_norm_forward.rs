//! CPU twin of shaders/layer_norm_forward.wgsl.

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
    let n = F::from_f64(cols as f64);
    for r in 0..rows {
        let xr = &x[p.x_off as usize + r * cols..][..cols];
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
        for (c, &v) in xr.iter().enumerate() {
            let o = (v - mean) * rstd;
            y[r * cols + c] = if p.affine == 1 {
                o * gamma[c] + beta[c]
            } else {
                o
            };
        }
        stats[r] = mean;
        stats[rows + r] = rstd;
    }
}
