//! `unary_backward`: params and bindings of dx = α · dy · f'(x) for the unary maps.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("unary_backward", "activations", "grid");

/// `unary_backward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "unary_backward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/unary_backward.wgsl. `op` is a `UnaryOp` code.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub numel: u32,
        pub op: u32,
        pub x_off: u32,
        pub dy_off: u32,
        pub dx_off: u32,
        pub alpha: f32,
        pub slope: f32,
        pub _pad: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `unary_backward` launch, in binding order.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub dy: &'a Tensor,
    pub dx: &'a Tensor,
}

/// Runs `unary_backward` where `b.dx` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.dx) {
        On::Gpu(gpu) => record_strided(
            gpu,
            Kernel::UnaryBackward,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.dy.gpu_raw(), b.dx.gpu_raw()],
            u64::from(p.numel),
        ),
        On::Cpu => {
            cpu::unary_backward::unary_backward(
                p,
                &host_read(b.x),
                &host_read(b.dy),
                &mut host_write(b.dx),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::unary::UnaryOp;
    use crate::testing::{assert_close, gpu, randn, Tol, AWKWARD};
    use crate::{Device, Tensor};

    #[test]
    fn matches_cpu_for_every_op_on_awkward_sizes() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for op in UnaryOp::ALL {
            for &n in &AWKWARD {
                let x: Vec<f32> = randn(op as u64, n)
                    .iter()
                    .map(|v| {
                        if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) {
                            v.abs() + 0.5
                        } else {
                            v * 3.0
                        }
                    })
                    .collect();
                let dy = randn(7 + n as u64, n);
                let mut out = Vec::new();
                for dev in [&g, &c] {
                    let xt = Tensor::from_slice(dev, &x, &[n]).unwrap();
                    let dyt = Tensor::from_slice(dev, &dy, &[n]).unwrap();
                    out.push(
                        xt.unary_backward(op, 0.7, 0.2, &dyt)
                            .unwrap()
                            .read_blocking()
                            .unwrap(),
                    );
                }
                assert_close(
                    &format!("{op:?} n={n}"),
                    &out[0],
                    &out[1],
                    Tol {
                        abs: 1e-6,
                        rel: 1e-5,
                    },
                );
            }
        }
    }
}
