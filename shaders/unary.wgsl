// unary: y = α·f(x) + β elementwise, x read through strides (so this is also the strided copy
// that makes a view contiguous), y contiguous. f is chosen by `op` at run time: one pipeline
// serves every unary op. Codes match `UnaryOp` in src/kernels/unary.rs; 0..4 are activations.
// Grid: grid-stride over the elements (common/grid.wgsl), folded into x and y.
// Needs: common/activations.wgsl, common/grid.wgsl, common/strided.wgsl.

struct Params {
    numel: u32, rank: u32, op: u32, contiguous: u32,
    x_off: u32, y_off: u32, alpha: f32, beta: f32,
    shape: array<vec4<u32>, 2>,
    x_strides: array<vec4<u32>, 2>,
    slope: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // any strides
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [numel], contiguous

fn unary_op(v: f32, op: u32) -> f32 {
    switch op {
        case 5u: { return -v; }
        case 6u: { return abs(v); }
        case 7u: { return exp(v); }
        case 8u: { return log(v); }
        case 9u: { return sqrt(v); }
        case 10u: { return v * v; }
        case 11u: { return 1.0 / v; }
        case 12u: { return 0.0; }  // fill: y = β
        case 13u: { return select(p.slope * v, v, v >= 0.0); }  // leaky ReLU
        default: { return activate(v, op); }
    }
}

@compute @workgroup_size(256)
fn unary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
        var v = 0.0;
        if p.op != 12u {
            var off = i;
            if p.contiguous == 0u {
                off = strided_offset(i, p.rank, p.shape, p.x_strides);
            }
            v = x[p.x_off + off];
        }
        y[p.y_off + i] = p.alpha * unary_op(v, p.op) + p.beta;
    }
}
