//! CPU twin of shaders/softmax_forward.wgsl: softmax or log-softmax over the last axis.

use super::Float;
use crate::kernels::softmax_forward::Params;

pub(crate) fn softmax_forward<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let cols = p.cols as usize;
    for r in 0..p.rows as usize {
        let xr = &x[p.x_off as usize + r * cols..][..cols]; // x[r, :]
        let m = xr
            .iter()
            .fold(-F::from_f64(f64::INFINITY), |a, &v| a.max(v));
        let mut s = F::ZERO;
        for &v in xr {
            s += (v - m).exp();
        }
        let log_s = s.ln();
        for (c, &v) in xr.iter().enumerate() {
            let z = v - m;
            y[p.y_off as usize + r * cols + c] = if p.log == 1 { z - log_s } else { z.exp() / s };
        }
    }
}
