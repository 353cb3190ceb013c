//! CPU twin of shaders/embedding_backward.wgsl: the same order of summation.

use super::Float;
use crate::kernels::embedding_forward::Params;

pub(crate) fn embedding_backward<F: Float>(p: &Params, dy: &[F], ids: &[F], dw: &mut [F]) {
    let d = p.dim as usize;
    dw[..p.vocab as usize * d]
        .iter_mut()
        .for_each(|v| *v = F::ZERO);
    for n in 0..p.tokens as usize {
        let id = ids[p.ids_off as usize + n].to_f64();
        if id >= 0.0 && id < f64::from(p.vocab) {
            for k in 0..d {
                dw[id as usize * d + k] += dy[n * d + k];
            }
        }
    }
}
