//! `pool2d_forward`: params and bindings of max / average pooling over [N, C, H, W].

use bytemuck::{Pod, Zeroable};

use super::{record_flat, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("pool2d_forward", "grid");

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
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    x: &RawBuffer,
    y: &RawBuffer,
    argmax: &RawBuffer,
) -> Result<()> {
    let n = u64::from(p.planes) * u64::from(p.oh) * u64::from(p.ow);
    record_flat(
        gpu,
        Kernel::Pool2dForward,
        bytemuck::bytes_of(p),
        &[x, y, argmax],
        n,
    )
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
