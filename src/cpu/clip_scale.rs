//! CPU twin of shaders/clip_scale.wgsl.

use super::Float;
use crate::kernels::clip_scale::Params;

pub(crate) fn clip_scale<F: Float>(p: &Params, partial: &[F], out: &mut [F]) {
    let mut s = 0.0f64;
    for &v in &partial[..p.count as usize] {
        s += v.to_f64();
    }
    let norm = s.sqrt();
    out[0] = F::from_f64(norm);
    out[1] = F::from_f64((f64::from(p.max_norm) / (norm + 1e-6)).min(1.0));
}
