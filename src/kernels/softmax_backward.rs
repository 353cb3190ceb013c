//! `softmax_backward`: params and bindings of the softmax / log-softmax backward from the saved
//! output, one workgroup per row.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

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

/// The tensors of one `softmax_backward` launch.
pub(crate) struct Bindings<'a> {
    pub y: &'a Tensor,
    pub dy: &'a Tensor,
    pub dx: &'a Tensor,
}

/// dx of each row where `b.dx` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::SoftmaxBackward,
            bytemuck::bytes_of(p),
            &[b.y.gpu_raw(), b.dy.gpu_raw(), b.dx.gpu_raw()],
            u64::from(p.rows),
        ),
        On::Cpu => {
            cpu::softmax_backward::softmax_backward(
                p,
                &host_read(b.y),
                &host_read(b.dy),
                &mut host_write(b.dx),
            );
            Ok(())
        }
    }
}
