// conv2d_backward_data: dx for conv2d_forward, the transposed convolution as an implicit GEMM
// per group g:
//   dX_g [C_in/G, N·H·W] = W_gᵀ [C_in/G, C_out/G·kh·kw] · gather(dY_g),
// where input pixel (n, iy, ix) gathers dy[n, o, oy, ox] for every tap with
// oy·stride + ky·dil = iy + pad (and the same in x); taps that land between strides or outside
// the output contribute zero. Each dx element is written once: deterministic, no atomics.
// Rows: input channels of the group. Columns: input pixels. K: (o, ky, kx) of the group.
// Grid and tiling: common/conv2d.wgsl. Needs: common/conv2d.wgsl, common/grid.wgsl,
// common/row_sums.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // [N, C_out, OH, OW]
@group(0) @binding(2) var<storage, read> w: array<f32>;         // [C_out, C_in/G, kh, kw]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // [N, C_in, H, W]

@compute @workgroup_size(CONV_WG)
fn conv2d_backward_data(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lx: u32,
) {
    let linear = linear_workgroup(wid, nwg);
    if linear >= p.tiles_cols * p.tiles_rows * p.groups {
        return;
    }
    let t = conv_tile(linear, p);
    let cg = p.c_in / p.groups;
    let mg = p.c_out / p.groups;
    let taps = p.kh * p.kw;
    let hw = p.h * p.w;
    let ohw = p.oh * p.ow;
    let cols = p.n * hw;

    let c0 = in_pixel(min(t.col0 + lx, cols - 1u), t.group * mg);
    let c1 = in_pixel(min(t.col0 + lx + CONV_WG, cols - 1u), t.group * mg);
    let c2 = in_pixel(min(t.col0 + lx + 2u * CONV_WG, cols - 1u), t.group * mg);
    let c3 = in_pixel(min(t.col0 + lx + 3u * CONV_WG, cols - 1u), t.group * mg);
    let live = cg - t.row0;

    var acc: RowSums;
    for (var o = 0u; o < mg; o += 1u) {
        let w_o = (t.group * mg + o) * cg * taps + t.row0 * taps;
        let plane = o * ohw;
        for (var ky = 0u; ky < p.kh; ky += 1u) {
            for (var kx = 0u; kx < p.kw; kx += 1u) {
                let ty = i32(ky * p.dil_h);
                let tx = i32(kx * p.dil_w);
                let dk = vec4<f32>(dy_tap(c0, plane, ty, tx), dy_tap(c1, plane, ty, tx), dy_tap(c2, plane, ty, tx), dy_tap(c3, plane, ty, tx));
                row_sums_fma(&acc, CONV_TM, live, w_o + ky * p.kw + kx, taps, dk);
            }
        }
    }

    for (var i = 0u; i < CONV_TM; i += 1u) {
        let row = t.row0 + i;
        if row >= cg {
            break;
        }
        let c = t.group * cg + row;
        let sums = row_sums_get(acc, i);
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let col = t.col0 + lx + j * CONV_WG;
            if col < cols {
                let n = col / hw;
                dx[(n * p.c_in + c) * hw + col % hw] = sums[j];
            }
        }
    }
}

// Input pixel `col` (n, iy, ix): where its image's dY channels of the group (from `channel0`)
// start, and iy + pad, ix + pad.
struct InPixel {
    base: u32,
    py: i32,
    px: i32,
}

fn in_pixel(col: u32, channel0: u32) -> InPixel {
    let hw = p.h * p.w;
    let n = col / hw;
    return InPixel((n * p.c_out + channel0) * p.oh * p.ow, i32((col % hw) / p.w + p.pad_h), i32(col % p.w + p.pad_w));
}

// The dY element that reaches pixel `px` through tap offset (ty, tx) = (ky·dil, kx·dil) in the
// channel plane at `plane`, 0 where none does.
fn dy_tap(px: InPixel, plane: u32, ty: i32, tx: i32) -> f32 {
    let sy = px.py - ty;
    let sx = px.px - tx;
    if sy < 0 || sx < 0 {
        return 0.0;
    }
    // Stride 1 (the common case) needs no division: a uniform branch.
    var oy = u32(sy);
    var ox = u32(sx);
    if p.stride_h != 1u || p.stride_w != 1u {
        oy = oy / p.stride_h;
        ox = ox / p.stride_w;
        if oy * p.stride_h != u32(sy) || ox * p.stride_w != u32(sx) {
            return 0.0;
        }
    }
    if oy < p.oh && ox < p.ow {
        return dy[px.base + plane + oy * p.ow + ox];
    }
    return 0.0;
}

// row_sums_fma's row operand: the weights.
fn row_operand(at: u32) -> f32 {
    return w[at];
}
