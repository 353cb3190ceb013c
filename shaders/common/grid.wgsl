// Dispatch geometry shared by every kernel. A grid of more than 65,535 workgroups is folded into
// x and y by the Rust side (`kernels::fold_grid`); this recovers the linear workgroup index.

fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Kernels with one workgroup row per (batch · head) row, `rows` of them: past 65,535 the rows
// are folded into y and z by `kernels::fold_rows`. Workgroups of the last z slice past `rows`
// return at once (a uniform exit: it depends on builtins alone).
fn folded_row(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y + wid.z * nwg.y;
}

// Grid-stride kernels (`kernels::record_strided`): invocation `first` handles elements first,
// first + stride, ... so that a grid of a few workgroups covers any count. Workgroups are
// expensive to launch on CPU-backed adapters, and many small ones buy a GPU nothing.
fn grid_first(wid: vec3<u32>, nwg: vec3<u32>, lindex: u32) -> u32 {
    return linear_workgroup(wid, nwg) * 256u + lindex;
}

fn grid_stride(nwg: vec3<u32>) -> u32 {
    return nwg.x * nwg.y * 256u;
}
