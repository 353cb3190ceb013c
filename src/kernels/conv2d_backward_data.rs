//! `conv2d_backward_data`: dispatch of the transposed-convolution implicit GEMM (dx).

use super::conv2d_forward::{record_gemm, Params};
use super::cpu;
use super::{on, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("conv2d_backward_data", "conv2d", "grid", "row_sums");

/// `conv2d_backward_data` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "conv2d_backward_data",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

/// The tensors of one `conv2d_backward_data` launch.
pub(crate) struct Bindings<'a> {
    pub dy: &'a Tensor,
    pub w: &'a Tensor,
    pub dx: &'a Tensor,
}

/// dx, the transposed convolution of dy, where `b.dx` lives: on a GPU an implicit GEMM of
/// C_in/G rows by N·H·W columns per group.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => {
            let buffers = [b.dy.gpu_raw(), b.w.gpu_raw(), b.dx.gpu_raw()];
            let cols = p.n as usize * p.hw();
            record_gemm(gpu, Kernel::Conv2dBackwardData, p, p.cg(), cols, &buffers)
        }
        On::Cpu => {
            cpu::conv2d_backward_data::conv2d_backward_data(
                p,
                &host_read(b.dy),
                &host_read(b.w),
                &mut host_write(b.dx),
            );
            Ok(())
        }
    }
}
