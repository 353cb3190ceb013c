//! Convolution and pooling layers with PyTorch's names and layouts: `Conv2d` and `Conv1d`
//! (`weight` [C_out, C_in/groups, kH, kW] or [C_out, C_in/groups, k], `bias` [C_out]),
//! `MaxPool2d`, `AvgPool2d` and `Flatten`.

use std::marker::PhantomData;

use super::Module;
use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::init::Init;
use crate::ops::conv::ConvOptions;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Options of a convolution layer; `build` makes a [`Conv2d`] or a [`Conv1d`].
#[derive(Clone, Debug)]
pub struct ConvBuilder<L> {
    c_in: usize,
    c_out: usize,
    kernel: [usize; 2],
    options: ConvOptions,
    bias: bool,
    layer: PhantomData<L>,
}

impl<L> ConvBuilder<L> {
    fn new(c_in: usize, c_out: usize, kernel: [usize; 2]) -> Self {
        ConvBuilder {
            c_in,
            c_out,
            kernel,
            options: ConvOptions::default(),
            bias: true,
            layer: PhantomData,
        }
    }
    /// Stride along every axis (default 1).
    pub fn stride(mut self, s: usize) -> Self {
        self.options = self.options.stride(s);
        self
    }
    /// Zero padding on every side (default 0).
    pub fn padding(mut self, p: usize) -> Self {
        self.options = self.options.padding(p);
        self
    }
    /// Dilation along every axis (default 1).
    pub fn dilation(mut self, d: usize) -> Self {
        self.options = self.options.dilation(d);
        self
    }
    /// Channel groups (default 1; `c_in` for depthwise).
    pub fn groups(mut self, g: usize) -> Self {
        self.options = self.options.groups(g);
        self
    }
    /// Per-axis stride, padding and dilation and the groups at once.
    pub fn options(mut self, o: ConvOptions) -> Self {
        self.options = o;
        self
    }
    /// Whether the layer adds a bias (default true).
    pub fn bias(mut self, yes: bool) -> Self {
        self.bias = yes;
        self
    }

    /// Weight and bias initialised as PyTorch does: U(±1/√fan_in), fan_in = C_in/groups·kH·kW.
    fn parameters(
        &self,
        op: &'static str,
        weight_shape: &[usize],
        device: &Device,
        rng: &mut Rng,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let g = self.options.groups.max(1);
        if !self.c_in.is_multiple_of(g) || !self.c_out.is_multiple_of(g) || self.options.groups == 0
        {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "{} input and {} output channels do not split into {} groups",
                    self.c_in, self.c_out, self.options.groups
                ),
            });
        }
        let fan_in = weight_shape[1..].iter().product::<usize>().max(1);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let init = Init::Uniform(-bound, bound);
        let weight = init.tensor(device, weight_shape, rng)?.requires_grad();
        let bias = if self.bias {
            Some(init.tensor(device, &[self.c_out], rng)?.requires_grad())
        } else {
            None
        };
        Ok((weight, bias))
    }
}

impl ConvBuilder<Conv2d> {
    /// The layer, on `device`.
    pub fn build(self, device: &Device, rng: &mut Rng) -> Result<Conv2d> {
        let g = self.options.groups.max(1);
        let shape = [self.c_out, self.c_in / g, self.kernel[0], self.kernel[1]];
        let (weight, bias) = self.parameters("Conv2d", &shape, device, rng)?;
        Ok(Conv2d {
            weight,
            bias,
            options: self.options,
        })
    }
}

impl ConvBuilder<Conv1d> {
    /// The layer, on `device`.
    pub fn build(self, device: &Device, rng: &mut Rng) -> Result<Conv1d> {
        let g = self.options.groups.max(1);
        let shape = [self.c_out, self.c_in / g, self.kernel[1]];
        let (weight, bias) = self.parameters("Conv1d", &shape, device, rng)?;
        Ok(Conv1d {
            weight,
            bias,
            options: self.options,
        })
    }
}

