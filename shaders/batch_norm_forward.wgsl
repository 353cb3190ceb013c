// batch_norm_forward: y = (x − μ)/√(σ² + ε) · γ + β per channel of [N, C, S] (S = H·W, or 1),
// as PyTorch's F.batch_norm. Training: μ and σ² are the batch's (biased σ², two passes, so no
// cancellation), and with `track` the running statistics move by `momentum` towards μ and the
// unbiased σ² (PyTorch's definition: r ← (1 − m)·r + m·batch). Evaluation: μ and σ² are the
// running statistics. One workgroup of 256 per channel. Saves for backward: μ and 1/√(σ² + ε).
// Grid: C workgroups, folded. Needs: common/channels.wgsl, common/grid.wgsl,
// common/rows.wgsl.

struct Params {
    n: u32, c: u32, s: u32, training: u32,
    momentum: f32, eps: f32, affine: u32, track: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;                   // [N, C, S]
@group(0) @binding(2) var<storage, read> gamma: array<f32>;               // [C] (if affine)
@group(0) @binding(3) var<storage, read> beta: array<f32>;                // [C] (if affine)
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;  // [C] (if track)
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;   // [C] (if track)
@group(0) @binding(6) var<storage, read_write> y: array<f32>;             // [N, C, S]
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;         // [2, C]: μ, 1/√(σ² + ε)

@compute @workgroup_size(256)
fn batch_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let ch = linear_workgroup(wid, nwg);
    if ch >= p.c {
        return;
    }
    let count = p.n * p.s;
    var mean: f32;
    var rstd: f32;
    if p.training == 1u {
        var s = 0.0;
        for (var e = lindex; e < count; e += 256u) {
            s += x[channel_at(ch, e, p.c, p.s)];
        }
        mean = row_sum(s, lindex) / f32(count);
        var v = 0.0;
        for (var e = lindex; e < count; e += 256u) {
            let d = x[channel_at(ch, e, p.c, p.s)] - mean;
            v += d * d;
        }
        let var_sum = row_sum(v, lindex);
        rstd = inverseSqrt(var_sum / f32(count) + p.eps);
        if p.track == 1u && lindex == 0u {
            let unbiased = var_sum / f32(max(count, 2u) - 1u);
            running_mean[ch] = (1.0 - p.momentum) * running_mean[ch] + p.momentum * mean;
            running_var[ch] = (1.0 - p.momentum) * running_var[ch] + p.momentum * unbiased;
        }
    } else {
        mean = running_mean[ch];
        rstd = inverseSqrt(running_var[ch] + p.eps);
    }
    var scale = rstd;
    var shift = -mean * rstd;
    if p.affine == 1u {
        scale = rstd * gamma[ch];
        shift = beta[ch] - mean * scale;
    }
    for (var e = lindex; e < count; e += 256u) {
        let at = channel_at(ch, e, p.c, p.s);
        y[at] = fma(x[at], scale, shift);
    }
    if lindex == 0u {
        stats[ch] = mean;
        stats[p.c + ch] = rstd;
    }
}
