// What the three fused-attention kernels share (attention_forward, attention_backward_q,
// attention_backward_kv): one tiling. A workgroup of 64 invocations holds ROWS rows of one or
// two [L, HEAD_DIM] operands (held_a, held_b: the queries, and dO for dQ; the keys and values
// for dK and dV) and streams the other side's rows through tile_a and tile_b TILE at a time.
// Each tile goes through two phases, each a small register tile per invocation:
// - pairs: invocation (c = lindex % TILE, g = lindex / TILE) computes the dot products of
//   held rows g, g + 64/TILE, ... (up to four, `pair_rows`) with streamed row c, so a warp's
//   lanes read different streamed rows and the same held row (a broadcast), four (or eight)
//   multiply-adds per streamed vec4 loaded. The kernel turns them into pair scalars (a score,
//   a probability, its gradient) in pair_a and pair_b.
// - folds: invocation (lane = lindex % 16, g = lindex / 16) owns the dimensions 4·lane .. + 3
//   (and 64 + 4·lane .. + 3 past 64) of held rows g, g + 4, g + 8, g + 12 and adds
//   Σ_c pair[r][c]·tile[c] to them: four rows' sums per streamed vec4 loaded.
// Workgroup arrays are swizzled (`slot`, `pair_at`) so that lanes reading different rows at
// the same column hit different banks. Sums live in named vec4s and structs of them, never in
// loop-indexed arrays, which a driver that does not unroll naga's loops keeps in local memory
// (the H200 ran such kernels at 2% of its ceiling; the previous tiling of this file, one pair
// per lane and one row per lane group, at 4-7%).
// Unlike the function-only snippets this one holds:
// - `override`s: module-scope like consts, set per pipeline by the Rust side
//   (`kernels::attention_forward::tiling`);
// - `var<workgroup>` tiles: workgroup memory is a module-scope variable, not a binding, so it
//   adds nothing to the pipeline layout the Rust side declares; kernels::layout_check sums each
//   entry point's against the downlevel limit. Their sizes are the kernel's consts
//   HELD_B_VECS, TILE_VECS, PAIRS_A and PAIRS_B (the forward holds one operand, the backward
//   kernels two and shorter tiles), and TWO_HELD says whether held_b is loaded.
// The loaders call back into the kernel, which defines
//   fn held_pair(at: u32) -> vec2<f32>   and   fn tile_pair(at: u32) -> vec2<f32>
// returning the elements of its two held and its two streamed operands at flat index `at`. WGSL
// has no buffer parameters, so this is how one loader serves three kernels.

override HEAD_DIM: u32 = 64u;
// Held rows per workgroup (8 or 16) and streamed rows per tile (4, 8 or 16), from HEAD_DIM:
// ROWS·dv4 ≤ 256 vec4s, TILE·dv4 ≤ TILE_VECS, ROWS·TILE ≤ PAIRS_A.
override ROWS: u32 = 16u;
override TILE: u32 = 16u;
// Fold lanes per held row: lane l owns dimensions 4l .. 4l + 3 and 64 + 4l .. 64 + 4l + 3, so
// a head has at most 128 dimensions (the Rust side refuses more:
// `kernels::attention_forward::MAX_DIM`).
const LANES: u32 = 16u;
const INVOCATIONS: u32 = 64u;
const HELD_VECS: u32 = 256u;
// A masked pair's score: below any real one, and exp(MASKED − m) is 0 for any real m.
const MASKED: f32 = -3.0e38;

var<workgroup> held_a: array<vec4<f32>, HELD_VECS>;    // [ROWS][DV4], swizzled
var<workgroup> held_b: array<vec4<f32>, HELD_B_VECS>;  // [ROWS][DV4], swizzled
var<workgroup> tile_a: array<vec4<f32>, TILE_VECS>;    // [TILE][DV4], swizzled
var<workgroup> tile_b: array<vec4<f32>, TILE_VECS>;    // [TILE][DV4], swizzled
var<workgroup> pair_a: array<f32, PAIRS_A>;            // [ROWS][TILE], swizzled
var<workgroup> pair_b: array<f32, PAIRS_B>;            // [ROWS][TILE], swizzled

// vec4s per row: HEAD_DIM rounded up to four, the padding zero.
fn dv4() -> u32 {
    return (HEAD_DIM + 3u) / 4u;
}

// Where vec4 `v` of row `row` lives in a held or streamed tile: rotated by the row, so that
// rows read at one column fall in different banks.
fn slot(row: u32, v: u32) -> u32 {
    let n = dv4();
    return row * n + (v + row) % n;
}

