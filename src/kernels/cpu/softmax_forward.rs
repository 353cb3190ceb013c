//! CPU twin of shaders/softmax_forward.wgsl: softmax or log-softmax over the last axis, rows in
//! parallel on the pool.

use super::Float;
use crate::kernels::softmax_forward::Params;

pub(crate) fn softmax_forward<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    if cols == 0 {
        return;
    }
    let x = &x[p.x_off as usize..];
    super::for_each_chunk(&mut y[p.y_off as usize..][..rows * cols], cols, |r, yr| {
        let xr = &x[r * cols..][..cols]; // x[r, :]
        let m = xr
            .iter()
            .fold(-F::from_f64(f64::INFINITY), |a, &v| a.max(v));
        let mut s = F::ZERO;
        for &v in xr {
            s += (v - m).exp();
        }
        let log_s = s.ln();
        for (o, &v) in yr.iter_mut().zip(xr) {
            let z = v - m;
            *o = if p.log == 1 { z - log_s } else { z.exp() / s };
        }
    });
}
