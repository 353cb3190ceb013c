//! `softmax_backward`: params and bindings of the softmax / log-softmax backward from the saved
//! output, one workgroup per row.

use bytemuck::{Pod, Zeroable};

use super::{params, record_rows, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("softmax_backward", "grid", "rows");

/// `softmax_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "softmax_backward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/softmax_backward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        pub log: u32,
        pub y_off: u32,
        pub dy_off: u32,
        pub dx_off: u32,
        pub _pad: [u32; 2],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    y: &RawBuffer,
    dy: &RawBuffer,
    dx: &RawBuffer,
) -> Result<()> {
    record_rows(
        gpu,
        Kernel::SoftmaxBackward,
        bytemuck::bytes_of(p),
        &[y, dy, dx],
        u64::from(p.rows),
    )
}
