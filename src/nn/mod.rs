//! Layers and the plain way to compose them. A layer owns its parameters (tensors made with
//! `requires_grad`) and lists them by stable names, PyTorch's (`weight`, `bias`, `0.weight` in
//! a `Sequential`), which become safetensors keys.

mod attention;
mod conv;
mod linear;
mod norm;
mod recurrent;
mod transformer;

pub use crate::recurrent::CellKind;
pub use attention::MultiHeadAttention;
pub use conv::{AvgPool2d, Conv1d, Conv2d, ConvBuilder, Flatten, MaxPool2d};
pub use linear::Linear;
pub use norm::{BatchNorm2d, Embedding, LayerNorm};
pub use recurrent::{Recurrent, RecurrentBuilder, RecurrentConfig, RecurrentOutput};
pub use transformer::TransformerBlock;

use crate::error::Result;
use crate::tensor::{DType, Tensor};

/// `t` converted to `dtype` as a parameter of a converted layer (the layers' `to_dtype`): new
/// storage even when the type is the same, so the two layers never share (or train) one
/// tensor; an f32 result is trainable (`requires_grad`), an f16 one is read, never trained
/// (inference: the kernels widen it as they load it).
pub(crate) fn converted(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let c = t.detach().to_dtype(dtype)?;
    Ok(match (t.dtype(), dtype) {
        (DType::F16, DType::F16) => c.f16_copy()?,
        (DType::F32, DType::F32) => c.scale(1.0)?.requires_grad(),
        (_, DType::F32) => c.requires_grad(),
        (_, DType::F16) => c,
    })
}

/// A layer or a model: a forward map with named parameters.
pub trait Module: Send + Sync {
    /// The layer applied to `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// The parameters, by name, in a stable order.
    fn named_parameters(&self) -> Vec<(String, Tensor)>;

    /// State that is saved and loaded with the parameters but never trained (batch norm's
    /// `running_mean`, `running_var`), by name, as PyTorch's `named_buffers`.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Training mode (dropout active, batch norm on batch statistics) or evaluation mode.
    fn set_training(&mut self, _training: bool) {}

    /// The parameters without names, for an optimizer.
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }
}

/// An elementwise activation as a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// x or slope·x.
    LeakyRelu(f32),
    /// tanh.
    Tanh,
    /// The logistic function.
    Sigmoid,
    /// x·Φ(x).
    Gelu,
}

impl Module for Activation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => x.leaky_relu(s),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Gelu => x.gelu(),
        }
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
}

/// Inverted dropout as a layer: active in training mode, the identity in evaluation mode.
/// Each forward draws a new mask (the seed advances).
pub struct Dropout {
    p: f32,
    seed: std::sync::atomic::AtomicU64,
    training: bool,
}

impl Dropout {
    /// Drops with probability `p`; `seed` fixes the sequence of masks.
    pub fn new(p: f32, seed: u64) -> Dropout {
        Dropout {
            p,
            seed: std::sync::atomic::AtomicU64::new(seed),
            training: true,
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        let seed = self
            .seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
        x.dropout(self.p, seed)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// Layers applied in order; parameter names are prefixed with the layer's index, as PyTorch's
/// `nn.Sequential` does (`0.weight`, `2.bias`).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty stack.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h)?;
        }
        Ok(h)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.named_parameters()
                    .into_iter()
                    .map(move |(n, t)| (format!("{i}.{n}"), t))
            })
            .collect()
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.named_buffers()
                    .into_iter()
                    .map(move |(n, t)| (format!("{i}.{n}"), t))
            })
            .collect()
    }
    fn set_training(&mut self, training: bool) {
        for l in &mut self.layers {
            l.set_training(training);
        }
    }
}
