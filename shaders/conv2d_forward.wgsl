// conv2d_forward: y = conv2d(x, w) + bias over NCHW, any kernel size, stride, zero padding,
// dilation and groups, as PyTorch's F.conv2d. Per group g it is the implicit GEMM
//   Y_g [C_out/G, N·OH·OW] = W_g [C_out/G, C_in/G·kh·kw] · im2col(X_g),
// the im2col column of output pixel (n, oy, ox) read straight from x, padding as zeros.
// Rows: output channels of the group. Columns: output pixels. K: (c, ky, kx) of the group.
// Grid and tiling: common/conv2d.wgsl. Needs: common/conv2d.wgsl, common/grid.wgsl,
// common/row_sums.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [N, C_in, H, W]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [C_out, C_in/G, kh, kw]
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [C_out] (read if has_bias)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [N, C_out, OH, OW]

@compute @workgroup_size(CONV_WG)
fn conv2d_forward(
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
    let cols = p.n * ohw;

    // Out-of-range columns compute on a clamped (valid) one and are never stored; rows past the
    // group's are skipped (row_sums_fma's `live`).
    let c0 = out_pixel(min(t.col0 + lx, cols - 1u));
    let c1 = out_pixel(min(t.col0 + lx + CONV_WG, cols - 1u));
    let c2 = out_pixel(min(t.col0 + lx + 2u * CONV_WG, cols - 1u));
    let c3 = out_pixel(min(t.col0 + lx + 3u * CONV_WG, cols - 1u));
    let w0 = (t.group * mg + t.row0) * cg * taps;
    let live = mg - t.row0;

    var acc: RowSums;
    var k = 0u;
    for (var c = 0u; c < cg; c += 1u) {
        for (var ky = 0u; ky < p.kh; ky += 1u) {
            for (var kx = 0u; kx < p.kw; kx += 1u) {
                let dy = i32(ky * p.dil_h);
                let dx = i32(kx * p.dil_w);
                let at = (t.group * cg + c) * hw;
                let xk = vec4<f32>(x_tap(c0, at, dy, dx), x_tap(c1, at, dy, dx), x_tap(c2, at, dy, dx), x_tap(c3, at, dy, dx));
                row_sums_fma(&acc, CONV_TM, live, w0 + k, cg * taps, xk);
                k += 1u;
            }
        }
    }

    for (var i = 0u; i < CONV_TM; i += 1u) {
        let row = t.row0 + i;
        if row >= mg {
            break;
        }
        let co = t.group * mg + row;
        var b = 0.0;
        if p.has_bias == 1u {
            b = bias[co];
        }
        let sums = row_sums_get(acc, i);
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let col = t.col0 + lx + j * CONV_WG;
            if col < cols {
                let n = col / ohw;
                y[(n * p.c_out + co) * ohw + col % ohw] = sums[j] + b;
            }
        }
    }
}

// Output pixel `col` (n, oy, ox) of the im2col view: where its image starts in x and the input
// coordinates of its kernel's top-left tap.
struct Pixel {
    base: u32,
    iy: i32,
    ix: i32,
}

fn out_pixel(col: u32) -> Pixel {
    let ohw = p.oh * p.ow;
    let n = col / ohw;
    let oy = (col % ohw) / p.ow;
    let ox = col % p.ow;
    return Pixel(n * p.c_in * p.h * p.w, i32(oy * p.stride_h) - i32(p.pad_h), i32(ox * p.stride_w) - i32(p.pad_w));
}

// The input element under tap (dy, dx) of pixel `px` in the channel plane at `at` of its image,
// 0 in the padding.
fn x_tap(px: Pixel, at: u32, dy: i32, dx: i32) -> f32 {
    let iy = px.iy + dy;
    let ix = px.ix + dx;
    if conv_inside(iy, p.h) && conv_inside(ix, p.w) {
        return x[px.base + at + u32(iy) * p.w + u32(ix)];
    }
    return 0.0;
}

// row_sums_fma's row operand: the weights.
fn row_operand(at: u32) -> f32 {
    return w[at];
}
