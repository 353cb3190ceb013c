//! CPU twin of shaders/dropout.wgsl and of the hash in shaders/common/hash.wgsl: the same bits,
//! in chunks on the pool (each element's mask depends on its index alone).

use super::Float;
use crate::kernels::dropout::Params;

pub(crate) fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// Uniform in [0, 1) with 24 random bits, for element `i` of the stream `(seed_lo, seed_hi)`.
pub(crate) fn uniform_at(seed_lo: u32, seed_hi: u32, i: u32) -> f32 {
    let h = pcg_hash(i ^ pcg_hash(seed_lo ^ pcg_hash(seed_hi)));
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

pub(crate) fn dropout<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let scale = F::from_f64(f64::from(p.scale));
    let x = &x[p.x_off as usize..];
    super::for_chunks(
        &mut y[p.y_off as usize..][..p.numel as usize],
        |start, y| {
            for (k, (o, &v)) in y.iter_mut().zip(&x[start..]).enumerate() {
                let keep = uniform_at(p.seed_lo, p.seed_hi, (start + k) as u32) >= p.p;
                *o = if keep { v * scale } else { F::ZERO };
            }
        },
    );
}
