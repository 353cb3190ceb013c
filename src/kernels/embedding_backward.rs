//! `embedding_backward`: params and bindings of the deterministic gradient of an embedding table.

use super::embedding_forward::Params;
use super::{record_flat, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("embedding_backward", "grid");

/// `embedding_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "embedding_backward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    dy: &RawBuffer,
    ids: &RawBuffer,
    dw: &RawBuffer,
) -> Result<()> {
    record_flat(
        gpu,
        Kernel::EmbeddingBackward,
        bytemuck::bytes_of(p),
        &[dy, ids, dw],
        u64::from(p.vocab) * u64::from(p.dim),
    )
}
