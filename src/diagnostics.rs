//! Measurements of the adapter itself, for the bench and for users sizing a model: the FMA
//! ceiling and the matmul tile chosen per shape class.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::matmul::{self, TileConfig};

/// The adapter's fused multiply-add throughput in GFLOP/s, from independent FMA chains (the
/// ceiling a compute kernel can reach). Blocks on the device for about a second on lavapipe.
pub fn fma_peak_gflops(gpu: &Gpu) -> Result<f64> {
    // A fixed 64 Ki invocations filled a quarter of an H200's 270 K resident threads and ran in
    // 70 µs, mostly submission: it read 14 TFLOP/s where PyTorch's f32 matmul alone reached 22.
    // Grow the dispatch fourfold until one takes 20 ms (a software adapter stops at the first)
    // or 16 Mi invocations (a 64 MiB output), and keep the best rate.
    const ITERS: u32 = 4096;
    let mut best = 0.0f64;
    let mut invocations = 64 * 1024u32;
    loop {
        let gflops = crate::kernels::fma_peak::measure(gpu, invocations, ITERS)?;
        best = best.max(gflops);
        let secs = f64::from(invocations) * f64::from(ITERS) * 16.0 / (gflops * 1e9);
        if secs >= 0.02 || invocations >= 16 << 20 {
            return Ok(best);
        }
        invocations *= 4;
    }
}

/// The matmul tile shape chosen so far for each shape class on this device, as
/// (shape class, tile) descriptions such as `("square", "64x64 (bk 16)")`.
pub fn matmul_tiles(gpu: &Gpu) -> Vec<(String, String)> {
    matmul::chosen_tiles(&gpu.inner)
}

/// Every matmul tile shape timeloom knows, described, and GFLOP/s of each on an M×K by K×N
/// product here (best of three submissions of four calls after a warm-up; tiles that do not fit
/// the device are skipped).
/// Blocks on the device.
pub fn matmul_tile_sweep(gpu: &Gpu, m: u32, n: u32, k: u32) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for tile in matmul::ALL_TILES {
        if tile.fits(&gpu.inner.limits) {
            out.push((tile.to_string(), matmul_tile_gflops(gpu, tile, m, n, k)?));
        }
    }
    Ok(out)
}

/// GFLOP/s of one tile shape on an M×K by K×N product (as above). Blocks
/// on the device.
fn matmul_tile_gflops(gpu: &Gpu, tile: TileConfig, m: u32, n: u32, k: u32) -> Result<f64> {
    let flop = 2.0 * f64::from(m) * f64::from(n) * f64::from(k);
    let secs = matmul::time_tile(&gpu.inner, tile, (m, n, k), 3, 4)?;
    Ok(flop / secs / 1e9)
}
