//! `batch_norm_forward`: params and bindings of per-channel batch normalisation (training with
//! batch statistics and the running-statistics update, or evaluation with running statistics).

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("batch_norm_forward", "channels", "grid", "rows");

/// `batch_norm_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "batch_norm_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/batch_norm_forward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub n: u32,
        pub c: u32,
        /// Elements per (sample, channel): H·W, or 1.
        pub s: u32,
        /// 1: batch statistics; 0: running statistics.
        pub training: u32,
        pub momentum: f32,
        pub eps: f32,
        /// 1 when γ and β apply.
        pub affine: u32,
        /// 1 when training updates the running statistics.
        pub track: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `batch_norm_forward` launch. Without γ and β (`p.affine` = 0) the device
/// binds stand-ins it never reads; the running statistics are written only when `p.track` is 1.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub affine: Option<(&'a Tensor, &'a Tensor)>,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    pub y: &'a Tensor,
    /// [2, C]: the mean and 1/σ used, for the backward.
    pub stats: &'a Tensor,
}

/// Normalises each channel where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => {
            let (gamma, beta) = b.affine.map_or((&gpu.dummy, &gpu.dummy), |(g, bt)| {
                (g.gpu_raw(), bt.gpu_raw())
            });
            record_rows(
                gpu,
                Kernel::BatchNormForward,
                bytemuck::bytes_of(p),
                &[
                    b.x.gpu_raw(),
                    gamma,
                    beta,
                    b.running_mean.gpu_raw(),
                    b.running_var.gpu_raw(),
                    b.y.gpu_raw(),
                    b.stats.gpu_raw(),
                ],
                u64::from(p.c),
            )
        }
        On::Cpu => {
            let gb = b.affine.map(|(g, bt)| (host_read(g), host_read(bt)));
            cpu::batch_norm_forward::batch_norm_forward(
                p,
                &host_read(b.x),
                gb.as_ref().map(|(g, bt)| (&g[..], &bt[..])),
                (
                    &mut host_write(b.running_mean),
                    &mut host_write(b.running_var),
                ),
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
    fn training_and_evaluation_match_cpu_with_every_gradient_and_running_stats() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        let tol = Tol {
            abs: 1e-5,
            rel: 1e-4,
        };
        for shape in [
            vec![2, 1],
            vec![3, 5, 7],
            vec![4, 3, 5, 5],
            vec![1, 7, 17, 13],
            vec![2, 2, 300],
        ] {
            let ch = shape[1];
            let numel: usize = shape.iter().product();
            let x: Vec<f32> = randn(numel as u64, numel)
                .iter()
                .map(|v| v * 2.0 + 0.5)
                .collect();
            let (gv, bv, dyv) = (randn(1, ch), randn(2, ch), randn(3, numel));
            let rv0: Vec<f32> = randn(4, ch).iter().map(|v| v.abs() + 0.5).collect();
            for training in [true, false] {
                for affine in [false, true] {
                    let mut out = Vec::new();
                    for dev in [&g, &c] {
                        let xt = Tensor::from_slice(dev, &x, &shape).unwrap().requires_grad();
                        let gt = Tensor::from_slice(dev, &gv, &[ch]).unwrap().requires_grad();
                        let bt = Tensor::from_slice(dev, &bv, &[ch]).unwrap().requires_grad();
                        let rm = Tensor::from_slice(dev, &randn(5, ch), &[ch]).unwrap();
                        let rv = Tensor::from_slice(dev, &rv0, &[ch]).unwrap();
                        let y = xt
                            .batch_norm(
                                Some((&rm, &rv)),
                                affine.then_some((&gt, &bt)),
                                training,
                                0.1,
                                1e-5,
                            )
                            .unwrap();
                        y.backward_with(&Tensor::from_slice(dev, &dyv, &shape).unwrap())
                            .unwrap();
                        let mut v = vec![
                            y.read_blocking().unwrap(),
                            xt.grad().unwrap().read_blocking().unwrap(),
                            rm.read_blocking().unwrap(),
                            rv.read_blocking().unwrap(),
                        ];
                        if affine {
                            v.push(gt.grad().unwrap().read_blocking().unwrap());
                            v.push(bt.grad().unwrap().read_blocking().unwrap());
                        }
                        out.push(v);
                    }
                    for (i, name) in ["y", "dx", "running_mean", "running_var", "dgamma", "dbeta"]
                        .iter()
                        .enumerate()
                        .take(out[0].len())
                    {
                        assert_close(
                            &format!(
                                "batch_norm {shape:?} training={training} affine={affine} {name}"
                            ),
                            &out[0][i],
                            &out[1][i],
                            tol,
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn misuse_is_a_typed_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros(&dev, &[1, 3]).unwrap();
        let r = Tensor::zeros(&dev, &[3]).unwrap();
        let e = |res: crate::Result<Tensor>| res.unwrap_err().to_string();
        assert!(e(x.batch_norm(None, None, true, 0.1, 1e-5)).contains("more than one value"));
        assert!(e(x.batch_norm(None, None, false, 0.1, 1e-5)).contains("running statistics"));
        assert!(e(x.batch_norm(Some((&r, &r)), None, false, 0.1, 1e-5)).contains("two whole"));
        // An empty input in evaluation is an empty output, and its backward records nothing.
        let empty = Tensor::zeros(&dev, &[2, 3, 0]).unwrap().requires_grad();
        let y = empty
            .batch_norm(
                Some((&r, &Tensor::zeros(&dev, &[3]).unwrap())),
                None,
                false,
                0.1,
                1e-5,
            )
            .unwrap();
        assert_eq!(y.shape(), [2, 3, 0]);
        y.backward_with(&Tensor::zeros(&dev, &[2, 3, 0]).unwrap())
            .unwrap();
        // With γ and β, they still get a (zero) gradient, as in PyTorch.
        let gamma = Tensor::from_slice(&dev, &[1.0; 3], &[3])
            .unwrap()
            .requires_grad();
        let beta = Tensor::zeros(&dev, &[3]).unwrap().requires_grad();
        let y = empty
            .batch_norm(
                Some((&r, &Tensor::from_slice(&dev, &[1.0; 3], &[3]).unwrap())),
                Some((&gamma, &beta)),
                false,
                0.1,
                1e-5,
            )
            .unwrap();
        y.backward_with(&Tensor::zeros(&dev, &[2, 3, 0]).unwrap())
            .unwrap();
        for t in [&gamma, &beta] {
            assert_eq!(t.grad().unwrap().read_blocking().unwrap(), [0.0; 3]);
        }
        let bad = Tensor::zeros(&dev, &[4]).unwrap();
        assert!(e(x.batch_norm(Some((&r, &bad)), None, false, 0.1, 1e-5)).contains("[3]"));
    }
}