// Where the pair (held row r, streamed row c) lives in pair_a and pair_b.
fn pair_at(r: u32, c: u32) -> u32 {
    return r * TILE + (c + r) % TILE;
}

// Held rows per pair-phase invocation: 64 invocations cover ROWS·TILE pairs (at least one
// each; with fewer pairs than invocations the extra ones compute nothing kept).
fn pair_rows() -> u32 {
    return max(ROWS * TILE / INVOCATIONS, 1u);
}

// Fills held_a (and held_b when the kernel's TWO_HELD) with ROWS rows from r0, or tile_a and
// tile_b (`held` false) with TILE rows, of the kernel's operands, row r of this (batch, head)
// starting at element base + r·HEAD_DIM, zeros at and past `len` and in the padding. `held`
// must be uniform. No barrier inside.
fn load_rows(held: bool, r0: u32, len: u32, base: u32, lindex: u32) {
    let n = dv4();
    let count = select(TILE, ROWS, held) * n;
    for (var e = lindex; e < count; e += INVOCATIONS) {
        let r = e / n;
        let v = e % n;
        let live = r0 + r < len;
        let at = base + (r0 + r) * HEAD_DIM + 4u * v;
        let e0 = load_element(held, live && 4u * v < HEAD_DIM, at);
        let e1 = load_element(held, live && 4u * v + 1u < HEAD_DIM, at + 1u);
        let e2 = load_element(held, live && 4u * v + 2u < HEAD_DIM, at + 2u);
        let e3 = load_element(held, live && 4u * v + 3u < HEAD_DIM, at + 3u);
        let a = vec4<f32>(e0.x, e1.x, e2.x, e3.x);
        let b = vec4<f32>(e0.y, e1.y, e2.y, e3.y);
        if held {
            held_a[slot(r, v)] = a;
            if TWO_HELD {
                held_b[slot(r, v)] = b;
            }
        } else {
            tile_a[slot(r, v)] = a;
            tile_b[slot(r, v)] = b;
        }
    }
}

// The held (or streamed) operands' elements at `at`, zeros where not `live`.
fn load_element(held: bool, live: bool, at: u32) -> vec2<f32> {
    if !live {
        return vec2<f32>();
    }
    if held {
        return held_pair(at);
    }
    return tile_pair(at);
}

