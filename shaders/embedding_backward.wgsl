// embedding_backward: dW[v, d] = Σ_{n : ids[n] = v} dy[n, d], deterministic without atomics:
// each invocation owns one (v, d) and walks the tokens in order, so repeated tokens always sum in
// the same order. Work is V·N·D comparisons: fine for character and small word vocabularies.
// Grid: 256 elements per workgroup over V·D, folded. Needs: common/grid.wgsl.

struct Params { tokens: u32, dim: u32, vocab: u32, ids_off: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // [N, D]
@group(0) @binding(2) var<storage, read> ids: array<f32>;       // [N]
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;  // [V, D]

@compute @workgroup_size(256)
fn embedding_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lindex;
    if i >= p.vocab * p.dim {
        return;
    }
    let row = i / p.dim;
    let d = i % p.dim;
    var s = 0.0;
    for (var n = 0u; n < p.tokens; n += 1u) {
        // The forward's rule: the row of a whole-number part, for ids in [0, V).
        let f = ids[p.ids_off + n];
        if f >= 0.0 && u32(f) == row {
            s += dy[n * p.dim + d];
        }
    }
    dw[i] = s;
}
