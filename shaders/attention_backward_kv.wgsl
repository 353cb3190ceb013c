// attention_backward_kv: dK and dV of fused attention, deterministic without atomics: an
// invocation owns one key j and sums over every query i that saw it, streaming Q and dO through
// workgroup memory BR rows at a time and recomputing the probabilities from the saved
// log-sum-exp: p = exp(scale·q_i·k_j − lse_i), dV_j += p·dO_i, ds = p·(dO_i·v_j − D_i),
// dK_j += scale·ds·q_i, with D_i = rowsum(dO_i ⊙ O_i) precomputed.
// Grid: x = ceil(L / WG), y·z = BH (folded past 65,535). Needs: common/grid.wgsl.

override HEAD_DIM: u32 = 64u;
override WG: u32 = 64u;
const MAX_DIM: u32 = 128u;
const BR: u32 = 15u;  // query rows per tile: 2 · BR · MAX_DIM floats = 15 KiB, inside every device's limit

struct Params { len: u32, heads: u32, causal: u32, scale: f32, bh: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;          // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;          // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;          // [BH, L, D]
@group(0) @binding(4) var<storage, read> d_o: array<f32>;        // [BH, L, D]: dO
@group(0) @binding(5) var<storage, read> stats: array<f32>;      // [2, BH, L]: lse, then D
@group(0) @binding(6) var<storage, read> lengths: array<f32>;    // [B]
@group(0) @binding(7) var<storage, read_write> dkv: array<f32>;  // [2, BH, L, D]: dK, then dV

var<workgroup> q_tile: array<f32, 1920>;   // [BR][HEAD_DIM]
var<workgroup> do_tile: array<f32, 1920>;  // [BR][HEAD_DIM]

@compute @workgroup_size(WG)
fn attention_backward_kv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let bh = folded_row(wid, nwg);
    if bh >= p.bh {
        return;
    }
    let j = wid.x * WG + lindex;
    let kv_len = min(p.len, u32(lengths[bh / p.heads]));
    let key_ok = j < kv_len;
    let base = bh * p.len * HEAD_DIM;
    let plane = p.bh * p.len;  // offset of D in stats
    var kj: array<f32, MAX_DIM>;
    var vj: array<f32, MAX_DIM>;
    var dk: array<f32, MAX_DIM>;
    var dv: array<f32, MAX_DIM>;
    if key_ok {
        for (var c = 0u; c < HEAD_DIM; c += 1u) {
            kj[c] = k[base + j * HEAD_DIM + c];
            vj[c] = v[base + j * HEAD_DIM + c];
        }
    }
    // Causal: queries before this workgroup's first key never see its keys (uniform start).
    var i_start = 0u;
    if p.causal == 1u {
        i_start = (wid.x * WG / BR) * BR;
    }
    for (var i0 = i_start; i0 < p.len; i0 += BR) {
        for (var e = lindex; e < BR * HEAD_DIM; e += WG) {
            let i = i0 + e / HEAD_DIM;
            var qd = vec2<f32>(0.0, 0.0);
            if i < p.len {
                let at = base + i * HEAD_DIM + e % HEAD_DIM;
                qd = vec2<f32>(q[at], d_o[at]);
            }
            q_tile[e] = qd.x;
            do_tile[e] = qd.y;
        }
        workgroupBarrier();
        if key_ok {
            for (var ii = 0u; ii < BR; ii += 1u) {
                let i = i0 + ii;
                if i >= p.len || (p.causal == 1u && j > i) {
                    continue;
                }
                var s = 0.0;
                var dp = 0.0;
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    s = fma(q_tile[ii * HEAD_DIM + c], kj[c], s);
                    dp = fma(do_tile[ii * HEAD_DIM + c], vj[c], dp);
                }
                let pij = exp(s * p.scale - stats[bh * p.len + i]);
                let ds = pij * (dp - stats[plane + bh * p.len + i]);
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    dv[c] = fma(pij, do_tile[ii * HEAD_DIM + c], dv[c]);
                    dk[c] = fma(ds * p.scale, q_tile[ii * HEAD_DIM + c], dk[c]);
                }
            }
        }
        workgroupBarrier();
    }
    if j < p.len {
        // Masked keys (past the length) get zero gradients.
        let dv_plane = p.bh * p.len * HEAD_DIM;
        for (var c = 0u; c < HEAD_DIM; c += 1u) {
            dkv[base + j * HEAD_DIM + c] = dk[c];
            dkv[dv_plane + base + j * HEAD_DIM + c] = dv[c];
        }
    }
}
