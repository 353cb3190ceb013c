//! `fma_peak`: measures the adapter's fused multiply-add ceiling, the yardstick the bench quotes
//! kernel efficiency against.

use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::{fold_grid, params, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::Gpu;

pub(crate) const SOURCE: &str = wgsl!("fma_peak", "grid");

/// `fma_peak` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "fma_peak",
    source: SOURCE,
    bindings: &[Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/fma_peak.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
    pub struct Params {
        pub iters: u32,
        pub invocations: u32,
        pub _pad0: u32,
        pub _pad1: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// FLOP of one dispatch: invocations · iters · 8 chains · 2 (an FMA is two).
fn flop(p: &Params) -> f64 {
    f64::from(p.invocations) * f64::from(p.iters) * 16.0
}

/// The adapter's FMA throughput in GFLOP/s: best of three timed dispatches after a warm-up.
/// Blocks on the device.
pub fn measure(gpu: &Gpu, invocations: u32, iters: u32) -> Result<f64> {
    let inner = &gpu.inner;
    let out = inner.acquire(u64::from(invocations) * 4, "fma_peak", "output")?;
    let p = Params {
        iters,
        invocations,
        ..Params::default()
    };
    let groups = u64::from(invocations).div_ceil(256);
    let workgroups = fold_grid(
        "fma_peak",
        groups,
        inner.limits.max_compute_workgroups_per_dimension,
    )?;
    let dispatch = Dispatch {
        kernel: Kernel::FmaPeak.desc(),
        overrides: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[&out],
        workgroups,
    };
    inner.record(&dispatch)?;
    inner.synchronize()?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        inner.record(&dispatch)?;
        inner.synchronize()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    inner.retire(out);
    Ok(flop(&p) / best / 1e9)
}
