//! CPU twin of shaders/unary_backward.wgsl: dx = α · dy · f'(x), in chunks on the pool.

use super::activations::{erf_approx, sigmoid};
use super::Float;
use crate::kernels::unary_backward::Params;

fn derivative<F: Float>(v: F, op: u32, slope: F) -> F {
    let c = F::from_f64;
    match op {
        0 => F::ONE,
        1 if v > F::ZERO => F::ONE,
        1 => F::ZERO,
        2 => {
            let s = sigmoid(v);
            s * (F::ONE - s)
        }
        3 => {
            let t = v.tanh();
            F::ONE - t * t
        }
        4 => {
            // Φ(x) + x·φ(x)
            let cdf = c(0.5) * (F::ONE + erf_approx(v * c(std::f64::consts::FRAC_1_SQRT_2)));
            cdf + v * c(0.398_942_280_401_432_7) * (c(-0.5) * v * v).exp()
        }
        5 => -F::ONE,
        6 => v.signum(),
        7 => v.exp(),
        8 => F::ONE / v,
        9 => c(0.5) / v.sqrt(),
        10 => c(2.0) * v,
        11 => -F::ONE / (v * v),
        13 if v >= F::ZERO => F::ONE,
        13 => slope,
        _ => F::ZERO,
    }
}

pub(crate) fn unary_backward<F: Float>(p: &Params, x: &[F], dy: &[F], dx: &mut [F]) {
    let alpha = F::from_f64(f64::from(p.alpha));
    let slope = F::from_f64(f64::from(p.slope));
    let (x, dy) = (&x[p.x_off as usize..], &dy[p.dy_off as usize..]);
    super::for_chunks(
        &mut dx[p.dx_off as usize..][..p.numel as usize],
        |start, dx| {
            let n = dx.len();
            for ((o, &v), &g) in dx
                .iter_mut()
                .zip(&x[start..start + n])
                .zip(&dy[start..start + n])
            {
                *o = alpha * g * derivative(v, p.op, slope);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::unary::unary;
    use crate::kernels::unary::{Params as Fwd, UnaryOp};
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_for_every_differentiable_op() {
        let n = 9;
        for op in UnaryOp::ALL {
            if op == UnaryOp::Fill {
                continue;
            }
            let mut x = randn64(op as u64, n);
            if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) {
                x.iter_mut().for_each(|v| *v = v.abs() + 0.5);
            }
            if matches!(op, UnaryOp::Relu | UnaryOp::Abs | UnaryOp::LeakyRelu) {
                x.iter_mut().for_each(|v| *v += 0.1f64.copysign(*v)); // away from the kink
            }
            let w = randn64(100 + op as u64, n); // the upstream gradient
            let fwd = Fwd {
                numel: n as u32,
                rank: 1,
                op: op as u32,
                contiguous: 1,
                alpha: 0.7,
                beta: 0.3,
                slope: 0.2,
                ..Fwd::default()
            };
            let f = |x: &[f64]| {
                let mut y = vec![0.0; n];
                unary(&fwd, x, &mut y);
                y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
            };
            let p = Params {
                numel: n as u32,
                op: op as u32,
                alpha: 0.7,
                slope: 0.2,
                ..Params::default()
            };
            let mut dx = vec![0.0; n];
            unary_backward(&p, &x, &w, &mut dx);
            assert_gradient(&format!("{op:?}"), f, &x, &dx, 1e-6);
        }
    }
}
