//! CPU twin of shaders/optimizer_step.wgsl: the same update rules, element by element.

use super::Float;
use crate::kernels::optimizer_step::{
    Params, AMSGRAD, CENTERED, CLIP_SCALE, CLIP_VALUE, DECOUPLED, MAXIMIZE, NESTEROV,
};

pub(crate) fn optimizer_step<F: Float>(
    p: &Params,
    param: &mut [F],
    grad: &[F],
    s1: &mut [F],
    s2: &mut [F],
    s3: &mut [F],
    clip: &[F],
) {
    let n = p.numel as usize;
    // The state buffers an algorithm does not use may be shorter than the parameter (they are
    // then never read): only full ones are split with it.
    let full = [s1.len() >= n, s2.len() >= n, s3.len() >= n];
    let ptrs = [
        super::Shared(s1.as_mut_ptr()),
        super::Shared(s2.as_mut_ptr()),
        super::Shared(s3.as_mut_ptr()),
    ];
    super::for_chunks(&mut param[..n], |start, param| {
        let len = param.len();
        // SAFETY: chunk [start, start + len) of a full state buffer belongs to this chunk of
        // the parameter alone; an unused one is an empty slice.
        let [s1, s2, s3] = std::array::from_fn(|k| -> &mut [F] {
            if full[k] {
                unsafe { std::slice::from_raw_parts_mut(ptrs[k].get().add(start), len) }
            } else {
                &mut []
            }
        });
        let grad = &grad[start..start + len];
        let state = State { s1, s2, s3 };
        if matches!(p.algo, 4 | 5) && p.flags & AMSGRAD == 0 && full[0] && full[1] {
            adam(p, param, grad, state.s1, state.s2, clip);
        } else {
            update(p, param, grad, state, clip);
        }
    });
}

/// One chunk of the three state buffers (empty where the rule does not use one).
struct State<'a, F> {
    s1: &'a mut [F],
    s2: &'a mut [F],
    s3: &'a mut [F],
}

/// Adam and AdamW (algorithms 4 and 5; the most used) over one chunk: [`update`]'s arithmetic in
/// the same order (so the same bits), with every choice made before the loop and the loop
/// compiled for the processor's widest vectors, so the square roots and divisions run a vector
/// at a time (the rule-by-rule loop did not vectorise: 19% of the B = 256 MLP step).
fn adam<F: Float>(p: &Params, param: &mut [F], grad: &[F], s1: &mut [F], s2: &mut [F], clip: &[F]) {
    let c = |v: f32| F::from_f64(f64::from(v));
    let k = AdamRule {
        lr: c(p.lr),
        b1: c(p.beta1),
        b2: c(p.beta2),
        eps: c(p.eps),
        maximize: p.flags & MAXIMIZE != 0,
        scale: (p.flags & CLIP_SCALE != 0).then(|| clip[1]),
        clip_value: (p.flags & CLIP_VALUE != 0).then(|| c(p.clip_value)),
        decay: (p.algo != 5 && p.weight_decay != 0.0).then(|| c(p.weight_decay)),
        decoupled: (p.algo == 5 && p.weight_decay != 0.0).then(|| c(p.decay_keep)),
        l1: c(p.l1),
        bc1: c(p.bias_correction1),
        bc2: c(p.bias_correction2),
    };
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn wide<F: Float>(
            k: &AdamRule<F>,
            param: &mut [F],
            grad: &[F],
            s1: &mut [F],
            s2: &mut [F],
        ) {
            adam_loop(k, param, grad, s1, s2);
        }
        #[target_feature(enable = "avx2,fma")]
        fn mid<F: Float>(k: &AdamRule<F>, param: &mut [F], grad: &[F], s1: &mut [F], s2: &mut [F]) {
            adam_loop(k, param, grad, s1, s2);
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F.
            return unsafe { wide(&k, param, grad, s1, s2) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the processor has AVX2 and FMA.
            return unsafe { mid(&k, param, grad, s1, s2) };
        }
    }
    adam_loop(&k, param, grad, s1, s2);
}

/// Adam's constants for one call; the optional steps are `None` when off.
struct AdamRule<F> {
    lr: F,
    b1: F,
    b2: F,
    eps: F,
    maximize: bool,
    scale: Option<F>,
    clip_value: Option<F>,
    decay: Option<F>,
    /// 1 − lr·λ (AdamW).
    decoupled: Option<F>,
    l1: F,
    bc1: F,
    bc2: F,
}

