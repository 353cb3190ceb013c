//! CPU twin of shaders/conv2d_backward_data.wgsl: one task per image on the pool; per group one
//! GEMM W_gᵀ·dY_g (the image's dY rows, read in place) into columns, then `col2im` sums each
//! column back onto the input pixel it came from.

use rayon::prelude::*;

use super::conv2d_forward::valid_range;
use super::Float;
use crate::kernels::conv2d_forward::Params;

pub(crate) fn conv2d_backward_data<F: Float>(p: &Params, dy: &[F], w: &[F], dx: &mut [F]) {
    let (cg, mg, hw, ohw) = (p.cg(), p.mg(), p.hw(), p.ohw());
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
                    col2im(p, col, &mut dx_n[g * cg * hw..][..cg * hw]);
                }
            });
        });
}

/// Adds each column of `col` ([C/G·kh·kw, OH·OW]) back onto the input pixel it was gathered
/// from, in `dx_g` (the group's [C/G, H, W]): im2col's runs in reverse, each tap's valid output
/// columns a contiguous run (stride 1) or a strided scatter.
fn col2im<F: Float>(p: &Params, col: &[F], dx_g: &mut [F]) {
    let (oh, ow) = (p.oh as usize, p.ow as usize);
    let (cg, hw, ohw) = (p.cg(), p.hw(), p.ohw());
    let (kh, kw, w) = (p.kh as usize, p.kw as usize, p.w as usize);
    let (sh, sw) = (i64::from(p.stride_h), i64::from(p.stride_w));
    for c in 0..cg {
        let plane = &mut dx_g[c * hw..][..hw];
        for ky in 0..kh {
            let off_y = (ky as i64) * i64::from(p.dil_h) - i64::from(p.pad_h);
            let (y_lo, y_hi) = valid_range(i64::from(p.h), off_y, sh, oh);
            for kx in 0..kw {
                let off_x = (kx as i64) * i64::from(p.dil_w) - i64::from(p.pad_w);
                let (x_lo, x_hi) = valid_range(w as i64, off_x, sw, ow);
                let row = &col[((c * kh + ky) * kw + kx) * ohw..][..ohw];
                for oy in y_lo..y_hi {
                    let dst = &mut plane[(oy as i64 * sh + off_y) as usize * w..][..w];
                    let src = &row[oy * ow + x_lo..oy * ow + x_hi];
                    let first = x_lo as i64 * sw + off_x;
                    if sw == 1 {
                        for (d, &v) in dst[first as usize..][..src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (k, &v) in src.iter().enumerate() {
                            dst[(first + k as i64 * sw) as usize] += v;
                        }
                    }
                }
            }
        }
    }
}
