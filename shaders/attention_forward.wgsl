// attention_forward: O = softmax(scale·Q·Kᵀ + mask)·V, fused and tiled as FlashAttention-2: a
// workgroup holds ROWS query rows and streams K and V through workgroup memory TILE keys at a
// time (common/attention.wgsl), keeping each row's running max, running sum and output, so the
// L×L score matrix never exists. Per tile: the pair phase scores (query, key) pairs into
// pair_a; then invocation r < ROWS takes row r's new maximum, turns its scores into
// probabilities in place and keeps the row's running sum, publishing the factor that rescales
// what was summed so far (the online softmax, a tile at a time); then the fold phase rescales
// each row's output and adds Σ p·v. Masks: causal (keys after the query; tiles past the
// workgroup's last query are skipped) and key padding (keys at or past the sequence's length).
// Q, K, V, O: [BH, L, HEAD_DIM] contiguous; lengths [B] with B = BH / heads.
// Saves for backward: lse[bh, i] = max + log(sum) of the row's scaled, masked scores.
// Grid: x = ceil(L / ROWS), y·z = BH (folded past 65,535). Held: held_a Q (scaled). Tiles:
// tile_a K, tile_b V. Needs: common/attention.wgsl, common/grid.wgsl.

struct Params { len: u32, heads: u32, causal: u32, scale: f32, q_off: u32, k_off: u32, v_off: u32, bh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;           // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;           // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;           // [BH, L, D]
@group(0) @binding(4) var<storage, read> lengths: array<f32>;     // [B]
@group(0) @binding(5) var<storage, read_write> o: array<f32>;     // [BH, L, D]
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;   // [BH, L]

// The workgroup arrays' sizes (common/attention.wgsl): one held operand, TILE ≤ 16 rows of
// up to 16 vec4s (or 8 of 32).
const TWO_HELD: bool = false;
const HELD_B_VECS: u32 = 1u;
const TILE_VECS: u32 = 256u;
const PAIRS_A: u32 = 256u;
const PAIRS_B: u32 = 1u;
// Per held row: the factor that rescales its output (exp(m_old − m_new) per tile, 1/sum at
// the end).
var<workgroup> row_factor: array<f32, 16>;

@compute @workgroup_size(64)
fn attention_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let bh = folded_row(wid, nwg);
    if bh >= p.bh {
        return;
    }
    let i0 = wid.x * ROWS;
    let kv_len = min(p.len, u32(lengths[bh / p.heads]));
    let base = bh * p.len * HEAD_DIM;
    load_rows(true, i0, p.len, base, lindex);
    // Pair phase: streamed row c, held rows g, g + s, ...; fold phase: lane, rows g, g + 4, ...
    let c = lindex % TILE;
    let pg = lindex / TILE;
    let ps = INVOCATIONS / TILE;
    let lane = lindex % LANES;
    let g = lindex / LANES;
    // Row lindex's running max and sum (invocations lindex < ROWS).
    var m = MASKED;
    var l = 0.0;
    var acc = no_slices();
    // The last key any query of this workgroup may see: a uniform bound for the tile loop.
    var last_key = kv_len;
    if p.causal == 1u {
        last_key = min(kv_len, i0 + ROWS);
    }
    for (var j0 = 0u; j0 < last_key; j0 += TILE) {
        // The previous tile's readers are done (and, the first time, the held rows are loaded).
        workgroupBarrier();
        load_rows(false, j0, p.len, base, lindex);
        workgroupBarrier();
        let d = pair_dots(c, pg, false).a;
        put_score(pg, c, i0, j0 + c, kv_len, d.x);
        if pair_rows() > 1u {
            put_score(pg + ps, c, i0, j0 + c, kv_len, d.y);
        }
        if pair_rows() > 2u {
            put_score(pg + 2u * ps, c, i0, j0 + c, kv_len, d.z);
            put_score(pg + 3u * ps, c, i0, j0 + c, kv_len, d.w);
        }
        workgroupBarrier();
        // Online softmax over the tile, row lindex: rescale what was summed so far when the
        // max grows, and the scores become probabilities.
        if lindex < ROWS {
            var m_new = m;
            for (var t = 0u; t < TILE; t += 1u) {
                m_new = max(m_new, pair_a[pair_at(lindex, t)]);
            }
            var sum = 0.0;
            for (var t = 0u; t < TILE; t += 1u) {
                let s = pair_a[pair_at(lindex, t)];
                let pt = select(exp(s - m_new), 0.0, s <= MASKED);
                pair_a[pair_at(lindex, t)] = pt;
                sum += pt;
            }
            let correction = exp(m - m_new);
            l = l * correction + sum;
            m = m_new;
            row_factor[lindex] = correction;
        }
        workgroupBarrier();
        acc = scale_slices(acc, row_factors(g));
        acc = fold_tile(acc, lane, g, false, true);
    }
    if lindex < ROWS {
        // A row with no key to attend to outputs zeros (PyTorch gives NaN there).
        row_factor[lindex] = select(0.0, 1.0 / l, l > 0.0);
        if i0 + lindex < p.len {
            lse[bh * p.len + i0 + lindex] = select(3.0e38, m + log(l), l > 0.0);
        }
    }
    workgroupBarrier();
    store_slices(scale_slices(acc, row_factors(g)), base, i0, p.len, lane, g);
}

// Held row r's score against streamed row c (key j) into pair_a, MASKED where the key is
// padding or (causal) after the query; rows past ROWS are not this tiling's.
fn put_score(r: u32, c: u32, i0: u32, j: u32, kv_len: u32, s: f32) {
    if r >= ROWS {
        return;
    }
    var score = s;
    if j >= kv_len || (p.causal == 1u && j > i0 + r) {
        score = MASKED;
    }
    pair_a[pair_at(r, c)] = score;
}

// row_factor of fold rows g, g + 4, g + 8, g + 12 (1 past ROWS).
fn row_factors(g: u32) -> vec4<f32> {
    var f = vec4<f32>(row_factor[g], row_factor[g + 4u], 1.0, 1.0);
    if ROWS > 8u {
        f.z = row_factor[g + 8u];
        f.w = row_factor[g + 12u];
    }
    return f;
}

// The held Q element at `at`, scaled (held_b unused), and the K and V elements at `at`, for the
// loaders (common/attention.wgsl).
fn held_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(q[p.q_off + at] * p.scale, 0.0);
}

fn tile_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(k[p.k_off + at], v[p.v_off + at]);
}

// store_slices' writer.
fn put(at: u32, value: f32) {
    o[at] = value;
}
