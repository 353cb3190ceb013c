// pool2d_forward: max or average pooling over [N, C, H, W] with a kh×kw window, stride and zero
// padding, as PyTorch's max_pool2d / avg_pool2d (count_include_pad = True). One invocation per
// output element. Max also saves the flat index h·W + w of the chosen input (the first maximum
// in row-major window order), which the backward routes the gradient to.
// Grid: 256 elements per workgroup over N·C·OH·OW, folded. Needs: common/grid.wgsl.

struct Params {
    planes: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, stride: u32,
    pad: u32, max: u32, x_off: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;             // [N·C, H, W]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;       // [N·C, OH, OW]
@group(0) @binding(3) var<storage, read_write> argmax: array<f32>;  // [N·C, OH, OW] (max only; exact below 2^24)

@compute @workgroup_size(256)
fn pool2d_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lindex;
    if i >= p.planes * p.oh * p.ow {
        return;
    }
    let plane = i / (p.oh * p.ow);
    let oy = (i / p.ow) % p.oh;
    let ox = i % p.ow;
    var best = bitcast<f32>(0xff800000u);  // -inf
    var best_at = 0u;
    var sum = 0.0;
    for (var dy = 0u; dy < p.kh; dy += 1u) {
        for (var dx = 0u; dx < p.kw; dx += 1u) {
            // Signed arithmetic: the window may start in the padding.
            let iy = i32(oy * p.stride + dy) - i32(p.pad);
            let ix = i32(ox * p.stride + dx) - i32(p.pad);
            if iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w) {
                continue;  // padding: -inf for max, 0 for the average
            }
            let at = u32(iy) * p.w + u32(ix);
            let v = x[p.x_off + plane * p.h * p.w + at];
            sum += v;
            if v > best {
                best = v;
                best_at = at;
            }
        }
    }
    if p.max == 1u {
        y[i] = best;
        argmax[i] = f32(best_at);
    } else {
        y[i] = sum / f32(p.kh * p.kw);
    }
}
