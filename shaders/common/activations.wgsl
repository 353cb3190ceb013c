// Activation functions shared by the matmul epilogue and the elementwise kernels.
// Codes match `Activation` in src/ops/matmul.rs and the first codes of `UnaryOp`.
// Each form is stable for any finite input (no exp overflow into inf/inf = NaN).

const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;
const ACT_TANH: u32 = 3u;
const ACT_GELU: u32 = 4u;

fn sigmoid_stable(x: f32) -> f32 {
    // e = exp(-|x|) never overflows; for x < 0, sigmoid(x) = e / (1 + e).
    let e = exp(-abs(x));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, x >= 0.0);
}

fn tanh_stable(x: f32) -> f32 {
    // tanh(±15) is ±1 in f32; clamping keeps exp-based implementations finite.
    return tanh(clamp(x, -15.0, 15.0));
}

fn erf_approx(x: f32) -> f32 {
    // Abramowitz & Stegun 7.1.26: |error| < 1.5e-7. The CPU twin uses the same formula.
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t;
    return sign(x) * (1.0 - poly * exp(-a * a));
}

fn gelu_erf(x: f32) -> f32 {
    // PyTorch's default GELU: x * Φ(x), with Φ through erf.
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}

fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return sigmoid_stable(x); }
        case 3u: { return tanh_stable(x); }
        case 4u: { return gelu_erf(x); }
        default: { return x; }
    }
}