#[inline(always)]
fn adam_loop<F: Float>(k: &AdamRule<F>, param: &mut [F], grad: &[F], s1: &mut [F], s2: &mut [F]) {
    let one = F::ONE;
    let (s1, s2) = (&mut s1[..param.len()], &mut s2[..param.len()]);
    for (((theta, &g), m), v) in param.iter_mut().zip(grad).zip(s1).zip(s2) {
        let mut g = g;
        if k.maximize {
            g = -g;
        }
        if let Some(s) = k.scale {
            g = g * s;
        }
        if let Some(cv) = k.clip_value {
            if !g.to_f64().is_nan() {
                g = g.max(-cv).min(cv); // a NaN stays NaN, as in torch
            }
        }
        let mut t = *theta;
        if let Some(keep) = k.decoupled {
            t = t * keep;
        }
        if let Some(wd) = k.decay {
            g += wd * t;
        }
        g += k.l1 * t.signum();
        let m_new = k.b1 * *m + (one - k.b1) * g;
        let v_new = k.b2 * *v + (one - k.b2) * g * g;
        *m = m_new;
        *v = v_new;
        let m_hat = m_new / k.bc1;
        let v_hat = v_new / k.bc2;
        *theta = t - k.lr * m_hat / (v_hat.sqrt() + k.eps);
    }
}

