// float.wgsl: IEEE-754 tests by the bits. WGSL lets a compiler assume `v != v` is false, so a
// kernel that must propagate NaN as PyTorch does tests for it here.

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}
