// optimizer_step: one fused update of a parameter tensor in place, for every optimizer timeloom
// has, following the update rules PyTorch documents for torch.optim (same defaults, same ε
// placement). `algo`: 0 SGD (momentum, dampening, Nesterov), 1 AdaGrad, 2 RMSProp (momentum),
// 3 AdaDelta, 4 Adam, 5 AdamW. Before the rule: g ← g · clip[1] when a global-norm clip scale is
// bound (computed on the device by clip_scale), g ← clamp(g, −c, c) when clipping by value,
// g ← g + λθ (L2; AdamW decays θ directly instead) and g ← g + l1·sign(θ).
// States: s1, s2 as each rule names them below. Grid: grid-stride over the elements
// (common/grid.wgsl), folded.
// Needs: common/grid.wgsl, common/float.wgsl.

struct Params {
    numel: u32, algo: u32, step: u32, flags: u32,
    lr: f32, beta1: f32, beta2: f32, eps: f32,
    weight_decay: f32, l1: f32, dampening: f32, clip_value: f32,
    bias_correction1: f32, bias_correction2: f32, lr_decay: f32, _pad: u32,
}
// flags bits: 1 Nesterov, 2 clip scale bound, 4 clip by value, 8 maximize.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;  // [numel] θ
@group(0) @binding(2) var<storage, read> grad: array<f32>;         // [numel] g
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;     // [numel]
@group(0) @binding(4) var<storage, read_write> s2: array<f32>;     // [numel]
@group(0) @binding(5) var<storage, read> clip: array<f32>;         // [2]: norm, scale

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
        if p.algo != 5u && p.weight_decay != 0.0 {
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
                // RMSProp: s1 = v (β2 is α, the smoothing constant), s2 = momentum buffer b.
                let v = p.beta2 * s1[i] + (1.0 - p.beta2) * g * g;
                s1[i] = v;
                let step = g / (sqrt(v) + p.eps);
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
            default: {
                // Adam / AdamW: s1 = m, s2 = v; bias corrections 1 − β^t come from the host.
                if p.algo == 5u && p.weight_decay != 0.0 {
                    theta -= p.lr * p.weight_decay * theta;
                }
                let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
                let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
                s1[i] = m;
                s2[i] = v;
                let m_hat = m / p.bias_correction1;
                let v_hat = v / p.bias_correction2;
                theta -= p.lr * m_hat / (sqrt(v_hat) + p.eps);
            }
        }
        param[i] = theta;
    }
}
