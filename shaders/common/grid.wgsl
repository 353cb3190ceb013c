// Dispatch geometry shared by every kernel. A grid of more than 65,535 workgroups is folded into
// x and y by the Rust side (`kernels::fold_grid`); this recovers the linear workgroup index.

fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
