//! CPU twin of shaders/embedding_forward.wgsl.

use super::Float;
use crate::kernels::embedding_forward::Params;

pub(crate) fn embedding_forward<F: Float>(p: &Params, weight: &[F], ids: &[F], y: &mut [F]) {
    let d = p.dim as usize;
    for n in 0..p.tokens as usize {
        let id = ids[p.ids_off as usize + n].to_f64();
        for k in 0..d {
            y[n * d + k] = if id >= 0.0 && id < f64::from(p.vocab) {
                weight[id as usize * d + k]
            } else {
                F::from_f64(f64::NAN)
            };
        }
    }
}
