//! CPU twin of shaders/conv2d_backward_weight.wgsl: per group, im2col and one GEMM
//! dY_g·colᵀ straight into dw (all cores). It writes the whole sum, as one split would.

use super::conv2d_forward::{gather_group, im2col};
use super::Float;
use crate::kernels::conv2d_forward::Params;

pub(crate) fn conv2d_backward_weight<F: Float>(p: &Params, dy: &[F], x: &[F], dw: &mut [F]) {
    let (cg, mg, ohw) = (p.cg(), p.mg(), p.ohw());
    let k = cg * p.taps();
    let nb = p.n as usize;
    let ncols = nb * ohw;
    let mut dyg = vec![F::ZERO; mg * ncols];
    let mut col = vec![F::ZERO; k * ncols];
    for g in 0..p.groups as usize {
        im2col(p, x, g, &mut col);
        gather_group(p, dy, g, &mut dyg);
        // SAFETY: dyg [mg, ncols]; colᵀ [ncols, k] through strides (1, ncols); dW_g [mg, k].
        unsafe {
            F::gemm(
                mg,
                ncols,
                k,
                F::ONE,
                dyg.as_ptr(),
                ncols as isize,
                1,
                col.as_ptr(),
                1,
                ncols as isize,
                F::ZERO,
                dw[g * mg * k..].as_mut_ptr(),
                k as isize,
                1,
            );
        }
    }
}
