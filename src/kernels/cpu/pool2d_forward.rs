//! CPU twin of shaders/pool2d_forward.wgsl, planes in parallel on the pool.

use rayon::prelude::*;

use super::Float;
use crate::kernels::pool2d_forward::Params;

pub(crate) fn pool2d_forward<F: Float>(p: &Params, x: &[F], y: &mut [F], argmax: &mut [F]) {
    let (h, w, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    let (kh, kw) = (i64::from(p.kh), i64::from(p.kw));
    let per_plane = oh * ow;
    if per_plane == 0 {
        return;
    }
    let planes = p.planes as usize;
    let plane_out = |plane: usize, y: &mut [F], argmax: &mut [F]| {
        let x = &x[p.x_off as usize + plane * (h * w) as usize..];
        for oy in 0..oh {
            for ox in 0..ow {
                // The window's corner, possibly in the padding; only in-bounds taps are visited.
                let y0 = oy as i64 * i64::from(p.stride) - i64::from(p.pad);
                let x0 = ox as i64 * i64::from(p.stride) - i64::from(p.pad);
                let (mut best, mut best_at, mut found, mut sum) = (F::ZERO, 0i64, false, F::ZERO);
                for ky in (-y0).max(0)..kh.min(h - y0) {
                    for kx in (-x0).max(0)..kw.min(w - x0) {
                        let v = x[((y0 + ky) * w + x0 + kx) as usize];
                        sum += v;
                        // PyTorch's rule: the first maximum, but a NaN always wins.
                        if !found || v > best || v.to_f64().is_nan() {
                            (best, best_at, found) = (v, ky * kw + kx, true);
                        }
                    }
                }
                let o = oy * ow + ox;
                if p.max == 1 {
                    y[o] = best;
                    argmax[o] = F::from_f64(best_at as f64);
                } else {
                    y[o] = sum / F::from_f64(f64::from(p.kh * p.kw));
                }
            }
        }
    };
    let taps = (p.kh * p.kw) as usize;
    if !super::worth_parallel(planes * per_plane * taps) {
        let y = y[..planes * per_plane].chunks_mut(per_plane);
        if p.max == 1 {
            y.zip(argmax[..planes * per_plane].chunks_mut(per_plane))
                .enumerate()
                .for_each(|(plane, (y, a))| plane_out(plane, y, a));
        } else {
            y.enumerate()
                .for_each(|(plane, y)| plane_out(plane, y, &mut []));
        }
        return;
    }
    let min = super::rows_per_task(per_plane);
    let y = y[..planes * per_plane]
        .par_chunks_mut(per_plane)
        .with_min_len(min);
    if p.max == 1 {
        y.zip(argmax[..planes * per_plane].par_chunks_mut(per_plane))
            .enumerate()
            .for_each(|(plane, (y, a))| plane_out(plane, y, a));
    } else {
        // Average pooling keeps no indices (`argmax` may be a placeholder).
        y.enumerate()
            .for_each(|(plane, y)| plane_out(plane, y, &mut []));
    }
}
