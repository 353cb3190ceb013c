// conv2d_forward: y = conv2d(x, w) + bias over NCHW, any kernel size, stride, zero padding,
// dilation and groups, as PyTorch's F.conv2d. Per group g it is the implicit GEMM
//   Y_g [C_out/G, N·OH·OW] = W_g [C_out/G, C_in/G·kh·kw] · im2col(X_g),
// the im2col column of output pixel (n, oy, ox) read straight from x, padding as zeros.
// Rows: output channels of the group. Columns: output pixels. K: (c, ky, kx) of the group.
// Grid and tiling: common/conv2d.wgsl. Needs: common/conv2d.wgsl, common/grid.wgsl.

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

    // Out-of-range columns and rows compute on a clamped (valid) one and are never stored.
    var x_base: array<u32, CONV_TN>;
    var iy0: array<i32, CONV_TN>;
    var ix0: array<i32, CONV_TN>;
    for (var j = 0u; j < CONV_TN; j += 1u) {
        let col = min(t.col0 + lx + j * CONV_WG, cols - 1u);
        let n = col / ohw;
        let oy = (col % ohw) / p.ow;
        let ox = col % p.ow;
        x_base[j] = (n * p.c_in + t.group * cg) * hw;
        iy0[j] = i32(oy * p.stride_h) - i32(p.pad_h);
        ix0[j] = i32(ox * p.stride_w) - i32(p.pad_w);
    }
    var w_row: array<u32, CONV_TM_MAX>;
    for (var i = 0u; i < CONV_TM; i += 1u) {
        w_row[i] = (t.group * mg + min(t.row0 + i, mg - 1u)) * cg * taps;
    }

    var acc: array<vec4<f32>, CONV_TM_MAX>;
    var k = 0u;
    for (var c = 0u; c < cg; c += 1u) {
        for (var ky = 0u; ky < p.kh; ky += 1u) {
            for (var kx = 0u; kx < p.kw; kx += 1u) {
                var xv = array<f32, CONV_TN>(0.0, 0.0, 0.0, 0.0);
                for (var j = 0u; j < CONV_TN; j += 1u) {
                    let iy = iy0[j] + i32(ky * p.dil_h);
                    let ix = ix0[j] + i32(kx * p.dil_w);
                    if conv_inside(iy, p.h) && conv_inside(ix, p.w) {
                        xv[j] = x[x_base[j] + c * hw + u32(iy) * p.w + u32(ix)];
                    }
                }
                let xk = vec4<f32>(xv[0], xv[1], xv[2], xv[3]);
                for (var i = 0u; i < CONV_TM; i += 1u) {
                    acc[i] = fma(vec4<f32>(w[w_row[i] + k]), xk, acc[i]);
                }
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
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let col = t.col0 + lx + j * CONV_WG;
            if col < cols {
                let n = col / ohw;
                y[(n * p.c_out + co) * ohw + col % ohw] = acc[i][j] + b;
            }
        }
    }
}
