//! Convolution over NCHW (2-D) and NCL (1-D, as 2-D with H = 1): shape checks, the forward and
//! both backward passes on the tape. The GPU path runs the three implicit-GEMM kernels (no
//! im2col buffer); the CPU path runs their twins (im2col + GEMM on all cores).

use crate::error::{shape_str, Error, Result};
use crate::kernels::{conv2d_backward_data, conv2d_backward_weight, conv2d_forward};
use crate::ops::{same_device, u32_of};
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

/// Stride, zero padding, dilation and groups of a convolution, as PyTorch's `F.conv2d` takes
/// them ([height, width] pairs; the default is stride 1, no padding, dilation 1, one group).
///
/// ```
/// use timeloom::ConvOptions;
/// let depthwise = ConvOptions::default().padding(1).groups(32);
/// assert_eq!(depthwise.padding, [1, 1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions {
    /// Step between windows, [height, width].
    pub stride: [usize; 2],
    /// Zeros added on each side, [height, width].
    pub padding: [usize; 2],
    /// Spacing between kernel taps, [height, width].
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels are split into this many independent
    /// convolutions (groups = channels is depthwise).
    pub groups: usize,
}

impl Default for ConvOptions {
    fn default() -> Self {
        ConvOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl ConvOptions {
    /// The same stride along both axes.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// The same padding along both axes.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    /// The same dilation along both axes.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// Channel groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

/// Checks shapes and options and returns the kernels' geometry.
fn geometry(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    o: &ConvOptions,
) -> Result<conv2d_forward::Params> {
    same_device(op, "weight", x, w)?;
    let [n, c_in, h, wd] = *x.shape() else {
        return Err(Error::ShapeMismatch {
            op,
            arg: "input",
            expected: "[N, C_in, H, W]".into(),
            got: shape_str(x.shape()),
        });
    };
    let [c_out, cg, kh, kw] = *w.shape() else {
        return Err(Error::ShapeMismatch {
            op,
            arg: "weight",
            expected: "[C_out, C_in/groups, kH, kW]".into(),
            got: shape_str(w.shape()),
        });
    };
    let invalid = |message: String| Error::InvalidArgument { op, message };
    if o.groups == 0 || o.stride.contains(&0) || o.dilation.contains(&0) {
        return Err(invalid(format!(
            "stride {:?}, dilation {:?} and groups {} must be at least 1",
            o.stride, o.dilation, o.groups
        )));
    }
    if c_in == 0 || c_out == 0 || kh == 0 || kw == 0 {
        return Err(invalid(format!(
            "empty channels or kernel: input {}, weight {}",
            shape_str(x.shape()),
            shape_str(w.shape())
        )));
    }
    if !c_in.is_multiple_of(o.groups) || !c_out.is_multiple_of(o.groups) {
        return Err(invalid(format!(
            "{c_in} input and {c_out} output channels do not split into {} groups",
            o.groups
        )));
    }
    if cg != c_in / o.groups {
        return Err(Error::ShapeMismatch {
            op,
            arg: "weight",
            expected: format!(
                "[{c_out}, {}, kH, kW] (C_in/groups = {c_in}/{})",
                c_in / o.groups,
                o.groups
            ),
            got: shape_str(w.shape()),
        });
    }
    if let Some(b) = bias {
        same_device(op, "bias", x, b)?;
        if b.shape() != [c_out] {
            return Err(Error::ShapeMismatch {
                op,
                arg: "bias",
                expected: format!("[{c_out}]"),
                got: shape_str(b.shape()),
            });
        }
    }
    // The kernels address pixels with signed 32-bit arithmetic: every extent they compute
    // must fit. Checked here in u128, so no option can overflow the host side either.
    let limit = i32::MAX as u128;
    let wide = |v: usize| v as u128;
    let span = |k: usize, d: usize| (wide(k) - 1) * wide(d) + 1;
    let extents = [
        wide(h) + 2 * wide(o.padding[0]),
        wide(wd) + 2 * wide(o.padding[1]),
        span(kh, o.dilation[0]),
        span(kw, o.dilation[1]),
        wide(o.stride[0]),
        wide(o.stride[1]),
        wide(o.groups),
    ];
    if extents.iter().any(|&e| e > limit) {
        return Err(invalid(format!(
            "stride {:?}, padding {:?}, dilation {:?} or groups {} make an extent past 2^31 − 1 on input {} and weight {}: use smaller options",
            o.stride,
            o.padding,
            o.dilation,
            o.groups,
            shape_str(x.shape()),
            shape_str(w.shape())
        )));
    }
    let span_h = (kh - 1) * o.dilation[0] + 1;
    let span_w = (kw - 1) * o.dilation[1] + 1;
    if h + 2 * o.padding[0] < span_h || wd + 2 * o.padding[1] < span_w {
        return Err(invalid(format!(
            "a {kh}×{kw} kernel with dilation {:?} spans {span_h}×{span_w}, more than the padded input {}×{}: pad more or use a smaller kernel",
            o.dilation,
            h + 2 * o.padding[0],
            wd + 2 * o.padding[1]
        )));
    }
    Ok(conv2d_forward::Params {
        n: u32_of(n),
        c_in: u32_of(c_in),
        h: u32_of(h),
        w: u32_of(wd),
        c_out: u32_of(c_out),
        oh: u32_of((h + 2 * o.padding[0] - span_h) / o.stride[0] + 1),
        ow: u32_of((wd + 2 * o.padding[1] - span_w) / o.stride[1] + 1),
        groups: u32_of(o.groups),
        kh: u32_of(kh),
        kw: u32_of(kw),
        stride_h: u32_of(o.stride[0]),
        stride_w: u32_of(o.stride[1]),
        pad_h: u32_of(o.padding[0]),
        pad_w: u32_of(o.padding[1]),
        dil_h: u32_of(o.dilation[0]),
        dil_w: u32_of(o.dilation[1]),
        splits: 1,
        per_split: 1,
        has_bias: u32::from(bias.is_some()),
        ..Default::default()
    })
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch's `F.conv2d`) of `self` with `weight`,
    /// plus `bias`. Differentiable in all three.
    ///
    /// ```
    /// use timeloom::{ConvOptions, Device, Tensor};
    /// let x = Tensor::zeros(&Device::Cpu, &[2, 3, 28, 28])?;
    /// let w = Tensor::zeros(&Device::Cpu, &[8, 3, 3, 3])?;
    /// let y = x.conv2d(&w, None, &ConvOptions::default().stride(2).padding(1))?;
    /// assert_eq!(y.shape(), [2, 8, 14, 14]);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Shapes
    /// self [N, C_in, H, W]; `weight` [C_out, C_in/groups, kH, kW]; `bias` \[C_out\]; result
    /// [N, C_out, OH, OW] with OH = (H + 2·pad − dil·(kH − 1) − 1)/stride + 1 (and OW alike).
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        options: &ConvOptions,
    ) -> Result<Tensor> {
        let op = "conv2d";
        let p = geometry(op, self, weight, bias, options)?;
        let (n, c_out) = (p.n as usize, p.c_out as usize);
        let (oh, ow) = (p.oh as usize, p.ow as usize);
        let x = self.owned()?;
        let w = weight.owned()?;
        let b = bias.map(Tensor::owned).transpose()?;
        let y = x.output_like(&[n, c_out, oh, ow], op)?;
        if y.numel() > 0 {
            let bindings = conv2d_forward::Bindings {
                x: &x,
                w: &w,
                bias: b.as_ref(),
                y: &y,
            };
            conv2d_forward::launch(&p, &bindings)?;
        }
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Ok(record(y, op, &inputs, move |grads, dy| {
            let dy = dy.owned()?;
            if dy.numel() == 0 {
                return grads.add_zeros_to_all();
            }
            if grads.wants(0) {
                let dx = x.output_like(x.shape(), "conv2d_backward_data")?;
                let b = conv2d_backward_data::Bindings {
                    dy: &dy,
                    w: &w,
                    dx: &dx,
                };
                conv2d_backward_data::launch(&p, &b)?;
                grads.add(0, dx)?;
            }
            if grads.wants(1) {
                let ps = conv2d_backward_weight::with_splits(&p, &x);
                let k = ps.cg() * ps.taps();
                let part =
                    x.output_like(&[ps.splits as usize, c_out * k], "conv2d_backward_weight")?;
                let b = conv2d_backward_weight::Bindings {
                    dy: &dy,
                    x: &x,
                    part: &part,
                };
                conv2d_backward_weight::launch(&ps, &b)?;
                let dw = if ps.splits > 1 { part.sum(0)? } else { part }.reshape(w.shape())?;
                grads.add(1, dw)?;
            }
            if p.has_bias == 1 && grads.wants(2) {
                let db = dy.reshape(&[n, c_out, oh * ow])?.sum(2)?.sum(0)?;
                grads.add(2, db)?;
            }
            Ok(())
        }))
    }

    /// 1-D convolution over sequences, as PyTorch's `F.conv1d`: the 2-D kernels with H = 1.
    /// `options` uses the width entries (`[_, stride]`, ...); the builder methods set both.
    ///
    /// # Shapes
    /// self [N, C_in, L]; `weight` [C_out, C_in/groups, k]; `bias` \[C_out\]; result
    /// [N, C_out, (L + 2·pad − dil·(k − 1) − 1)/stride + 1].
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        options: &ConvOptions,
    ) -> Result<Tensor> {
        let (&[n, c, l], &[o, cg, k]) = (self.shape(), weight.shape()) else {
            return Err(Error::ShapeMismatch {
                op: "conv1d",
                arg: if self.rank() != 3 { "input" } else { "weight" },
                expected: if self.rank() != 3 {
                    "[N, C_in, L]".into()
                } else {
                    "[C_out, C_in/groups, k]".into()
                },
                got: shape_str(if self.rank() != 3 {
                    self.shape()
                } else {
                    weight.shape()
                }),
            });
        };
        let o2 = ConvOptions {
            stride: [1, options.stride[1]],
            padding: [0, options.padding[1]],
            dilation: [1, options.dilation[1]],
            groups: options.groups,
        };
        let y = self
            .reshape(&[n, c, 1, l])?
            .conv2d(&weight.reshape(&[o, cg, 1, k])?, bias, &o2)?;
        let s = y.shape().to_vec();
        y.reshape(&[s[0], s[1], s[3]])
    }
}
