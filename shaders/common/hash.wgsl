// Counter-based random numbers: a PCG hash of (seed, index), so any element's draw is computed
// where it is needed (dropout's backward regenerates its mask instead of storing it). The CPU
// twin in src/kernels/cpu/dropout.rs computes the same bits.

fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Uniform in [0, 1) with 24 random bits, for element `i` of the stream `(seed_lo, seed_hi)`.
fn uniform_at(seed_lo: u32, seed_hi: u32, i: u32) -> f32 {
    let h = pcg_hash(i ^ pcg_hash(seed_lo ^ pcg_hash(seed_hi)));
    return f32(h >> 8u) * (1.0 / 16777216.0);
}
