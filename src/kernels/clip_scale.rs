//! `clip_scale`: params and bindings of the on-device global-norm clip factor.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("clip_scale", "rows", "float");

/// `clip_scale` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "clip_scale",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/clip_scale.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub count: u32,
        /// 0: L2 (partials Σ g²), 1: L1 (Σ |g|), 2: L∞ (max |g|).
        pub norm: u32,
        pub _pad0: u32,
        pub max_norm: f32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `clip_scale` launch.
pub(crate) struct Bindings<'a> {
    /// [P] per-parameter partials of the norm.
    pub partial: &'a Tensor,
    /// [2]: the global norm and the clip factor.
    pub out: &'a Tensor,
}

/// Writes (norm, scale) where `b.out` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.out) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::ClipScale,
            bytemuck::bytes_of(p),
            &[b.partial.gpu_raw(), b.out.gpu_raw()],
            1,
        ),
        On::Cpu => {
            cpu::clip_scale::clip_scale(p, &host_read(b.partial), &mut host_write(b.out));
            Ok(())
        }
    }
}
