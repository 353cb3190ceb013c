// pool2d_backward: dx for pool2d_forward, deterministic without atomics: an invocation owns one
// input element and sums, in a fixed order, the gradients of every output window that covers it
// (for max, only the windows whose saved tap offset ky·kw + kx is this element).
// Grid: 256 elements per workgroup over N·C·H·W, folded. Needs: common/grid.wgsl.

struct Params {
    planes: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, stride: u32,
    pad: u32, max: u32, x_off: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;       // [N·C, OH, OW]
@group(0) @binding(2) var<storage, read> argmax: array<f32>;   // [N·C, OH, OW]: ky·kw + kx (max only)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>; // [N·C, H, W]

@compute @workgroup_size(256)
fn pool2d_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lindex;
    if i >= p.planes * p.h * p.w {
        return;
    }
    let plane = i / (p.h * p.w);
    let at = i % (p.h * p.w);
    let iy = i32(at / p.w) + i32(p.pad);
    let ix = i32(at % p.w) + i32(p.pad);
    // Windows oy with oy·stride ≤ iy < oy·stride + kh (in padded coordinates).
    let oy_lo = max(iy - i32(p.kh) + i32(p.stride), 0) / i32(p.stride);
    let ox_lo = max(ix - i32(p.kw) + i32(p.stride), 0) / i32(p.stride);
    var g = 0.0;
    for (var oy = oy_lo; oy <= iy / i32(p.stride) && oy < i32(p.oh); oy += 1) {
        for (var ox = ox_lo; ox <= ix / i32(p.stride) && ox < i32(p.ow); ox += 1) {
            // This element's tap inside window (oy, ox).
            let ky = iy - oy * i32(p.stride);
            let kx = ix - ox * i32(p.stride);
            if ky >= i32(p.kh) || kx >= i32(p.kw) {
                continue;
            }
            let o = (plane * p.oh + u32(oy)) * p.ow + u32(ox);
            if p.max == 1u {
                if u32(argmax[o]) == u32(ky) * p.kw + u32(kx) {
                    g += dy[o];
                }
            } else {
                g += dy[o] / f32(p.kh * p.kw);
            }
        }
    }
    dx[i] = g;
}
