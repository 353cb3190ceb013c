//! Linear: y = x·Wᵀ + b, with PyTorch's layout (`weight` [out, in], `bias` [out]) and default
//! initialisation U(±1/√in) for both.

use super::{converted, Module};
use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::init::Init;
use crate::ops::matmul::Matmul;
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// A fully connected layer.
///
/// ```
/// use timeloom::nn::{Linear, Module};
/// use timeloom::{Device, Rng, Tensor};
/// let layer = Linear::new(&Device::Cpu, 4, 3, &mut Rng::new(0))?;
/// let y = layer.forward(&Tensor::zeros(&Device::Cpu, &[8, 4])?)?;
/// assert_eq!(y.shape(), [8, 3]);
/// # Ok::<(), timeloom::Error>(())
/// ```
///
/// # Shapes
/// input [..., in] (rank 2 or 3); output [..., out].
pub struct Linear {
    /// [out, in].
    pub weight: Tensor,
    /// \[out\], if the layer has one.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with bias, initialised as PyTorch's `nn.Linear`.
    pub fn new(device: &Device, inputs: usize, outputs: usize, rng: &mut Rng) -> Result<Linear> {
        let bound = 1.0 / (inputs.max(1) as f32).sqrt();
        let init = Init::Uniform(-bound, bound);
        Ok(Linear {
            weight: init
                .tensor(device, &[outputs, inputs], rng)?
                .requires_grad(),
            bias: Some(init.tensor(device, &[outputs], rng)?.requires_grad()),
        })
    }

    /// A layer from given tensors (made parameters here).
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        let [out, _] = *weight.shape() else {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                arg: "weight",
                expected: "[out, in]".into(),
                got: shape_str(weight.shape()),
            });
        };
        if let Some(b) = &bias {
            if b.shape() != [out] {
                return Err(Error::ShapeMismatch {
                    op: "Linear",
                    arg: "bias",
                    expected: format!("[{out}]"),
                    got: shape_str(b.shape()),
                });
            }
        }
        Ok(Linear {
            weight: weight.requires_grad(),
            bias: bias.map(|b| b.requires_grad()),
        })
    }

    /// A copy of this layer with its weight and bias converted to `dtype` (new storage, never
    /// shared). An f16 layer (half the parameter memory) is for inference: its parameters do
    /// not track gradients, the product widens them as it loads them, and the output is f32;
    /// f32 makes trainable parameters again.
    ///
    /// ```
    /// use timeloom::nn::{Linear, Module};
    /// use timeloom::{DType, Device, Rng, Tensor};
    /// let layer = Linear::new(&Device::Cpu, 4, 3, &mut Rng::new(0))?;
    /// let half = layer.to_dtype(DType::F16)?;
    /// assert_eq!(half.weight.dtype(), DType::F16);
    /// let y = half.forward(&Tensor::zeros(&Device::Cpu, &[2, 4])?)?;
    /// assert_eq!(y.dtype(), DType::F32);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfMemory` when the copy does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<Linear> {
        Ok(Linear {
            weight: converted(&self.weight, dtype)?,
            bias: self
                .bias
                .as_ref()
                .map(|b| converted(b, dtype))
                .transpose()?,
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let wt = self.weight.t()?;
        let mut mm = Matmul::new(x, &wt);
        if let Some(b) = &self.bias {
            mm = mm.bias(b);
        }
        mm.compute()
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            v.push(("bias".to_string(), b.clone()));
        }
        v
    }
}
