// pool2d_forward: max or average pooling over [N, C, H, W] with a kh×kw window, stride and zero
// padding, as PyTorch's max_pool2d / avg_pool2d (count_include_pad = True). One invocation per
// output element, visiting only the taps inside the input (a kernel wider than the input costs
// no more than the input). Max follows PyTorch's rule: the first maximum in row-major window
// order, except that a NaN always wins (the last NaN), so NaNs propagate as they do in torch.
// Saves for backward (max only): the tap's offset ky·kw + kx inside the window, exact in f32
// because the op caps the window area below 2^24.
// Grid: 256 elements per workgroup over N·C·OH·OW, folded. Needs: common/grid.wgsl, common/float.wgsl.

struct Params {
    planes: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, stride: u32,
    pad: u32, max: u32, x_off: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;             // [N·C, H, W]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;       // [N·C, OH, OW]
@group(0) @binding(3) var<storage, read_write> argmax: array<f32>;  // [N·C, OH, OW]: ky·kw + kx (max only)

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
    // The window's top-left corner in input coordinates; signed, as it may lie in the padding.
    // The op guarantees every window overlaps the input (padding ≤ kernel / 2).
    let y0 = i32(oy * p.stride) - i32(p.pad);
    let x0 = i32(ox * p.stride) - i32(p.pad);
    let ky_lo = u32(max(-y0, 0));
    let ky_hi = u32(min(i32(p.kh), i32(p.h) - y0));
    let kx_lo = u32(max(-x0, 0));
    let kx_hi = u32(min(i32(p.kw), i32(p.w) - x0));
    var best = 0.0;
    var best_at = 0u;
    var found = false;
    var sum = 0.0;  // padding adds 0 to the average
    for (var ky = ky_lo; ky < ky_hi; ky += 1u) {
        for (var kx = kx_lo; kx < kx_hi; kx += 1u) {
            let at = u32(y0 + i32(ky)) * p.w + u32(x0 + i32(kx));
            let v = x[p.x_off + plane * p.h * p.w + at];
            sum += v;
            if !found || v > best || is_nan(v) {
                best = v;
                best_at = ky * p.kw + kx;
                found = true;
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
