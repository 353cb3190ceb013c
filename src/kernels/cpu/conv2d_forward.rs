//! CPU twin of shaders/conv2d_forward.wgsl, the strong way: per group and per chunk of images,
//! im2col into one [C_in/G·kh·kw, images·OH·OW] matrix and one GEMM through `matrixmultiply`
//! (all cores), then a scatter to NCHW with the bias. Chunks keep the column matrix under
//! `COLUMN_BUDGET` elements whatever the batch. Also owns `im2col`, `gather_group` and
//! `image_chunks`, which the backward twins share.

use std::ops::Range;

use super::Float;
use crate::kernels::conv2d_forward::Params;

/// Elements of a column matrix (and of its GEMM output) before the batch is cut into chunks:
/// 4 Mi elements, 16 MiB in f32. The unit tests use a tiny budget so that the parity and
/// finite-difference tests run the chunked path (one image per chunk on most shapes).
#[cfg(not(test))]
const COLUMN_BUDGET: usize = 1 << 22;
#[cfg(test)]
const COLUMN_BUDGET: usize = 1 << 12;

/// Ranges of images whose column matrices ([rows, images·OH·OW]) stay within the budget; at
/// least one image each.
pub(crate) fn image_chunks(p: &Params, rows: usize) -> impl Iterator<Item = Range<usize>> {
    let per_image = rows.max(1) * p.ohw().max(1);
    let step = (COLUMN_BUDGET / per_image).max(1);
    let n = p.n as usize;
    (0..n).step_by(step).map(move |a| a..(a + step).min(n))
}

/// The columns of group `g` for `images`: col[(c, ky, kx), (n, oy, ox)] = x[n, g·C/G + c, iy, ix]
/// with iy = oy·stride + ky·dil − pad (zero outside the input).
pub(crate) fn im2col<F: Float>(p: &Params, x: &[F], g: usize, images: Range<usize>, col: &mut [F]) {
    let (h, w, oh, ow) = (p.h as i64, p.w as i64, p.oh as usize, p.ow as usize);
    let (cg, hw, ohw) = (p.cg(), p.hw(), p.ohw());
    let ncols = images.len() * ohw;
    let (kh, kw) = (p.kh as usize, p.kw as usize);
    for c in 0..cg {
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut col[((c * kh + ky) * kw + kx) * ncols..][..ncols];
                for (j, n) in images.clone().enumerate() {
                    let plane = &x[(n * p.c_in as usize + g * cg + c) * hw..][..hw];
                    for oy in 0..oh {
                        let iy = (oy as i64) * i64::from(p.stride_h)
                            + (ky as i64) * i64::from(p.dil_h)
                            - i64::from(p.pad_h);
                        for ox in 0..ow {
                            let ix = (ox as i64) * i64::from(p.stride_w)
                                + (kx as i64) * i64::from(p.dil_w)
                                - i64::from(p.pad_w);
                            row[j * ohw + oy * ow + ox] = if iy < 0 || ix < 0 || iy >= h || ix >= w
                            {
                                F::ZERO
                            } else {
                                plane[(iy * w + ix) as usize]
                            };
                        }
                    }
                }
            }
        }
    }
}

/// dY of group `g` for `images` as one [C_out/G, images·OH·OW] matrix (the GEMM operand both
/// backward twins use).
pub(crate) fn gather_group<F: Float>(
    p: &Params,
    dy: &[F],
    g: usize,
    images: Range<usize>,
    dyg: &mut [F],
) {
    let (mg, ohw) = (p.mg(), p.ohw());
    let ncols = images.len() * ohw;
    for i in 0..mg {
        for (j, n) in images.clone().enumerate() {
            dyg[i * ncols + j * ohw..][..ohw]
                .copy_from_slice(&dy[(n * p.c_out as usize + g * mg + i) * ohw..][..ohw]);
        }
    }
}

/// `bias` is read only when `p.has_bias` is 1 (it may be empty otherwise).
pub(crate) fn conv2d_forward<F: Float>(p: &Params, x: &[F], w: &[F], bias: &[F], y: &mut [F]) {
    let (cg, mg, ohw) = (p.cg(), p.mg(), p.ohw());
    let k = cg * p.taps();
    for images in image_chunks(p, k.max(mg)) {
        let ncols = images.len() * ohw;
        let mut col = vec![F::ZERO; k * ncols];
        let mut out = vec![F::ZERO; mg * ncols];
        for g in 0..p.groups as usize {
            im2col(p, x, g, images.clone(), &mut col);
            // SAFETY: W_g is [mg, k] at row g·mg, col is [k, ncols], out is [mg, ncols].
            unsafe {
                F::gemm(
                    [mg, k, ncols],
                    F::ONE,
                    (w[g * mg * k..].as_ptr(), k as isize, 1),
                    (col.as_ptr(), ncols as isize, 1),
                    F::ZERO,
                    (out.as_mut_ptr(), ncols as isize, 1),
                );
            }
            for i in 0..mg {
                let co = g * mg + i;
                let b = if p.has_bias == 1 { bias[co] } else { F::ZERO };
                for (j, n) in images.clone().enumerate() {
                    let src = &out[i * ncols + j * ohw..][..ohw];
                    let dst = &mut y[(n * p.c_out as usize + co) * ohw..][..ohw];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d = s + b;
                    }
                }
            }
        }
    }
}
