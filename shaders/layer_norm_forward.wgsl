// layer_norm_forward: y = (x − μ)/√(σ² + ε) · γ + β over the last axis of a contiguous [R, D],
// with μ and σ² the row's mean and (biased) variance, as PyTorch's nn.LayerNorm. One workgroup
// of 256 per row; two passes over the row (mean, then variance), so no cancellation.
// Saves for backward: μ and 1/√(σ² + ε) per row. Grid: R workgroups, folded.
// Needs: common/grid.wgsl, common/rows.wgsl.

struct Params { rows: u32, cols: u32, x_off: u32, affine: u32, eps: f32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [R, D]
@group(0) @binding(2) var<storage, read> gamma: array<f32>;        // [D] (unread if affine = 0)
@group(0) @binding(3) var<storage, read> beta: array<f32>;         // [D] (unread if affine = 0)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;      // [R, D]
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;  // [2, R]: μ, then 1/√(σ² + ε)

@compute @workgroup_size(256)
fn layer_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let base = p.x_off + row * p.cols;
    var s = 0.0;
    for (var c = lindex; c < p.cols; c += 256u) {
        s += x[base + c];
    }
    let mean = row_sum(s, lindex) / f32(p.cols);
    var v = 0.0;
    for (var c = lindex; c < p.cols; c += 256u) {
        let d = x[base + c] - mean;
        v += d * d;
    }
    let rstd = inverseSqrt(row_sum(v, lindex) / f32(p.cols) + p.eps);
    for (var c = lindex; c < p.cols; c += 256u) {
        var o = (x[base + c] - mean) * rstd;
        if p.affine == 1u {
            o = o * gamma[c] + beta[c];
        }
        y[row * p.cols + c] = o;
    }
    if lindex == 0u {
        stats[row] = mean;
        stats[p.rows + row] = rstd;
    }
}
