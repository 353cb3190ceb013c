//! CPU twin of shaders/cross_entropy_forward.wgsl: per-row loss, count flag and log-sum-exp.

use super::Float;
use crate::kernels::cross_entropy_forward::Params;

pub(crate) fn cross_entropy_forward<F: Float>(p: &Params, x: &[F], targets: &[F], out: &mut [F]) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    for r in 0..rows {
        let xr = &x[p.x_off as usize + r * cols..][..cols];
        let m = xr
            .iter()
            .fold(-F::from_f64(f64::INFINITY), |a, &v| a.max(v));
        let mut s = F::ZERO;
        for &v in xr {
            s += (v - m).exp();
        }
        let lse = m + s.ln();
        let t = targets[p.t_off as usize + r].to_f64() as i64;
        let (loss, counts) = if t == i64::from(p.ignore_index) {
            (F::ZERO, F::ZERO)
        } else if (0..cols as i64).contains(&t) {
            (lse - xr[t as usize], F::ONE)
        } else {
            (F::from_f64(f64::NAN), F::ONE)
        };
        out[r] = loss;
        out[rows + r] = counts;
        out[2 * rows + r] = lse;
    }
}
