// The geometry the three convolution kernels share: one Params struct (mirrored by
// `kernels::conv2d_forward::Params`) and the implicit-GEMM tiling constants. Each kernel is a
// GEMM whose operand columns are gathered from NCHW tensors on the fly (no im2col buffer): a
// workgroup of CONV_WG invocations owns CONV_TM rows and CONV_WG·CONV_TN columns of one group's
// output; each invocation keeps CONV_TM × CONV_TN sums, its columns strided by CONV_WG so that
// neighbouring invocations touch neighbouring pixels. The rows of a workgroup are the same for
// all its invocations, so their operand loads are uniform. No workgroup memory, no barriers.
// Grid: linear workgroup = ((split·groups + group)·tiles_rows + tile_row)·tiles_cols + tile_col,
// folded into x and y (common/grid.wgsl).

const CONV_WG: u32 = 64u;
const CONV_TN: u32 = 4u;
// Rows per workgroup, chosen per dispatch by the Rust side (1, 4, 8 or 16: as many as the
// GEMM's rows fill, so a depthwise layer does not compute 15 dead rows); ConvAcc holds the
// largest, and the compiler drops the rest once the override is fixed.
override CONV_TM: u32 = 8u;
const CONV_TM_MAX: u32 = 16u;

struct Params {
    n: u32, c_in: u32, h: u32, w: u32,
    c_out: u32, oh: u32, ow: u32, groups: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    pad_h: u32, pad_w: u32, dil_h: u32, dil_w: u32,
    tiles_cols: u32, tiles_rows: u32, splits: u32, per_split: u32,
    has_bias: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

// A workgroup's place in the grid.
struct ConvTile {
    col0: u32,  // first column of the tile
    row0: u32,  // first row (within the group)
    group: u32,
    split: u32,
}

fn conv_tile(linear: u32, p: Params) -> ConvTile {
    var t: ConvTile;
    t.col0 = (linear % p.tiles_cols) * CONV_WG * CONV_TN;
    t.row0 = ((linear / p.tiles_cols) % p.tiles_rows) * CONV_TM;
    let rest = linear / (p.tiles_cols * p.tiles_rows);
    t.group = rest % p.groups;
    t.split = rest / p.groups;
    return t;
}

// Is the (signed) input coordinate inside [0, size)?
fn conv_inside(v: i32, size: u32) -> bool {
    return v >= 0 && v < i32(size);
}

// An invocation's CONV_TM × CONV_TN sums: row i's four columns in r<i>. Named members, never an
// array indexed in a loop: a driver that does not unroll naga's loops (NVIDIA's) keeps such an
// array in local memory, a load and a store around every multiply-add.
struct ConvAcc {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
    r8: vec4<f32>, r9: vec4<f32>, r10: vec4<f32>, r11: vec4<f32>,
    r12: vec4<f32>, r13: vec4<f32>, r14: vec4<f32>, r15: vec4<f32>,
}

// r_i += row_operand(base + i·stride) · cols for the rows i < min(CONV_TM, live); `live` is
// uniform over the workgroup, so the skipped rows cost no divergence. The kernel defines
//   fn row_operand(at: u32) -> f32
// reading its row operand (the weights, or dY for the weight gradient).
fn conv_accumulate(acc: ptr<function, ConvAcc>, base: u32, stride: u32, live: u32, cols: vec4<f32>) {
    (*acc).r0 = fma(vec4<f32>(row_operand(base)), cols, (*acc).r0);
    if CONV_TM < 4u || live < 2u {
        return;
    }
    (*acc).r1 = fma(vec4<f32>(row_operand(base + stride)), cols, (*acc).r1);
    if live > 2u {
        (*acc).r2 = fma(vec4<f32>(row_operand(base + 2u * stride)), cols, (*acc).r2);
    }
    if live > 3u {
        (*acc).r3 = fma(vec4<f32>(row_operand(base + 3u * stride)), cols, (*acc).r3);
    }
    if CONV_TM < 8u || live < 5u {
        return;
    }
    (*acc).r4 = fma(vec4<f32>(row_operand(base + 4u * stride)), cols, (*acc).r4);
    if live > 5u {
        (*acc).r5 = fma(vec4<f32>(row_operand(base + 5u * stride)), cols, (*acc).r5);
    }
    if live > 6u {
        (*acc).r6 = fma(vec4<f32>(row_operand(base + 6u * stride)), cols, (*acc).r6);
    }
    if live > 7u {
        (*acc).r7 = fma(vec4<f32>(row_operand(base + 7u * stride)), cols, (*acc).r7);
    }
    if CONV_TM < 16u || live < 9u {
        return;
    }
    (*acc).r8 = fma(vec4<f32>(row_operand(base + 8u * stride)), cols, (*acc).r8);
    if live > 9u {
        (*acc).r9 = fma(vec4<f32>(row_operand(base + 9u * stride)), cols, (*acc).r9);
    }
    if live > 10u {
        (*acc).r10 = fma(vec4<f32>(row_operand(base + 10u * stride)), cols, (*acc).r10);
    }
    if live > 11u {
        (*acc).r11 = fma(vec4<f32>(row_operand(base + 11u * stride)), cols, (*acc).r11);
    }
    if live > 12u {
        (*acc).r12 = fma(vec4<f32>(row_operand(base + 12u * stride)), cols, (*acc).r12);
    }
    if live > 13u {
        (*acc).r13 = fma(vec4<f32>(row_operand(base + 13u * stride)), cols, (*acc).r13);
    }
    if live > 14u {
        (*acc).r14 = fma(vec4<f32>(row_operand(base + 14u * stride)), cols, (*acc).r14);
    }
    if live > 15u {
        (*acc).r15 = fma(vec4<f32>(row_operand(base + 15u * stride)), cols, (*acc).r15);
    }
}

// Row i of the sums, by selects (no indexed memory): for the epilogues' loops.
fn conv_row(acc: ConvAcc, i: u32) -> vec4<f32> {
    var v = select(acc.r0, acc.r1, i == 1u);
    v = select(v, acc.r2, i == 2u);
    v = select(v, acc.r3, i == 3u);
    v = select(v, acc.r4, i == 4u);
    v = select(v, acc.r5, i == 5u);
    v = select(v, acc.r6, i == 6u);
    v = select(v, acc.r7, i == 7u);
    v = select(v, acc.r8, i == 8u);
    v = select(v, acc.r9, i == 9u);
    v = select(v, acc.r10, i == 10u);
    v = select(v, acc.r11, i == 11u);
    v = select(v, acc.r12, i == 12u);
    v = select(v, acc.r13, i == 13u);
    v = select(v, acc.r14, i == 14u);
    return select(v, acc.r15, i == 15u);
}
