// cross_entropy_backward: dx[n, c] = g · (exp(x[n, c] − lse[n]) − [c = t_n]) for rows that count,
// 0 for ignored rows, where g = dy / (number of counted rows) for the mean and dy for the sum.
// dy and the count come from device buffers: no readback between forward and backward.
// Grid: 256 elements per workgroup over N·C, folded. Needs: common/grid.wgsl.

struct Params { rows: u32, cols: u32, x_off: u32, t_off: u32, ignore_index: i32, mean: u32, dx_off: u32, dy_off: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // [N, C] logits
@group(0) @binding(2) var<storage, read> targets: array<f32>;   // [N] class ids
@group(0) @binding(3) var<storage, read> saved: array<f32>;     // [3, N] from the forward
@group(0) @binding(4) var<storage, read> totals: array<f32>;    // [2]: Σ loss, Σ counts
@group(0) @binding(5) var<storage, read> dy: array<f32>;        // [1]: the loss's gradient
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;  // [N, C]

@compute @workgroup_size(256)
fn cross_entropy_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lindex;
    if i >= p.rows * p.cols {
        return;
    }
    let row = i / p.cols;
    let c = i % p.cols;
    let t = i32(targets[p.t_off + row]);
    var g = dy[p.dy_off];
    if p.mean == 1u {
        g = g / max(totals[1], 1.0);
    }
    var d = 0.0;
    if t != p.ignore_index {
        let prob = exp(x[p.x_off + i] - saved[2u * p.rows + row]);
        d = g * (prob - select(0.0, 1.0, i32(c) == t));
    }
    dx[p.dx_off + i] = d;
}
