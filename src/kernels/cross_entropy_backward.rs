//! `cross_entropy_backward`: params and bindings of d logits = g · (softmax − one-hot).

use bytemuck::{Pod, Zeroable};

use super::{params, record_flat, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("cross_entropy_backward", "grid");

/// `cross_entropy_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "cross_entropy_backward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/cross_entropy_backward.wgsl; `mean` = 1 divides by the
    /// number of rows that count.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        pub x_off: u32,
        pub t_off: u32,
        pub ignore_index: i32,
        pub mean: u32,
        pub dx_off: u32,
        pub dy_off: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The buffers of one backward, in binding order.
pub(crate) struct Bindings<'a> {
    pub x: &'a RawBuffer,
    pub targets: &'a RawBuffer,
    pub saved: &'a RawBuffer,
    pub totals: &'a RawBuffer,
    pub dy: &'a RawBuffer,
    pub dx: &'a RawBuffer,
}

pub(crate) fn record(gpu: &GpuInner, p: &Params, b: &Bindings<'_>) -> Result<()> {
    let buffers = [b.x, b.targets, b.saved, b.totals, b.dy, b.dx];
    record_flat(
        gpu,
        Kernel::CrossEntropyBackward,
        bytemuck::bytes_of(p),
        &buffers,
        u64::from(p.rows) * u64::from(p.cols),
    )
}
