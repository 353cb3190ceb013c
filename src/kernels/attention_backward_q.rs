//! `attention_backward_q`: dQ of fused attention; shares `Params` and `Bindings` with
//! `attention_backward_kv`.

use super::attention_backward_kv::{Bindings, Params};
use super::{wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("attention_backward_q", "attention", "grid");

/// `attention_backward_q` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "attention_backward_q",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

pub(crate) fn record(gpu: &GpuInner, p: &Params, head_dim: u32, b: &Bindings<'_>) -> Result<()> {
    super::attention_backward_kv::record(gpu, Kernel::AttentionBackwardQ, p, head_dim, b)
}
