// Per-channel walks over [N, C, S] (S = H·W): element e in [0, N·S) of channel ch, shared by
// the batch-norm kernels that give one workgroup to each channel.

fn channel_at(ch: u32, e: u32, c: u32, s: u32) -> u32 {
    return ((e / s) * c + ch) * s + e % s;
}
