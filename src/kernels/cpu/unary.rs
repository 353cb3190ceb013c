//! CPU twin of shaders/unary.wgsl: y = α·f(x) + β with x read through strides.

use super::activations::activate;
use super::{strided_offset, Float};
use crate::kernels::unary::{Params, UnaryOp};

fn unary_op<F: Float>(v: F, op: u32, slope: F) -> F {
    match op {
        13 if v >= F::ZERO => v,
        13 => slope * v,
        5 => -v,
        6 => v.abs(),
        7 => v.exp(),
        8 => v.ln(),
        9 => v.sqrt(),
        10 => v * v,
        11 => F::ONE / v,
        12 => F::ZERO, // fill: y = β
        code => activate(v, code),
    }
}

pub(crate) fn unary<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let rank = p.rank as usize;
    let (alpha, beta) = (
        F::from_f64(f64::from(p.alpha)),
        F::from_f64(f64::from(p.beta)),
    );
    for i in 0..p.numel as usize {
        let v = if p.op == UnaryOp::Fill as u32 {
            F::ZERO
        } else if p.contiguous == 1 {
            x[p.x_off as usize + i]
        } else {
            x[p.x_off as usize + strided_offset(i, &p.shape[..rank], &p.x_strides[..rank])]
        };
        y[p.y_off as usize + i] = alpha * unary_op(v, p.op, F::from_f64(f64::from(p.slope))) + beta;
    }
}
