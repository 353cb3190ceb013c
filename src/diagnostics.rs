//! Measurements of the adapter itself, for the bench and for users sizing a model: the FMA
//! ceiling and the matmul tile chosen per shape class.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::matmul::{self, TileConfig};

/// The adapter's fused multiply-add throughput in GFLOP/s, from independent FMA chains (the
/// ceiling a compute kernel can reach). Blocks on the device for about a second on lavapipe.
pub fn fma_peak_gflops(gpu: &Gpu) -> Result<f64> {
    crate::kernels::fma_peak::measure(gpu, 64 * 1024, 4096)
}

/// The matmul tile shape chosen so far for each shape class on this device, as
/// (shape class, tile) descriptions such as `("square", "64x64 (bk 16)")`.
pub fn matmul_tiles(gpu: &Gpu) -> Vec<(String, String)> {
    matmul::chosen_tiles(&gpu.inner)
}

/// Every matmul tile shape timeloom knows, described, and GFLOP/s of each on an M×K by K×N
/// product here (best of three after a warm-up; tiles that do not fit the device are skipped).
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

/// GFLOP/s of one tile shape on an M×K by K×N product (best of three after a warm-up). Blocks
/// on the device.
fn matmul_tile_gflops(gpu: &Gpu, tile: TileConfig, m: u32, n: u32, k: u32) -> Result<f64> {
    let flop = 2.0 * f64::from(m) * f64::from(n) * f64::from(k);
    let secs = matmul::time_tile(&gpu.inner, tile, m, n, k, 3)?;
    Ok(flop / secs / 1e9)
}
