//! `layer_norm_backward`: params and bindings of the layer-norm input gradient.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("layer_norm_backward", "grid", "rows");

/// `layer_norm_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "layer_norm_backward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/layer_norm_backward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        pub x_off: u32,
        pub affine: u32,
        pub dy_off: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `layer_norm_backward` launch; `gamma` is absent without an affine map.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub gamma: Option<&'a Tensor>,
    pub stats: &'a Tensor,
    pub dy: &'a Tensor,
    pub dx: &'a Tensor,
}

/// dx of each row where `b.dx` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::LayerNormBackward,
            bytemuck::bytes_of(p),
            &[
                b.x.gpu_raw(),
                b.gamma.map_or(&gpu.dummy, Tensor::gpu_raw),
                b.stats.gpu_raw(),
                b.dy.gpu_raw(),
                b.dx.gpu_raw(),
            ],
            u64::from(p.rows),
        ),
        On::Cpu => {
            let gv = b.gamma.map(|g| (host_read(g), g.offset));
            cpu::layer_norm_backward::layer_norm_backward(
                p,
                &host_read(b.x),
                gv.as_ref().map_or(&[][..], |(v, off)| &v[*off..]),
                &host_read(b.stats),
                &host_read(b.dy),
                &mut host_write(b.dx),
            );
            Ok(())
        }
    }
}
