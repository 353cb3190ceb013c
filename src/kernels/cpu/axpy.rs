//! CPU twin of shaders/axpy.wgsl: y = α·x + β·y (β = 0 does not read y), in chunks on the pool.

use super::Float;
use crate::kernels::axpy::Params;

pub(crate) fn axpy<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let (alpha, beta) = (
        F::from_f64(f64::from(p.alpha)),
        F::from_f64(f64::from(p.beta)),
    );
    let n = p.numel as usize;
    let x = &x[p.x_off as usize..][..n];
    super::for_chunks(&mut y[p.y_off as usize..][..n], |start, y| {
        let x = &x[start..start + y.len()];
        if p.beta == 0.0 {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = alpha * x);
        } else {
            y.iter_mut()
                .zip(x)
                .for_each(|(y, &x)| *y = alpha * x + beta * *y);
        }
    });
}
