//! `conv2d_backward_data`: dispatch of the transposed-convolution implicit GEMM (dx).

use super::conv2d_forward::{record_gemm, Params};
use super::{wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("conv2d_backward_data", "conv2d", "grid");

/// `conv2d_backward_data` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "conv2d_backward_data",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    dy: &RawBuffer,
    w: &RawBuffer,
    dx: &RawBuffer,
) -> Result<()> {
    let cols = p.n as usize * p.hw();
    record_gemm(
        gpu,
        Kernel::Conv2dBackwardData,
        p,
        p.cg(),
        cols,
        &[dy, w, dx],
    )
}
