// What the three fused-attention kernels share (attention_forward, attention_backward_q,
// attention_backward_kv): the head dimension and its bound, the two workgroup tiles each kernel
// streams rows of two [L, HEAD_DIM] operands through, and the loader that fills them.
// Unlike the function-only snippets this one holds:
// - `override`s: module-scope like consts, set per pipeline (`kernels::attention_forward::WG`
//   and the call's head dimension), and the same for all three kernels;
// - `var<workgroup>` tiles: workgroup memory is a module-scope variable, not a binding, so it
//   adds nothing to the pipeline layout the Rust side declares; each pipeline gets only the
//   workgroup variables its entry point uses, and kernels::layout_check sums those against the
//   downlevel limit per kernel, as common/rows.wgsl's scratch is.
// The loader calls back into its kernel, which defines
//   fn tile_pair(at: u32) -> vec2<f32>
// returning the elements of its two streamed operands at flat index `at` (K and V for the
// forward and dQ, Q and dO for dK and dV). WGSL has no buffer parameters, so this is how one
// loader serves three kernels.

override HEAD_DIM: u32 = 64u;
override WG: u32 = 64u;
// The largest head dimension: per-invocation rows are arrays of MAX_DIM (the Rust side refuses
// a larger one: `kernels::attention_forward::MAX_DIM`).
const MAX_DIM: u32 = 128u;
// Rows per tile: 2 · TILE_ROWS · MAX_DIM floats = 15 KiB, inside even the downlevel limit.
const TILE_ROWS: u32 = 15u;

var<workgroup> tile_a: array<f32, TILE_ROWS * MAX_DIM>;  // [TILE_ROWS][HEAD_DIM]
var<workgroup> tile_b: array<f32, TILE_ROWS * MAX_DIM>;  // [TILE_ROWS][HEAD_DIM]

// Fills tile_a and tile_b with rows r0 .. r0 + TILE_ROWS of the two operands, row r of this
// (batch, head) starting at element base + r · HEAD_DIM, zeros at and past `len`. The WG
// invocations share the elements. No barrier inside: the caller puts one after the load and
// one before the next.
fn load_tiles(r0: u32, len: u32, base: u32, lindex: u32) {
    for (var e = lindex; e < TILE_ROWS * HEAD_DIM; e += WG) {
        let r = r0 + e / HEAD_DIM;
        var pair = vec2<f32>(0.0, 0.0);
        if r < len {
            pair = tile_pair(base + r * HEAD_DIM + e % HEAD_DIM);
        }
        tile_a[e] = pair.x;
        tile_b[e] = pair.y;
    }
}
