// conv2d_backward_data: dx for conv2d_forward, the transposed convolution as an implicit GEMM
// per group g:
//   dX_g [C_in/G, N·H·W] = W_gᵀ [C_in/G, C_out/G·kh·kw] · gather(dY_g),
// where input pixel (n, iy, ix) gathers dy[n, o, oy, ox] for every tap with
// oy·stride + ky·dil = iy + pad (and the same in x); taps that land between strides or outside
// the output contribute zero. Each dx element is written once: deterministic, no atomics.
// Rows: input channels of the group. Columns: input pixels. K: (o, ky, kx) of the group.
// Grid and tiling: common/conv2d.wgsl. Needs: common/conv2d.wgsl, common/grid.wgsl.

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

    var dy_base: array<u32, CONV_TN>;
    var py: array<i32, CONV_TN>;  // iy + pad
    var px: array<i32, CONV_TN>;  // ix + pad
    for (var j = 0u; j < CONV_TN; j += 1u) {
        let col = min(t.col0 + lx + j * CONV_WG, cols - 1u);
        let n = col / hw;
        dy_base[j] = (n * p.c_out + t.group * mg) * ohw;
        py[j] = i32((col % hw) / p.w + p.pad_h);
        px[j] = i32(col % p.w + p.pad_w);
    }
    var w_row: array<u32, CONV_TM_MAX>;
    for (var i = 0u; i < CONV_TM; i += 1u) {
        w_row[i] = min(t.row0 + i, cg - 1u) * taps;
    }

    let unit_stride = p.stride_h == 1u && p.stride_w == 1u;
    var acc: array<vec4<f32>, CONV_TM_MAX>;
    for (var o = 0u; o < mg; o += 1u) {
        let w_o = (t.group * mg + o) * cg * taps;
        for (var ky = 0u; ky < p.kh; ky += 1u) {
            for (var kx = 0u; kx < p.kw; kx += 1u) {
                var dv = array<f32, CONV_TN>(0.0, 0.0, 0.0, 0.0);
                for (var j = 0u; j < CONV_TN; j += 1u) {
                    let ty = py[j] - i32(ky * p.dil_h);
                    let tx = px[j] - i32(kx * p.dil_w);
                    if ty >= 0 && tx >= 0 {
                        // Stride 1 (the common case) needs no division: a uniform branch.
                        var oy = u32(ty);
                        var ox = u32(tx);
                        var on_grid = true;
                        if !unit_stride {
                            oy = oy / p.stride_h;
                            ox = ox / p.stride_w;
                            on_grid = oy * p.stride_h == u32(ty) && ox * p.stride_w == u32(tx);
                        }
                        if on_grid && oy < p.oh && ox < p.ow {
                            dv[j] = dy[dy_base[j] + o * ohw + oy * p.ow + ox];
                        }
                    }
                }
                let dk = vec4<f32>(dv[0], dv[1], dv[2], dv[3]);
                let tap = w_o + ky * p.kw + kx;
                for (var i = 0u; i < CONV_TM; i += 1u) {
                    acc[i] = fma(vec4<f32>(w[tap + w_row[i]]), dk, acc[i]);
                }
            }
        }
    }

    for (var i = 0u; i < CONV_TM; i += 1u) {
        let row = t.row0 + i;
        if row >= cg {
            break;
        }
        let c = t.group * cg + row;
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let col = t.col0 + lx + j * CONV_WG;
            if col < cols {
                let n = col / hw;
                dx[(n * p.c_in + c) * hw + col % hw] = acc[i][j];
            }
        }
    }
}
