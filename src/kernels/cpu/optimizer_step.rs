//! CPU twin of shaders/optimizer_step.wgsl: the same update rules, element by element.

use super::Float;
use crate::kernels::optimizer_step::{Params, CLIP_SCALE, CLIP_VALUE, NESTEROV};

pub(crate) fn optimizer_step<F: Float>(
    p: &Params,
    param: &mut [F],
    grad: &[F],
    s1: &mut [F],
    s2: &mut [F],
    clip: &[F],
) {
    let n = p.numel as usize;
    // The state buffers an algorithm does not use may be shorter than the parameter (they are
    // then never read): only full ones are split with it.
    let (s1_full, s2_full) = (s1.len() >= n, s2.len() >= n);
    let (s1p, s2p) = (
        super::Shared(s1.as_mut_ptr()),
        super::Shared(s2.as_mut_ptr()),
    );
    super::for_chunks(&mut param[..n], |start, param| {
        let len = param.len();
        // SAFETY: chunk [start, start + len) of a full state buffer belongs to this chunk of
        // the parameter alone; an unused one is an empty slice.
        let (s1, s2) = unsafe {
            (
                if s1_full {
                    std::slice::from_raw_parts_mut(s1p.get().add(start), len)
                } else {
                    &mut []
                },
                if s2_full {
                    std::slice::from_raw_parts_mut(s2p.get().add(start), len)
                } else {
                    &mut []
                },
            )
        };
        update(p, param, &grad[start..start + len], s1, s2, clip);
    });
}

/// The update rules over one chunk (`s1`, `s2`: the same chunk of the state, or empty when the
/// algorithm does not use them).
fn update<F: Float>(
    p: &Params,
    param: &mut [F],
    grad: &[F],
    s1: &mut [F],
    s2: &mut [F],
    clip: &[F],
) {
    let c = |v: f32| F::from_f64(f64::from(v));
    let (lr, b1, b2, eps) = (c(p.lr), c(p.beta1), c(p.beta2), c(p.eps));
    let first = p.step == 1;
    for i in 0..param.len() {
        let mut theta = param[i];
        let mut g = grad[i];
        if p.flags & CLIP_SCALE != 0 {
            g = g * clip[1];
        }
        if p.flags & CLIP_VALUE != 0 && !g.to_f64().is_nan() {
            g = g.max(-c(p.clip_value)).min(c(p.clip_value)); // a NaN stays NaN, as in torch
        }
        if p.algo != 5 && p.weight_decay != 0.0 {
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
                let step = g / (v.sqrt() + eps);
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
            _ => {
                if p.algo == 5 && p.weight_decay != 0.0 {
                    theta = theta - lr * c(p.weight_decay) * theta;
                }
                let m = b1 * s1[i] + (F::ONE - b1) * g;
                let v = b2 * s2[i] + (F::ONE - b2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let m_hat = m / c(p.bias_correction1);
                let v_hat = v / c(p.bias_correction2);
                theta = theta - lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
        param[i] = theta;
    }
}
