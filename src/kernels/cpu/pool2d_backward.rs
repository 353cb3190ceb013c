//! CPU twin of shaders/pool2d_backward.wgsl (scattered from the outputs: the same sums), planes in
//! parallel on the pool.

use super::Float;
use crate::kernels::pool2d_forward::Params;

pub(crate) fn pool2d_backward<F: Float>(p: &Params, dy: &[F], argmax: &[F], dx: &mut [F]) {
    let (h, w, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    let hw = (h * w) as usize;
    let area = F::from_f64(f64::from(p.kh * p.kw));
    // Each plane's gradient gathers only from its own outputs: planes in parallel.
    super::for_each_chunk(&mut dx[..p.planes as usize * hw], hw, |plane, dx| {
        dx.fill(F::ZERO);
        for oy in 0..oh {
            for ox in 0..ow {
                let o = (plane * oh + oy) * ow + ox;
                if p.max == 1 {
                    // The saved tap offset ky·kw + kx, back to an input pixel.
                    let tap = argmax[o].to_f64() as i64;
                    let iy =
                        oy as i64 * i64::from(p.stride) + tap / i64::from(p.kw) - i64::from(p.pad);
                    let ix =
                        ox as i64 * i64::from(p.stride) + tap % i64::from(p.kw) - i64::from(p.pad);
                    dx[(iy * w + ix) as usize] += dy[o];
                    continue;
                }
                for ky in 0..p.kh as i64 {
                    for kx in 0..p.kw as i64 {
                        let iy = (oy as i64) * i64::from(p.stride) + ky - i64::from(p.pad);
                        let ix = (ox as i64) * i64::from(p.stride) + kx - i64::from(p.pad);
                        if iy >= 0 && ix >= 0 && iy < h && ix < w {
                            dx[(iy * w + ix) as usize] += dy[o] / area;
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::pool2d_forward::pool2d_forward;
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_for_max_and_average() {
        for max in [1u32, 0] {
            let p = Params {
                planes: 2,
                h: 5,
                w: 4,
                oh: 3,
                ow: 2,
                kh: 3,
                kw: 3,
                stride: 2,
                pad: 1,
                max,
                x_off: 0,
                _pad: 0,
            };
            let x = randn64(3, 40);
            let up = randn64(4, 12);
            let f = |x: &[f64]| {
                let (mut y, mut am) = (vec![0.0; 12], vec![0.0; 12]);
                pool2d_forward(&p, x, &mut y, &mut am);
                y.iter().zip(&up).map(|(a, b)| a * b).sum::<f64>()
            };
            let (mut y, mut am) = (vec![0.0; 12], vec![0.0; 12]);
            pool2d_forward(&p, &x, &mut y, &mut am);
            let mut dx = vec![0.0; 40];
            pool2d_backward(&p, &up, &am, &mut dx);
            assert_gradient(&format!("pool2d max={max}"), f, &x, &dx, 1e-6);
        }
    }
}
