//! `convert`: params and bindings of the f32 ↔ f16 storage conversion (`Tensor::to_dtype`) and
//! of the strided f16 copy (`Tensor::contiguous` of an f16 view).

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("convert", "grid", "half", "strided");

/// `convert` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "convert",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

/// `Params::mode`: narrow f32 to f16.
pub(crate) const TO_F16: u32 = 0;
/// `Params::mode`: widen f16 to f32.
pub(crate) const TO_F32: u32 = 1;
/// `Params::mode`: copy f16 to f16 (a strided view made contiguous).
pub(crate) const F16_COPY: u32 = 2;

params! {
    /// Mirrors `struct Params` in shaders/convert.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub numel: u32,
        /// [`TO_F16`], [`TO_F32`] or [`F16_COPY`].
        pub mode: u32,
        /// First element of x (an f16 element index when x is f16).
        pub x_off: u32,
        /// First element of y (a word index when y is f16).
        pub y_off: u32,
        pub rank: u32,
        /// 1 when x is contiguous: the shader then skips the stride walk.
        pub contiguous: u32,
        pub _pad: [u32; 2],
        pub shape: [u32; 8],
        pub x_strides: [u32; 8],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `convert` launch: x any strides (in elements), y contiguous.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// Converts where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => {
            let n = u64::from(p.numel);
            let items = if p.mode == TO_F32 { n } else { n.div_ceil(2) };
            record_strided(
                gpu,
                Kernel::Convert,
                bytemuck::bytes_of(p),
                &[b.x.gpu_raw(), b.y.gpu_raw()],
                items,
            )
        }
        On::Cpu => {
            cpu::convert::convert(p, &host_read(b.x), &mut host_write(b.y));
            Ok(())
        }
    }
}
