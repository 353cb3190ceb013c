//! `batch_norm_backward`: params and bindings of the batch-norm gradient (dx, dγ, dβ in one
//! dispatch).

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("batch_norm_backward", "channels", "grid", "rows");

/// `batch_norm_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "batch_norm_backward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/batch_norm_backward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub n: u32,
        pub c: u32,
        pub s: u32,
        pub training: u32,
        pub affine: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `batch_norm_backward` launch; `gamma` is absent without an affine map.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub gamma: Option<&'a Tensor>,
    pub stats: &'a Tensor,
    pub dy: &'a Tensor,
    pub dx: &'a Tensor,
    pub dgamma: &'a Tensor,
    pub dbeta: &'a Tensor,
}

/// dx, dγ and dβ of each channel where `b.dx` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::BatchNormBackward,
            bytemuck::bytes_of(p),
            &[
                b.x.gpu_raw(),
                b.gamma.map_or(&gpu.dummy, Tensor::gpu_raw),
                b.stats.gpu_raw(),
                b.dy.gpu_raw(),
                b.dx.gpu_raw(),
                b.dgamma.gpu_raw(),
                b.dbeta.gpu_raw(),
            ],
            u64::from(p.c),
        ),
        On::Cpu => {
            let gamma = b.gamma.map(host_read);
            cpu::batch_norm_backward::batch_norm_backward(
                p,
                cpu::batch_norm_backward::Inputs {
                    x: &host_read(b.x),
                    gamma: gamma.as_deref().map(|v| &v[..]),
                    stats: &host_read(b.stats),
                    dy: &host_read(b.dy),
                },
                &mut host_write(b.dx),
                &mut host_write(b.dgamma),
                &mut host_write(b.dbeta),
            );
            Ok(())
        }
    }
}
