// unary_backward: dx = α · dy · f'(x) for the forward y = α·f(x) + β of `unary`; f' is
// recomputed from x (one exp at most), so the forward output need not be saved. Codes match
// `UnaryOp`; Fill and the non-differentiable codes give 0. All tensors contiguous.
// Grid: grid-stride over the elements (common/grid.wgsl), folded.
// Needs: common/activations.wgsl, common/grid.wgsl.

struct Params {
    numel: u32, op: u32, x_off: u32, dy_off: u32,
    dx_off: u32, alpha: f32, slope: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // [numel]: the forward input
@group(0) @binding(2) var<storage, read> dy: array<f32>;        // [numel]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // [numel]

fn derivative(v: f32, op: u32) -> f32 {
    switch op {
        case 0u: { return 1.0; }
        case 1u: { return select(0.0, 1.0, v > 0.0); }
        case 2u: { let s = sigmoid_stable(v); return s * (1.0 - s); }
        case 3u: { let t = tanh_stable(v); return 1.0 - t * t; }
        case 4u: {
            // d/dx x·Φ(x) = Φ(x) + x·φ(x)
            let cdf = 0.5 * (1.0 + erf_approx(v * 0.70710678118654752));
            return cdf + v * 0.39894228040143268 * exp(-0.5 * v * v);
        }
        case 5u: { return -1.0; }
        case 6u: { return sign(v); }
        case 7u: { return exp(v); }
        case 8u: { return 1.0 / v; }
        case 9u: { return 0.5 / sqrt(v); }
        case 10u: { return 2.0 * v; }
        case 11u: { return -1.0 / (v * v); }
        case 13u: { return select(p.slope, 1.0, v >= 0.0); }
        default: { return 0.0; }
    }
}

@compute @workgroup_size(256)
fn unary_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
        dx[p.dx_off + i] = p.alpha * dy[p.dy_off + i] * derivative(x[p.x_off + i], p.op);
    }
}
