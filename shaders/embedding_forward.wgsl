// embedding_forward: y[n, :] = W[ids[n], :], ids stored as f32 (exact below 2^24). An id outside
// [0, V) gives a row of NaN: the caller's mistake shows. W_HALF = 1: the table holds binary16
// packed two to a word, widened on load (f16 inference). Grid: 256 elements per workgroup over
// N·D, folded. Needs: common/grid.wgsl, common/half.wgsl.

struct Params { tokens: u32, dim: u32, vocab: u32, ids_off: u32 }

@group(0) @binding(0) var<uniform> p: Params;
override W_HALF: u32 = 0u;

@group(0) @binding(1) var<storage, read> weight: array<u32>;   // [V, D]: f32 bits, or f16 pairs
@group(0) @binding(2) var<storage, read> ids: array<f32>;      // [N]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // [N, D]

fn weight_at(i: u32) -> f32 {
    if W_HALF == 1u {
        return half_at(weight[i / 2u], i);
    }
    return bitcast<f32>(weight[i]);
}

@compute @workgroup_size(256)
fn embedding_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lindex;
    if i >= p.tokens * p.dim {
        return;
    }
    let n = i / p.dim;
    let d = i % p.dim;
    // Tested as a float: −0.5 is out of range (not row 0), 2.5 is row 2 (as the CPU twin).
    let f = ids[p.ids_off + n];
    var v = bitcast<f32>(0x7fc00000u);  // NaN
    if f >= 0.0 && f < f32(p.vocab) {
        v = weight_at(u32(f) * p.dim + d);
    }
    y[i] = v;
}
