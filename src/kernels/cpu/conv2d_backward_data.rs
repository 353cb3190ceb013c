//! CPU twin of shaders/conv2d_backward_data.wgsl: one task per image on the pool, walking blocks
//! of output rows; per group one GEMM W_gᵀ·dY_g (the block of the image's dY rows, read in place)
//! into columns, then `col2im` sums each column back onto the input pixel it came from.

use std::ops::Range;

use super::conv2d_forward::{per_image_tasks, row_blocks, valid_range};
use super::Float;
use crate::kernels::conv2d_forward::Params;

pub(crate) fn conv2d_backward_data<F: Float>(p: &Params, dy: &[F], w: &[F], dx: &mut [F]) {
    let (cg, mg, hw, ohw, ow) = (p.cg(), p.mg(), p.hw(), p.ohw(), p.ow as usize);
    let k = cg * p.taps();
    let per_image = p.c_in as usize * hw;
    let image = |n: usize, dx_n: &mut [F]| {
        dx_n.fill(F::ZERO);
        let (blocks, widest) = row_blocks(p, k);
        F::with_scratch(k * widest, |col| {
            for rows in blocks {
                let ncols = rows.len() * ow;
                for g in 0..p.groups as usize {
                    let dy_g = &dy[(n * p.c_out as usize + g * mg) * ohw + rows.start * ow..];
                    // SAFETY: W_gᵀ is [k, mg] read through strides (1, k); the block of dY_g is
                    // [mg, ncols] at row stride OH·OW; col is [k, ncols].
                    unsafe {
                        F::gemm(
                            [k, mg, ncols],
                            F::ONE,
                            (w[g * mg * k..].as_ptr(), 1, k as isize),
                            (dy_g.as_ptr(), ohw as isize, 1),
                            F::ZERO,
                            (col.as_mut_ptr(), ncols as isize, 1),
                        );
                    }
                    col2im(p, col, rows.clone(), &mut dx_n[g * cg * hw..][..cg * hw]);
                }
            }
        });
    };
    let dx = &mut dx[..p.n as usize * per_image];
    super::each_chunk(dx, per_image, per_image_tasks(p), image);
}

/// Adds each column of `col` ([C/G·kh·kw, rows·OW], output rows `rows`) back onto the input
/// pixel it was gathered from, in `dx_g` (the group's [C/G, H, W]): im2col's runs in reverse,
/// each tap's valid output columns a contiguous run (stride 1) or a strided scatter.
fn col2im<F: Float>(p: &Params, col: &[F], rows: Range<usize>, dx_g: &mut [F]) {
    let (oh, ow) = (p.oh as usize, p.ow as usize);
    let (cg, hw) = (p.cg(), p.hw());
    let ncols = rows.len() * ow;
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
                let row = &col[((c * kh + ky) * kw + kx) * ncols..][..ncols];
                for oy in y_lo.max(rows.start)..y_hi.min(rows.end) {
                    let dst = &mut plane[(oy as i64 * sh + off_y) as usize * w..][..w];
                    let at = (oy - rows.start) * ow;
                    let src = &row[at + x_lo..at + x_hi];
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
