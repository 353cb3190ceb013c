//! `clip_scale`: params and bindings of the on-device global-norm clip factor.

use bytemuck::{Pod, Zeroable};

use super::{record_rows, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("clip_scale", "rows", "float");

/// Mirrors `struct Params` in shaders/clip_scale.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub count: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub max_norm: f32,
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    partial: &RawBuffer,
    out: &RawBuffer,
) -> Result<()> {
    record_rows(
        gpu,
        Kernel::ClipScale,
        bytemuck::bytes_of(p),
        &[partial, out],
        1,
    )
}
