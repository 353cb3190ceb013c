//! CPU twin of shaders/pool2d_forward.wgsl.

use super::Float;
use crate::kernels::pool2d_forward::Params;

pub(crate) fn pool2d_forward<F: Float>(p: &Params, x: &[F], y: &mut [F], argmax: &mut [F]) {
    let (h, w, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    for plane in 0..p.planes as usize {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut best_at, mut sum) =
                    (-F::from_f64(f64::INFINITY), 0usize, F::ZERO);
                for dy in 0..p.kh as i64 {
                    for dx in 0..p.kw as i64 {
                        let iy = (oy as i64) * i64::from(p.stride) + dy - i64::from(p.pad);
                        let ix = (ox as i64) * i64::from(p.stride) + dx - i64::from(p.pad);
                        if iy < 0 || ix < 0 || iy >= h || ix >= w {
                            continue;
                        }
                        let at = (iy * w + ix) as usize;
                        let v = x[p.x_off as usize + plane * (h * w) as usize + at];
                        sum += v;
                        if v > best {
                            best = v;
                            best_at = at;
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
