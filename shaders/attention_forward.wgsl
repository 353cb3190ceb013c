// attention_forward: O = softmax(scale·Q·Kᵀ + mask)·V, fused and tiled as FlashAttention-2: an
// invocation owns one query row and keeps its running max, running sum and output accumulator;
// the workgroup streams K and V through workgroup memory TILE_ROWS keys at a time, so the L×L
// score matrix never exists. Masks: causal (keys after the query; whole tiles past the workgroup's
// last query are skipped) and key padding (keys at or past the sequence's length).
// Q, K, V, O: [BH, L, HEAD_DIM] contiguous; lengths [B] with B = BH / heads.
// Saves for backward: lse[bh, i] = max + log(sum) of the row's scaled, masked scores.
// Grid: x = ceil(L / WG), y·z = BH (folded past 65,535). Tiles: tile_a K, tile_b V, TILE_ROWS
// keys each. Needs: common/attention.wgsl, common/grid.wgsl.

struct Params { len: u32, heads: u32, causal: u32, scale: f32, q_off: u32, k_off: u32, v_off: u32, bh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;           // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;           // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;           // [BH, L, D]
@group(0) @binding(4) var<storage, read> lengths: array<f32>;     // [B]
@group(0) @binding(5) var<storage, read_write> o: array<f32>;     // [BH, L, D]
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;   // [BH, L]

@compute @workgroup_size(WG)
fn attention_forward(
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
    var acc: array<f32, MAX_DIM>;
    if row_ok {
        for (var c = 0u; c < HEAD_DIM; c += 1u) {
            qi[c] = q[p.q_off + base + i * HEAD_DIM + c] * p.scale;
        }
    }
    var m = -3.0e38;
    var l = 0.0;
    // The last key any query of this workgroup may see: a uniform bound for the tile loop.
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
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    s = fma(qi[c], tile_a[jj * HEAD_DIM + c], s);
                }
                // Online softmax: rescale what was summed so far when the max grows.
                let m_new = max(m, s);
                let correction = exp(m - m_new);
                let pj = exp(s - m_new);
                l = l * correction + pj;
                for (var c = 0u; c < HEAD_DIM; c += 1u) {
                    acc[c] = acc[c] * correction + pj * tile_b[jj * HEAD_DIM + c];
                }
                m = m_new;
            }
        }
        workgroupBarrier();
    }
    if row_ok {
        // A row with no key to attend to outputs zeros (PyTorch gives NaN there).
        let inv = select(0.0, 1.0 / l, l > 0.0);
        for (var c = 0u; c < HEAD_DIM; c += 1u) {
            o[base + i * HEAD_DIM + c] = acc[c] * inv;
        }
        lse[bh * p.len + i] = select(3.0e38, m + log(l), l > 0.0);
    }
}

// The K and V elements at `at` for load_tiles (common/attention.wgsl).
fn tile_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(k[p.k_off + at], v[p.v_off + at]);
}
