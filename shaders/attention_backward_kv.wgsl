// attention_backward_kv: dK and dV of fused attention, deterministic without atomics: a
// workgroup holds ROWS key rows (K and V) and streams Q and dO through workgroup memory TILE
// query rows at a time (common/attention.wgsl), recomputing the probabilities from the saved
// log-sum-exp: lane c of key row j computes p = exp(scale·q_c·k_j − lse_c) and
// ds = p·(dO_c·v_j − D_c) for query c, with D_c = rowsum(dO_c ⊙ O_c) precomputed; after a
// barrier every lane adds its slices of dV_j += Σ_c p·dO_c and dK_j += scale·Σ_c ds·q_c.
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

@compute @workgroup_size(LANES, ROWS)
fn attention_backward_kv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let bh = folded_row(wid, nwg);
    if bh >= p.bh {
        return;
    }
    let lane = lid.x;
    let r = lid.y;
    let j0 = wid.x * ROWS;
    let j = j0 + r;
    let kv_len = min(p.len, u32(lengths[bh / p.heads]));
    let base = bh * p.len * HEAD_DIM;
    let plane = p.bh * p.len;  // offset of D in stats
    load_rows(true, j0, p.len, base, lindex);
    var dk0 = vec4<f32>();
    var dk1 = vec4<f32>();
    var dv0 = vec4<f32>();
    var dv1 = vec4<f32>();
    // Causal: queries before this workgroup's first key never see its keys (uniform start).
    var i_start = 0u;
    if p.causal == 1u {
        i_start = (j0 / TILE) * TILE;
    }
    for (var i0 = i_start; i0 < p.len; i0 += TILE) {
        workgroupBarrier();
        load_rows(false, i0, p.len, base, lindex);
        workgroupBarrier();
        if lane < TILE {
            let i = i0 + lane;
            var pij = 0.0;
            var ds = 0.0;
            if i < p.len && j < kv_len && !(p.causal == 1u && j > i) {
                pij = exp(dot_a(r, lane) * p.scale - stats[bh * p.len + i]);
                ds = pij * (dot_b(r, lane) - stats[plane + bh * p.len + i]);
            }
            pair_a[r * TILE + lane] = pij;
            pair_b[r * TILE + lane] = ds * p.scale;
        }
        workgroupBarrier();
        for (var c = 0u; c < TILE; c += 1u) {
            let pc = vec4<f32>(pair_a[r * TILE + c]);
            let dc = vec4<f32>(pair_b[r * TILE + c]);
            dv0 = fma(pc, slice_b(c, lane, 0u), dv0);
            dk0 = fma(dc, slice_a(c, lane, 0u), dk0);
            if HEAD_DIM > 4u * LANES {
                dv1 = fma(pc, slice_b(c, lane, 1u), dv1);
                dk1 = fma(dc, slice_a(c, lane, 1u), dk1);
            }
        }
    }
    if j < p.len {
        // Masked keys (past the length) get zero gradients.
        store_slices(base + j * HEAD_DIM, lane, dk0, dk1);
        store_slices(p.bh * p.len * HEAD_DIM + base + j * HEAD_DIM, lane, dv0, dv1);
    }
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
