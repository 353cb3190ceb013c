//! Measurements of the adapter itself, for the bench and for users sizing a model: the FMA
//! ceiling and the matmul tile chosen per shape class.

use crate::error::Result;
use crate::gpu::{lock, Gpu};
use crate::kernels::matmul::{ShapeClass, TileConfig};

/// The adapter's fused multiply-add throughput in GFLOP/s, from independent FMA chains (the
/// ceiling a compute kernel can reach). Blocks on the device for about a second on lavapipe.
pub fn fma_peak_gflops(gpu: &Gpu) -> Result<f64> {
    crate::kernels::fma_peak::measure(gpu, 64 * 1024, 4096)
}

/// The matmul tile shape chosen so far for each shape class on this device.
pub fn matmul_tiles(gpu: &Gpu) -> Vec<(ShapeClass, TileConfig)> {
    let mut v: Vec<_> = lock(&gpu.inner.tiles)
        .iter()
        .map(|(&c, &t)| (c, t))
        .collect();
    v.sort_by_key(|(c, _)| *c as u8);
    v
}
