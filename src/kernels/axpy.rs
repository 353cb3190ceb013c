//! `axpy`: params and bindings of y = α·x + β·y, the in-place accumulate (or overwrite, β = 0)
//! that gradients and copies into existing buffers use.

use bytemuck::{Pod, Zeroable};

use super::{record_strided, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("axpy", "grid");

/// Mirrors `struct Params` in shaders/axpy.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub numel: u32,
    pub x_off: u32,
    pub y_off: u32,
    pub _pad: u32,
    pub alpha: f32,
    pub beta: f32,
    pub _pad1: u32,
    pub _pad2: u32,
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

pub(crate) fn record(gpu: &GpuInner, p: &Params, x: &RawBuffer, y: &RawBuffer) -> Result<()> {
    record_strided(
        gpu,
        Kernel::Axpy,
        bytemuck::bytes_of(p),
        &[x, y],
        u64::from(p.numel),
    )
}
