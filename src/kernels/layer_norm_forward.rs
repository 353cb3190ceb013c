//! `layer_norm_forward`: params and bindings of layer normalisation over the last axis.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("layer_norm_forward", "grid", "rows");

/// `layer_norm_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "layer_norm_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/layer_norm_forward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        pub x_off: u32,
        /// 1 when γ and β apply.
        pub affine: u32,
        pub eps: f32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `layer_norm_forward` launch. Without γ and β (`p.affine` = 0) the device
/// binds stand-ins it never reads.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub affine: Option<(&'a Tensor, &'a Tensor)>,
    pub y: &'a Tensor,
    /// [2, rows]: mean and 1/σ of each row, for the backward.
    pub stats: &'a Tensor,
}

/// Normalises each row where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => {
            let (gamma, beta) = b.affine.map_or((&gpu.dummy, &gpu.dummy), |(g, bt)| {
                (g.gpu_raw(), bt.gpu_raw())
            });
            record_rows(
                gpu,
                Kernel::LayerNormForward,
                bytemuck::bytes_of(p),
                &[b.x.gpu_raw(), gamma, beta, b.y.gpu_raw(), b.stats.gpu_raw()],
                u64::from(p.rows),
            )
        }
        On::Cpu => {
            let gv = b.affine.map(|(g, _)| (host_read(g), g.offset));
            let bv = b.affine.map(|(_, bt)| (host_read(bt), bt.offset));
            cpu::layer_norm_forward::layer_norm_forward(
                p,
                &host_read(b.x),
                gv.as_ref().map_or(&[][..], |(v, off)| &v[*off..]),
                bv.as_ref().map_or(&[][..], |(v, off)| &v[*off..]),
                &mut host_write(b.y),
                &mut host_write(b.stats),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{Device, Tensor};

    #[test]
    fn forward_and_every_gradient_match_cpu() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for (rows, cols) in [(1, 1), (7, 3), (5, 257), (33, 1000)] {
            for affine in [false, true] {
                let x: Vec<f32> = randn(cols as u64, rows * cols)
                    .iter()
                    .map(|v| v * 3.0 + 1.0)
                    .collect();
                let (gv, bv, dyv) = (randn(1, cols), randn(2, cols), randn(3, rows * cols));
                let mut out = Vec::new();
                for dev in [&g, &c] {
                    let xt = Tensor::from_slice(dev, &x, &[rows, cols])
                        .unwrap()
                        .requires_grad();
                    let gt = Tensor::from_slice(dev, &gv, &[cols])
                        .unwrap()
                        .requires_grad();
                    let bt = Tensor::from_slice(dev, &bv, &[cols])
                        .unwrap()
                        .requires_grad();
                    let y = xt.layer_norm(affine.then_some((&gt, &bt)), 1e-5).unwrap();
                    y.backward_with(&Tensor::from_slice(dev, &dyv, &[rows, cols]).unwrap())
                        .unwrap();
                    let mut v = vec![
                        y.read_blocking().unwrap(),
                        xt.grad().unwrap().read_blocking().unwrap(),
                    ];
                    if affine {
                        v.push(gt.grad().unwrap().read_blocking().unwrap());
                        v.push(bt.grad().unwrap().read_blocking().unwrap());
                    }
                    out.push(v);
                }
                for (k, (a, b)) in out[0].iter().zip(&out[1]).enumerate() {
                    assert_close(
                        &format!("layer_norm [{rows}, {cols}] affine={affine} output {k}"),
                        a,
                        b,
                        Tol {
                            abs: 1e-4,
                            rel: 1e-4,
                        },
                    );
                }
            }
        }
    }
}
