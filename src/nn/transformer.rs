//! A pre-norm transformer block: x + Attention(LayerNorm(x)), then h + MLP(LayerNorm(h)) with a
//! GELU MLP of width 4E; PyTorch's `nn.TransformerEncoderLayer(norm_first=True,
//! activation="gelu", batch_first=True)` parameter names (`self_attn.*`, `linear1.*`,
//! `linear2.*`, `norm1.*`, `norm2.*`).

use super::{LayerNorm, Linear, Module, MultiHeadAttention};
use crate::device::Device;
use crate::error::Result;
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// One pre-norm transformer block over [B, L, E].
pub struct TransformerBlock {
    /// Self-attention.
    pub self_attn: MultiHeadAttention,
    /// E → 4E.
    pub linear1: Linear,
    /// 4E → E.
    pub linear2: Linear,
    /// Before attention.
    pub norm1: LayerNorm,
    /// Before the MLP.
    pub norm2: LayerNorm,
    /// Attention sees only earlier positions.
    pub causal: bool,
}

impl TransformerBlock {
    /// A block of width `embed` with `heads` heads.
    pub fn new(
        device: &Device,
        embed: usize,
        heads: usize,
        causal: bool,
        rng: &mut Rng,
    ) -> Result<TransformerBlock> {
        Ok(TransformerBlock {
            self_attn: MultiHeadAttention::new(device, embed, heads, rng)?.batch_first(true),
            linear1: Linear::new(device, embed, 4 * embed, rng)?,
            linear2: Linear::new(device, 4 * embed, embed, rng)?,
            norm1: LayerNorm::new(device, embed)?,
            norm2: LayerNorm::new(device, embed)?,
            causal,
        })
    }
}

impl TransformerBlock {
    /// A copy with every parameter converted to `dtype` (see
    /// [`Linear::to_dtype`](super::Linear::to_dtype)): f16 for inference at half the parameter
    /// memory, activations and sums f32.
    ///
    /// # Errors
    /// `OutOfMemory` when the copy does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<TransformerBlock> {
        Ok(TransformerBlock {
            self_attn: self.self_attn.to_dtype(dtype)?,
            linear1: self.linear1.to_dtype(dtype)?,
            linear2: self.linear2.to_dtype(dtype)?,
            norm1: self.norm1.to_dtype(dtype)?,
            norm2: self.norm2.to_dtype(dtype)?,
            causal: self.causal,
        })
    }
}

impl Module for TransformerBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = x.add(&self.self_attn.self_attention(
            &self.norm1.forward(x)?,
            self.causal,
            None,
        )?)?;
        let m = self
            .linear2
            .forward(&self.linear1.forward(&self.norm2.forward(&h)?)?.gelu()?)?;
        h.add(&m)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        let mut push = |prefix: &str, m: &dyn Module| {
            v.extend(
                m.named_parameters()
                    .into_iter()
                    .map(|(n, t)| (format!("{prefix}.{n}"), t)),
            )
        };
        push("self_attn", &self.self_attn);
        push("linear1", &self.linear1);
        push("linear2", &self.linear2);
        push("norm1", &self.norm1);
        push("norm2", &self.norm2);
        v
    }
}
