//! CPU twin of shaders/conv2d_backward_data.wgsl: one task per image on the pool; per group one
//! GEMM W_gᵀ·dY_g (the image's dY rows, read in place) into columns, then col2im sums each
//! column back onto the input pixel it came from.

use rayon::prelude::*;

use super::Float;
use crate::kernels::conv2d_forward::Params;

pub(crate) fn conv2d_backward_data<F: Float>(p: &Params, dy: &[F], w: &[F], dx: &mut [F]) {
    let (cg, mg, hw, ohw) = (p.cg(), p.mg(), p.hw(), p.ohw());
    let (h, wd, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    let (kh, kw) = (p.kh as usize, p.kw as usize);
    let k = cg * p.taps();
    let per_image = p.c_in as usize * hw;
    dx[..p.n as usize * per_image]
        .par_chunks_mut(per_image)
        .enumerate()
        .for_each(|(n, dx_n)| {
            dx_n.fill(F::ZERO);
            F::with_scratch(k * ohw, |col| {
                for g in 0..p.groups as usize {
                    let dy_g = &dy[(n * p.c_out as usize + g * mg) * ohw..][..mg * ohw];
                    // SAFETY: W_gᵀ is [k, mg] read through strides (1, k); dY_g is [mg, OH·OW];
                    // col is [k, OH·OW].
                    unsafe {
                        F::gemm(
                            [k, mg, ohw],
                            F::ONE,
                            (w[g * mg * k..].as_ptr(), 1, k as isize),
                            (dy_g.as_ptr(), ohw as isize, 1),
                            F::ZERO,
                            (col.as_mut_ptr(), ohw as isize, 1),
                        );
                    }
                    for c in 0..cg {
                        let plane = &mut dx_n[(g * cg + c) * hw..][..hw];
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let row = &col[((c * kh + ky) * kw + kx) * ohw..][..ohw];
                                for oy in 0..oh {
                                    let iy = (oy as i64) * i64::from(p.stride_h)
                                        + (ky as i64) * i64::from(p.dil_h)
                                        - i64::from(p.pad_h);
                                    if iy < 0 || iy >= h {
                                        continue;
                                    }
                                    for ox in 0..ow {
                                        let ix = (ox as i64) * i64::from(p.stride_w)
                                            + (kx as i64) * i64::from(p.dil_w)
                                            - i64::from(p.pad_w);
                                        if ix >= 0 && ix < wd {
                                            plane[(iy * wd + ix) as usize] += row[oy * ow + ox];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            });
        });
}
