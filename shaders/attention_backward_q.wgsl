// attention_backward_q: dQ of fused attention: a workgroup holds ROWS query rows (Q and dO) and
// streams K and V through workgroup memory TILE keys at a time (common/attention.wgsl): lane c
// of row i computes p = exp(scale·q_i·k_c − lse_i) and ds = p·(dO_i·v_c − D_i) for key c; after
// a barrier every lane adds its slice of scale·Σ_c ds·k_c. Deterministic (a fixed order, no
// atomics).
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

@compute @workgroup_size(LANES, ROWS)
fn attention_backward_q(
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
    let i0 = wid.x * ROWS;
    let i = i0 + r;
    let kv_len = min(p.len, u32(lengths[bh / p.heads]));
    let base = bh * p.len * HEAD_DIM;
    load_rows(true, i0, p.len, base, lindex);
    var lse_i = 0.0;
    var d_i = 0.0;
    if i < p.len {
        lse_i = stats[bh * p.len + i];
        d_i = stats[p.bh * p.len + bh * p.len + i];
    }
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var last_key = kv_len;
    if p.causal == 1u {
        last_key = min(kv_len, i0 + ROWS);
    }
    for (var j0 = 0u; j0 < last_key; j0 += TILE) {
        workgroupBarrier();
        load_rows(false, j0, p.len, base, lindex);
        workgroupBarrier();
        if lane < TILE {
            let j = j0 + lane;
            var ds = 0.0;
            if j < kv_len && !(p.causal == 1u && j > i) {
                ds = exp(dot_a(r, lane) * p.scale - lse_i) * (dot_b(r, lane) - d_i);
            }
            pair_a[r * TILE + lane] = ds * p.scale;
        }
        workgroupBarrier();
        for (var c = 0u; c < TILE; c += 1u) {
            let ds = vec4<f32>(pair_a[r * TILE + c]);
            acc0 = fma(ds, slice_a(c, lane, 0u), acc0);
            if HEAD_DIM > 4u * LANES {
                acc1 = fma(ds, slice_a(c, lane, 1u), acc1);
            }
        }
    }
    if i < p.len {
        store_slices(base + i * HEAD_DIM, lane, acc0, acc1);
    }
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
