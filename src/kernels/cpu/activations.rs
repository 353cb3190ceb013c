//! CPU twin of shaders/common/activations.wgsl: the same stable forms and the same erf formula.

use super::Float;

pub(crate) fn sigmoid<F: Float>(x: F) -> F {
    let e = (-x.abs()).exp();
    let s = F::ONE / (F::ONE + e);
    if x >= F::ZERO {
        s
    } else {
        e * s
    }
}

/// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as in the shader.
pub(crate) fn erf_approx<F: Float>(x: F) -> F {
    let c = F::from_f64;
    let a = x.abs();
    let t = F::ONE / (F::ONE + c(0.3275911) * a);
    let poly =
        ((((c(1.061405429) * t - c(1.453152027)) * t + c(1.421413741)) * t - c(0.284496736)) * t
            + c(0.254829592))
            * t;
    x.signum() * (F::ONE - poly * (-(a * a)).exp())
}

pub(crate) fn gelu<F: Float>(x: F) -> F {
    let c = F::from_f64;
    c(0.5) * x * (F::ONE + erf_approx(x * c(std::f64::consts::FRAC_1_SQRT_2)))
}

/// `activate` of the shader: codes 0 none, 1 ReLU, 2 sigmoid, 3 tanh, 4 GELU.
pub(crate) fn activate<F: Float>(x: F, code: u32) -> F {
    match code {
        1 => x.max(F::ZERO),
        2 => sigmoid(x),
        3 => x.tanh(),
        4 => gelu(x),
        _ => x,
    }
}
