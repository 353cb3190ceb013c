//! CPU twin of shaders/reduce.wgsl: y[o, c, i] = scale · ⊕ over chunk c of f(x[o, r, i]).

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
    for o in 0..outer {
        for c in 0..chunks {
            for i in 0..inner {
                let mut acc = identity;
                for r in c * chunk..len.min((c + 1) * chunk) {
                    let v = x[p.x_off as usize + (o * len + r) * inner + i].to_f64(); // x[o, r, i]
                    acc = match p.op {
                        o if o == ReduceOp::SumSquares as u32 => acc + v * v,
                        o if o == ReduceOp::Max as u32 => acc.max(v),
                        o if o == ReduceOp::Min as u32 => acc.min(v),
                        _ => acc + v,
                    };
                }
                y[p.y_off as usize + (o * chunks + c) * inner + i] = F::from_f64(acc * scale);
                // y[o, c, i]
            }
        }
    }
}
