// conv2d_backward_weight: dw for conv2d_forward, per group g the implicit GEMM
//   dW_g [C_out/G, C_in/G·kh·kw] = dY_g [C_out/G, N·OH·OW] · im2col(X_g)ᵀ,
// whose K (N·OH·OW) is long and whose output is small. Split-K: split s sums the output rows
// (n, oy) in [s·rows_per_split, (s+1)·rows_per_split) and writes its own partial
// part[s, o, (c, ky, kx)]; the caller sums the partials over s with the deterministic reduce
// kernel. No atomics, the same bits on every run.
// Rows: output channels of the group. Columns: taps (c, ky, kx). K: output pixels.
// Grid and tiling: common/conv2d.wgsl. Needs: common/conv2d.wgsl, common/grid.wgsl.

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // [N, C_out, OH, OW]
@group(0) @binding(2) var<storage, read> x: array<f32>;           // [N, C_in, H, W]
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // [splits, C_out, C_in/G·kh·kw]

@compute @workgroup_size(CONV_WG)
fn conv2d_backward_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lx: u32,
) {
    let linear = linear_workgroup(wid, nwg);
    if linear >= p.tiles_cols * p.tiles_rows * p.groups * p.splits {
        return;
    }
    let t = conv_tile(linear, p);
    let cg = p.c_in / p.groups;
    let mg = p.c_out / p.groups;
    let taps = p.kh * p.kw;
    let hw = p.h * p.w;
    let ohw = p.oh * p.ow;
    let cols = cg * taps;

    var x_chan: array<u32, CONV_TN>;
    var oy_off: array<i32, CONV_TN>;  // ky·dil − pad
    var ox_off: array<i32, CONV_TN>;  // kx·dil − pad
    for (var j = 0u; j < CONV_TN; j += 1u) {
        let col = min(t.col0 + lx + j * CONV_WG, cols - 1u);
        let tap = col % taps;
        x_chan[j] = (t.group * cg + col / taps) * hw;
        oy_off[j] = i32((tap / p.kw) * p.dil_h) - i32(p.pad_h);
        ox_off[j] = i32((tap % p.kw) * p.dil_w) - i32(p.pad_w);
    }
    var dy_chan: array<u32, CONV_TM>;
    for (var i = 0u; i < CONV_TM; i += 1u) {
        dy_chan[i] = (t.group * mg + min(t.row0 + i, mg - 1u)) * ohw;
    }

    var acc: array<vec4<f32>, CONV_TM>;
    let r0 = t.split * p.rows_per_split;
    let r1 = min(r0 + p.rows_per_split, p.n * p.oh);
    for (var r = r0; r < r1; r += 1u) {
        let n = r / p.oh;
        let oy = r % p.oh;
        var x_row: array<u32, CONV_TN>;
        var row_ok: array<bool, CONV_TN>;
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let iy = i32(oy * p.stride_h) + oy_off[j];
            row_ok[j] = conv_inside(iy, p.h);
            x_row[j] = n * p.c_in * hw + x_chan[j] + u32(max(iy, 0)) * p.w;
        }
        let dy_row = n * p.c_out * ohw + oy * p.ow;
        for (var ox = 0u; ox < p.ow; ox += 1u) {
            var xv = array<f32, CONV_TN>(0.0, 0.0, 0.0, 0.0);
            for (var j = 0u; j < CONV_TN; j += 1u) {
                let ix = i32(ox * p.stride_w) + ox_off[j];
                if row_ok[j] && conv_inside(ix, p.w) {
                    xv[j] = x[x_row[j] + u32(ix)];
                }
            }
            let xk = vec4<f32>(xv[0], xv[1], xv[2], xv[3]);
            for (var i = 0u; i < CONV_TM; i += 1u) {
                acc[i] = fma(vec4<f32>(dy[dy_row + dy_chan[i] + ox]), xk, acc[i]);
            }
        }
    }

    for (var i = 0u; i < CONV_TM; i += 1u) {
        let row = t.row0 + i;
        if row >= mg {
            break;
        }
        let base = (t.split * p.c_out + t.group * mg + row) * cols;
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let col = t.col0 + lx + j * CONV_WG;
            if col < cols {
                part[base + col] = acc[i][j];
            }
        }
    }
}
