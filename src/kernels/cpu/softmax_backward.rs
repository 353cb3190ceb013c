//! CPU twin of shaders/softmax_backward.wgsl, rows in parallel on the pool.

use super::Float;
use crate::kernels::softmax_backward::Params;

pub(crate) fn softmax_backward<F: Float>(p: &Params, y: &[F], dy: &[F], dx: &mut [F]) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    if cols == 0 {
        return;
    }
    let (y, dy) = (&y[p.y_off as usize..], &dy[p.dy_off as usize..]);
    super::for_each_chunk(
        &mut dx[p.dx_off as usize..][..rows * cols],
        cols,
        |r, dxr| {
            let (yr, g) = (&y[r * cols..][..cols], &dy[r * cols..][..cols]);
            let mut s = F::ZERO;
            for c in 0..cols {
                s += if p.log == 1 { g[c] } else { g[c] * yr[c] };
            }
            for c in 0..cols {
                dxr[c] = if p.log == 1 {
                    g[c] - yr[c].exp() * s // log-softmax: dy − softmax · Σ dy
                } else {
                    yr[c] * (g[c] - s) // softmax: y ⊙ (dy − Σ dy⊙y)
                };
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::softmax_forward::softmax_forward;
    use crate::kernels::softmax_forward::Params as Fwd;
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_for_softmax_and_log_softmax() {
        let (rows, cols) = (3, 7);
        for log in [0, 1] {
            let x = randn64(1 + log as u64, rows * cols);
            let w = randn64(5, rows * cols);
            let fwd = Fwd {
                rows: rows as u32,
                cols: cols as u32,
                log,
                ..Fwd::default()
            };
            let f = |x: &[f64]| {
                let mut y = vec![0.0; rows * cols];
                softmax_forward(&fwd, x, &mut y);
                y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
            };
            let mut y = vec![0.0; rows * cols];
            softmax_forward(&fwd, &x, &mut y);
            let p = Params {
                rows: rows as u32,
                cols: cols as u32,
                log,
                ..Params::default()
            };
            let mut dx = vec![0.0; rows * cols];
            softmax_backward(&p, &y, &w, &mut dx);
            assert_gradient(
                if log == 1 { "log_softmax" } else { "softmax" },
                f,
                &x,
                &dx,
                1e-6,
            );
        }
    }
}
