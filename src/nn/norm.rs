//! LayerNorm and Embedding layers with PyTorch's parameter names and initialisation
//! (`weight` = 1 and `bias` = 0 for LayerNorm; `weight` ~ N(0, 1) for Embedding).

use super::{converted, Module};
use crate::device::Device;
use crate::error::Result;
use crate::init::Init;
use crate::ops::norm::embedding;
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// `nn.LayerNorm(dim)`: normalises the last axis, then scales by `weight` and shifts by `bias`.
pub struct LayerNorm {
    /// γ \[D\].
    pub weight: Tensor,
    /// β \[D\].
    pub bias: Tensor,
    /// ε, 1e-5 by default.
    pub eps: f32,
}

impl LayerNorm {
    /// γ = 1, β = 0, ε = 1e-5.
    pub fn new(device: &Device, dim: usize) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: Tensor::full(device, &[dim], 1.0)?.requires_grad(),
            bias: Tensor::zeros(device, &[dim])?.requires_grad(),
            eps: 1e-5,
        })
    }
}

impl LayerNorm {
    /// A copy with γ and β converted to `dtype` (see [`Linear::to_dtype`](super::Linear::to_dtype)):
    /// an f16 copy normalises in f32, its γ and β widened per call (D values each).
    ///
    /// # Errors
    /// `OutOfMemory` when the copy does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: converted(&self.weight, dtype)?,
            bias: converted(&self.bias, dtype)?,
            eps: self.eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(Some((&self.weight, &self.bias)), self.eps)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }
}

/// `nn.BatchNorm2d(channels)` (and `nn.BatchNorm1d`: any [N, C, ...] input): normalises each
/// channel with the batch's statistics in training, updating `running_mean` and `running_var`
/// in place, and with the running statistics in evaluation. See [`Tensor::batch_norm`].
///
/// ```
/// use timeloom::nn::{BatchNorm2d, Module};
/// use timeloom::{Device, Tensor};
/// let mut bn = BatchNorm2d::new(&Device::Cpu, 3)?;
/// let x = Tensor::full(&Device::Cpu, &[2, 3, 4, 4], 5.0)?;
/// bn.forward(&x)?; // training: running_mean moves 10% of the way to 5
/// assert!((bn.running_mean.read_blocking()?[0] - 0.5).abs() < 1e-6);
/// bn.set_training(false);
/// assert_eq!(bn.forward(&x)?.shape(), [2, 3, 4, 4]);
/// # Ok::<(), timeloom::Error>(())
/// ```
pub struct BatchNorm2d {
    /// γ \[C\], if affine.
    pub weight: Option<Tensor>,
    /// β \[C\], if affine.
    pub bias: Option<Tensor>,
    /// \[C\], starts at 0.
    pub running_mean: Tensor,
    /// \[C\], starts at 1.
    pub running_var: Tensor,
    /// Weight of the newest batch in the running statistics, 0.1 by default.
    pub momentum: f32,
    /// ε, 1e-5 by default.
    pub eps: f32,
    /// Batch statistics (true, the default) or running statistics.
    pub training: bool,
}

impl BatchNorm2d {
    /// γ = 1, β = 0, running mean 0 and variance 1, momentum 0.1, ε = 1e-5, training mode.
    pub fn new(device: &Device, channels: usize) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d {
            weight: Some(Tensor::full(device, &[channels], 1.0)?.requires_grad()),
            bias: Some(Tensor::zeros(device, &[channels])?.requires_grad()),
            running_mean: Tensor::zeros(device, &[channels])?,
            running_var: Tensor::full(device, &[channels], 1.0)?,
            momentum: 0.1,
            eps: 1e-5,
            training: true,
        })
    }

    /// Without γ and β (PyTorch's `affine=False`).
    pub fn without_affine(mut self) -> BatchNorm2d {
        self.weight = None;
        self.bias = None;
        self
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let affine = self.weight.as_ref().zip(self.bias.as_ref());
        x.batch_norm(
            Some((&self.running_mean, &self.running_var)),
            affine,
            self.training,
            self.momentum,
            self.eps,
        )
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            v.push(("weight".into(), w.clone()));
            v.push(("bias".into(), b.clone()));
        }
        v
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            ("running_mean".into(), self.running_mean.clone()),
            ("running_var".into(), self.running_var.clone()),
        ]
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// `nn.Embedding(vocab, dim)`: `forward` takes class ids (as f32, any shape) and returns their
/// rows, [ids..., D].
pub struct Embedding {
    /// [V, D].
    pub weight: Tensor,
}

impl Embedding {
    /// Rows drawn from N(0, 1), as PyTorch initialises them.
    pub fn new(device: &Device, vocab: usize, dim: usize, rng: &mut Rng) -> Result<Embedding> {
        Ok(Embedding {
            weight: Init::Normal(0.0, 1.0)
                .tensor(device, &[vocab, dim], rng)?
                .requires_grad(),
        })
    }
}

impl Embedding {
    /// A copy with the table converted to `dtype` (see
    /// [`Linear::to_dtype`](super::Linear::to_dtype)): an f16 table is looked up at half the
    /// memory, its rows widened to f32 as they are read.
    ///
    /// # Errors
    /// `OutOfMemory` when the copy does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<Embedding> {
        Ok(Embedding {
            weight: converted(&self.weight, dtype)?,
        })
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        embedding(&self.weight, ids)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone())]
    }
}
