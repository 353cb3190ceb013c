// clip_scale: the global gradient norm and the factor that clips it, on the device, so clipping
// needs no readback. From the per-parameter partials: norm = √(Σ partial) (L2, partials Σ g²),
// Σ partial (L1, partials Σ |g|) or max partial (L∞, partials max |g|), by `norm`; then
// scale = min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_, whose clamp
// passes a NaN norm through: a NaN gradient anywhere makes every clipped gradient NaN rather
// than letting the others step unclipped.
// One workgroup. Needs: common/rows.wgsl, common/float.wgsl.

struct Params { count: u32, norm: u32, _pad0: u32, max_norm: f32 }
// norm: 0 L2, 1 L1, 2 L∞.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;    // [count] per-parameter partials
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [2]: norm, scale

@compute @workgroup_size(256)
fn clip_scale(@builtin(local_invocation_index) lindex: u32) {
    var s = 0.0;
    var m = 0.0;  // partials are ≥ 0 (or NaN, which the sum keeps)
    for (var i = lindex; i < p.count; i += 256u) {
        s += partial[i];
        m = max(m, partial[i]);
    }
    s = row_sum(s, lindex);
    m = row_max(m, lindex);
    if lindex == 0u {
        var norm = sqrt(s);
        if p.norm == 1u {
            norm = s;
        } else if p.norm == 2u {
            norm = select(m, s, is_nan(s));  // a NaN partial: the sum is NaN, the max may drop it
        }
        out[0] = norm;
        let ratio = p.max_norm / (norm + 1e-6);
        out[1] = select(min(1.0, ratio), ratio, is_nan(ratio));
    }
}
