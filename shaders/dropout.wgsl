// dropout: y = x · [u_i ≥ p] / (1 − p), with u_i drawn from (seed, i) by a counter-based hash
// (inverted dropout: the kept values are scaled in training so eval is the identity). The
// backward is the same map applied to dy with the same seed: the mask is regenerated, not stored.
// Grid: grid-stride over the elements (common/grid.wgsl), folded. Needs: common/grid.wgsl, common/hash.wgsl.

struct Params { numel: u32, seed_lo: u32, seed_hi: u32, x_off: u32, y_off: u32, p: f32, scale: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [numel]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [numel]

@compute @workgroup_size(256)
fn dropout(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
        let keep = uniform_at(p.seed_lo, p.seed_hi, i) >= p.p;
        y[p.y_off + i] = select(0.0, x[p.x_off + i] * p.scale, keep);
    }
}
