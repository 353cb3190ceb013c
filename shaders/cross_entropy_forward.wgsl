// cross_entropy_forward: fused log-softmax + negative log-likelihood of logits [N, C] against
// integer class ids (stored as f32, exact below 2^24). One workgroup of 256 per row writes
// out[0, n] = lse − x[n, t] (0 for an ignored row), out[1, n] = 1 if the row counts else 0 and
// out[2, n] = lse = log Σ_c exp x[n, c] (max-subtracted), which backward reuses. A target outside
// [0, C) that is not `ignore_index` gives a NaN loss: the caller's mistake shows, never hides.
// Grid: N workgroups, folded. Needs: common/logsumexp.wgsl, common/grid.wgsl, common/rows.wgsl.

struct Params { rows: u32, cols: u32, x_off: u32, t_off: u32, ignore_index: i32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [N, C] logits
@group(0) @binding(2) var<storage, read> targets: array<f32>;    // [N] class ids
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [3, N]: loss, counts, lse

@compute @workgroup_size(256)
fn cross_entropy_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let xb = p.x_off + row * p.cols;
    let row_lse = row_logsumexp(xb, p.cols, lindex);
    if lindex == 0u {
        let lse = row_lse.max_x + log(row_lse.sum_exp);
        let t = i32(targets[p.t_off + row]);
        var loss = 0.0;
        var counts = 0.0;
        if t != p.ignore_index {
            counts = 1.0;
            if t >= 0 && u32(t) < p.cols {
                loss = lse - x[xb + u32(t)];
            } else {
                loss = bitcast<f32>(0x7fc00000u);  // NaN
            }
        }
        out[row] = loss;
        out[p.rows + row] = counts;
        out[2u * p.rows + row] = lse;
    }
}
