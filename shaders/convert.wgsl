// convert: f32 ↔ f16 storage. mode 0 narrows f32 x (from element x_off) into f16 y (from word
// y_off), one invocation per output word of two elements (the last word's high half is 0 when
// numel is odd); mode 1 widens f16 x (from element x_off, any parity) into f32 y (from
// element y_off), one invocation per element. Both arrays are bound as u32 words.
// Grid: grid-stride over the words (mode 0) or elements (mode 1), folded.
// Needs: common/grid.wgsl, common/half.wgsl.

struct Params { numel: u32, mode: u32, x_off: u32, y_off: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;        // f32 bits, or f16 pairs
@group(0) @binding(2) var<storage, read_write> y: array<u32>;  // f16 pairs, or f32 bits

@compute @workgroup_size(256)
fn convert(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let stride = grid_stride(nwg);
    if p.mode == 0u {
        let words = (p.numel + 1u) / 2u;
        for (var w = grid_first(wid, nwg, lindex); w < words; w += stride) {
            let i = 2u * w;
            let lo = f32_to_half(bitcast<f32>(x[p.x_off + i]));
            var hi = 0u;
            if i + 1u < p.numel {
                hi = f32_to_half(bitcast<f32>(x[p.x_off + i + 1u]));
            }
            y[p.y_off + w] = lo | (hi << 16u);
        }
    } else {
        for (var i = grid_first(wid, nwg, lindex); i < p.numel; i += stride) {
            let h = p.x_off + i;
            y[p.y_off + i] = bitcast<u32>(half_at(x[h >> 1u], h));
        }
    }
}
