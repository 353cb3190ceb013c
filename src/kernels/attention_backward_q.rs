//! `attention_backward_q`: dQ of fused attention. It shares `Params`, bindings and its launch
//! with `attention_backward_kv`, whose launch records both kernels (the CPU twin computes dQ, dK
//! and dV in one pass).

use super::wgsl;
use crate::gpu::pipelines::{Access, KernelDesc};

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
