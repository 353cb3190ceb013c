//! CPU twin of shaders/layer_norm_backward.wgsl, rows in parallel on the pool.

use super::Float;
use crate::kernels::layer_norm_backward::Params;

pub(crate) fn layer_norm_backward<F: Float>(
    p: &Params,
    x: &[F],
    gamma: &[F],
    stats: &[F],
    dy: &[F],
    dx: &mut [F],
) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    if cols == 0 {
        return;
    }
    let n = F::from_f64(cols as f64);
    let (x, dy) = (&x[p.x_off as usize..], &dy[p.dy_off as usize..]);
    super::for_each_chunk(&mut dx[..rows * cols], cols, |r, dxr| {
        let (mean, rstd) = (stats[r], stats[rows + r]);
        let (xr, dyr) = (&x[r * cols..][..cols], &dy[r * cols..][..cols]);
        let g = |c: usize| {
            if p.affine == 1 {
                dyr[c] * gamma[c]
            } else {
                dyr[c]
            }
        };
        let xh = |c: usize| (xr[c] - mean) * rstd;
        let (mut sg, mut sgx) = (F::ZERO, F::ZERO);
        for c in 0..cols {
            sg += g(c);
            sgx += g(c) * xh(c);
        }
        let (mg, mgx) = (sg / n, sgx / n);
        for (c, o) in dxr.iter_mut().enumerate() {
            *o = rstd * (g(c) - mg - xh(c) * mgx); // r · (g − mean g − x̂ · mean(g x̂))
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::layer_norm_forward::layer_norm_forward;
    use crate::kernels::layer_norm_forward::Params as Fwd;
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_with_and_without_affine() {
        let (rows, cols) = (3usize, 7usize);
        for affine in [0u32, 1] {
            let x = randn64(3, rows * cols);
            let gb = randn64(4, 2 * cols);
            let (gamma, beta) = gb.split_at(cols);
            let w = randn64(5, rows * cols);
            let fwd = Fwd {
                rows: rows as u32,
                cols: cols as u32,
                affine,
                eps: 1e-5,
                ..Fwd::default()
            };
            let f = |x: &[f64]| {
                let (mut y, mut st) = (vec![0.0; rows * cols], vec![0.0; 2 * rows]);
                layer_norm_forward(&fwd, x, gamma, beta, &mut y, &mut st);
                y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
            };
            let (mut y, mut st) = (vec![0.0; rows * cols], vec![0.0; 2 * rows]);
            layer_norm_forward(&fwd, &x, gamma, beta, &mut y, &mut st);
            let p = Params {
                rows: rows as u32,
                cols: cols as u32,
                affine,
                ..Params::default()
            };
            let mut dx = vec![0.0; rows * cols];
            layer_norm_backward(&p, &x, gamma, &st, &w, &mut dx);
            assert_gradient(&format!("layer_norm affine={affine}"), f, &x, &dx, 1e-6);
        }
    }
}
