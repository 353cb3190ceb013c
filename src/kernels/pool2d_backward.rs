//! `pool2d_backward`: params and bindings of the deterministic pooling gradient.

use super::pool2d_forward::Params;
use super::{record_flat, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("pool2d_backward", "grid");

/// `pool2d_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "pool2d_backward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    dy: &RawBuffer,
    argmax: &RawBuffer,
    dx: &RawBuffer,
) -> Result<()> {
    let n = u64::from(p.planes) * u64::from(p.h) * u64::from(p.w);
    record_flat(
        gpu,
        Kernel::Pool2dBackward,
        bytemuck::bytes_of(p),
        &[dy, argmax, dx],
        n,
    )
}
