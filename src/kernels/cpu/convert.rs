//! CPU twin of shaders/convert.wgsl: f32 ↔ f16 storage and the strided f16 copy, the words held
//! in f32 slots by their bits (src/tensor/dtype.rs's conversions, the shader's bit for bit).

use super::strided_offset;
use crate::kernels::convert::{Params, F16_COPY, TO_F16, TO_F32};
use crate::tensor::dtype::{f16_to_f32, f32_to_f16};

pub(crate) fn convert(p: &Params, x: &[f32], y: &mut [f32]) {
    let n = p.numel as usize;
    let rank = p.rank as usize;
    let (shape, strides) = (&p.shape[..rank], &p.x_strides[..rank]);
    // Where element i of x is: an f32 index when narrowing, else an f16 one.
    let source = |i: usize| {
        p.x_off as usize
            + if p.contiguous == 1 {
                i
            } else {
                strided_offset(i, shape, strides)
            }
    };
    let half = |at: usize| (x[at / 2].to_bits() >> ((at & 1) * 16)) as u16;
    let yo = p.y_off as usize;
    match p.mode {
        TO_F32 => {
            for (i, out) in y[yo..yo + n].iter_mut().enumerate() {
                *out = f16_to_f32(half(source(i)));
            }
        }
        TO_F16 | F16_COPY => {
            let bits = |i: usize| {
                let at = source(i);
                u32::from(if p.mode == TO_F16 {
                    f32_to_f16(x[at])
                } else {
                    half(at)
                })
            };
            for (w, out) in y[yo..yo + n.div_ceil(2)].iter_mut().enumerate() {
                let lo = bits(2 * w);
                let hi = if 2 * w + 1 < n { bits(2 * w + 1) } else { 0 };
                *out = f32::from_bits(lo | hi << 16);
            }
        }
        _ => unreachable!("convert mode {}", p.mode),
    }
}
