//! CPU twin of shaders/conv2d_backward_data.wgsl: per group and chunk of images, one GEMM
//! W_gᵀ·dY_g into columns (all cores), then col2im sums each column back onto the input pixel
//! it came from.

use super::conv2d_forward::{gather_group, image_chunks};
use super::Float;
use crate::kernels::conv2d_forward::Params;

pub(crate) fn conv2d_backward_data<F: Float>(p: &Params, dy: &[F], w: &[F], dx: &mut [F]) {
    let (cg, mg, hw, ohw) = (p.cg(), p.mg(), p.hw(), p.ohw());
    let (h, wd, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    let (kh, kw) = (p.kh as usize, p.kw as usize);
    let k = cg * p.taps();
    dx.fill(F::ZERO);
    for images in image_chunks(p, k.max(mg)) {
        let ncols = images.len() * ohw;
        let mut dyg = vec![F::ZERO; mg * ncols];
        let mut col = vec![F::ZERO; k * ncols];
        for g in 0..p.groups as usize {
            gather_group(p, dy, g, images.clone(), &mut dyg);
            // SAFETY: W_gᵀ is [k, mg] read through strides (1, k); dyg [mg, ncols]; col [k, ncols].
            unsafe {
                F::gemm(
                    [k, mg, ncols],
                    F::ONE,
                    (w[g * mg * k..].as_ptr(), 1, k as isize),
                    (dyg.as_ptr(), ncols as isize, 1),
                    F::ZERO,
                    (col.as_mut_ptr(), ncols as isize, 1),
                );
            }
            for c in 0..cg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let row = &col[((c * kh + ky) * kw + kx) * ncols..][..ncols];
                        for (j, n) in images.clone().enumerate() {
                            let plane = &mut dx[(n * p.c_in as usize + g * cg + c) * hw..][..hw];
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
                                        plane[(iy * wd + ix) as usize] +=
                                            row[j * ohw + oy * ow + ox];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
