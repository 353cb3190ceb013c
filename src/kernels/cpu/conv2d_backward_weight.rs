//! CPU twin of shaders/conv2d_backward_weight.wgsl: the images in a fixed number of blocks on the
//! pool, each summing dY_g·colᵀ over its images into a partial of dW by GEMM, then the partials
//! added in block order (the sum does not depend on the thread count). It writes the whole sum,
//! as one split would.

use super::conv2d_forward::{for_image_blocks, im2col};
use super::Float;
use crate::kernels::conv2d_forward::Params;

/// Partial sums of dW: enough blocks to feed a many-core pool, few enough that adding them up
/// stays cheap next to the GEMMs.
const BLOCKS: usize = 16;

pub(crate) fn conv2d_backward_weight<F: Float>(p: &Params, dy: &[F], x: &[F], dw: &mut [F]) {
    let (cg, mg, ohw) = (p.cg(), p.mg(), p.ohw());
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
        F::with_scratch(k * ohw, |col| {
            for (i, n) in images.enumerate() {
                // The first image of a block overwrites its partial, the rest add to it.
                let beta = if i == 0 { F::ZERO } else { F::ONE };
                for g in 0..p.groups as usize {
                    im2col(p, x, g, n, col);
                    let dy_g = &dy[(n * p.c_out as usize + g * mg) * ohw..][..mg * ohw];
                    // SAFETY: dY_g [mg, OH·OW]; colᵀ [OH·OW, k] through strides (1, OH·OW);
                    // dW_g [mg, k] inside this block's partial.
                    unsafe {
                        F::gemm(
                            [mg, ohw, k],
                            F::ONE,
                            (dy_g.as_ptr(), ohw as isize, 1),
                            (col.as_ptr(), 1, ohw as isize),
                            beta,
                            (part[g * mg * k..].as_mut_ptr(), k as isize, 1),
                        );
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
