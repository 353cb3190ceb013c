// attention_backward_q: dQ of fused attention: a workgroup holds ROWS query rows (Q and dO) and
// streams K and V through workgroup memory TILE keys at a time (common/attention.wgsl): the
// pair phase computes, for query i and key j, p = exp(scale·q_i·k_j − lse_i) and
// ds = p·(dO_i·v_j − D_i) (D_i = rowsum(dO_i ⊙ O_i), precomputed); the fold phase adds
// scale·Σ_j ds·k_j to each row. Deterministic (a fixed order, no atomics).
// Grid: x = ceil(L / ROWS), y·z = BH (folded past 65,535). Held: held_a Q, held_b dO. Tiles:
// tile_a K, tile_b V. Needs: common/attention.wgsl, common/grid.wgsl.

struct Params { len: u32, heads: u32, causal: u32, scale: f32, bh: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;          // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;          // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;          // [BH, L, D]
@group(0) @binding(4) var<storage, read> d_o: array<f32>;        // [BH, L, D]: dO
@group(0) @binding(5) var<storage, read> stats: array<f32>;      // [2, BH, L]: lse, then D
@group(0) @binding(6) var<storage, read> lengths: array<f32>;    // [B]
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;   // [BH, L, D]

// The workgroup arrays' sizes (common/attention.wgsl): two held operands, TILE ≤ 8 rows of up
// to 16 vec4s (or 4 of 32).
const TWO_HELD: bool = true;
const HELD_B_VECS: u32 = 256u;
const TILE_VECS: u32 = 128u;
const PAIRS_A: u32 = 128u;
const PAIRS_B: u32 = 1u;

@compute @workgroup_size(64)
fn attention_backward_q(
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
    let c = lindex % TILE;
    let pg = lindex / TILE;
    let ps = INVOCATIONS / TILE;
    let lane = lindex % LANES;
    let g = lindex / LANES;
    // The pair phase's rows' saved statistics: lse and D of rows pg, pg + ps, ...
    let lse4 = row_stats(bh, i0, pg, ps, 0u);
    let d4 = row_stats(bh, i0, pg, ps, p.bh * p.len);
    var acc = no_slices();
    var last_key = kv_len;
    if p.causal == 1u {
        last_key = min(kv_len, i0 + ROWS);
    }
    for (var j0 = 0u; j0 < last_key; j0 += TILE) {
        workgroupBarrier();
        load_rows(false, j0, p.len, base, lindex);
        workgroupBarrier();
        let d = pair_dots(c, pg, true);
        let j = j0 + c;
        put_ds(pg, c, i0, j, kv_len, d.a.x, d.b.x, lse4.x, d4.x);
        if pair_rows() > 1u {
            put_ds(pg + ps, c, i0, j, kv_len, d.a.y, d.b.y, lse4.y, d4.y);
        }
        if pair_rows() > 2u {
            put_ds(pg + 2u * ps, c, i0, j, kv_len, d.a.z, d.b.z, lse4.z, d4.z);
            put_ds(pg + 3u * ps, c, i0, j, kv_len, d.a.w, d.b.w, lse4.w, d4.w);
        }
        workgroupBarrier();
        acc = fold_tile(acc, lane, g, false, false);
    }
    store_slices(acc, base, i0, p.len, lane, g);
}

// The saved statistic at stats[plane + bh·L + i] of query rows i0 + g, i0 + g + s, ... (zero
// past L).
fn row_stats(bh: u32, i0: u32, g: u32, s: u32, plane: u32) -> vec4<f32> {
    return vec4<f32>(
        row_stat(bh, i0 + g, plane),
        row_stat(bh, i0 + g + s, plane),
        row_stat(bh, i0 + g + 2u * s, plane),
        row_stat(bh, i0 + g + 3u * s, plane),
    );
}

fn row_stat(bh: u32, i: u32, plane: u32) -> f32 {
    if i >= p.len {
        return 0.0;
    }
    return stats[plane + bh * p.len + i];
}

// Pair (held row r = query i0 + r, key j)'s scale·ds into pair_a from its dot products
// qk = q·k (Q unscaled) and dov = dO·v; zero where masked or past L.
fn put_ds(r: u32, c: u32, i0: u32, j: u32, kv_len: u32, qk: f32, dov: f32, lse_i: f32, d_i: f32) {
    if r >= ROWS {
        return;
    }
    let i = i0 + r;
    var ds = 0.0;
    if i < p.len && j < kv_len && !(p.causal == 1u && j > i) {
        ds = exp(qk * p.scale - lse_i) * (dov - d_i);
    }
    pair_a[pair_at(r, c)] = ds * p.scale;
}

// The Q and dO elements at `at`, and the K and V elements at `at`, for the loaders
// (common/attention.wgsl).
fn held_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(q[at], d_o[at]);
}

fn tile_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(k[at], v[at]);
}

// store_slices' writer.
fn put(at: u32, value: f32) {
    dq[at] = value;
}
