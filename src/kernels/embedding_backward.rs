//! `embedding_backward`: params and bindings of the deterministic gradient of an embedding table.

use super::cpu;
use super::embedding_forward::Params;
use super::{on, record_flat, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("embedding_backward", "grid");

/// `embedding_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "embedding_backward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// The tensors of one `embedding_backward` launch.
pub(crate) struct Bindings<'a> {
    pub dy: &'a Tensor,
    pub ids: &'a Tensor,
    pub dw: &'a Tensor,
}

/// dW, each row summed over its ids in a fixed order, where `b.dw` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dw) {
        On::Gpu(gpu) => record_flat(
            gpu,
            Kernel::EmbeddingBackward,
            bytemuck::bytes_of(p),
            &[b.dy.gpu_raw(), b.ids.gpu_raw(), b.dw.gpu_raw()],
            u64::from(p.vocab) * u64::from(p.dim),
        ),
        On::Cpu => {
            cpu::embedding_backward::embedding_backward(
                p,
                &host_read(b.dy),
                &host_read(b.ids),
                &mut host_write(b.dw),
            );
            Ok(())
        }
    }
}