/// A 2-D convolution layer, as PyTorch's `nn.Conv2d`.
///
/// ```
/// use timeloom::nn::{Conv2d, Module};
/// use timeloom::{Device, Rng, Tensor};
/// let conv = Conv2d::builder(1, 8, 3).padding(1).build(&Device::Cpu, &mut Rng::new(0))?;
/// let y = conv.forward(&Tensor::zeros(&Device::Cpu, &[4, 1, 28, 28])?)?;
/// assert_eq!(y.shape(), [4, 8, 28, 28]);
/// assert_eq!(conv.weight.shape(), [8, 1, 3, 3]);
///
/// // Weights from elsewhere (a PyTorch checkpoint, say): a 2×2 box filter, no bias.
/// let w = Tensor::full(&Device::Cpu, &[1, 1, 2, 2], 0.25)?;
/// let blur = Conv2d::from_tensors(w, None, timeloom::ConvOptions::default().stride(2))?;
/// let x = Tensor::from_slice(&Device::Cpu, &[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2])?;
/// assert_eq!(blur.forward(&x)?.read_blocking()?, [2.5]);
/// # Ok::<(), timeloom::Error>(())
/// ```
///
/// # Shapes
/// input [N, C_in, H, W]; output [N, C_out, OH, OW] (see [`Tensor::conv2d`]).
pub struct Conv2d {
    /// [C_out, C_in/groups, kH, kW].
    pub weight: Tensor,
    /// \[C_out\], if the layer has one.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation, groups.
    pub options: ConvOptions,
}

impl Conv2d {
    /// A layer from given tensors (made parameters here): `weight` [C_out, C_in/groups, kH, kW]
    /// and `bias` \[C_out\], e.g. read from a PyTorch checkpoint. Shapes are checked against
    /// `options.groups`; the input's channel count is checked when the layer runs.
    pub fn from_tensors(
        weight: Tensor,
        bias: Option<Tensor>,
        options: ConvOptions,
    ) -> Result<Conv2d> {
        check_weight_bias("Conv2d", &weight, bias.as_ref(), 4, options.groups)?;
        Ok(Conv2d {
            weight: weight.requires_grad(),
            bias: bias.map(|b| b.requires_grad()),
            options,
        })
    }

    /// A builder for a layer with a square `kernel`.
    pub fn builder(c_in: usize, c_out: usize, kernel: usize) -> ConvBuilder<Conv2d> {
        ConvBuilder::new(c_in, c_out, [kernel, kernel])
    }
    /// A builder for a layer with a kH × kW kernel.
    pub fn builder_hw(c_in: usize, c_out: usize, kernel: [usize; 2]) -> ConvBuilder<Conv2d> {
        ConvBuilder::new(c_in, c_out, kernel)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.bias.as_ref(), &self.options)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        named_weight_bias(&self.weight, &self.bias)
    }
}

/// A 1-D convolution layer over sequences, as PyTorch's `nn.Conv1d`.
///
/// # Shapes
/// input [N, C_in, L]; output [N, C_out, L_out] (see [`Tensor::conv1d`]).
pub struct Conv1d {
    /// [C_out, C_in/groups, k].
    pub weight: Tensor,
    /// \[C_out\], if the layer has one.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation (the width entries) and groups.
    pub options: ConvOptions,
}

impl Conv1d {
    /// A layer from given tensors (made parameters here): `weight` [C_out, C_in/groups, k] and
    /// `bias` \[C_out\].
    pub fn from_tensors(
        weight: Tensor,
        bias: Option<Tensor>,
        options: ConvOptions,
    ) -> Result<Conv1d> {
        check_weight_bias("Conv1d", &weight, bias.as_ref(), 3, options.groups)?;
        Ok(Conv1d {
            weight: weight.requires_grad(),
            bias: bias.map(|b| b.requires_grad()),
            options,
        })
    }

    /// A builder for a layer with a `kernel`-wide window.
    pub fn builder(c_in: usize, c_out: usize, kernel: usize) -> ConvBuilder<Conv1d> {
        ConvBuilder::new(c_in, c_out, [1, kernel])
    }
}

