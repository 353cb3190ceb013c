//! `conv2d_backward_weight`: the split-K choice and dispatch of the weight-gradient implicit
//! GEMM. Its K (N·OH·OW) is long and its output ([C_out, C_in/G·kh·kw]) small, so the lanes of
//! a workgroup split K and K is further cut into `splits` pixel ranges, each written to its own
//! partial; the caller sums the partials with the reduce kernel (deterministic: no atomics).

use super::conv2d_forward::{tile_rows, Params};
use super::cpu;
use super::{fold_grid, on, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("conv2d_backward_weight", "conv2d", "grid", "row_sums");

/// `conv2d_backward_weight` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "conv2d_backward_weight",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// Columns (taps) per workgroup: CONV_TN.
const TILE_TAPS: u32 = 4;
/// Workgroups the split aims for: enough to fill a large GPU several times over.
const TARGET_WORKGROUPS: u64 = 1024;
/// Output pixels a split sums at least (16 per lane), so partials stay few.
const MIN_PIXELS_PER_SPLIT: u64 = 1024;

/// `p` with its grid, `splits` and pixels per split (`per_split`) chosen for this shape on the
/// device of `on_device_of`: the host sums all pixels in one split.
pub(crate) fn with_splits(p: &Params, on_device_of: &Tensor) -> Params {
    let mut p = *p;
    if let On::Cpu = on(on_device_of) {
        p.per_split = p.n * p.oh * p.ow;
        p.splits = 1;
        return p;
    }
    p.tiles_cols = ((p.cg() * p.taps()) as u32).div_ceil(TILE_TAPS);
    p.tiles_rows = (p.mg() as u32).div_ceil(tile_rows(p.mg()));
    let base = u64::from(p.tiles_cols) * u64::from(p.tiles_rows) * u64::from(p.groups);
    let pixels = u64::from(p.n) * p.ohw() as u64;
    let most = (pixels / MIN_PIXELS_PER_SPLIT).max(1);
    let want = TARGET_WORKGROUPS.div_ceil(base).clamp(1, most);
    let per = pixels.div_ceil(want);
    p.per_split = per as u32;
    p.splits = pixels.div_ceil(per) as u32;
    p
}

/// The tensors of one `conv2d_backward_weight` launch.
pub(crate) struct Bindings<'a> {
    pub dy: &'a Tensor,
    pub x: &'a Tensor,
    /// [splits, C_out, C_in/G·kh·kw]: one partial dW per split, for `p` from [`with_splits`].
    pub part: &'a Tensor,
}

/// The split partials of dW where `b.part` lives (their sum over splits is dW).
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.part) {
        On::Gpu(gpu) => record(gpu, p, &[b.dy.gpu_raw(), b.x.gpu_raw(), b.part.gpu_raw()]),
        On::Cpu => {
            cpu::conv2d_backward_weight::conv2d_backward_weight(
                p,
                &host_read(b.dy),
                &host_read(b.x),
                &mut host_write(b.part),
            );
            Ok(())
        }
    }
}

/// Records the partials for `p` from [`with_splits`].
fn record(gpu: &GpuInner, p: &Params, buffers: &[&RawBuffer; 3]) -> Result<()> {
    let workgroups = u64::from(p.tiles_cols)
        * u64::from(p.tiles_rows)
        * u64::from(p.groups)
        * u64::from(p.splits);
    let workgroups = fold_grid(
        Kernel::Conv2dBackwardWeight.name(),
        workgroups,
        gpu.limits.max_compute_workgroups_per_dimension,
    )?;
    gpu.record(&Dispatch {
        kernel: Kernel::Conv2dBackwardWeight.desc(),
        overrides: &[("CONV_TM", f64::from(tile_rows(p.mg())))],
        params: bytemuck::bytes_of(p),
        buffers,
        workgroups,
    })
}
