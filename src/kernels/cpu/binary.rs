//! CPU twin of shaders/binary.wgsl: y = f(a, b) with broadcasting through strides.

use super::{strided_offset, Float};
use crate::kernels::binary::Params;

fn binary_op<F: Float>(u: F, v: F, op: u32) -> F {
    match op {
        1 => u - v,
        2 => u * v,
        3 => u / v,
        4 => u.max(v),
        5 => u.min(v),
        6 => {
            if u == v {
                F::ONE
            } else {
                F::ZERO
            }
        }
        _ => u + v,
    }
}

pub(crate) fn binary<F: Float>(p: &Params, a: &[F], b: &[F], y: &mut [F]) {
    let rank = p.rank as usize;
    let shape = &p.shape[..rank];
    for i in 0..p.numel as usize {
        let (ia, ib) = if p.contiguous == 1 {
            (i, i)
        } else {
            (
                strided_offset(i, shape, &p.a_strides[..rank]),
                strided_offset(i, shape, &p.b_strides[..rank]),
            )
        };
        y[p.y_off as usize + i] =
            binary_op(a[p.a_off as usize + ia], b[p.b_off as usize + ib], p.op);
    }
}
