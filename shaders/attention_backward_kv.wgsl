// attention_backward_kv: dK and dV of fused attention, deterministic without atomics: a
// workgroup holds ROWS key rows (K and V) and streams Q and dO through workgroup memory TILE
// query rows at a time (common/attention.wgsl), recomputing the probabilities from the saved
// log-sum-exp: the pair phase computes, for key j and query i, p = exp(scale·q_i·k_j − lse_i)
// and ds = p·(dO_i·v_j − D_i), with D_i = rowsum(dO_i ⊙ O_i) precomputed; the fold phase adds
// dV_j += Σ_i p·dO_i and dK_j += scale·Σ_i ds·q_i.
// Grid: x = ceil(L / ROWS), y·z = BH (folded past 65,535). Held: held_a K, held_b V. Tiles:
// tile_a Q, tile_b dO. Needs: common/attention.wgsl, common/grid.wgsl.

struct Params { len: u32, heads: u32, causal: u32, scale: f32, bh: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;          // [BH, L, D]
@group(0) @binding(2) var<storage, read> k: array<f32>;          // [BH, L, D]
@group(0) @binding(3) var<storage, read> v: array<f32>;          // [BH, L, D]
@group(0) @binding(4) var<storage, read> d_o: array<f32>;        // [BH, L, D]: dO
@group(0) @binding(5) var<storage, read> stats: array<f32>;      // [2, BH, L]: lse, then D
@group(0) @binding(6) var<storage, read> lengths: array<f32>;    // [B]
@group(0) @binding(7) var<storage, read_write> dkv: array<f32>;  // [2, BH, L, D]: dK, then dV

// The workgroup arrays' sizes (common/attention.wgsl): two held operands, TILE ≤ 8 rows of up
// to 16 vec4s (or 4 of 32), two pair scalars.
const TWO_HELD: bool = true;
const HELD_B_VECS: u32 = 256u;
const TILE_VECS: u32 = 128u;
const PAIRS_A: u32 = 128u;
const PAIRS_B: u32 = 128u;

@compute @workgroup_size(64)
fn attention_backward_kv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let bh = folded_row(wid, nwg);
    if bh >= p.bh {
        return;
    }
    let j0 = wid.x * ROWS;
    let kv_len = min(p.len, u32(lengths[bh / p.heads]));
    let base = bh * p.len * HEAD_DIM;
    let plane = p.bh * p.len;  // offset of D in stats
    load_rows(true, j0, p.len, base, lindex);
    let c = lindex % TILE;
    let pg = lindex / TILE;
    let ps = INVOCATIONS / TILE;
    let lane = lindex % LANES;
    let g = lindex / LANES;
    var dk = no_slices();
    var dv = no_slices();
    // Causal: queries before this workgroup's first key never see its keys (uniform start).
    var i_start = 0u;
    if p.causal == 1u {
        i_start = (j0 / TILE) * TILE;
    }
    for (var i0 = i_start; i0 < p.len; i0 += TILE) {
        workgroupBarrier();
        load_rows(false, i0, p.len, base, lindex);
        workgroupBarrier();
        // This invocation's query i = i0 + c: its saved statistics.
        let i = i0 + c;
        var lse_i = 0.0;
        var d_i = 0.0;
        if i < p.len {
            lse_i = stats[bh * p.len + i];
            d_i = stats[plane + bh * p.len + i];
        }
        let d = pair_dots(c, pg, true);
        put_pair(pg, c, j0, i, kv_len, d.a.x, d.b.x, lse_i, d_i);
        if pair_rows() > 1u {
            put_pair(pg + ps, c, j0, i, kv_len, d.a.y, d.b.y, lse_i, d_i);
        }
        if pair_rows() > 2u {
            put_pair(pg + 2u * ps, c, j0, i, kv_len, d.a.z, d.b.z, lse_i, d_i);
            put_pair(pg + 3u * ps, c, j0, i, kv_len, d.a.w, d.b.w, lse_i, d_i);
        }
        workgroupBarrier();
        dv = fold_tile(dv, lane, g, false, true);
        dk = fold_tile(dk, lane, g, true, false);
    }
    // Masked keys (past the length) get zero gradients (their pairs were zero).
    store_slices(dk, base, j0, p.len, lane, g);
    store_slices(dv, p.bh * p.len * HEAD_DIM + base, j0, p.len, lane, g);
}

// Pair (held row r = key j0 + r, query i): p into pair_a and scale·ds into pair_b from the dot
// products kq = k·q (unscaled) and vdo = v·dO; zero where masked or past L.
fn put_pair(r: u32, c: u32, j0: u32, i: u32, kv_len: u32, kq: f32, vdo: f32, lse_i: f32, d_i: f32) {
    if r >= ROWS {
        return;
    }
    let j = j0 + r;
    var pij = 0.0;
    var ds = 0.0;
    if i < p.len && j < kv_len && !(p.causal == 1u && j > i) {
        pij = exp(kq * p.scale - lse_i);
        ds = pij * (vdo - d_i);
    }
    pair_a[pair_at(r, c)] = pij;
    pair_b[pair_at(r, c)] = ds * p.scale;
}

// The K and V elements at `at`, and the Q and dO elements at `at`, for the loaders
// (common/attention.wgsl).
fn held_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(k[at], v[at]);
}

fn tile_pair(at: u32) -> vec2<f32> {
    return vec2<f32>(q[at], d_o[at]);
}

// store_slices' writer.
fn put(at: u32, value: f32) {
    dkv[at] = value;
}
