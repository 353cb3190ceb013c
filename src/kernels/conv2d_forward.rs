//! `conv2d_forward`: the convolution geometry every conv kernel shares (`Params`, mirroring
//! `struct Params` in shaders/common/conv2d.wgsl) and the forward implicit GEMM's dispatch.
//! The parity tests of all three convolution kernels (GPU and CPU twin against a direct f64
//! convolution) live at the bottom.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{fold_grid, on, params, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("conv2d_forward", "conv2d", "grid", "row_sums");

/// `conv2d_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "conv2d_forward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

/// Columns per workgroup (CONV_WG · CONV_TN).
pub(crate) const TILE_COLS: u32 = 256;

/// Rows per workgroup (the `CONV_TM` override) for a GEMM with `rows` rows per group: the
/// largest of 16, 8, 4, 1 that pads the rows by at most a third, so wide layers get the most
/// reuse of each gathered column and narrow ones (depthwise, 3 input channels) compute no
/// dead rows. At most four pipelines per kernel.
pub(crate) fn tile_rows(rows: usize) -> u32 {
    [16u32, 8, 4, 1]
        .into_iter()
        .find(|&t| 3 * rows.div_ceil(t as usize) * t as usize <= 4 * rows)
        .unwrap_or(1)
}

params! {
    /// Mirrors `struct Params` in shaders/common/conv2d.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub n: u32,
        pub c_in: u32,
        pub h: u32,
        pub w: u32,
        pub c_out: u32,
        pub oh: u32,
        pub ow: u32,
        pub groups: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride_h: u32,
        pub stride_w: u32,
        pub pad_h: u32,
        pub pad_w: u32,
        pub dil_h: u32,
        pub dil_w: u32,
        /// Set by each kernel's owner: the grid of its GEMM.
        pub tiles_cols: u32,
        pub tiles_rows: u32,
        /// Split-K factor of the weight gradient (1 elsewhere).
        pub splits: u32,
        /// Output pixels summed by one split of the weight gradient (1 elsewhere; all of them on the
        /// host).
        pub per_split: u32,
        pub has_bias: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

impl Params {
    /// Input channels per group.
    pub fn cg(&self) -> usize {
        (self.c_in / self.groups) as usize
    }
    /// Output channels per group.
    pub fn mg(&self) -> usize {
        (self.c_out / self.groups) as usize
    }
    /// kh · kw.
    pub fn taps(&self) -> usize {
        (self.kh * self.kw) as usize
    }
    /// OH · OW.
    pub fn ohw(&self) -> usize {
        (self.oh * self.ow) as usize
    }
    /// H · W.
    pub fn hw(&self) -> usize {
        (self.h * self.w) as usize
    }
}

/// Records a conv kernel over a GEMM of `rows` × `cols` per group and `splits` K-splits.
pub(crate) fn record_gemm(
    gpu: &GpuInner,
    kernel: Kernel,
    p: &Params,
    rows: usize,
    cols: usize,
    buffers: &[&RawBuffer],
) -> Result<()> {
    let mut p = *p;
    let tm = tile_rows(rows);
    p.tiles_cols = (cols as u32).div_ceil(TILE_COLS);
    p.tiles_rows = (rows as u32).div_ceil(tm);
    let workgroups = u64::from(p.tiles_cols)
        * u64::from(p.tiles_rows)
        * u64::from(p.groups)
        * u64::from(p.splits.max(1));
    let workgroups = fold_grid(
        kernel.name(),
        workgroups,
        gpu.limits.max_compute_workgroups_per_dimension,
    )?;
    gpu.record(&Dispatch {
        kernel: kernel.desc(),
        overrides: &[("CONV_TM", f64::from(tm))],
        params: bytemuck::bytes_of(&p),
        buffers,
        workgroups,
    })
}

/// The tensors of one `conv2d_forward` launch; without a bias (`p.has_bias` = 0) the device
/// binds a stand-in it never reads.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub w: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    pub y: &'a Tensor,
}

