// What the three fused-attention kernels share (attention_forward, attention_backward_q,
// attention_backward_kv): one tiling. A workgroup holds ROWS rows of two [L, HEAD_DIM] operands
// (held_a, held_b: the queries and dO forward and for dQ, the keys and values for dK and dV) and
// streams the other side's rows through tile_a and tile_b TILE at a time. Invocation (lane, r)
// of the LANES × ROWS workgroup belongs to held row r: per tile, lanes c < TILE compute the
// pair (r, c)'s scalars (a score, a probability, its gradient) into pair_a and pair_b; after a
// barrier every lane of row r folds the TILE pairs into its own slice of the row's output, the
// dimensions 4·lane .. 4·lane + 3 (and 64 + 4·lane .. + 3 past 64) as vec4 sums. So the
// pairwise products are spread over the whole workgroup and no invocation keeps a row of
// HEAD_DIM values (the earlier kernels held two or four such arrays per invocation, which a
// driver that does not unroll naga's loops keeps in local memory: the H200 ran them at 2% of
// its ceiling).
// Unlike the function-only snippets this one holds:
// - `override`s: module-scope like consts, set per pipeline by the Rust side
//   (`kernels::attention_forward::tiling`) and the same for all three kernels;
// - `var<workgroup>` tiles: workgroup memory is a module-scope variable, not a binding, so it
//   adds nothing to the pipeline layout the Rust side declares; kernels::layout_check sums each
//   entry point's against the downlevel limit.
// The loader calls back into the kernel, which defines
//   fn held_pair(at: u32) -> vec2<f32>   and   fn tile_pair(at: u32) -> vec2<f32>
// returning the elements of its two held and its two streamed operands at flat index `at`. WGSL
// has no buffer parameters, so this is how one loader serves three kernels.

override HEAD_DIM: u32 = 64u;
// Held rows per workgroup and streamed rows per tile, from HEAD_DIM (the tiles below must hold
// ROWS·DV4 and TILE·DV4 vec4s, TILE ≤ LANES).
override ROWS: u32 = 16u;
override TILE: u32 = 8u;
// Invocations per held row: lane l owns dimensions 4l .. 4l + 3 and 64 + 4l .. 64 + 4l + 3, so
// a head has at most 128 dimensions (the Rust side refuses more:
// `kernels::attention_forward::MAX_DIM`).
const LANES: u32 = 16u;
const HELD_VECS: u32 = 256u;
const TILE_VECS: u32 = 128u;
const PAIRS: u32 = 128u;
// A masked pair's score: below any real one, and exp(MASKED − m) is 0 for any real m.
const MASKED: f32 = -3.0e38;

var<workgroup> held_a: array<vec4<f32>, HELD_VECS>;  // [ROWS][DV4]
var<workgroup> held_b: array<vec4<f32>, HELD_VECS>;  // [ROWS][DV4]
var<workgroup> tile_a: array<vec4<f32>, TILE_VECS>;  // [TILE][DV4]
var<workgroup> tile_b: array<vec4<f32>, TILE_VECS>;  // [TILE][DV4]
var<workgroup> pair_a: array<f32, PAIRS>;            // [ROWS][TILE]
var<workgroup> pair_b: array<f32, PAIRS>;            // [ROWS][TILE]

// vec4s per row: HEAD_DIM rounded up to four, the padding zero.
fn dv4() -> u32 {
    return (HEAD_DIM + 3u) / 4u;
}

// Fills held_a and held_b (`held`) or tile_a and tile_b with ROWS or TILE rows from r0 of the
// kernel's held or streamed operands, row r of this (batch, head) starting at element
// base + r·HEAD_DIM, zeros at and past `len` and in the padding. `held` must be uniform. No
// barrier inside.
fn load_rows(held: bool, r0: u32, len: u32, base: u32, lindex: u32) {
    let width = dv4() * 4u;
    let count = select(TILE, ROWS, held) * width;
    for (var e = lindex; e < count; e += ROWS * LANES) {
        let r = r0 + e / width;
        let c = e % width;
        var pair = vec2<f32>(0.0, 0.0);
        if r < len && c < HEAD_DIM {
            let at = base + r * HEAD_DIM + c;
            if held {
                pair = held_pair(at);
            } else {
                pair = tile_pair(at);
            }
        }
        if held {
            held_a[e / 4u][e % 4u] = pair.x;
            held_b[e / 4u][e % 4u] = pair.y;
        } else {
            tile_a[e / 4u][e % 4u] = pair.x;
            tile_b[e / 4u][e % 4u] = pair.y;
        }
    }
}

// held_a row r · tile_a row c, and held_b row r · tile_b row c.
fn dot_a(r: u32, c: u32) -> f32 {
    let n = dv4();
    var s = 0.0;
    for (var v = 0u; v < n; v += 1u) {
        s += dot(held_a[r * n + v], tile_a[c * n + v]);
    }
    return s;
}

fn dot_b(r: u32, c: u32) -> f32 {
    let n = dv4();
    var s = 0.0;
    for (var v = 0u; v < n; v += 1u) {
        s += dot(held_b[r * n + v], tile_b[c * n + v]);
    }
    return s;
}

// Lane `lane`'s slice of tile_a or tile_b row c: `half` 0 its first vec4, 1 its second (past
// 64 dimensions); zero where the row has no such vec4.
fn slice_a(c: u32, lane: u32, half: u32) -> vec4<f32> {
    let v = lane + half * LANES;
    if v >= dv4() {
        return vec4<f32>();
    }
    return tile_a[c * dv4() + v];
}

fn slice_b(c: u32, lane: u32, half: u32) -> vec4<f32> {
    let v = lane + half * LANES;
    if v >= dv4() {
        return vec4<f32>();
    }
    return tile_b[c * dv4() + v];
}

// Writes lane `lane`'s slices x (first) and y (past 64) of a row starting at element `at` of
// `out` through the kernel's
//   fn put(at: u32, value: f32)
// dimensions past HEAD_DIM skipped.
fn store_slices(at: u32, lane: u32, x: vec4<f32>, y: vec4<f32>) {
    for (var t = 0u; t < 4u; t += 1u) {
        let c0 = 4u * lane + t;
        if c0 < HEAD_DIM {
            put(at + c0, x[t]);
        }
        let c1 = 4u * (lane + LANES) + t;
        if c1 < HEAD_DIM {
            put(at + c1, y[t]);
        }
    }
}
