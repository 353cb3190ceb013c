//! Element types. An f32 tensor holds one f32 per element; an f16 tensor holds IEEE binary16
//! values packed two to a 32-bit word (element i in the low half of word i/2 when i is even,
//! the high half when odd), the same layout on the GPU and in host memory, so half the bytes
//! of f32 and `unpack`-able by any WGSL adapter (`shader-f16` not needed). The conversions
//! here are the ones the `convert` kernel and its CPU twin run, bit for bit: round to nearest
//! even, overflow to ±∞, NaN kept (its payload's top bits too), subnormals exact.

/// The element type of a [`Tensor`](crate::Tensor).
///
/// ```
/// use timeloom::{DType, Device, Tensor};
/// let x = Tensor::from_slice(&Device::Cpu, &[1.0, 0.1, 70000.0], &[3])?;
/// let h = x.to_dtype(DType::F16)?;
/// assert_eq!(h.dtype(), DType::F16);
/// // 0.1 rounds to the nearest f16; past 65504 is infinity, as in PyTorch's .half().
/// assert_eq!(h.read_blocking()?, vec![1.0, 0.099975586, f32::INFINITY]);
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32 (PyTorch's `torch.float32`).
    #[default]
    F32,
    /// IEEE binary16 (PyTorch's `torch.float16`): storage and transfer; ops compute in f32.
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }

    /// 32-bit words holding `n` elements (at least one, so a buffer is never empty).
    pub(crate) fn words(self, n: usize) -> usize {
        match self {
            DType::F32 => n,
            DType::F16 => n.div_ceil(2),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
        })
    }
}

/// The binary16 nearest `x` (ties to even), ±∞ past 65504 (from 65520 on), NaN kept quiet.
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let a = b & 0x7fff_ffff;
    let h: u32 = if a >= 0x7f80_0000 {
        // ∞, or NaN with the top of its payload and the quiet bit.
        if a > 0x7f80_0000 {
            0x7e00 | ((a >> 13) & 0x3ff)
        } else {
            0x7c00
        }
    } else if a >= 0x477f_f000 {
        0x7c00 // 65520 and up round past 65504
    } else if a >= 0x3880_0000 {
        // Normal: drop 13 bits, rounding to nearest even; a carry moves into the exponent.
        let r = a + 0x0fff + ((a >> 13) & 1);
        (r - 0x3800_0000) >> 13
    } else if a >= 0x3300_0000 {
        // Subnormal: the 24-bit significand shifted down by 14..=24 bits, ties to even.
        let e = a >> 23;
        let m = (a & 0x7f_ffff) | 0x80_0000;
        let shift = 126 - e;
        let q = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        q + u32::from(rem > half || (rem == half && q & 1 == 1))
    } else {
        0 // below 2^-25 (2^-25 itself ties to 0)
    };
    sign | h as u16
}

/// The f32 equal to binary16 `h` (every f16 is exactly an f32). Written as three candidates
/// and a choice, without branches, so that loops over it vectorise.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let e = h & 0x7c00;
    let m = h & 0x3ff;
    let normal = ((h & 0x7fff) << 13) + (112 << 23);
    let subnormal = (m as f32 * f32::from_bits(0x3380_0000)).to_bits(); // m · 2^-24, exact
    let special = 0x7f80_0000 | (m << 13);
    let bits = if e == 0 {
        subnormal
    } else if e == 0x7c00 {
        special
    } else {
        normal
    };
    f32::from_bits(sign | bits)
}

/// Binary16 values two to a word (the low half first), each word held by its bits in an f32.
pub(crate) fn pack(bits: &[u16]) -> Vec<f32> {
    bits.chunks(2)
        .map(|p| f32::from_bits(u32::from(p[0]) | u32::from(p.get(1).copied().unwrap_or(0)) << 16))
        .collect()
}

/// Elements `first..first + n` of packed f16 `words` (word 0 holding elements 0 and 1),
/// widened; split over the thread pool past 64 Ki elements (the CPU path widens whole f16
/// weights per call: 1 Mi elements took 3.7 ms on one thread element by element).
pub(crate) fn unpack(words: &[f32], first: usize, n: usize) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    let fill = |start: usize, out: &mut [f32]| {
        for (k, o) in out.iter_mut().enumerate() {
            let h = first + start + k;
            *o = f16_to_f32((words[h / 2].to_bits() >> ((h & 1) * 16)) as u16);
        }
    };
    let mut out = vec![0.0; n];
    if n >= 4 * CHUNK {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| fill(c * CHUNK, chunk));
    } else {
        fill(0, &mut out);
    }
    out
}

