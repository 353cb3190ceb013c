//! CPU twin of shaders/axpy.wgsl: y = α·x + β·y (β = 0 does not read y).

use super::Float;
use crate::kernels::axpy::Params;

pub(crate) fn axpy<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let (alpha, beta) = (
        F::from_f64(f64::from(p.alpha)),
        F::from_f64(f64::from(p.beta)),
    );
    for i in 0..p.numel as usize {
        let yi = p.y_off as usize + i;
        let v = alpha * x[p.x_off as usize + i];
        y[yi] = if p.beta == 0.0 { v } else { v + beta * y[yi] };
    }
}
