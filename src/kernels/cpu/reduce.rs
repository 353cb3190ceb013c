//! CPU twin of shaders/reduce.wgsl: y[o, c, i] = scale · ⊕ over chunk c of f(x[o, r, i]).

use rayon::prelude::*;

use super::Float;
use crate::kernels::reduce::{Params, ReduceOp};

pub(crate) fn reduce<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let (outer, len, inner) = (p.outer as usize, p.len as usize, p.inner as usize);
    let chunk = (p.chunk as usize).max(1);
    let chunks = len.div_ceil(chunk).max(1);
    // The oracle accumulates in f64: a sequential f32 sum of 1e6 terms is off by hundreds of
    // ulps, more than the chunked tree order of the kernel.
    let identity = match p.op {
        2 => f64::NEG_INFINITY,
        3 => f64::INFINITY,
        _ => 0.0,
    };
    let scale = f64::from(p.scale);
    let combine = |acc: f64, v: f64| match p.op {
        o if o == ReduceOp::SumSquares as u32 => acc + v * v,
        o if o == ReduceOp::Max as u32 => acc.max(v),
        o if o == ReduceOp::Min as u32 => acc.min(v),
        _ => acc + v,
    };
    let x = &x[p.x_off as usize..];
    let y = &mut y[p.y_off as usize..][..outer * chunks * inner];
    // One task per (o, chunk): each walks its rows in order (the sums keep their order over r,
    // so results do not depend on the thread count) and reads each row contiguously, with the
    // `inner` running sums side by side.
    let run = |(oc, y_row): (usize, &mut [F])| {
        let (o, c) = (oc / chunks, oc % chunks);
        let rows = c * chunk..len.min((c + 1) * chunk);
        if inner == 1 {
            // A run of consecutive elements: one sum, no per-row slicing.
            let run = &x[o * len + rows.start..o * len + rows.end];
            let acc = run.iter().fold(identity, |a, &v| combine(a, v.to_f64()));
            y_row[0] = F::from_f64(acc * scale);
            return;
        }
        let mut acc = vec![identity; inner];
        for r in rows {
            let row = &x[(o * len + r) * inner..][..inner]; // x[o, r, :]
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = combine(*a, v.to_f64());
            }
        }
        for (out, a) in y_row.iter_mut().zip(acc) {
            *out = F::from_f64(a * scale); // y[o, c, :]
        }
    };
    if super::worth_parallel(x.len().min(outer * len * inner)) && y.len() > inner {
        y.par_chunks_mut(inner.max(1))
            .with_min_len(super::GRAIN.div_ceil((chunk.min(len) * inner).max(1)))
            .enumerate()
            .for_each(run);
    } else {
        y.chunks_mut(inner.max(1)).enumerate().for_each(run);
    }
}
