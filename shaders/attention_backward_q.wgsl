// attention_backward_q: dQ of fused attention: an invocation owns one query i and streams K and V
// through workgroup memory TILE_ROWS keys at a time: p = exp(scale·q_i·k_j − lse_i),
// ds = p·(dO_i·v_j − D_i), dQ_i = scale·Σ_j ds·k_j. Deterministic (a fixed order, no atomics).
// Grid: x = ceil(L / WG), y·z = BH (folded past 65,535). Tiles: tile_a K, tile_b V, TILE_ROWS
// keys each. Needs: common/attention.wgsl, common/grid.wgsl.

struct Params { len: u32, heads: u32, causal: u32, scale: f32, bh: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;          // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;          // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;          // [BH, L, D]
@group(0) @binding(4) var<storage, read> d_o: array<f32>;        // [BH, L, D]: dO
@group(0) @binding(5) var<storage, read> stats: array<f32>;      // [2, BH, L]: lse, then D
@group(0) @binding(6) var<storage, read> lengths: array<f32>;    // [B]
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;   // [BH, L, D]

@compute @workgroup_size(WG)
fn attention_backward_q(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let bh = folded_row(wid, nwg);
    if bh >= p.bh {
        return;
    }
    let i = wid.x * WG + lindex;
    let row_ok = i < p.len;
    let kv_len = min(p.len, u32(lengths[bh / p.heads]));
    let base = bh * p.len * HEAD_DIM;
    var qi: array<f32, MAX_DIM>;
    var doi: array<f32, MAX_DIM>;
    var acc: array<f32, MAX_DIM>;
    var lse_i = 0.0;
    var d_i = 0.0;
    if row_ok {
        for (var c = 0u; c < HEAD_DIM; c += 1u) {
            qi[c] = q[base + i * HEAD_DIM + c];
            doi[c] = d_o[base + i * HEAD_DIM + c];
        }
        lse_i = stats[bh * p.len + i];
        d_i = stats[p.bh * p.len + bh * p.len + i];
    }
    var last_key = kv_len;
    if p.causal == 1u {
        last_key = min(kv_len, (wid.x + 1u) * WG);
    }
    for (var j0 = 0u; j0 < last_key; j0 += TILE_ROWS) {
        load_tiles(j0, p.len, base, lindex);
        workgroupBarrier();
        if row_ok {
            for (var jj = 0u; jj < TILE_ROWS; jj += 1u) {
                let j = j0 + jj;
                if j >= kv_len || (p.causal == 1u && j > i) {
                    continue;
                }
                var s = 0.0;
                var dp = 0.0;
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    s = fma(qi[c], tile_a[jj * HEAD_DIM + c], s);
                    dp = fma(doi[c], tile_b[jj * HEAD_DIM + c], dp);
                }
                let ds = exp(s * p.scale - lse_i) * (dp - d_i);
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    acc[c] = fma(ds * p.scale, tile_a[jj * HEAD_DIM + c], acc[c]);
                }
            }
        }
        workgroupBarrier();
    }
    if row_ok {
        for (var c = 0u; c < HEAD_DIM; c += 1u) {
            dq[base + i * HEAD_DIM + c] = acc[c];
        }
    }
}

// The K and V elements at `at` for load_tiles (common/attention.wgsl).
fn tile_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(k[at], v[at]);
}