// The pair phase's dot products for streamed row c and held rows g, g + s, g + 2s, g + 3s
// (s = 64 / TILE; those past pair_rows() or ROWS are clamped and their values meaningless):
// `a` against held_a and tile_a; `b` against held_b and tile_b when `both`.
struct PairDots {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn pair_dots(c: u32, g: u32, both: bool) -> PairDots {
    let n = dv4();
    let s = INVOCATIONS / TILE;
    let r0 = min(g, ROWS - 1u);
    let r1 = min(g + s, ROWS - 1u);
    let r2 = min(g + 2u * s, ROWS - 1u);
    let r3 = min(g + 3u * s, ROWS - 1u);
    let k = pair_rows();
    var d = PairDots(vec4<f32>(), vec4<f32>());
    for (var v = 0u; v < n; v += 1u) {
        let x = tile_a[slot(c, v)];
        d.a.x += dot(held_a[slot(r0, v)], x);
        if k > 1u {
            d.a.y += dot(held_a[slot(r1, v)], x);
        }
        if k > 2u {
            d.a.z += dot(held_a[slot(r2, v)], x);
            d.a.w += dot(held_a[slot(r3, v)], x);
        }
        if both {
            let y = tile_b[slot(c, v)];
            d.b.x += dot(held_b[slot(r0, v)], y);
            if k > 1u {
                d.b.y += dot(held_b[slot(r1, v)], y);
            }
            if k > 2u {
                d.b.z += dot(held_b[slot(r2, v)], y);
                d.b.w += dot(held_b[slot(r3, v)], y);
            }
        }
    }
    return d;
}

// The fold phase's sums: rows g, g + 4, g + 8, g + 12 (r0..r3; rows past ROWS stay zero) of a
// lane's first slice (x) and, past 64 dimensions, its second (y).
struct Slices {
    x0: vec4<f32>,
    x1: vec4<f32>,
    x2: vec4<f32>,
    x3: vec4<f32>,
    y0: vec4<f32>,
    y1: vec4<f32>,
    y2: vec4<f32>,
    y3: vec4<f32>,
}

fn no_slices() -> Slices {
    let z = vec4<f32>();
    return Slices(z, z, z, z, z, z, z, z);
}

// acc + Σ_c pair[r][c]·tile[c] over the tile's streamed rows, for fold invocation (lane, g):
// the pairs from pair_b when `b_pairs`, else pair_a; the rows from tile_b when `b_tile`, else
// tile_a. Both flags uniform.
fn fold_tile(acc: Slices, lane: u32, g: u32, b_pairs: bool, b_tile: bool) -> Slices {
    var o = acc;
    let n = dv4();
    let wide = HEAD_DIM > 4u * LANES;
    let v1 = min(lane + LANES, n - 1u);
    let v0 = min(lane, n - 1u);
    for (var c = 0u; c < TILE; c += 1u) {
        var x: vec4<f32>;
        var y = vec4<f32>();
        if b_tile {
            x = tile_b[slot(c, v0)];
            if wide {
                y = tile_b[slot(c, v1)];
            }
        } else {
            x = tile_a[slot(c, v0)];
            if wide {
                y = tile_a[slot(c, v1)];
            }
        }
        let p = pair4(g, c, b_pairs);
        o.x0 = fma(vec4<f32>(p.x), x, o.x0);
        o.x1 = fma(vec4<f32>(p.y), x, o.x1);
        if ROWS > 8u {
            o.x2 = fma(vec4<f32>(p.z), x, o.x2);
            o.x3 = fma(vec4<f32>(p.w), x, o.x3);
        }
        if wide {
            o.y0 = fma(vec4<f32>(p.x), y, o.y0);
            o.y1 = fma(vec4<f32>(p.y), y, o.y1);
            if ROWS > 8u {
                o.y2 = fma(vec4<f32>(p.z), y, o.y2);
                o.y3 = fma(vec4<f32>(p.w), y, o.y3);
            }
        }
    }
    return o;
}

// The pairs (g, c), (g + 4, c), (g + 8, c), (g + 12, c) from pair_b when `b`, else pair_a;
// rows past ROWS read as zero.
fn pair4(g: u32, c: u32, b: bool) -> vec4<f32> {
    var p = vec4<f32>();
    if b {
        p.x = pair_b[pair_at(g, c)];
        p.y = pair_b[pair_at(g + 4u, c)];
        if ROWS > 8u {
            p.z = pair_b[pair_at(g + 8u, c)];
            p.w = pair_b[pair_at(g + 12u, c)];
        }
    } else {
        p.x = pair_a[pair_at(g, c)];
        p.y = pair_a[pair_at(g + 4u, c)];
        if ROWS > 8u {
            p.z = pair_a[pair_at(g + 8u, c)];
            p.w = pair_a[pair_at(g + 12u, c)];
        }
    }
    return p;
}

// Each row of a fold invocation's sums times the factor for it (rows g, g + 4, ...).
fn scale_slices(acc: Slices, f: vec4<f32>) -> Slices {
    return Slices(
        acc.x0 * f.x,
        acc.x1 * f.y,
        acc.x2 * f.z,
        acc.x3 * f.w,
        acc.y0 * f.x,
        acc.y1 * f.y,
        acc.y2 * f.z,
        acc.y3 * f.w,
    );
}

// Writes fold invocation (lane, g)'s rows of a [rows, HEAD_DIM] output whose row `row0 + r`
// starts at element base + (row0 + r)·HEAD_DIM, rows at or past `len` skipped, through the
// kernel's
//   fn put(at: u32, value: f32)
fn store_slices(acc: Slices, base: u32, row0: u32, len: u32, lane: u32, g: u32) {
    store_row(base, row0 + g, len, lane, acc.x0, acc.y0);
    store_row(base, row0 + g + 4u, len, lane, acc.x1, acc.y1);
    if ROWS > 8u {
        store_row(base, row0 + g + 8u, len, lane, acc.x2, acc.y2);
        store_row(base, row0 + g + 12u, len, lane, acc.x3, acc.y3);
    }
}

fn store_row(base: u32, row: u32, len: u32, lane: u32, x: vec4<f32>, y: vec4<f32>) {
    if row >= len {
        return;
    }
    let at = base + row * HEAD_DIM + 4u * lane;
    put4(at, 4u * lane, x);
    put4(at + 4u * LANES, 4u * (lane + LANES), y);
}

// The elements of `x` at `at` .. `at` + 3, column `col` onwards, those past HEAD_DIM skipped.
fn put4(at: u32, col: u32, x: vec4<f32>) {
    if col < HEAD_DIM {
        put(at, x.x);
    }
    if col + 1u < HEAD_DIM {
        put(at + 1u, x.y);
    }
    if col + 2u < HEAD_DIM {
        put(at + 2u, x.z);
    }
    if col + 3u < HEAD_DIM {
        put(at + 3u, x.w);
    }
}
