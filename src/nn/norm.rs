//! LayerNorm and Embedding layers with PyTorch's parameter names and initialisation
//! (`weight` = 1 and `bias` = 0 for LayerNorm; `weight` ~ N(0, 1) for Embedding).

use super::Module;
use crate::device::Device;
use crate::error::Result;
use crate::init::Init;
use crate::ops::norm::embedding;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// `nn.LayerNorm(dim)`: normalises the last axis, then scales by `weight` and shifts by `bias`.
pub struct LayerNorm {
    /// γ [D].
    pub weight: Tensor,
    /// β [D].
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

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        embedding(&self.weight, ids)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone())]
    }
}
