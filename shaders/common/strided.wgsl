// Strided addressing shared by the elementwise kernels: tensors up to rank 8, shapes and strides
// packed in two vec4s each (a uniform array needs 16-byte elements). Stride 0 broadcasts.

fn packed_at(v: array<vec4<u32>, 2>, d: u32) -> u32 {
    return v[d / 4u][d % 4u];
}

// Element offset of the i-th element (row-major over `shape`) in a tensor with `strides`.
fn strided_offset(i: u32, rank: u32, shape: array<vec4<u32>, 2>, strides: array<vec4<u32>, 2>) -> u32 {
    var rem = i;
    var off = 0u;
    for (var d = rank; d > 0u; d -= 1u) {
        let n = packed_at(shape, d - 1u);
        off += (rem % n) * packed_at(strides, d - 1u);
        rem /= n;
    }
    return off;
}
