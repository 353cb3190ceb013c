//! CPU twin of shaders/cross_entropy_forward.wgsl: per-row loss, count flag and log-sum-exp, rows
//! in parallel on the pool.

use rayon::prelude::*;

use super::Float;
use crate::kernels::cross_entropy_forward::Params;

pub(crate) fn cross_entropy_forward<F: Float>(p: &Params, x: &[F], targets: &[F], out: &mut [F]) {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    let (loss, rest) = out[..3 * rows].split_at_mut(rows);
    let (counts, lses) = rest.split_at_mut(rows);
    let x = &x[p.x_off as usize..];
    let run = |(r, ((loss, counts), lse_out)): (usize, ((&mut F, &mut F), &mut F))| {
        let xr = &x[r * cols..][..cols];
        let m = xr
            .iter()
            .fold(-F::from_f64(f64::INFINITY), |a, &v| a.max(v));
        let mut s = F::ZERO;
        for &v in xr {
            s += (v - m).exp();
        }
        let lse = m + s.ln();
        let t = targets[p.t_off as usize + r].to_f64() as i64;
        (*loss, *counts) = if t == i64::from(p.ignore_index) {
            (F::ZERO, F::ZERO)
        } else if (0..cols as i64).contains(&t) {
            (lse - xr[t as usize], F::ONE)
        } else {
            (F::from_f64(f64::NAN), F::ONE)
        };
        *lse_out = lse;
    };
    if super::worth_parallel(rows * cols) {
        loss.par_iter_mut()
            .zip(counts.par_iter_mut())
            .zip(lses.par_iter_mut())
            .with_min_len(super::rows_per_task(cols))
            .enumerate()
            .for_each(run);
    } else {
        loss.iter_mut()
            .zip(counts.iter_mut())
            .zip(lses.iter_mut())
            .enumerate()
            .for_each(run);
    }
}
