// softmax_forward: y = softmax(x) or log_softmax(x) over the last axis of a contiguous [R, C],
// max-subtracted so logits of ±1e4 stay finite. One workgroup of 256 per row.
// Saves for backward: y itself. Grid: R workgroups, folded.
// Needs: common/logsumexp.wgsl, common/grid.wgsl, common/rows.wgsl.

struct Params { rows: u32, cols: u32, log: u32, x_off: u32, y_off: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [R, C]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [R, C]

@compute @workgroup_size(256)
fn softmax_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let xb = p.x_off + row * p.cols;
    let yb = p.y_off + row * p.cols;
    let lse = row_logsumexp(xb, p.cols, lindex);
    let m = lse.max_x;
    let s = lse.sum_exp;
    let log_s = log(s);
    for (var c = lindex; c < p.cols; c += 256u) {
        let z = x[xb + c] - m;
        y[yb + c] = select(exp(z) / s, z - log_s, p.log == 1u);
    }
}
