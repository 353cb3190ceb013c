//! `attention_backward_q`: dQ of fused attention; shares `Params` and `Bindings` with
//! `attention_backward_kv`.

use super::attention_backward_kv::{Bindings, Params};
use super::{wgsl, Kernel};
use crate::error::Result;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("attention_backward_q", "grid");

pub(crate) fn record(gpu: &GpuInner, p: &Params, head_dim: u32, b: &Bindings<'_>) -> Result<()> {
    super::attention_backward_kv::record(gpu, Kernel::AttentionBackwardQ, p, head_dim, b)
}
