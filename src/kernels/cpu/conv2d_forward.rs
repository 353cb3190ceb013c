//! CPU twin of shaders/conv2d_forward.wgsl, the strong way: one task per image on the pool,
//! each walking blocks of output rows: an im2col of the block into a [C_in/G·kh·kw, rows·OW]
//! matrix (the thread's scratch, at most `COLUMN_BUDGET` elements) and, per group, one GEMM
//! written straight into the image's NCHW output rows over the bias. Also owns `im2col`,
//! `row_blocks`, `valid_range` and `for_image_blocks`, which the backward twins share.

use std::ops::Range;

use rayon::prelude::*;

use super::Float;
use crate::kernels::conv2d_forward::Params;

/// The valid output columns of one kernel tap along one axis: those `o` in `lo..hi` whose input
/// index `o·stride + off` lies in `0..size` (`off` = tap·dilation − padding).
pub(crate) fn valid_range(size: i64, off: i64, stride: i64, out: usize) -> (usize, usize) {
    let lo = if off >= 0 {
        0
    } else {
        (-off + stride - 1) / stride
    };
    let hi = if size - off <= 0 {
        0
    } else {
        (size - off + stride - 1) / stride
    };
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// Elements of one column matrix ([C/G·kh·kw, rows·OW]) before an image is cut into blocks of
/// output rows: 1 Mi elements, 4 MiB in f32, per pool thread. The unit tests use a tiny budget so
/// that the parity and finite-difference tests run the blocked path.
#[cfg(not(test))]
const COLUMN_BUDGET: usize = 1 << 20;
#[cfg(test)]
const COLUMN_BUDGET: usize = 1 << 7;

/// Blocks of output rows whose column matrix for `k` = C/G·kh·kw rows stays within the budget
/// (at least one output row each), and the largest block's column count.
pub(crate) fn row_blocks(p: &Params, k: usize) -> (impl Iterator<Item = Range<usize>>, usize) {
    let (oh, ow) = (p.oh as usize, (p.ow as usize).max(1));
    let step = (COLUMN_BUDGET / (k.max(1) * ow)).clamp(1, oh.max(1));
    (
        (0..oh).step_by(step).map(move |a| a..(a + step).min(oh)),
        step * ow,
    )
}

/// The columns of group `g` of image `n` for output rows `rows`: col[(c, ky, kx), (oy, ox)] =
/// x[n, g·C/G + c, iy, ix] with iy = oy·stride + ky·dil − pad (zero outside the input), oy in
/// `rows`. Rows are filled by runs: zeros, then a copy (stride 1) or a strided gather, then zeros.
pub(crate) fn im2col<F: Float>(
    p: &Params,
    x: &[F],
    (g, n): (usize, usize),
    rows: Range<usize>,
    col: &mut [F],
) {
    let (oh, ow) = (p.oh as usize, p.ow as usize);
    let (cg, hw) = (p.cg(), p.hw());
    let ncols = rows.len() * ow;
    let (kh, kw, w) = (p.kh as usize, p.kw as usize, p.w as usize);
    let (sh, sw) = (i64::from(p.stride_h), i64::from(p.stride_w));
    for c in 0..cg {
        let plane = &x[(n * p.c_in as usize + g * cg + c) * hw..][..hw];
        for ky in 0..kh {
            let off_y = (ky as i64) * i64::from(p.dil_h) - i64::from(p.pad_h);
            let (y_lo, y_hi) = valid_range(i64::from(p.h), off_y, sh, oh);
            for kx in 0..kw {
                let off_x = (kx as i64) * i64::from(p.dil_w) - i64::from(p.pad_w);
                let (x_lo, x_hi) = valid_range(w as i64, off_x, sw, ow);
                let row = &mut col[((c * kh + ky) * kw + kx) * ncols..][..ncols];
                for (oy, out) in rows.clone().zip(row.chunks_mut(ow.max(1))) {
                    if oy < y_lo || oy >= y_hi {
                        out.fill(F::ZERO);
                        continue;
                    }
                    let src = &plane[(oy as i64 * sh + off_y) as usize * w..][..w];
                    out[..x_lo].fill(F::ZERO);
                    out[x_hi..].fill(F::ZERO);
                    let first = x_lo as i64 * sw + off_x;
                    if sw == 1 {
                        out[x_lo..x_hi].copy_from_slice(&src[first as usize..][..x_hi - x_lo]);
                    } else {
                        for (k, o) in out[x_lo..x_hi].iter_mut().enumerate() {
                            *o = src[(first + k as i64 * sw) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// Splits the images `0..n` into at most `blocks` contiguous ranges, a fixed number whatever the
/// thread count (so sums over a block, then over blocks, do not depend on the machine), and runs
/// `f(block index, images)` for each on the pool.
pub(crate) fn for_image_blocks(
    n: usize,
    blocks: usize,
    f: impl Fn(usize, std::ops::Range<usize>) + Sync,
) {
    let per = n.div_ceil(blocks.max(1)).max(1);
    let run = |i: usize| f(i, i * per..((i + 1) * per).min(n));
    if n > 1 && super::may_fork() {
        (0..n.div_ceil(per)).into_par_iter().for_each(run);
    } else {
        (0..n.div_ceil(per)).for_each(run);
    }
}

/// `bias` is read only when `p.has_bias` is 1 (it may be empty otherwise).
pub(crate) fn conv2d_forward<F: Float>(p: &Params, x: &[F], w: &[F], bias: &[F], y: &mut [F]) {
    let (cg, mg, ohw, ow) = (p.cg(), p.mg(), p.ohw(), p.ow as usize);
    let k = cg * p.taps();
    let per_image = p.c_out as usize * ohw;
    let image = |n: usize, y_n: &mut [F]| {
        for (i, row) in y_n.chunks_mut(ohw.max(1)).enumerate() {
            row.fill(if p.has_bias == 1 { bias[i] } else { F::ZERO });
        }
        let (blocks, widest) = row_blocks(p, k);
        F::with_scratch(k * widest, |col| {
            for rows in blocks {
                let ncols = rows.len() * ow;
                for g in 0..p.groups as usize {
                    im2col(p, x, (g, n), rows.clone(), col);
                    // SAFETY: W_g is [mg, k] at row g·mg, col is [k, ncols]; C is this image's
                    // group-g rows, columns rows.start·OW.. (row stride OH·OW), inside y_n.
                    unsafe {
                        F::gemm(
                            [mg, k, ncols],
                            F::ONE,
                            (w[g * mg * k..].as_ptr(), k as isize, 1),
                            (col.as_ptr(), ncols as isize, 1),
                            F::ONE,
                            (
                                y_n[g * mg * ohw + rows.start * ow..].as_mut_ptr(),
                                ohw as isize,
                                1,
                            ),
                        );
                    }
                }
            }
        });
    };
    let y = &mut y[..p.n as usize * per_image];
    super::each_chunk(y, per_image, per_image_tasks(p), image);
}

/// Whether the images go to the pool, one per task (even small ones: each costs a GEMM): not for
/// one image (its GEMMs split over the pool themselves) nor for a caller on a pool thread.
pub(crate) fn per_image_tasks(p: &Params) -> Option<usize> {
    (p.n > 1 && super::may_fork()).then_some(1)
}
