// clip_scale: the global gradient norm and the factor that clips it, on the device, so clipping
// needs no readback: norm = √(Σ partial sums of squares), scale = min(1, max_norm / (norm + 1e-6))
// as torch.nn.utils.clip_grad_norm_, whose clamp passes a NaN norm through: a NaN gradient
// anywhere makes every clipped gradient NaN rather than letting the others step unclipped.
// One workgroup. Needs: common/rows.wgsl, common/float.wgsl.

struct Params { count: u32, _pad0: u32, _pad1: u32, max_norm: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;    // [count] sums of squares
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [2]: norm, scale

@compute @workgroup_size(256)
fn clip_scale(@builtin(local_invocation_index) lindex: u32) {
    var s = 0.0;
    for (var i = lindex; i < p.count; i += 256u) {
        s += partial[i];
    }
    s = row_sum(s, lindex);
    if lindex == 0u {
        let norm = sqrt(s);
        out[0] = norm;
        let ratio = p.max_norm / (norm + 1e-6);
        out[1] = select(min(1.0, ratio), ratio, is_nan(ratio));
    }
}
