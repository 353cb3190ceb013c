//! CPU twin of shaders/conv2d_backward_weight.wgsl: per group and chunk of images, im2col and
//! one GEMM dY_g·colᵀ accumulated into dw (all cores). It writes the whole sum, as one split
//! would.

use super::conv2d_forward::{gather_group, im2col, image_chunks};
use super::Float;
use crate::kernels::conv2d_forward::Params;

pub(crate) fn conv2d_backward_weight<F: Float>(p: &Params, dy: &[F], x: &[F], dw: &mut [F]) {
    let (cg, mg, ohw) = (p.cg(), p.mg(), p.ohw());
    let k = cg * p.taps();
    for (chunk, images) in image_chunks(p, k.max(mg)).enumerate() {
        let ncols = images.len() * ohw;
        let mut dyg = vec![F::ZERO; mg * ncols];
        let mut col = vec![F::ZERO; k * ncols];
        // The first chunk overwrites dw, the rest add to it.
        let beta = if chunk == 0 { F::ZERO } else { F::ONE };
        for g in 0..p.groups as usize {
            im2col(p, x, g, images.clone(), &mut col);
            gather_group(p, dy, g, images.clone(), &mut dyg);
            // SAFETY: dyg [mg, ncols]; colᵀ [ncols, k] through strides (1, ncols); dW_g [mg, k].
            unsafe {
                F::gemm(
                    [mg, ncols, k],
                    F::ONE,
                    (dyg.as_ptr(), ncols as isize, 1),
                    (col.as_ptr(), 1, ncols as isize),
                    beta,
                    (dw[g * mg * k..].as_mut_ptr(), k as isize, 1),
                );
            }
        }
    }
}
