//! CPU twin of shaders/conv2d_backward_weight.wgsl: the images in a fixed number of blocks on the
//! pool, each summing dY_g·colᵀ over its images into a partial of dW by GEMM, then the partials
//! added in block order (the sum does not depend on the thread count). It writes the whole sum,
//! as one split would.

use super::conv2d_forward::{for_image_blocks, im2col, row_blocks};
use super::Float;
use crate::kernels::conv2d_forward::Params;

/// Partial sums of dW: enough blocks to feed a many-core pool, few enough that adding them up
/// stays cheap next to the GEMMs.
const BLOCKS: usize = 16;

pub(crate) fn conv2d_backward_weight<F: Float>(p: &Params, dy: &[F], x: &[F], dw: &mut [F]) {
    let (cg, mg, ohw, ow) = (p.cg(), p.mg(), p.ohw(), p.ow as usize);
    let k = cg * p.taps();
    let size = p.groups as usize * mg * k;
    let n = p.n as usize;
    let blocks = n.clamp(1, BLOCKS);
    let mut partials = vec![F::ZERO; blocks * size];
    let parts = super::Shared(partials.as_mut_ptr());
    for_image_blocks(n, blocks, |block, images| {
        // SAFETY: block `block` alone writes partial `block` (for_image_blocks gives each index
        // once, below `blocks`).
        let part = unsafe { std::slice::from_raw_parts_mut(parts.get().add(block * size), size) };
        part.fill(F::ZERO);
        let (_, widest) = row_blocks(p, k);
        F::with_scratch(k * widest, |col| {
            for n in images {
                for rows in row_blocks(p, k).0 {
                    let ncols = rows.len() * ow;
                    for g in 0..p.groups as usize {
                        im2col(p, x, (g, n), rows.clone(), col);
                        let dy_g = &dy[(n * p.c_out as usize + g * mg) * ohw + rows.start * ow..];
                        // SAFETY: the block of dY_g is [mg, ncols] at row stride OH·OW; colᵀ is
                        // [ncols, k] through strides (1, ncols); dW_g [mg, k] inside this block's
                        // partial.
                        unsafe {
                            F::gemm(
                                [mg, ncols, k],
                                F::ONE,
                                (dy_g.as_ptr(), ohw as isize, 1),
                                (col.as_ptr(), 1, ncols as isize),
                                F::ONE,
                                (part[g * mg * k..].as_mut_ptr(), k as isize, 1),
                            );
                        }
                    }
                }
            }
        });
    });
    let dw = &mut dw[..size];
    dw.copy_from_slice(&partials[..size]);
    for part in partials.chunks(size).skip(1) {
        for (d, &v) in dw.iter_mut().zip(part) {
            *d += v;
        }
    }
}
