//! CPU twin of shaders/convert.wgsl: f32 ↔ f16 storage, the words held in f32 slots by their
//! bits (src/tensor/dtype.rs's conversions, the shader's bit for bit).

use crate::kernels::convert::{Params, TO_F16};
use crate::tensor::dtype::{f16_to_f32, f32_to_f16};

pub(crate) fn convert(p: &Params, x: &[f32], y: &mut [f32]) {
    let n = p.numel as usize;
    let (xo, yo) = (p.x_off as usize, p.y_off as usize);
    if p.mode == TO_F16 {
        let src = &x[xo..xo + n];
        for (w, pair) in y[yo..yo + n.div_ceil(2)].iter_mut().zip(src.chunks(2)) {
            let lo = u32::from(f32_to_f16(pair[0]));
            let hi = pair.get(1).map_or(0, |&v| u32::from(f32_to_f16(v)));
            *w = f32::from_bits(lo | hi << 16);
        }
    } else {
        for (i, out) in y[yo..yo + n].iter_mut().enumerate() {
            let h = xo + i;
            let word = x[h / 2].to_bits();
            *out = f16_to_f32((word >> ((h & 1) * 16)) as u16);
        }
    }
}
