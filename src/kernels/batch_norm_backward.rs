//! `batch_norm_backward`: params and bindings of the batch-norm gradient (dx, dγ, dβ in one
//! dispatch).

use bytemuck::{Pod, Zeroable};

use super::{params, record_rows, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("batch_norm_backward", "channels", "grid", "rows");

/// `batch_norm_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "batch_norm_backward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/batch_norm_backward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub n: u32,
        pub c: u32,
        pub s: u32,
        pub training: u32,
        pub affine: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The buffers of one backward, in binding order.
pub(crate) struct Bindings<'a> {
    pub x: &'a RawBuffer,
    pub gamma: &'a RawBuffer,
    pub stats: &'a RawBuffer,
    pub dy: &'a RawBuffer,
    pub dx: &'a RawBuffer,
    pub dgamma: &'a RawBuffer,
    pub dbeta: &'a RawBuffer,
}

pub(crate) fn record(gpu: &GpuInner, p: &Params, b: &Bindings<'_>) -> Result<()> {
    record_rows(
        gpu,
        Kernel::BatchNormBackward,
        bytemuck::bytes_of(p),
        &[b.x, b.gamma, b.stats, b.dy, b.dx, b.dgamma, b.dbeta],
        u64::from(p.c),
    )
}
