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
// Needs: common/conv2d.wgsl, common/grid.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // [N, C_out, OH, OW]
@group(0) @binding(2) var<storage, read> x: array<f32>;           // [N, C_in, H, W]
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // [splits, C_out, C_in/G·kh·kw]

const HALF_WG: u32 = CONV_WG / 2u;
var<workgroup> lanes: array<vec4<f32>, 512>;  // [CONV_TM_MAX][HALF_WG]

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

    var x_chan: array<u32, CONV_TN>;
    var oy_off: array<i32, CONV_TN>;  // ky·dil − pad
    var ox_off: array<i32, CONV_TN>;  // kx·dil − pad
    for (var j = 0u; j < CONV_TN; j += 1u) {
        let col = min(col0 + j, cols - 1u);
        let tap = col % taps;
        x_chan[j] = (t.group * cg + col / taps) * hw;
        oy_off[j] = i32((tap / p.kw) * p.dil_h) - i32(p.pad_h);
        ox_off[j] = i32((tap % p.kw) * p.dil_w) - i32(p.pad_w);
    }
    var dy_chan: array<u32, CONV_TM_MAX>;
    for (var i = 0u; i < CONV_TM; i += 1u) {
        dy_chan[i] = (t.group * mg + min(t.row0 + i, mg - 1u)) * ohw;
    }

    var acc: array<vec4<f32>, CONV_TM_MAX>;
    let q0 = t.split * p.per_split;
    let q1 = min(q0 + p.per_split, p.n * ohw);
    for (var q = q0 + lx; q < q1; q += CONV_WG) {
        let n = q / ohw;
        let pix = q % ohw;
        let oy = pix / p.ow;
        let ox = pix % p.ow;
        let x_n = n * p.c_in * hw;
        var xv = array<f32, CONV_TN>(0.0, 0.0, 0.0, 0.0);
        for (var j = 0u; j < CONV_TN; j += 1u) {
            let iy = i32(oy * p.stride_h) + oy_off[j];
            let ix = i32(ox * p.stride_w) + ox_off[j];
            if conv_inside(iy, p.h) && conv_inside(ix, p.w) {
                xv[j] = x[x_n + x_chan[j] + u32(iy) * p.w + u32(ix)];
            }
        }
        let xk = vec4<f32>(xv[0], xv[1], xv[2], xv[3]);
        let dy_n = n * p.c_out * ohw + pix;
        for (var i = 0u; i < CONV_TM; i += 1u) {
            acc[i] = fma(vec4<f32>(dy[dy_n + dy_chan[i]]), xk, acc[i]);
        }
    }

    // The upper half of the lanes hands its sums to the lower half, then a tree: the scratch
    // holds half the lanes (8 KiB), inside even downlevel devices' 16,352 bytes.
    if lx >= HALF_WG {
        for (var i = 0u; i < CONV_TM; i += 1u) {
            lanes[i * HALF_WG + lx - HALF_WG] = acc[i];
        }
    }
    workgroupBarrier();
    if lx < HALF_WG {
        for (var i = 0u; i < CONV_TM; i += 1u) {
            lanes[i * HALF_WG + lx] += acc[i];
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
