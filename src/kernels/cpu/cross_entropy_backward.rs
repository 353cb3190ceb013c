//! CPU twin of shaders/cross_entropy_backward.wgsl, rows in parallel on the pool.

use super::Float;
use crate::kernels::cross_entropy_backward::Params;

/// `saved` is the forward's [3, N], `totals` its [Σ loss, Σ counts], `dy` the loss gradient [1].
pub(crate) fn cross_entropy_backward<F: Float>(
    p: &Params,
    x: &[F],
    targets: &[F],
    saved: &[F],
    totals: &[F],
    dy: &[F],
    dx: &mut [F],
) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    let count = totals[1].max(F::ONE);
    let g = if p.mean == 1 {
        dy[p.dy_off as usize] / count
    } else {
        dy[p.dy_off as usize]
    };
    if cols == 0 {
        return;
    }
    let x = &x[p.x_off as usize..];
    super::for_each_chunk(
        &mut dx[p.dx_off as usize..][..rows * cols],
        cols,
        |r, dxr| {
            let t = targets[p.t_off as usize + r].to_f64() as i64;
            if t == i64::from(p.ignore_index) {
                dxr.fill(F::ZERO);
                return;
            }
            let lse = saved[2 * rows + r];
            for (c, (o, &v)) in dxr.iter_mut().zip(&x[r * cols..][..cols]).enumerate() {
                let onehot = if c as i64 == t { F::ONE } else { F::ZERO };
                *o = g * ((v - lse).exp() - onehot);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::cross_entropy_forward::cross_entropy_forward;
    use crate::kernels::cross_entropy_forward::Params as Fwd;
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_with_an_ignored_row() {
        let (rows, cols) = (4usize, 5usize);
        let targets = [2.0, -100.0, 0.0, 4.0];
        for mean in [1u32, 0] {
            let x = randn64(11, rows * cols);
            let fwd = Fwd {
                rows: rows as u32,
                cols: cols as u32,
                ignore_index: -100,
                ..Fwd::default()
            };
            let loss = |x: &[f64]| {
                let mut out = vec![0.0; 3 * rows];
                cross_entropy_forward(&fwd, x, &targets, &mut out);
                let (sum, count): (f64, f64) =
                    (out[..rows].iter().sum(), out[rows..2 * rows].iter().sum());
                if mean == 1 {
                    sum / count
                } else {
                    sum
                }
            };
            let mut saved = vec![0.0; 3 * rows];
            cross_entropy_forward(&fwd, &x, &targets, &mut saved);
            let totals = [
                saved[..rows].iter().sum::<f64>(),
                saved[rows..2 * rows].iter().sum::<f64>(),
            ];
            let p = Params {
                rows: rows as u32,
                cols: cols as u32,
                ignore_index: -100,
                mean,
                ..Params::default()
            };
            let mut dx = vec![0.0; rows * cols];
            cross_entropy_backward(&p, &x, &targets, &saved, &totals, &[1.0], &mut dx);
            assert!(
                dx[cols..2 * cols].iter().all(|&v| v == 0.0),
                "the ignored row gets no gradient"
            );
            assert_gradient(&format!("cross_entropy mean={mean}"), loss, &x, &dx, 1e-6);
        }
    }
}
