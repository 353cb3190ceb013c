// softmax_backward: dx from the saved forward output y and dy, over the last axis of [R, C]:
//   softmax:     dx = y ⊙ (dy − Σ_c dy⊙y)
//   log_softmax: dx = dy − exp(y) · Σ_c dy
// One workgroup of 256 per row. Grid: R workgroups, folded.
// Needs: common/grid.wgsl, common/rows.wgsl.

struct Params { rows: u32, cols: u32, log: u32, y_off: u32, dy_off: u32, dx_off: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;         // [R, C]: the forward output
@group(0) @binding(2) var<storage, read> dy: array<f32>;        // [R, C]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // [R, C]

@compute @workgroup_size(256)
fn softmax_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let base = row * p.cols;
    var s = 0.0;
    for (var c = lindex; c < p.cols; c += 256u) {
        let g = dy[p.dy_off + base + c];
        s += select(g * y[p.y_off + base + c], g, p.log == 1u);
    }
    s = row_sum(s, lindex);
    for (var c = lindex; c < p.cols; c += 256u) {
        let yv = y[p.y_off + base + c];
        let g = dy[p.dy_off + base + c];
        dx[p.dx_off + base + c] = select(yv * (g - s), g - exp(yv) * s, p.log == 1u);
    }
}
