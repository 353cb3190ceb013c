//! `softmax_forward`: params and bindings of softmax / log-softmax over the last axis, one
//! workgroup per row.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("softmax_forward", "logsumexp", "grid", "rows");

/// `softmax_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "softmax_forward",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/softmax_forward.wgsl; `log` = 1 for log-softmax.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        pub log: u32,
        pub x_off: u32,
        pub y_off: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `softmax_forward` launch.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// Softmax (or log-softmax) of each row where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::SoftmaxForward,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.y.gpu_raw()],
            u64::from(p.rows),
        ),
        On::Cpu => {
            cpu::softmax_forward::softmax_forward(p, &host_read(b.x), &mut host_write(b.y));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{Device, Tensor};

    #[test]
    fn forward_and_backward_match_cpu_and_stay_finite_for_huge_logits() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for (rows, cols) in [(1, 1), (7, 3), (5, 257), (33, 1000)] {
            let x: Vec<f32> = randn(cols as u64, rows * cols)
                .iter()
                .enumerate()
                .map(|(i, v)| if i % 5 == 0 { v * 1e4 } else { *v })
                .collect();
            let dy = randn(3, rows * cols);
            for log in [false, true] {
                let mut out = Vec::new();
                for dev in [&g, &c] {
                    let xt = Tensor::from_slice(dev, &x, &[rows, cols])
                        .unwrap()
                        .requires_grad();
                    let y = if log { xt.log_softmax() } else { xt.softmax() }.unwrap();
                    y.backward_with(&Tensor::from_slice(dev, &dy, &[rows, cols]).unwrap())
                        .unwrap();
                    out.push((
                        y.read_blocking().unwrap(),
                        xt.grad().unwrap().read_blocking().unwrap(),
                    ));
                }
                for v in out[0].0.iter().chain(&out[0].1) {
                    assert!(v.is_finite(), "log={log} [{rows}, {cols}]: {v}");
                }
                let tol = Tol {
                    abs: 1e-5,
                    rel: 1e-4,
                };
                assert_close(
                    &format!("softmax log={log} y [{rows}, {cols}]"),
                    &out[0].0,
                    &out[1].0,
                    tol,
                );
                assert_close(
                    &format!("softmax log={log} dx [{rows}, {cols}]"),
                    &out[0].1,
                    &out[1].1,
                    tol,
                );
            }
        }
    }
}
