//! `pool2d_forward`: params and bindings of max / average pooling over [N, C, H, W].

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_flat, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("pool2d_forward", "grid", "float");

/// `pool2d_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "pool2d_forward",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/pool2d_forward.wgsl (and the backward's).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        /// N·C.
        pub planes: u32,
        pub h: u32,
        pub w: u32,
        pub oh: u32,
        pub ow: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride: u32,
        pub pad: u32,
        /// 1 for max pooling, 0 for average.
        pub max: u32,
        pub x_off: u32,
        pub _pad: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `pool2d_forward` launch.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
    /// The winning tap's offset inside its window (max pooling), for the backward.
    pub argmax: &'a Tensor,
}

/// Pools every plane where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_flat(
            gpu,
            Kernel::Pool2dForward,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.y.gpu_raw(), b.argmax.gpu_raw()],
            u64::from(p.planes) * u64::from(p.oh) * u64::from(p.ow),
        ),
        On::Cpu => {
            cpu::pool2d_forward::pool2d_forward(
                p,
                &host_read(b.x),
                &mut host_write(b.y),
                &mut host_write(b.argmax),
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
    fn max_and_average_pooling_match_cpu_forward_and_backward() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for &(n, ch, h, w, k, s, p) in &[
            (1, 1, 1, 1, 1, 1, 0),
            (2, 3, 7, 9, 2, 2, 0),
            (1, 2, 8, 8, 3, 2, 1),
            (2, 1, 13, 11, 3, 1, 1),
            (1, 3, 5, 5, 5, 3, 2),
        ] {
            for max in [true, false] {
                let x = randn((h * w) as u64, n * ch * h * w);
                let mut out = Vec::new();
                for dev in [&g, &c] {
                    let xt = Tensor::from_slice(dev, &x, &[n, ch, h, w])
                        .unwrap()
                        .requires_grad();
                    let y = if max {
                        xt.max_pool2d(k, s, p)
                    } else {
                        xt.avg_pool2d(k, s, p)
                    }
                    .unwrap();
                    let dy = randn(9, y.numel());
                    y.backward_with(&Tensor::from_slice(dev, &dy, y.shape()).unwrap())
                        .unwrap();
                    out.push((
                        y.read_blocking().unwrap(),
                        xt.grad().unwrap().read_blocking().unwrap(),
                    ));
                }
                let what = format!("pool max={max} [{n}, {ch}, {h}, {w}] k={k} s={s} p={p}");
                assert_close(
                    &format!("{what} y"),
                    &out[0].0,
                    &out[1].0,
                    Tol {
                        abs: 1e-6,
                        rel: 1e-6,
                    },
                );
                assert_close(
                    &format!("{what} dx"),
                    &out[0].1,
                    &out[1].1,
                    Tol {
                        abs: 1e-6,
                        rel: 1e-5,
                    },
                );
            }
        }
    }

    /// PyTorch's rule on both devices: a tie goes to the first maximum, a NaN wins (the last
    /// NaN), an all −inf window picks its first tap, and each gradient lands inside its window.
    #[test]
    fn max_pooling_breaks_ties_and_propagates_nan_as_torch_does() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        #[rustfmt::skip]
        let x = [
            1.0, 1.0, nan, -inf, -inf, -inf,
            0.0, 1.0, nan, -inf, -inf, -inf,
        ];
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let xt = Tensor::from_slice(&dev, &x, &[1, 1, 2, 6])
                .unwrap()
                .requires_grad();
            let y = xt.max_pool2d(2, 2, 0).unwrap();
            let got = y.read_blocking().unwrap();
            assert!(
                got[0] == 1.0 && got[1].is_nan() && got[2] == -inf,
                "{dev:?}: {got:?}"
            );
            y.backward_with(&Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], y.shape()).unwrap())
                .unwrap();
            let dx = xt.grad().unwrap().read_blocking().unwrap();
            #[rustfmt::skip]
            let want = [
                1.0, 0.0, 0.0, 0.0, 3.0, 0.0,
                0.0, 0.0, 2.0, 0.0, 0.0, 0.0,
            ];
            assert_eq!(dx, want, "{dev:?}");
        }
    }

    /// A plane past 2^24 elements, where a flat index saved as f32 would round to a
    /// neighbour: the winner at row 1, column W − 1 (flat 2^24 + 3) gets its gradient.
    #[test]
    fn max_pooling_routes_gradients_on_planes_past_two_to_the_24() {
        let w = (1 << 23) + 2;
        let mut x = vec![0.0f32; 2 * w];
        x[2 * w - 1] = 1.0;
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let xt = Tensor::from_slice(&dev, &x, &[1, 1, 2, w])
                .unwrap()
                .requires_grad();
            let y = xt.max_pool2d(2, 2, 0).unwrap();
            assert_eq!(y.shape(), [1, 1, 1, w / 2]);
            y.sum_all().unwrap().backward().unwrap();
            let dx = xt.grad().unwrap().read_blocking().unwrap();
            assert_eq!(dx[2 * w - 1], 1.0, "{dev:?}");
            assert_eq!(dx.iter().sum::<f32>(), (w / 2) as f32, "{dev:?}");
        }
    }

    #[test]
    fn bad_pooling_arguments_are_typed_errors() {
        let x = Tensor::zeros(&Device::Gpu(gpu()), &[1, 1, 4, 4]).unwrap();
        let empty = Tensor::zeros(&Device::Cpu, &[1, 1, 0, 5]).unwrap();
        for (what, r) in [
            ("huge stride", x.max_pool2d(2, 1 << 33, 0)),
            ("huge kernel", x.max_pool2d(65_536, 1, 32_768)),
            ("huge padding", x.avg_pool2d(2, 1, usize::MAX)),
            ("padding past half", x.max_pool2d(2, 1, 2)),
            ("kernel past the input", x.max_pool2d(5, 1, 0)),
            ("zero stride", x.avg_pool2d(2, 0, 0)),
            ("empty plane", empty.max_pool2d(2, 1, 1)),
        ] {
            match r {
                Err(crate::Error::InvalidArgument { op, .. }) => {
                    assert!(op.ends_with("pool2d"), "{what}: {op}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let batch0 = Tensor::zeros(&Device::Gpu(gpu()), &[0, 2, 4, 4]).unwrap();
        assert_eq!(batch0.max_pool2d(2, 2, 0).unwrap().shape(), [0, 2, 2, 2]);
    }

    #[test]
    fn global_average_pooling_is_the_plane_mean_with_its_gradient() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let x: Vec<f32> = (0..2 * 3 * 5 * 7).map(|v| v as f32).collect();
            let xt = Tensor::from_slice(&dev, &x, &[2, 3, 5, 7])
                .unwrap()
                .requires_grad();
            let y = xt.global_avg_pool2d().unwrap();
            assert_eq!(y.shape(), [2, 3, 1, 1]);
            let want: Vec<f32> = x.chunks(35).map(|p| p.iter().sum::<f32>() / 35.0).collect();
            assert_close(
                "gap",
                &y.read_blocking().unwrap(),
                &want,
                Tol {
                    abs: 1e-4,
                    rel: 1e-6,
                },
            );
            y.sum_all().unwrap().backward().unwrap();
            let g = xt.grad().unwrap().read_blocking().unwrap();
            assert!(g.iter().all(|&v| (v - 1.0 / 35.0).abs() < 1e-7), "{g:?}");
        }
    }
}
