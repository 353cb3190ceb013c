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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::embedding_forward::embedding_forward;
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_with_repeated_ids() {
        let (vocab, dim) = (5usize, 3usize);
        let ids = [2.0, 0.0, 2.0, 4.0];
        let p = Params {
            tokens: 4,
            dim: dim as u32,
            vocab: vocab as u32,
            ids_off: 0,
        };
        let (w, up) = (randn64(1, vocab * dim), randn64(2, ids.len() * dim));
        let f = |w: &[f64]| {
            let mut y = vec![0.0; ids.len() * dim];
            embedding_forward(&p, w, &ids, &mut y);
            y.iter().zip(&up).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut dw = vec![0.0; vocab * dim];
        embedding_backward(&p, &up, &ids, &mut dw);
        assert_gradient("embedding", f, &w, &dw, 1e-6);
    }
}
