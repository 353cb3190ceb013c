// attention_backward_kv: dK and dV of fused attention, deterministic without atomics: an
// invocation owns one key j and sums over every query i that saw it, streaming Q and dO through
// workgroup memory TILE_ROWS rows at a time and recomputing the probabilities from the saved
// log-sum-exp: p = exp(scale·q_i·k_j − lse_i), dV_j += p·dO_i, ds = p·(dO_i·v_j − D_i),
// dK_j += scale·ds·q_i, with D_i = rowsum(dO_i ⊙ O_i) precomputed.
// Grid: x = ceil(L / WG), y·z = BH (folded past 65,535). Tiles: tile_a Q, tile_b dO, TILE_ROWS
// query rows each. Needs: common/attention.wgsl, common/grid.wgsl.

struct Params { len: u32, heads: u32, causal: u32, scale: f32, bh: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;          // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;          // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;          // [BH, L, D]
@group(0) @binding(4) var<storage, read> d_o: array<f32>;        // [BH, L, D]: dO
@group(0) @binding(5) var<storage, read> stats: array<f32>;      // [2, BH, L]: lse, then D
@group(0) @binding(6) var<storage, read> lengths: array<f32>;    // [B]
@group(0) @binding(7) var<storage, read_write> dkv: array<f32>;  // [2, BH, L, D]: dK, then dV

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
        i_start = (wid.x * WG / TILE_ROWS) * TILE_ROWS;
    }
    for (var i0 = i_start; i0 < p.len; i0 += TILE_ROWS) {
        load_tiles(i0, p.len, base, lindex);
        workgroupBarrier();
        if key_ok {
            for (var ii = 0u; ii < TILE_ROWS; ii += 1u) {
                let i = i0 + ii;
                if i >= p.len || (p.causal == 1u && j > i) {
                    continue;
                }
                var s = 0.0;
                var dp = 0.0;
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    s = fma(tile_a[ii * HEAD_DIM + c], kj[c], s);
                    dp = fma(tile_b[ii * HEAD_DIM + c], vj[c], dp);
                }
                let pij = exp(s * p.scale - stats[bh * p.len + i]);
                let ds = pij * (dp - stats[plane + bh * p.len + i]);
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    dv[c] = fma(pij, tile_b[ii * HEAD_DIM + c], dv[c]);
                    dk[c] = fma(ds * p.scale, tile_a[ii * HEAD_DIM + c], dk[c]);
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

// The Q and dO elements at `at` for load_tiles (common/attention.wgsl).
fn tile_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(q[at], d_o[at]);
}
