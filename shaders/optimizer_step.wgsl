// optimizer_step: one fused update of a parameter tensor in place, for every optimizer timeloom
// has, following the update rules PyTorch documents for torch.optim (same defaults, same ε
// placement). `algo`: 0 SGD (momentum, dampening, Nesterov), 1 AdaGrad, 2 RMSProp (momentum,
// centred), 3 AdaDelta, 4 Adam, 5 AdamW (both with AMSGrad), 6 Adamax, 7 NAdam, 8 RAdam (both
// with coupled or decoupled weight decay). Scalars that depend only on the step (bias
// corrections, NAdam's momentum products, RAdam's rectification) come from the host in f64,
// rounded once. Before the rule: g ← g · clip[1] when a global-norm clip scale is
// bound (computed on the device by clip_scale), g ← clamp(g, −c, c) when clipping by value,
// g ← g + λθ (L2; AdamW, and NAdam/RAdam with the decoupled flag, decay θ directly instead)
// and g ← g + l1·sign(θ).
// States: s1, s2, s3 as each rule names them below (s3 only with AMSGrad or centred RMSProp). Grid: grid-stride over the elements
// (common/grid.wgsl), folded.
// Needs: common/grid.wgsl, common/float.wgsl.

struct Params {
    numel: u32, algo: u32, step: u32, flags: u32,
    lr: f32, beta1: f32, beta2: f32, eps: f32,
    weight_decay: f32, l1: f32, dampening: f32, clip_value: f32,
    bias_correction1: f32, bias_correction2: f32, lr_decay: f32, coef_a: f32,
    coef_b: f32, decay_keep: f32, _pad0: u32, _pad1: u32,
}
// flags bits: 1 Nesterov, 2 clip scale bound, 4 clip by value, 8 maximize, 16 AMSGrad,
// 32 centred (RMSProp), 64 decoupled weight decay (NAdam, RAdam).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;  // [numel] θ
@group(0) @binding(2) var<storage, read> grad: array<f32>;         // [numel] g
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;     // [numel]
@group(0) @binding(4) var<storage, read_write> s2: array<f32>;     // [numel]
@group(0) @binding(5) var<storage, read_write> s3: array<f32>;     // [numel] or a placeholder
@group(0) @binding(6) var<storage, read> clip: array<f32>;         // [2]: norm, scale

@compute @workgroup_size(256)
fn optimizer_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
        var theta = param[i];
        var g = grad[i];
        if (p.flags & 8u) != 0u {
            g = -g;  // maximize: ascend (clipping is symmetric, so it may come after)
        }
        if (p.flags & 2u) != 0u {
            g *= clip[1];
        }
        if (p.flags & 4u) != 0u && !is_nan(g) {
            g = clamp(g, -p.clip_value, p.clip_value);  // a NaN stays NaN, as in torch
        }
        let decoupled = p.algo == 5u || (p.flags & 64u) != 0u;
        if decoupled && p.weight_decay != 0.0 {
            theta *= p.decay_keep;  // 1 − lr·λ, from the host (torch's param.mul_)
        } else if p.weight_decay != 0.0 {
            g += p.weight_decay * theta;  // guarded: 0 · inf would make an inf weight NaN
        }
        g += p.l1 * sign(theta);
        let first = p.step == 1u;
        switch p.algo {
            case 0u: {
                // SGD: s1 = momentum buffer b.
                if p.beta1 != 0.0 {
                    var b = g;
                    if !first {
                        b = p.beta1 * s1[i] + (1.0 - p.dampening) * g;
                    }
                    s1[i] = b;
                    g = select(b, g + p.beta1 * b, (p.flags & 1u) != 0u);
                }
                theta -= p.lr * g;
            }
            case 1u: {
                // AdaGrad: s1 = Σ g²; lr decays as lr / (1 + (t − 1)·lr_decay).
                let acc = s1[i] + g * g;
                s1[i] = acc;
                let lr = p.lr / (1.0 + f32(p.step - 1u) * p.lr_decay);
                theta -= lr * g / (sqrt(acc) + p.eps);
            }
            case 2u: {
                // RMSProp: s1 = v (β2 is α, the smoothing constant), s2 = momentum buffer b,
                // s3 = the gradient average ḡ when centred (the denominator √(v − ḡ²)).
                let v = p.beta2 * s1[i] + (1.0 - p.beta2) * g * g;
                s1[i] = v;
                var avg = v;
                if (p.flags & 32u) != 0u {
                    let ga = s3[i] + (1.0 - p.beta2) * (g - s3[i]);  // torch's lerp
                    s3[i] = ga;
                    avg = v - ga * ga;
                }
                let step = g / (sqrt(avg) + p.eps);
                if p.beta1 != 0.0 {
                    let b = p.beta1 * select(s2[i], 0.0, first) + step;
                    s2[i] = b;
                    theta -= p.lr * b;
                } else {
                    theta -= p.lr * step;
                }
            }
            case 3u: {
                // AdaDelta: s1 = v (square average), s2 = u (accumulated delta); β2 is ρ.
                let v = p.beta2 * s1[i] + (1.0 - p.beta2) * g * g;
                s1[i] = v;
                let delta = sqrt(s2[i] + p.eps) / sqrt(v + p.eps) * g;
                s2[i] = p.beta2 * s2[i] + (1.0 - p.beta2) * delta * delta;
                theta -= p.lr * delta;
            }
            case 6u: {
                // Adamax: s1 = m, s2 = u, the infinity norm; 1 − β1^t comes from the host.
                let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
                let u = max(p.beta2 * s2[i], abs(g) + p.eps);
                s1[i] = m;
                s2[i] = u;
                theta -= p.lr / p.bias_correction1 * m / u;
            }
            case 7u: {
                // NAdam: s1 = m, s2 = v; coef_a = lr(1 − μ_t)/(1 − Πμ), coef_b =
                // lr·μ_{t+1}/(1 − Πμ·μ_{t+1}) (torch's names: mu, mu_product, mu_next).
                let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
                let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let denom = sqrt(v / p.bias_correction2) + p.eps;
                theta -= p.coef_a * g / denom;
                theta -= p.coef_b * m / denom;
            }
            case 8u: {
                // RAdam: s1 = m, s2 = v; coef_a = r_t·√(1 − β2^t) once the variance is
                // tractable (ρ_t > 5), else 0 (an SGD-with-momentum step).
                let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
                let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let m_hat = m / p.bias_correction1;
                if p.coef_a > 0.0 {
                    theta -= m_hat * p.lr * (p.coef_a / (sqrt(v) + p.eps));
                } else {
                    theta -= m_hat * p.lr;
                }
            }
            default: {
                // Adam / AdamW: s1 = m, s2 = v, s3 = max v with AMSGrad; bias corrections
                // 1 − β^t come from the host.
                let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
                let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
                s1[i] = m;
                s2[i] = v;
                var v_used = v;
                if (p.flags & 16u) != 0u {
                    v_used = max(s3[i], v);
                    s3[i] = v_used;
                }
                let m_hat = m / p.bias_correction1;
                let v_hat = v_used / p.bias_correction2;
                theta -= p.lr * m_hat / (sqrt(v_hat) + p.eps);
            }
        }
        param[i] = theta;
    }
}