/// The update rules over one chunk (`st`: the same chunk of each state buffer, or empty where
/// the algorithm does not use it).
fn update<F: Float>(p: &Params, param: &mut [F], grad: &[F], st: State<'_, F>, clip: &[F]) {
    let State { s1, s2, s3 } = st;
    let c = |v: f32| F::from_f64(f64::from(v));
    let (lr, b1, b2, eps) = (c(p.lr), c(p.beta1), c(p.beta2), c(p.eps));
    let first = p.step == 1;
    let decoupled = p.algo == 5 || p.flags & DECOUPLED != 0;
    for i in 0..param.len() {
        let mut theta = param[i];
        let mut g = grad[i];
        if p.flags & MAXIMIZE != 0 {
            g = -g;
        }
        if p.flags & CLIP_SCALE != 0 {
            g = g * clip[1];
        }
        if p.flags & CLIP_VALUE != 0 && !g.to_f64().is_nan() {
            g = g.max(-c(p.clip_value)).min(c(p.clip_value)); // a NaN stays NaN, as in torch
        }
        if decoupled && p.weight_decay != 0.0 {
            theta = theta * c(p.decay_keep);
        } else if p.weight_decay != 0.0 {
            g += c(p.weight_decay) * theta; // guarded: 0 · inf would make an inf weight NaN
        }
        g += c(p.l1) * theta.signum();
        match p.algo {
            0 => {
                if p.beta1 != 0.0 {
                    let b = if first {
                        g
                    } else {
                        b1 * s1[i] + (F::ONE - c(p.dampening)) * g
                    };
                    s1[i] = b;
                    g = if p.flags & NESTEROV != 0 {
                        g + b1 * b
                    } else {
                        b
                    };
                }
                theta = theta - lr * g;
            }
            1 => {
                let acc = s1[i] + g * g;
                s1[i] = acc;
                let lr_t = lr / (F::ONE + c((p.step - 1) as f32) * c(p.lr_decay));
                theta = theta - lr_t * g / (acc.sqrt() + eps);
            }
            2 => {
                let v = b2 * s1[i] + (F::ONE - b2) * g * g;
                s1[i] = v;
                let mut avg = v;
                if p.flags & CENTERED != 0 {
                    let ga = s3[i] + (F::ONE - b2) * (g - s3[i]);
                    s3[i] = ga;
                    avg = v - ga * ga;
                }
                let step = g / (avg.sqrt() + eps);
                if p.beta1 != 0.0 {
                    let b = b1 * if first { F::ZERO } else { s2[i] } + step;
                    s2[i] = b;
                    theta = theta - lr * b;
                } else {
                    theta = theta - lr * step;
                }
            }
            3 => {
                let v = b2 * s1[i] + (F::ONE - b2) * g * g;
                s1[i] = v;
                let delta = (s2[i] + eps).sqrt() / (v + eps).sqrt() * g;
                s2[i] = b2 * s2[i] + (F::ONE - b2) * delta * delta;
                theta = theta - lr * delta;
            }
            6 => {
                // Adamax: s1 = m, s2 = u, the infinity norm.
                let m = b1 * s1[i] + (F::ONE - b1) * g;
                let u = (b2 * s2[i]).max(g.abs() + eps);
                s1[i] = m;
                s2[i] = u;
                theta = theta - lr / c(p.bias_correction1) * m / u;
            }
            7 => {
                // NAdam: coef_a, coef_b from the host (the momentum products).
                let m = b1 * s1[i] + (F::ONE - b1) * g;
                let v = b2 * s2[i] + (F::ONE - b2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let denom = (v / c(p.bias_correction2)).sqrt() + eps;
                theta = theta - c(p.coef_a) * g / denom;
                theta = theta - c(p.coef_b) * m / denom;
            }
            8 => {
                // RAdam: coef_a = r_t·√(1 − β2^t) when rectified, else 0.
                let m = b1 * s1[i] + (F::ONE - b1) * g;
                let v = b2 * s2[i] + (F::ONE - b2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let m_hat = m / c(p.bias_correction1);
                theta = if p.coef_a > 0.0 {
                    theta - m_hat * lr * (c(p.coef_a) / (v.sqrt() + eps))
                } else {
                    theta - m_hat * lr
                };
            }
            _ => {
                let m = b1 * s1[i] + (F::ONE - b1) * g;
                let v = b2 * s2[i] + (F::ONE - b2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let mut v_used = v;
                if p.flags & AMSGRAD != 0 {
                    v_used = s3[i].max(v);
                    s3[i] = v_used;
                }
                let m_hat = m / c(p.bias_correction1);
                let v_hat = v_used / c(p.bias_correction2);
                theta = theta - lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
        param[i] = theta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised Adam/AdamW loop gives `update`'s bits, for every optional step (clip by
    /// scale and by value, coupled and decoupled weight decay, L1), over NaN, ±0, ±∞ and
    /// ordinary values, at the first step and a later one.
    #[test]
    fn the_adam_loop_is_the_rule_by_rule_loop_bit_for_bit() {
        let n = 203;
        let value = |i: usize, salt: usize| -> f32 {
            match (i * 7 + salt) % 23 {
                0 => f32::NAN,
                1 => 0.0,
                2 => -0.0,
                3 => f32::INFINITY,
                4 => -1e30,
                k => (k as f32 - 11.0) * 0.37 + (i as f32) * 1e-3,
            }
        };
        let clip = [0.0, 0.625];
        let mut cases = 0;
        for algo in [4, 5] {
            for flags in [
                0,
                CLIP_SCALE,
                CLIP_VALUE,
                CLIP_SCALE | CLIP_VALUE | MAXIMIZE,
            ] {
                for (weight_decay, l1, step) in [(0.0, 0.0, 1), (0.01, 0.0, 3), (0.1, 0.002, 7)] {
                    let p = Params {
                        numel: n as u32,
                        algo,
                        step,
                        flags,
                        lr: 1e-3,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay,
                        l1,
                        clip_value: 0.5,
                        bias_correction1: 1.0 - 0.9f32.powi(step as i32),
                        bias_correction2: 1.0 - 0.999f32.powi(step as i32),
                        decay_keep: 1.0 - 1e-3 * weight_decay,
                        ..Params::default()
                    };
                    let start: [Vec<f32>; 4] =
                        std::array::from_fn(|k| (0..n).map(|i| value(i, k * 5)).collect());
                    let [mut pa, grad, mut s1a, v] = start;
                    // The second moment is never negative.
                    let mut s2a: Vec<f32> = v.iter().map(|v| v.abs()).collect();
                    let (mut pb, mut s1b, mut s2b) = (pa.clone(), s1a.clone(), s2a.clone());
                    adam(&p, &mut pa, &grad, &mut s1a, &mut s2a, &clip);
                    let st = State {
                        s1: &mut s1b,
                        s2: &mut s2b,
                        s3: &mut [],
                    };
                    update(&p, &mut pb, &grad, st, &clip);
                    for (name, x, y) in [("param", &pa, &pb), ("m", &s1a, &s1b), ("v", &s2a, &s2b)]
                    {
                        for (i, (a, b)) in x.iter().zip(y.iter()).enumerate() {
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "algo {algo} flags {flags} {p:?}: {name}[{i}] {a} vs {b}"
                            );
                        }
                    }
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 2 * 4 * 3);
    }
}
