// convert: f32 ↔ f16 storage, and the strided f16 copy that makes an f16 view contiguous. x is
// read through `shape` and `x_strides` (element `x_off` onwards; `contiguous` skips the stride
// walk), y is contiguous. Mode 0 narrows f32 x into f16 y (from word y_off) and mode 2 copies
// f16 x into f16 y, one invocation per output word of two elements (the last word's high half
// is 0 when numel is odd); mode 1 widens f16 x into f32 y (from element y_off), one invocation
// per element. An f16 element i lives in word i/2 (low half when i is even) whatever its
// parity, so a view may start mid-word. Both arrays are bound as u32 words.
// Grid: grid-stride over the words (modes 0, 2) or elements (mode 1), folded.
// Needs: common/grid.wgsl, common/half.wgsl, common/strided.wgsl.

struct Params {
    numel: u32, mode: u32, x_off: u32, y_off: u32,
    rank: u32, contiguous: u32, _pad0: u32, _pad1: u32,
    shape: array<vec4<u32>, 2>,
    x_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;        // f32 bits, or f16 pairs; any strides
@group(0) @binding(2) var<storage, read_write> y: array<u32>;  // f16 pairs, or f32 bits; contiguous

@compute @workgroup_size(256)
fn convert(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    if p.mode == 1u {
        for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
            let h = source(i);
            y[p.y_off + i] = bitcast<u32>(half_at(x[h >> 1u], h));
        }
        return;
    }
    let words = (p.numel + 1u) / 2u;
    for (var w = grid_first(wid, nwg, lindex); w < words; w += stride) {
        let i = 2u * w;
        let lo = half_bits(source(i));
        var hi = 0u;
        if i + 1u < p.numel {
            hi = half_bits(source(i + 1u));
        }
        y[p.y_off + w] = lo | (hi << 16u);
    }
}

// Where element i (row-major over the shape) of x is: an f32 index (mode 0) or an f16 one.
fn source(i: u32) -> u32 {
    if p.contiguous == 1u {
        return p.x_off + i;
    }
    return p.x_off + strided_offset(i, p.rank, p.shape, p.x_strides);
}

// The binary16 bits of x's element at `at`: narrowed from f32 (mode 0) or taken (mode 2).
fn half_bits(at: u32) -> u32 {
    if p.mode == 0u {
        return f32_to_half(bitcast<f32>(x[at]));
    }
    return (x[at >> 1u] >> ((at & 1u) * 16u)) & 0xffffu;
}
