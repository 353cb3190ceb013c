//! `cross_entropy_backward`: params and bindings of d logits = g · (softmax − one-hot).

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_flat, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

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

/// The tensors of one `cross_entropy_backward` launch, in binding order.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub targets: &'a Tensor,
    pub saved: &'a Tensor,
    /// [Σ loss, Σ counts], read from its first element.
    pub totals: &'a Tensor,
    pub dy: &'a Tensor,
    pub dx: &'a Tensor,
}

/// dx where `b.dx` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => record_flat(
            gpu,
            Kernel::CrossEntropyBackward,
            bytemuck::bytes_of(p),
            &[
                b.x.gpu_raw(),
                b.targets.gpu_raw(),
                b.saved.gpu_raw(),
                b.totals.gpu_raw(),
                b.dy.gpu_raw(),
                b.dx.gpu_raw(),
            ],
            u64::from(p.rows) * u64::from(p.cols),
        ),
        On::Cpu => {
            cpu::cross_entropy_backward::cross_entropy_backward(
                p,
                &host_read(b.x),
                &host_read(b.targets),
                &host_read(b.saved),
                &host_read(b.totals)[b.totals.offset..],
                &host_read(b.dy),
                &mut host_write(b.dx),
            );
            Ok(())
        }
    }
}
