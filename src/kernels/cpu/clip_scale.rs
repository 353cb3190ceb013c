//! CPU twin of shaders/clip_scale.wgsl.

use super::Float;
use crate::kernels::clip_scale::Params;

pub(crate) fn clip_scale<F: Float>(p: &Params, partial: &[F], out: &mut [F]) {
    let (mut s, mut m) = (0.0f64, 0.0f64);
    for &v in &partial[..p.count as usize] {
        s += v.to_f64();
        m = m.max(v.to_f64());
    }
    let norm = match p.norm {
        1 => s,
        // A NaN partial makes the sum NaN; f64::max drops it.
        2 if s.is_nan() => s,
        2 => m,
        _ => s.sqrt(),
    };
    out[0] = F::from_f64(norm);
    let ratio = f64::from(p.max_norm) / (norm + 1e-6);
    // A NaN norm stays NaN, as torch's clamp keeps it (f64::min would drop it).
    out[1] = F::from_f64(if ratio.is_nan() {
        ratio
    } else {
        ratio.min(1.0)
    });
}
