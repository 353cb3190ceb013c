// half.wgsl: IEEE binary16 ↔ f32 by the bits, for f16 tensors stored two to a u32 word (element
// i in the low half of word i/2 when i is even). By integer ops rather than WGSL's
// pack2x16float / unpack2x16float, which leave rounding, overflow and NaN to the adapter: these
// round to nearest even, overflow to ±∞ and keep NaN, bit for bit as the CPU twins
// (src/tensor/dtype.rs) do, on every adapter.

fn half_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if e == 0u {
        // Zero or subnormal: m · 2^-24, exact (and a normal f32, so no flush to zero).
        return bitcast<f32>(bitcast<u32>(f32(m) * bitcast<f32>(0x33800000u)) | sign);
    }
    if e == 31u {
        return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

fn f32_to_half(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if a >= 0x7f800000u {
        return sign | select(0x7c00u, 0x7e00u | ((a >> 13u) & 0x3ffu), a > 0x7f800000u);
    }
    if a >= 0x477ff000u {
        return sign | 0x7c00u;  // 65520 and up round past 65504
    }
    if a >= 0x38800000u {
        // Normal: drop 13 bits to nearest even; a carry moves into the exponent.
        return sign | ((a + 0x0fffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u);
    }
    if a < 0x33000000u {
        return sign;  // below 2^-25 (2^-25 itself ties to 0)
    }
    // Subnormal: the 24-bit significand shifted down by 14..=24 bits, ties to even.
    let m = (a & 0x7fffffu) | 0x800000u;
    let shift = 126u - (a >> 23u);
    let q = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    return sign | (q + select(0u, 1u, rem > half || (rem == half && (q & 1u) == 1u)));
}

// Element i of an f16 array held in u32 words, widened.
fn half_at(words: u32, i: u32) -> f32 {
    return half_to_f32((words >> ((i & 1u) * 16u)) & 0xffffu);
}
