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
// GEMM's rows fill, so a depthwise layer does not compute 15 dead rows); the invocation's sums
// are common/row_sums.wgsl's RowSums, whose rows past CONV_TM the compiler drops once the
// override is fixed.
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

