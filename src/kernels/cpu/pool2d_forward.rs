//! CPU twin of shaders/pool2d_forward.wgsl.

use super::Float;
use crate::kernels::pool2d_forward::Params;

pub(crate) fn pool2d_forward<F: Float>(p: &Params, x: &[F], y: &mut [F], argmax: &mut [F]) {
    let (h, w, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    let (kh, kw) = (i64::from(p.kh), i64::from(p.kw));
    for plane in 0..p.planes as usize {
        for oy in 0..oh {
            for ox in 0..ow {
                // The window's corner, possibly in the padding; only in-bounds taps are visited.
                let y0 = oy as i64 * i64::from(p.stride) - i64::from(p.pad);
                let x0 = ox as i64 * i64::from(p.stride) - i64::from(p.pad);
                let (mut best, mut best_at, mut found, mut sum) = (F::ZERO, 0i64, false, F::ZERO);
                for ky in (-y0).max(0)..kh.min(h - y0) {
                    for kx in (-x0).max(0)..kw.min(w - x0) {
                        let at = ((y0 + ky) * w + x0 + kx) as usize;
                        let v = x[p.x_off as usize + plane * (h * w) as usize + at];
                        sum += v;
                        // PyTorch's rule: the first maximum, but a NaN always wins.
                        if !found || v > best || v.to_f64().is_nan() {
                            (best, best_at, found) = (v, ky * kw + kx, true);
                        }
                    }
                }
                let o = (plane * oh + oy) * ow + ox;
                if p.max == 1 {
                    y[o] = best;
                    argmax[o] = F::from_f64(best_at as f64);
                } else {
                    y[o] = sum / F::from_f64(f64::from(p.kh * p.kw));
                }
            }
        }
    }
}
