// axpy: y = α·x + β·y elementwise over contiguous ranges. β = 0 overwrites y without reading it
// (a fresh buffer may hold anything); β = 1 accumulates, as gradients do.
// Grid: grid-stride over the elements (common/grid.wgsl), folded. Needs: common/grid.wgsl.

struct Params { numel: u32, x_off: u32, y_off: u32, _pad: u32, alpha: f32, beta: f32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [numel]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [numel]

@compute @workgroup_size(256)
fn axpy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
        var v = p.alpha * x[p.x_off + i];
        if p.beta != 0.0 {
            v += p.beta * y[p.y_off + i];
        }
        y[p.y_off + i] = v;
    }
}
