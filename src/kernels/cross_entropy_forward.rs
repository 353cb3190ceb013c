//! `cross_entropy_forward`: params and bindings of the fused log-softmax + NLL per row.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("cross_entropy_forward", "logsumexp", "grid", "rows");

/// `cross_entropy_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "cross_entropy_forward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/cross_entropy_forward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        pub x_off: u32,
        pub t_off: u32,
        pub ignore_index: i32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `cross_entropy_forward` launch.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub targets: &'a Tensor,
    /// [3, rows]: per-row loss, counted flag, log-sum-exp.
    pub out: &'a Tensor,
}

/// Per-row losses where `b.out` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.out) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::CrossEntropyForward,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.targets.gpu_raw(), b.out.gpu_raw()],
            u64::from(p.rows),
        ),
        On::Cpu => {
            cpu::cross_entropy_forward::cross_entropy_forward(
                p,
                &host_read(b.x),
                &host_read(b.targets),
                &mut host_write(b.out),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{CrossEntropy, Device, Reduction, Tensor};

    #[test]
    fn loss_and_gradient_match_cpu_with_ignore_index_and_both_reductions() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for (rows, cols) in [(1, 1), (7, 3), (64, 65), (300, 1000)] {
            let x: Vec<f32> = randn(rows as u64, rows * cols)
                .iter()
                .map(|v| v * 5.0)
                .collect();
            let t: Vec<f32> = (0..rows)
                .map(|r| {
                    if r % 5 == 3 {
                        -1.0
                    } else {
                        ((r * 7) % cols) as f32
                    }
                })
                .collect();
            for reduction in [Reduction::Mean, Reduction::Sum] {
                let mut out = Vec::new();
                for dev in [&g, &c] {
                    let xt = Tensor::from_slice(dev, &x, &[rows, cols])
                        .unwrap()
                        .requires_grad();
                    let tt = Tensor::from_slice(dev, &t, &[rows]).unwrap();
                    let loss = CrossEntropy::new()
                        .ignore_index(-1)
                        .reduction(reduction)
                        .compute(&xt, &tt)
                        .unwrap();
                    loss.scale(1.5).unwrap().backward().unwrap();
                    out.push((
                        loss.read_blocking().unwrap(),
                        xt.grad().unwrap().read_blocking().unwrap(),
                    ));
                }
                let what = format!("cross_entropy [{rows}, {cols}] {reduction:?}");
                assert_close(
                    &format!("{what} loss"),
                    &out[0].0,
                    &out[1].0,
                    Tol {
                        abs: 1e-5,
                        rel: 1e-5,
                    },
                );
                assert_close(
                    &format!("{what} grad"),
                    &out[0].1,
                    &out[1].1,
                    Tol {
                        abs: 1e-6,
                        rel: 1e-4,
                    },
                );
            }
        }
    }

    #[test]
    fn equals_log_softmax_then_nll_by_hand() {
        let dev = Device::Gpu(gpu());
        let x = [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.0];
        let logits = Tensor::from_slice(&dev, &x, &[2, 3]).unwrap();
        let t = Tensor::from_slice(&dev, &[2.0, 0.0], &[2]).unwrap();
        let got = CrossEntropy::new()
            .compute(&logits, &t)
            .unwrap()
            .read_blocking()
            .unwrap()[0];
        let lse = |r: &[f32]| r.iter().map(|v| v.exp()).sum::<f32>().ln();
        let want = ((lse(&x[..3]) - 3.0) + (lse(&x[3..]) + 1.0)) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