/// `values` narrowed to binary16 bits.
pub(crate) fn narrow_bits(values: &[f32]) -> Vec<u16> {
    values.iter().map(|&v| f32_to_f16(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary16 value of bits `h`, from its definition, in f64.
    fn reference(h: u16) -> f64 {
        let s = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let e = i32::from((h >> 10) & 0x1f);
        let m = f64::from(h & 0x3ff);
        match e {
            0 => s * m * 2f64.powi(-24),
            31 if m == 0.0 => s * f64::INFINITY,
            31 => f64::NAN,
            _ => s * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
        }
    }

    /// Every one of the 65,536 bit patterns widens to its exact value and narrows back to
    /// itself (NaNs to a NaN with the same top payload bits).
    #[test]
    fn every_f16_widens_exactly_and_round_trips() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            let want = reference(h);
            if want.is_nan() {
                assert!(x.is_nan(), "{h:#06x}");
                assert_eq!(f32_to_f16(x) & 0x7dff, h & 0x7dff, "{h:#06x}");
                continue;
            }
            assert_eq!(f64::from(x), want, "{h:#06x}");
            assert_eq!(f32_to_f16(x), h, "{h:#06x} -> {x} -> back");
        }
    }

    /// `unpack` widens every binary16 pattern as `f16_to_f32` does, bit for bit, from an even
    /// and an odd first element, on its one-thread and its split paths.
    #[test]
    fn unpack_widens_every_pattern_from_any_start() {
        let all: Vec<u16> = (0..=u16::MAX).chain(0..=u16::MAX).collect();
        let words = pack(&all);
        for (first, n) in [(0, all.len()), (1, all.len() - 1), (3, 1000), (0, 1)] {
            let got = unpack(&words, first, n);
            assert_eq!(got.len(), n);
            for (k, g) in got.iter().enumerate() {
                let want = f16_to_f32(all[first + k]);
                assert_eq!(g.to_bits(), want.to_bits(), "first {first}, element {k}");
            }
        }
    }

    /// Narrowing picks the nearest binary16 and breaks ties to the even one: checked at every
    /// midpoint between neighbours (and just either side of it) over the whole range, and on
    /// a sweep of f32 values against the two neighbours' distances.
    #[test]
    fn narrowing_rounds_to_nearest_even() {
        let positive: Vec<u16> = (0..0x7c00u16).collect();
        for w in positive.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let mid = (reference(lo) + reference(hi)) / 2.0;
            let even = if lo & 1 == 0 { lo } else { hi };
            let m = mid as f32;
            assert_eq!(f64::from(m), mid, "midpoints are f32 values");
            assert_eq!(f32_to_f16(m), even, "tie between {lo:#06x} and {hi:#06x}");
            assert_eq!(f32_to_f16(-m), even | 0x8000);
            let below = f32::from_bits(m.to_bits() - 1);
            let above = f32::from_bits(m.to_bits() + 1);
            assert_eq!(f32_to_f16(below), lo, "below the tie {lo:#06x}/{hi:#06x}");
            assert_eq!(f32_to_f16(above), hi, "above the tie {lo:#06x}/{hi:#06x}");
        }
        // Past the largest finite value: 65519.99 stays 65504, 65520 is infinity.
        assert_eq!(f32_to_f16(65519.996), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(-1e30), 0xfc00);
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
        // Below half the smallest subnormal: zero, keeping the sign.
        assert_eq!(f32_to_f16(1e-30), 0);
        assert_eq!(f32_to_f16(-1e-30), 0x8000);
        assert_eq!(f32_to_f16(f32::from_bits(1)), 0);
        // A sweep: the result is never farther from x than a neighbour is.
        let mut x = 1e-9f32;
        while x < 65504.0 {
            let h = f32_to_f16(x);
            let d = (reference(h) - f64::from(x)).abs();
            for n in [h.wrapping_sub(1), h + 1] {
                if n < 0x7c00 {
                    assert!(d <= (reference(n) - f64::from(x)).abs(), "{x}: {h:#06x}");
                }
            }
            x *= 1.000_37;
        }
    }
}
