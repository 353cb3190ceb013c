// binary: y = f(a, b) elementwise with broadcasting: a and b are read through strides, where a
// broadcast axis has stride 0; y is contiguous. Codes match `BinaryOp` in src/kernels/binary.rs.
// Grid: grid-stride over the elements (common/grid.wgsl), folded.
// Needs: common/grid.wgsl, common/strided.wgsl.

struct Params {
    numel: u32, rank: u32, op: u32, contiguous: u32,
    a_off: u32, b_off: u32, y_off: u32, _pad: u32,
    shape: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;        // broadcast to [shape] by strides
@group(0) @binding(2) var<storage, read> b: array<f32>;        // broadcast to [shape] by strides
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // [numel], contiguous

fn binary_op(u: f32, v: f32, op: u32) -> f32 {
    switch op {
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return max(u, v); }
        case 5u: { return min(u, v); }
        case 6u: { return select(0.0, 1.0, u == v); }  // the mask the max/min gradients route by
        default: { return u + v; }
    }
}

@compute @workgroup_size(256)
fn binary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
        var ia = i;
        var ib = i;
        if p.contiguous == 0u {
            ia = strided_offset(i, p.rank, p.shape, p.a_strides);
            ib = strided_offset(i, p.rank, p.shape, p.b_strides);
        }
        y[p.y_off + i] = binary_op(a[p.a_off + ia], b[p.b_off + ib], p.op);
    }
}
