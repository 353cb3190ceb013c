// attention_forward: O = softmax(scale·Q·Kᵀ + mask)·V, fused and tiled as FlashAttention-2: a
// workgroup holds ROWS query rows and streams K and V through workgroup memory TILE keys at a
// time (common/attention.wgsl), keeping each row's running max, running sum and output, so the
// L×L score matrix never exists. Per tile, lane c of row r scores key c; after a barrier every
// lane of the row takes the tile's maximum, rescales what it summed so far and adds its slice
// of p·v for the tile's keys (the online softmax, a tile at a time). Masks: causal (keys after
// the query; tiles past the workgroup's last query are skipped) and key padding (keys at or past
// the sequence's length).
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

@compute @workgroup_size(LANES, ROWS)
fn attention_forward(
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
    var m = MASKED;
    var l = 0.0;
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
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
        if lane < TILE {
            let j = j0 + lane;
            var s = dot_a(r, lane);
            if j >= kv_len || (p.causal == 1u && j > i) {
                s = MASKED;
            }
            pair_a[r * TILE + lane] = s;
        }
        workgroupBarrier();
        // Online softmax over the tile: rescale what was summed so far when the max grows.
        var m_new = m;
        for (var c = 0u; c < TILE; c += 1u) {
            m_new = max(m_new, pair_a[r * TILE + c]);
        }
        let correction = exp(m - m_new);
        l *= correction;
        acc0 *= correction;
        acc1 *= correction;
        for (var c = 0u; c < TILE; c += 1u) {
            let s = pair_a[r * TILE + c];
            let pc = select(exp(s - m_new), 0.0, s <= MASKED);
            l += pc;
            acc0 = fma(vec4<f32>(pc), slice_b(c, lane, 0u), acc0);
            if HEAD_DIM > 4u * LANES {
                acc1 = fma(vec4<f32>(pc), slice_b(c, lane, 1u), acc1);
            }
        }
        m = m_new;
    }
    if i < p.len {
        // A row with no key to attend to outputs zeros (PyTorch gives NaN there).
        let inv = select(0.0, 1.0 / l, l > 0.0);
        store_slices(base + i * HEAD_DIM, lane, acc0 * inv, acc1 * inv);
        if lane == 0u {
            lse[bh * p.len + i] = select(3.0e38, m + log(l), l > 0.0);
        }
    }
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