impl Module for Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv1d(&self.weight, self.bias.as_ref(), &self.options)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        named_weight_bias(&self.weight, &self.bias)
    }
}

/// A weight of `rank` whose output channels split into `groups`, and a bias [C_out].
fn check_weight_bias(
    op: &'static str,
    weight: &Tensor,
    bias: Option<&Tensor>,
    rank: usize,
    groups: usize,
) -> Result<()> {
    let c_out = weight.shape().first().copied().unwrap_or(0);
    if weight.rank() != rank || groups == 0 || !c_out.is_multiple_of(groups) {
        return Err(Error::ShapeMismatch {
            op,
            arg: "weight",
            expected: format!(
                "rank {rank}, [C_out, C_in/groups, kernel...] with C_out a multiple of groups = {groups}"
            ),
            got: shape_str(weight.shape()),
        });
    }
    if let Some(b) = bias {
        if b.shape() != [c_out] {
            return Err(Error::ShapeMismatch {
                op,
                arg: "bias",
                expected: format!("[{c_out}]"),
                got: shape_str(b.shape()),
            });
        }
    }
    Ok(())
}

fn named_weight_bias(weight: &Tensor, bias: &Option<Tensor>) -> Vec<(String, Tensor)> {
    let mut v = vec![("weight".to_string(), weight.clone())];
    if let Some(b) = bias {
        v.push(("bias".to_string(), b.clone()));
    }
    v
}

/// Max pooling over [N, C, H, W] with a square window, as PyTorch's `nn.MaxPool2d`.
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows (PyTorch's default: the window size).
    pub stride: usize,
    /// Padding (never chosen as the maximum).
    pub padding: usize,
}

impl MaxPool2d {
    /// Non-overlapping `kernel` × `kernel` windows, no padding.
    pub fn new(kernel: usize) -> MaxPool2d {
        MaxPool2d {
            kernel,
            stride: kernel,
            padding: 0,
        }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.max_pool2d(self.kernel, self.stride, self.padding)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
}

/// Average pooling over [N, C, H, W] with a square window (padding counted), as PyTorch's
/// `nn.AvgPool2d`.
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows (PyTorch's default: the window size).
    pub stride: usize,
    /// Zero padding.
    pub padding: usize,
}

impl AvgPool2d {
    /// Non-overlapping `kernel` × `kernel` windows, no padding.
    pub fn new(kernel: usize) -> AvgPool2d {
        AvgPool2d {
            kernel,
            stride: kernel,
            padding: 0,
        }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.avg_pool2d(self.kernel, self.stride, self.padding)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
}

/// [N, d1, d2, ...] → [N, d1·d2·...], as PyTorch's `nn.Flatten()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some((&n, rest)) = x.shape().split_first() else {
            return Err(Error::ShapeMismatch {
                op: "Flatten",
                arg: "input",
                expected: "[N, ...]".into(),
                got: shape_str(x.shape()),
            });
        };
        x.reshape(&[n, rest.iter().product()])
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_tensors_checks_shapes_and_names_parameters() {
        let dev = Device::Cpu;
        let z = |s: &[usize]| Tensor::zeros(&dev, s).unwrap();
        let e = |r: Result<Conv2d>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e(Conv2d::from_tensors(
            z(&[4, 3, 3]),
            None,
            ConvOptions::default()
        ))
        .contains("rank 4"));
        assert!(e(Conv2d::from_tensors(
            z(&[4, 3, 3, 3]),
            Some(z(&[5])),
            ConvOptions::default()
        ))
        .contains("[4]"));
        assert!(e(Conv2d::from_tensors(
            z(&[4, 1, 3, 3]),
            None,
            ConvOptions::default().groups(3)
        ))
        .contains("groups = 3"));
        let c = Conv1d::from_tensors(z(&[4, 2, 3]), Some(z(&[4])), ConvOptions::default()).unwrap();
        let names: Vec<String> = c.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert!(
            c.weight.grad().is_none() && c.forward(&z(&[1, 2, 5])).unwrap().shape() == [1, 4, 3]
        );
    }
}
