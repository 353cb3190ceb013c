//! `pool2d_backward`: params and bindings of the deterministic pooling gradient.

use super::cpu;
use super::pool2d_forward::Params;
use super::{on, record_flat, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("pool2d_backward", "grid");

/// `pool2d_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "pool2d_backward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// The tensors of one `pool2d_backward` launch.
pub(crate) struct Bindings<'a> {
    pub dy: &'a Tensor,
    pub argmax: &'a Tensor,
    pub dx: &'a Tensor,
}

/// dx where `b.dx` lives: each input pixel gathers the windows it won (or shares).
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => record_flat(
            gpu,
            Kernel::Pool2dBackward,
            bytemuck::bytes_of(p),
            &[b.dy.gpu_raw(), b.argmax.gpu_raw(), b.dx.gpu_raw()],
            u64::from(p.planes) * u64::from(p.h) * u64::from(p.w),
        ),
        On::Cpu => {
            cpu::pool2d_backward::pool2d_backward(
                p,
                &host_read(b.dy),
                &host_read(b.argmax),
                &mut host_write(b.dx),
            );
            Ok(())
        }
    }
}
