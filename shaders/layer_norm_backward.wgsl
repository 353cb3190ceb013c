// layer_norm_backward: dx for y = x̂·γ + β with x̂ = (x − μ)·r, r = 1/√(σ² + ε), over rows of
// [R, D]: with g = dy·γ, dx = r · (g − mean(g) − x̂ · mean(g ⊙ x̂)). One workgroup per row.
// dγ = Σ_rows dy ⊙ x̂ and dβ = Σ_rows dy are column sums the Rust side takes with `reduce`.
// Grid: R workgroups, folded. Needs: common/grid.wgsl, common/rows.wgsl.

struct Params { rows: u32, cols: u32, x_off: u32, affine: u32, dy_off: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // [R, D]
@group(0) @binding(2) var<storage, read> gamma: array<f32>;       // [D] (unread if affine = 0)
@group(0) @binding(3) var<storage, read> stats: array<f32>;       // [2, R] from the forward
@group(0) @binding(4) var<storage, read> dy: array<f32>;          // [R, D]
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;    // [R, D]

@compute @workgroup_size(256)
fn layer_norm_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let mean = stats[row];
    let r = stats[p.rows + row];
    let base = row * p.cols;
    var sg = 0.0;
    var sgx = 0.0;
    for (var c = lindex; c < p.cols; c += 256u) {
        var g = dy[p.dy_off + base + c];
        if p.affine == 1u {
            g *= gamma[c];
        }
        let xh = (x[p.x_off + base + c] - mean) * r;
        sg += g;
        sgx += g * xh;
    }
    let mg = row_sum(sg, lindex) / f32(p.cols);
    let mgx = row_sum(sgx, lindex) / f32(p.cols);
    for (var c = lindex; c < p.cols; c += 256u) {
        var g = dy[p.dy_off + base + c];
        if p.affine == 1u {
            g *= gamma[c];
        }
        let xh = (x[p.x_off + base + c] - mean) * r;
        dx[base + c] = r * (g - mg - xh * mgx);
    }
}