/// y = conv(x, w) + bias where `b.y` lives: on a GPU an implicit GEMM of C_out/G rows by
/// N·OH·OW columns per group.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => {
            let bias = b.bias.map_or(&gpu.dummy, Tensor::gpu_raw);
            let buffers = [b.x.gpu_raw(), b.w.gpu_raw(), bias, b.y.gpu_raw()];
            let cols = p.n as usize * p.ohw();
            record_gemm(gpu, Kernel::Conv2dForward, p, p.mg(), cols, &buffers)
        }
        On::Cpu => {
            let bias = b.bias.map(host_read);
            cpu::conv2d_forward::conv2d_forward(
                p,
                &host_read(b.x),
                &host_read(b.w),
                bias.as_deref().map_or(&[][..], |v| v),
                &mut host_write(b.y),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Params;
    use crate::kernels::cpu;
    use crate::testing::{assert_close, assert_gradient, gpu, randn, randn64, Tol};
    use crate::{ConvOptions, Device, Tensor};

    /// One awkward configuration: (N, C_in, H, W), (C_out, kH, kW), options, bias.
    struct Case {
        x: [usize; 4],
        w: [usize; 3],
        o: ConvOptions,
        bias: bool,
    }

    fn case(
        x: [usize; 4],
        w: [usize; 3],
        s: [usize; 2],
        p: [usize; 2],
        d: usize,
        g: usize,
    ) -> Case {
        Case {
            x,
            w,
            o: ConvOptions {
                stride: s,
                padding: p,
                dilation: [d, d],
                groups: g,
            },
            bias: true,
        }
    }

    fn cases() -> Vec<Case> {
        let mut v = vec![
            case([1, 1, 1, 1], [1, 1, 1], [1, 1], [0, 0], 1, 1),
            case([2, 3, 7, 9], [5, 1, 1], [1, 1], [0, 0], 1, 1), // 1×1
            case([1, 3, 11, 13], [8, 3, 3], [1, 1], [1, 1], 1, 1), // 3×3, batch 1, C_in 3
            case([2, 1, 9, 9], [7, 5, 5], [2, 2], [2, 2], 1, 1), // 5×5, C_in 1, stride 2
            case([3, 4, 10, 7], [6, 3, 3], [2, 2], [1, 1], 2, 2), // dilation 2, groups 2
            case([2, 6, 8, 8], [6, 3, 3], [1, 1], [1, 1], 1, 6), // depthwise
            case([1, 3, 9, 5], [6, 3, 3], [1, 1], [0, 0], 1, 3), // depthwise, multiplier 2
            case([1, 2, 5, 6], [3, 3, 2], [2, 1], [0, 1], 1, 1), // non-square
            case([4, 16, 33, 31], [20, 3, 3], [1, 1], [1, 1], 1, 1), // past every tile
            case([4, 8, 24, 23], [32, 3, 3], [1, 1], [1, 1], 1, 2), // 16-row tiles, split K, groups
        ];
        v[1].bias = false;
        v[5].bias = false;
        v
    }

    /// Direct convolution in f64: y, dx, dw for an upstream gradient `dy`.
    #[allow(clippy::type_complexity, clippy::needless_range_loop)]
    fn direct(
        p: &Params,
        x: &[f64],
        w: &[f64],
        b: &[f64],
        dy: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (cg, mg) = (p.cg(), p.mg());
        let u = |v: u32| v as usize;
        let mut y = vec![0.0; u(p.n) * u(p.c_out) * p.ohw()];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        for n in 0..u(p.n) {
            for co in 0..u(p.c_out) {
                let g = co / mg;
                for oy in 0..u(p.oh) {
                    for ox in 0..u(p.ow) {
                        let yi = ((n * u(p.c_out) + co) * u(p.oh) + oy) * u(p.ow) + ox;
                        let mut s = if p.has_bias == 1 { b[co] } else { 0.0 };
                        for c in 0..cg {
                            for ky in 0..u(p.kh) {
                                for kx in 0..u(p.kw) {
                                    let iy = (oy * u(p.stride_h) + ky * u(p.dil_h)) as i64
                                        - i64::from(p.pad_h);
                                    let ix = (ox * u(p.stride_w) + kx * u(p.dil_w)) as i64
                                        - i64::from(p.pad_w);
                                    if iy < 0
                                        || ix < 0
                                        || iy >= i64::from(p.h)
                                        || ix >= i64::from(p.w)
                                    {
                                        continue;
                                    }
                                    let xi = ((n * u(p.c_in) + g * cg + c) * u(p.h) + iy as usize)
                                        * u(p.w)
                                        + ix as usize;
                                    let wi = ((co * cg + c) * u(p.kh) + ky) * u(p.kw) + kx;
                                    s += w[wi] * x[xi];
                                    dx[xi] += w[wi] * dy[yi];
                                    dw[wi] += x[xi] * dy[yi];
                                }
                            }
                        }
                        y[yi] = s;
                    }
                }
            }
        }
        (y, dx, dw)
    }

    fn f32s(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&a| a as f32).collect()
    }

    #[test]
    fn gpu_and_cpu_match_a_direct_convolution_forward_and_backward() {
        let tol = Tol {
            abs: 2e-4,
            rel: 2e-4,
        };
        for (ci, c) in cases().iter().enumerate() {
            let [n, c_in, h, w] = c.x;
            let [c_out, kh, kw] = c.w;
            let wshape = [c_out, c_in / c.o.groups, kh, kw];
            let xs = randn(ci as u64, n * c_in * h * w);
            let ws = randn(100 + ci as u64, wshape.iter().product());
            let bs = randn(200 + ci as u64, c_out);
            for dev in [Device::Gpu(gpu()), Device::Cpu] {
                let xt = Tensor::from_slice(&dev, &xs, &c.x).unwrap().requires_grad();
                let wt = Tensor::from_slice(&dev, &ws, &wshape)
                    .unwrap()
                    .requires_grad();
                let bt = Tensor::from_slice(&dev, &bs, &[c_out])
                    .unwrap()
                    .requires_grad();
                let y = xt.conv2d(&wt, c.bias.then_some(&bt), &c.o).unwrap();
                let dys = randn(300 + ci as u64, y.numel());
                y.backward_with(&Tensor::from_slice(&dev, &dys, y.shape()).unwrap())
                    .unwrap();

                let s = y.shape();
                let p = Params {
                    n: n as u32,
                    c_in: c_in as u32,
                    h: h as u32,
                    w: w as u32,
                    c_out: c_out as u32,
                    oh: s[2] as u32,
                    ow: s[3] as u32,
                    groups: c.o.groups as u32,
                    kh: kh as u32,
                    kw: kw as u32,
                    stride_h: c.o.stride[0] as u32,
                    stride_w: c.o.stride[1] as u32,
                    pad_h: c.o.padding[0] as u32,
                    pad_w: c.o.padding[1] as u32,
                    dil_h: c.o.dilation[0] as u32,
                    dil_w: c.o.dilation[1] as u32,
                    has_bias: u32::from(c.bias),
                    ..Default::default()
                };
                let d = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<_>>();
                let (ry, rdx, rdw) = direct(&p, &d(&xs), &d(&ws), &d(&bs), &d(&dys));
                let what = format!("conv2d case {ci} on {dev}");
                assert_close(
                    &format!("{what} y"),
                    &y.read_blocking().unwrap(),
                    &f32s(&ry),
                    tol,
                );
                assert_close(
                    &format!("{what} dx"),
                    &xt.grad().unwrap().read_blocking().unwrap(),
                    &f32s(&rdx),
                    tol,
                );
                let dw = wt.grad().unwrap().read_blocking().unwrap();
                assert_close(&format!("{what} dw"), &dw, &f32s(&rdw), tol);
                if c.bias {
                    let mut rdb = vec![0.0f32; c_out];
                    for (i, v) in dys.iter().enumerate() {
                        rdb[(i / p.ohw()) % c_out] += v;
                    }
                    assert_close(
                        &format!("{what} db"),
                        &bt.grad().unwrap().read_blocking().unwrap(),
                        &rdb,
                        tol,
                    );
                } else {
                    assert!(bt.grad().is_none());
                }
            }
        }
    }

    #[test]
    fn weight_gradient_splits_k_and_is_deterministic() {
        let g = Device::Gpu(gpu());
        let x = Tensor::from_slice(&g, &randn(1, 8 * 16 * 20 * 20), &[8, 16, 20, 20]).unwrap();
        let w = Tensor::from_slice(&g, &randn(2, 32 * 16 * 9), &[32, 16, 3, 3])
            .unwrap()
            .requires_grad();
        let o = ConvOptions::default().padding(1);
        let p = Params {
            n: 8,
            c_in: 16,
            h: 20,
            w: 20,
            c_out: 32,
            oh: 20,
            ow: 20,
            groups: 1,
            kh: 3,
            kw: 3,
            ..Default::default()
        };
        let ps = super::super::conv2d_backward_weight::with_splits(&p, &x);
        assert!(
            ps.splits > 1 && ps.splits * ps.per_split >= 8 * 400,
            "{ps:?}"
        );
        let mut runs = Vec::new();
        for _ in 0..2 {
            w.zero_grad();
            x.conv2d(&w, None, &o)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            runs.push(w.grad().unwrap().read_blocking().unwrap());
        }
        assert_eq!(
            runs[0].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            runs[1].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "two runs of the weight gradient differ in their bits"
        );
    }

    #[test]
    fn cpu_twins_match_finite_differences() {
        let p = Params {
            n: 2,
            c_in: 4,
            h: 6,
            w: 5,
            c_out: 4,
            oh: 2,
            ow: 2,
            groups: 2,
            kh: 3,
            kw: 2,
            stride_h: 2,
            stride_w: 2,
            pad_h: 1,
            pad_w: 1,
            dil_h: 2,
            dil_w: 2,
            has_bias: 1,
            ..Default::default()
        };
        // OH = (6 + 2 − 2·2 − 1)/2 + 1 = 2, OW = (5 + 2 − 2 − 1)/2 + 1 = 3.
        let p = Params { ow: 3, ..p };
        let (nx, nw, ny) = (2 * 4 * 6 * 5, 4 * 2 * 3 * 2, 2 * 4 * 2 * 3);
        let (x, w, b, up) = (
            randn64(1, nx),
            randn64(2, nw),
            randn64(3, 4),
            randn64(4, ny),
        );
        let loss = |x: &[f64], w: &[f64]| {
            let mut y = vec![0.0; ny];
            cpu::conv2d_forward::conv2d_forward(&p, x, w, &b, &mut y);
            y.iter().zip(&up).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut dx = vec![0.0; nx];
        cpu::conv2d_backward_data::conv2d_backward_data(&p, &up, &w, &mut dx);
        let mut dw = vec![0.0; nw];
        cpu::conv2d_backward_weight::conv2d_backward_weight(&p, &up, &x, &mut dw);
        assert_gradient("conv2d dx", |x| loss(x, &w), &x, &dx, 1e-6);
        assert_gradient("conv2d dw", |w| loss(&x, w), &w, &dw, 1e-6);
    }

    #[test]
    fn tile_rows_fill_the_rows() {
        use super::tile_rows;
        let got: Vec<u32> = [1, 2, 3, 6, 8, 12, 16, 20, 32, 64, 100]
            .map(tile_rows)
            .to_vec();
        assert_eq!(got, [1, 1, 4, 8, 8, 16, 16, 8, 16, 16, 16]);
    }

    /// Conv1d against a direct 1-D convolution written out here (not against the conv2d call
    /// it is built from), with stride, padding, dilation, groups and bias, on both devices.
    #[test]
    fn conv1d_matches_a_direct_one_dimensional_convolution() {
        let (n, c, l, o, k, g) = (2, 4, 11, 6, 3, 2);
        let (stride, pad, dil) = (2, 1, 2);
        let (xs, ws, bs) = (randn(5, n * c * l), randn(6, o * (c / g) * k), randn(7, o));
        let ol = (l + 2 * pad - dil * (k - 1) - 1) / stride + 1;
        let mut want = vec![0.0f32; n * o * ol];
        for (ni, oi, li) in
            (0..n).flat_map(|a| (0..o).flat_map(move |b| (0..ol).map(move |c| (a, b, c))))
        {
            let group = oi / (o / g);
            let mut acc = f64::from(bs[oi]);
            for ci in 0..c / g {
                for ki in 0..k {
                    // Input position of tap ki, in padded coordinates.
                    let at = li * stride + ki * dil;
                    if at < pad || at - pad >= l {
                        continue;
                    }
                    let xv = xs[(ni * c + group * (c / g) + ci) * l + at - pad];
                    acc += f64::from(ws[(oi * (c / g) + ci) * k + ki]) * f64::from(xv);
                }
            }
            want[(ni * o + oi) * ol + li] = acc as f32;
        }
        let opts = ConvOptions::default()
            .stride(stride)
            .padding(pad)
            .dilation(dil)
            .groups(g);
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let x = Tensor::from_slice(&dev, &xs, &[n, c, l]).unwrap();
            let w = Tensor::from_slice(&dev, &ws, &[o, c / g, k]).unwrap();
            let b = Tensor::from_slice(&dev, &bs, &[o]).unwrap();
            let y = x.conv1d(&w, Some(&b), &opts).unwrap();
            assert_eq!(y.shape(), [n, o, ol]);
            assert_close(
                &format!("conv1d {dev:?}"),
                &y.read_blocking().unwrap(),
                &want,
                Tol {
                    abs: 1e-5,
                    rel: 1e-5,
                },
            );
        }
    }

    /// An empty batch: an empty output, and zero (not missing) parameter gradients.
    #[test]
    fn an_empty_batch_gives_zero_weight_gradients() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let x = Tensor::zeros(&dev, &[0, 3, 5, 5]).unwrap().requires_grad();
            let w = Tensor::from_slice(&dev, &randn(1, 4 * 27), &[4, 3, 3, 3])
                .unwrap()
                .requires_grad();
            let b = Tensor::from_slice(&dev, &[1.0; 4], &[4])
                .unwrap()
                .requires_grad();
            let y = x.conv2d(&w, Some(&b), &ConvOptions::default()).unwrap();
            assert_eq!(y.shape(), [0, 4, 3, 3]);
            y.backward_with(&Tensor::zeros(&dev, &[0, 4, 3, 3]).unwrap())
                .unwrap();
            assert_eq!(
                w.grad().unwrap().read_blocking().unwrap(),
                vec![0.0; 4 * 27]
            );
            assert_eq!(b.grad().unwrap().read_blocking().unwrap(), vec![0.0; 4]);
        }
    }

    #[test]
    fn bad_shapes_and_options_are_typed_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros(&dev, &[1, 4, 5, 5]).unwrap();
        let w = Tensor::zeros(&dev, &[6, 2, 3, 3]).unwrap();
        let e = |r: crate::Result<Tensor>| r.unwrap_err().to_string();
        assert!(e(x.conv2d(&w, None, &ConvOptions::default())).contains("C_in/groups"));
        assert!(e(x.conv2d(&w, None, &ConvOptions::default().groups(3))).contains("groups"));
        let w1 = Tensor::zeros(&dev, &[6, 4, 7, 7]).unwrap();
        assert!(e(x.conv2d(&w1, None, &ConvOptions::default())).contains("padded input"));
        let w2 = Tensor::zeros(&dev, &[6, 4, 3, 3]).unwrap();
        assert!(e(x.conv2d(&w2, None, &ConvOptions::default().stride(0))).contains("at least 1"));
        for huge in [
            ConvOptions::default().padding(usize::MAX / 2),
            ConvOptions::default().dilation(1 << 40),
            ConvOptions::default().stride(1 << 31),
        ] {
            assert!(e(x.conv2d(&w2, None, &huge)).contains("2^31"), "{huge:?}");
        }
        let b = Tensor::zeros(&dev, &[5]).unwrap();
        assert!(e(x.conv2d(&w2, Some(&b), &ConvOptions::default())).contains("bias"));
        assert!(e(x
            .reshape(&[4, 25])
            .unwrap()
            .conv2d(&w2, None, &ConvOptions::default()))
        .contains("[N, C_in, H, W]"));
    }
}
