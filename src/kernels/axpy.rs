//! `axpy`: params and bindings of y = α·x + β·y, the in-place accumulate (or overwrite, β = 0)
//! that gradients and copies into existing buffers use.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("axpy", "grid");

/// `axpy` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "axpy",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

params! {
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
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `axpy` launch, in binding order.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// Runs `axpy` where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_strided(
            gpu,
            Kernel::Axpy,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.y.gpu_raw()],
            u64::from(p.numel),
        ),
        On::Cpu => {
            if b.x.shares_storage(b.y) {
                // A read lock and a write lock on one storage cannot coexist: read from a copy.
                let x: Vec<f32> = host_read(b.x).clone();
                cpu::axpy::axpy(p, &x, &mut host_write(b.y));
            } else {
                cpu::axpy::axpy(p, &host_read(b.x), &mut host_write(b.y));
            }
            Ok(())
        }
    }
}
