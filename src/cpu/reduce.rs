//! CPU twin of shaders/reduce.wgsl: y[o, c, i] = scale · ⊕ over chunk c of f(x[o, r, i]).

use super::Float;
use crate::kernels::reduce::{Params, ReduceOp};

pub(crate) fn reduce<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let (outer, len, inner) = (p.outer as usize, p.len as usize, p.inner as usize);
    let chunk = (p.chunk as usize).max(1);
    let chunks = len.div_ceil(chunk).max(1);
    let identity = match p.op {
        2 => -F::INFINITY,
        3 => F::INFINITY,
        _ => F::ZERO,
    };
    let scale = F::from_f64(f64::from(p.scale));
    for o in 0..outer {
        for c in 0..chunks {
            for i in 0..inner {
                let mut acc = identity;
                for r in c * chunk..len.min((c + 1) * chunk) {
                    let v = x[p.x_off as usize + (o * len + r) * inner + i]; // x[o, r, i]
                    acc = match p.op {
                        o if o == ReduceOp::SumSquares as u32 => acc + v * v,
                        o if o == ReduceOp::Max as u32 => acc.max(v),
                        o if o == ReduceOp::Min as u32 => acc.min(v),
                        _ => acc + v,
                    };
                }
                y[p.y_off as usize + (o * chunks + c) * inner + i] = acc * scale; // y[o, c, i]
            }
        }
    }
}
