//! CPU twin of shaders/reduce.wgsl: y[o, c, i] = scale · ⊕ over chunk c of f(x[o, r, i]).

use rayon::prelude::*;

use super::Float;
use crate::kernels::reduce::{Params, ReduceOp};

/// Columns (`inner` positions) whose running values sit side by side on the stack while a task
/// walks the rows, each row's run of them read contiguously.
const COLS: usize = 256;

pub(crate) fn reduce<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    // The oracle accumulates in f64: a sequential f32 sum of 1e6 terms is off by hundreds of
    // ulps, more than the chunked tree order of the kernel; the f64 sums' own order (by column,
    // or eight lanes along a contiguous run) changes the result by far less than an f32 ulp. The operation is chosen once, out
    // here, so the loops below are specialised to it (and the sums vectorise across columns).
    match p.op {
        o if o == ReduceOp::SumSquares as u32 => {
            reduce_with(p, x, y, (0.0, |a, v| a + v * v, |a, b| a + b))
        }
        o if o == ReduceOp::Max as u32 => {
            reduce_with(p, x, y, (f64::NEG_INFINITY, f64::max, f64::max))
        }
        o if o == ReduceOp::Min as u32 => reduce_with(p, x, y, (f64::INFINITY, f64::min, f64::min)),
        o if o == ReduceOp::SumAbs as u32 => {
            reduce_with(p, x, y, (0.0, |a, v| a + v.abs(), |a, b| a + b))
        }
        // A NaN is kept (f64::max would drop it), as the shader's max_nan keeps it.
        o if o == ReduceOp::MaxAbs as u32 => {
            let max_nan = |a: f64, b: f64| {
                if a.is_nan() || b.is_nan() {
                    a + b
                } else {
                    a.max(b)
                }
            };
            reduce_with(p, x, y, (0.0, move |a, v| max_nan(a, v.abs()), max_nan))
        }
        _ => reduce_with(p, x, y, (0.0, |a, v| a + v, |a, b| a + b)),
    }
}

/// The reduction with `(identity, combine, merge)`: combine folds a value into a running
/// result, merge joins two running results.
fn reduce_with<F: Float>(
    p: &Params,
    x: &[F],
    y: &mut [F],
    (identity, combine, merge): (
        f64,
        impl Fn(f64, f64) -> f64 + Sync,
        impl Fn(f64, f64) -> f64 + Sync,
    ),
) {
    let (outer, len, inner) = (p.outer as usize, p.len as usize, p.inner as usize);
    let chunk = (p.chunk as usize).max(1);
    let chunks = len.div_ceil(chunk).max(1);
    let scale = f64::from(p.scale);
    let x = &x[p.x_off as usize..];
    let y = &mut y[p.y_off as usize..][..outer * chunks * inner];
    if y.is_empty() {
        return;
    }
    // Columns j0.. of y[o, c, :] (as many as `out` holds): every column's values over the rows
    // of chunk c in order (the sums keep their order over r, so results depend neither on the
    // thread count nor on how the columns are split), COLS columns at a time.
    let run = |oc: usize, j0: usize, out: &mut [F]| {
        let (o, c) = (oc / chunks, oc % chunks);
        let rows = c * chunk..len.min((c + 1) * chunk);
        if inner == 1 {
            // A run of consecutive elements (a row's sum, a plane's): eight running values side
            // by side (one vector; a single chain would wait on each add), then combined.
            let run = &x[o * len + rows.start..o * len + rows.end];
            let mut lanes = [identity; 8];
            let mut eights = run.chunks_exact(8);
            for e in &mut eights {
                for (a, &v) in lanes.iter_mut().zip(e) {
                    *a = combine(*a, v.to_f64());
                }
            }
            let tail = eights.remainder().iter();
            let acc = tail.fold(identity, |a, &v| combine(a, v.to_f64()));
            out[0] = F::from_f64(lanes.into_iter().fold(acc, &merge) * scale);
            return;
        }
        for (k, out) in out.chunks_mut(COLS).enumerate() {
            let (j, w) = (j0 + k * COLS, out.len());
            let mut acc = [identity; COLS];
            let acc = &mut acc[..w];
            for r in rows.clone() {
                let row = &x[(o * len + r) * inner + j..][..w]; // x[o, r, j..j + w]
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = combine(*a, v.to_f64());
                }
            }
            for (out, &a) in out.iter_mut().zip(acc.iter()) {
                *out = F::from_f64(a * scale); // y[o, c, j..j + w]
            }
        }
    };
    if !super::worth_parallel(x.len().min(outer * len * inner)) {
        return y
            .chunks_mut(inner)
            .enumerate()
            .for_each(|(oc, out)| run(oc, 0, out));
    }
    // One task per (o, chunk), and when those are fewer than the threads (a bias gradient's
    // column sums: one row of outputs), per block of columns too.
    let rows_of_y = outer * chunks;
    let threads = rayon::current_num_threads();
    let block = if rows_of_y >= 2 * threads {
        inner
    } else {
        inner
            .div_ceil(2 * threads)
            .next_multiple_of(COLS.min(inner))
    };
    y.par_chunks_mut(inner)
        .with_min_len(super::GRAIN.div_ceil(chunk.min(len) * inner))
        .enumerate()
        .for_each(|(oc, out)| {
            if block >= inner {
                return run(oc, 0, out);
            }
            out.par_chunks_mut(block)
                .enumerate()
                .for_each(|(b, out)| run(oc, b * block, out));
        });
}
