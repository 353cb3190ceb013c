// conv2d_backward_weight: dw for conv2d_forward, per group g the implicit GEMM
//   dW_g [C_out/G, C_in/G·kh·kw] = dY_g [C_out/G, N·OH·OW] · im2col(X_g)ᵀ,
// whose K (N·OH·OW output pixels) is long and whose output is small (27 columns for a 3-channel
// 3×3 layer), so the lanes split K rather than the columns: a workgroup owns CONV_TM rows ×
// CONV_TN columns; lane l sums every CONV_WG-th pixel of its split into CONV_TM × CONV_TN
// partial sums (neighbouring lanes read neighbouring pixels), and a fixed-order tree in
// workgroup memory adds the lanes. Split-K across workgroups: split s covers the pixels
// [s·per_split, (s+1)·per_split) and writes its own partial part[s, o, (c, ky, kx)]; the caller
// sums the partials with the deterministic reduce kernel. No atomics: the same bits every run.
// Rows: output channels of the group. Columns: taps (c, ky, kx). K: output pixels.
// Grid: as common/conv2d.wgsl, with tiles_cols counting CONV_TN-column tiles.
// Needs: common/conv2d.wgsl, common/grid.wgsl,
// common/row_sums.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // [N, C_out, OH, OW]
@group(0) @binding(2) var<storage, read> x: array<f32>;           // [N, C_in, H, W]
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // [splits, C_out, C_in/G·kh·kw]

const HALF_WG: u32 = CONV_WG / 2u;
var<workgroup> lanes: array<vec4<f32>, CONV_TM_MAX * HALF_WG>;  // [CONV_TM][HALF_WG]

@compute @workgroup_size(CONV_WG)
fn conv2d_backward_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lx: u32,
) {
    let linear = linear_workgroup(wid, nwg);
    // Uniform: the whole workgroup returns or none of it (the tree below has barriers).
    if linear >= p.tiles_cols * p.tiles_rows * p.groups * p.splits {
        return;
    }
    let col0 = (linear % p.tiles_cols) * CONV_TN;
    let t = conv_tile(linear, p);
    let cg = p.c_in / p.groups;
    let mg = p.c_out / p.groups;
    let taps = p.kh * p.kw;
    let hw = p.h * p.w;
    let ohw = p.oh * p.ow;
    let cols = cg * taps;

    let k0 = tap_column(min(col0, cols - 1u), t.group * cg);
    let k1 = tap_column(min(col0 + 1u, cols - 1u), t.group * cg);
    let k2 = tap_column(min(col0 + 2u, cols - 1u), t.group * cg);
    let k3 = tap_column(min(col0 + 3u, cols - 1u), t.group * cg);
    let dy0 = (t.group * mg + t.row0) * ohw;
    let live = mg - t.row0;

    var acc: RowSums;
    let q0 = t.split * p.per_split;
    let q1 = min(q0 + p.per_split, p.n * ohw);
    for (var q = q0 + lx; q < q1; q += CONV_WG) {
        let n = q / ohw;
        let pix = q % ohw;
        let oy = i32((pix / p.ow) * p.stride_h);
        let ox = i32((pix % p.ow) * p.stride_w);
        let x_n = n * p.c_in * hw;
        let xk = vec4<f32>(x_at(k0, x_n, oy, ox), x_at(k1, x_n, oy, ox), x_at(k2, x_n, oy, ox), x_at(k3, x_n, oy, ox));
        row_sums_fma(&acc, CONV_TM, live, n * p.c_out * ohw + pix + dy0, ohw, xk);
    }

    // The upper half of the lanes hands its sums to the lower half, then a tree: the scratch
    // holds half the lanes (8 KiB), inside even downlevel devices' 16,352 bytes.
    if lx >= HALF_WG {
        for (var i = 0u; i < CONV_TM; i += 1u) {
            lanes[i * HALF_WG + lx - HALF_WG] = row_sums_get(acc, i);
        }
    }
    workgroupBarrier();
    if lx < HALF_WG {
        for (var i = 0u; i < CONV_TM; i += 1u) {
            lanes[i * HALF_WG + lx] += row_sums_get(acc, i);
        }
    }
    workgroupBarrier();
    for (var s = HALF_WG / 2u; s > 0u; s >>= 1u) {
        if lx < s {
            for (var i = 0u; i < CONV_TM; i += 1u) {
                lanes[i * HALF_WG + lx] += lanes[i * HALF_WG + lx + s];
            }
        }
        workgroupBarrier();
    }
    if lx < CONV_TM {
        let row = t.row0 + lx;
        if row < mg {
            let sum = lanes[lx * HALF_WG];
            let base = (t.split * p.c_out + t.group * mg + row) * cols;
            for (var j = 0u; j < CONV_TN; j += 1u) {
                if col0 + j < cols {
                    part[base + col0 + j] = sum[j];
                }
            }
        }
    }
}

// Column `col` = (c, tap) of the group's weight gradient: its input channel plane (from channel
// `channel0`) and the tap's offset ky·dil − pad, kx·dil − pad.
struct TapColumn {
    chan: u32,
    dy: i32,
    dx: i32,
}

fn tap_column(col: u32, channel0: u32) -> TapColumn {
    let taps = p.kh * p.kw;
    let tap = col % taps;
    return TapColumn(
        (channel0 + col / taps) * p.h * p.w,
        i32((tap / p.kw) * p.dil_h) - i32(p.pad_h),
        i32((tap % p.kw) * p.dil_w) - i32(p.pad_w),
    );
}

// The input element column `k` multiplies at output pixel (oy·stride, ox·stride) of image x_n,
// 0 in the padding.
fn x_at(k: TapColumn, x_n: u32, oy: i32, ox: i32) -> f32 {
    let iy = oy + k.dy;
    let ix = ox + k.dx;
    if conv_inside(iy, p.h) && conv_inside(ix, p.w) {
        return x[x_n + k.chan + u32(iy) * p.w + u32(ix)];
    }
    return 0.0;
}

// row_sums_fma's row operand: dY.
fn row_operand(at: u32) -> f32 {
    return dy[at];
}
