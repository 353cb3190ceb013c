// reduce: y[o, c, i] = scale · ⊕_{r in chunk c} f(x[o, r, i]) over a contiguous x viewed as
// [outer, len, inner], the reduced axis cut into `chunks` chunks of `chunk` (one chunk for a
// single pass; the Rust side runs a second pass over the chunk partials when len is long and the
// outputs are few). ⊕ and f by `op`: 0 sum, 1 sum of squares, 2 max, 3 min, 4 sum of absolute
// values, 5 largest absolute value (4 and 5: the L1 and L∞ gradient norms). Deterministic: a
// fixed order, no atomics.
// mode 0: one invocation per output, 256 per workgroup (coalesced over `inner`).
// mode 1: one workgroup per output (inner = 1): 256 invocations stride the chunk, then a tree.
// mode 2: 16 outputs along inner per workgroup, 16 invocations striding each one's chunk, then
// a tree (GPUs, few outputs, long sums).
// Grid: folded into x and y. Needs: common/grid.wgsl, common/float.wgsl.

struct Params {
    outer: u32, len: u32, inner: u32, chunk: u32,
    chunks: u32, op: u32, mode: u32, x_off: u32,
    y_off: u32, scale: f32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [outer, len, inner]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [outer, chunks, inner]

var<workgroup> partial: array<f32, 256>;

// max that keeps a NaN (WGSL's max need not): the L∞ norm of a gradient with a NaN is NaN, as
// torch's is, so clipping by it poisons the update rather than hiding the NaN.
fn max_nan(a: f32, b: f32) -> f32 {
    return select(max(a, b), a + b, is_nan(a) || is_nan(b));
}

fn reduce_identity(op: u32) -> f32 {
    switch op {
        case 2u: { return bitcast<f32>(0xff800000u); }  // -inf
        case 3u: { return bitcast<f32>(0x7f800000u); }  // +inf
        default: { return 0.0; }
    }
}

fn reduce_combine(acc: f32, v: f32, op: u32) -> f32 {
    switch op {
        case 1u: { return acc + v * v; }
        case 2u: { return max(acc, v); }
        case 3u: { return min(acc, v); }
        case 4u: { return acc + abs(v); }
        case 5u: { return max_nan(acc, abs(v)); }
        default: { return acc + v; }
    }
}

// Combines two partial results (squares and absolute values are already taken).
fn reduce_merge(u: f32, v: f32, op: u32) -> f32 {
    switch op {
        case 2u: { return max(u, v); }
        case 5u: { return max_nan(u, v); }
        case 3u: { return min(u, v); }
        default: { return u + v; }
    }
}

@compute @workgroup_size(256)
fn reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let outputs = p.outer * p.chunks * p.inner;
    if p.mode == 0u {
        // No early return per invocation here: the barriers of mode 1 below must stay in
        // uniform control flow, and only this uniform `return` leaves the function.
        let out = linear_workgroup(wid, nwg) * 256u + lindex;
        if out < outputs {
            let i = out % p.inner;
            let c = (out / p.inner) % p.chunks;
            let o = out / (p.inner * p.chunks);
            let r_end = min(p.len, (c + 1u) * p.chunk);
            var acc = reduce_identity(p.op);
            for (var r = c * p.chunk; r < r_end; r += 1u) {
                acc = reduce_combine(acc, x[p.x_off + (o * p.len + r) * p.inner + i], p.op);
            }
            y[p.y_off + out] = acc * p.scale;
        }
        return;
    }
    if p.mode == 2u {
        // 16 outputs along inner per workgroup, 16 invocations each: invocation (col, lane)
        // takes rows lane, lane + 16, ... of its chunk, then the lanes meet in a fixed tree.
        let col = lindex % 16u;
        let lane = lindex / 16u;
        let out = linear_workgroup(wid, nwg) * 16u + col;
        var acc = reduce_identity(p.op);
        if out < outputs {
            let i = out % p.inner;
            let c = (out / p.inner) % p.chunks;
            let o = out / (p.inner * p.chunks);
            let r_end = min(p.len, (c + 1u) * p.chunk);
            for (var r = c * p.chunk + lane; r < r_end; r += 16u) {
                acc = reduce_combine(acc, x[p.x_off + (o * p.len + r) * p.inner + i], p.op);
            }
        }
        partial[lindex] = acc;
        workgroupBarrier();
        for (var s = 128u; s >= 16u; s >>= 1u) {
            if lindex < s {
                partial[lindex] = reduce_merge(partial[lindex], partial[lindex + s], p.op);
            }
            workgroupBarrier();
        }
        if lane == 0u && out < outputs {
            y[p.y_off + out] = partial[col] * p.scale;
        }
        return;
    }
    // mode 1: inner == 1; the workgroup index is uniform, so the early return is too.
    let out = linear_workgroup(wid, nwg);
    if out >= outputs {
        return;
    }
    let c = out % p.chunks;
    let o = out / p.chunks;
    let r_end = min(p.len, (c + 1u) * p.chunk);
    var acc = reduce_identity(p.op);
    for (var r = c * p.chunk + lindex; r < r_end; r += 256u) {
        acc = reduce_combine(acc, x[p.x_off + o * p.len + r], p.op);
    }
    partial[lindex] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lindex < s {
            partial[lindex] = reduce_merge(partial[lindex], partial[lindex + s], p.op);
        }
        workgroupBarrier();
    }
    if lindex == 0u {
        y[p.y_off + out] = partial[0] * p.scale;
    }
}
