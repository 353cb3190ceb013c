//! MultiHeadAttention with PyTorch's `nn.MultiheadAttention` parameters and layout
//! (`in_proj_weight` [3E, E], `in_proj_bias` [3E], `out_proj.weight` [E, E], `out_proj.bias`
//! [E]), on the fused attention kernels.

use super::{converted, Linear, Module};
use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::init::Init;
use crate::ops::attention::{attention, AttentionOptions};
use crate::ops::matmul::Matmul;
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// Multi-head attention: per head softmax(QKᵀ/√d)V on learned projections, then an output
/// projection.
///
/// ```
/// use timeloom::nn::MultiHeadAttention;
/// use timeloom::{Device, Rng, Tensor};
/// let mha = MultiHeadAttention::new(&Device::Cpu, 8, 2, &mut Rng::new(0))?.batch_first(true);
/// let x = Tensor::zeros(&Device::Cpu, &[3, 5, 8])?; // [B, L, E]
/// assert_eq!(mha.self_attention(&x, true, None)?.shape(), [3, 5, 8]);
/// # Ok::<(), timeloom::Error>(())
/// ```
pub struct MultiHeadAttention {
    /// [3E, E]: the Q, K and V projections stacked.
    pub in_proj_weight: Tensor,
    /// \[3E\].
    pub in_proj_bias: Tensor,
    /// The output projection.
    pub out_proj: Linear,
    heads: usize,
    batch_first: bool,
}

impl MultiHeadAttention {
    /// E = `embed` split over `heads` heads, initialised as PyTorch does (Xavier-uniform input
    /// projection, zero biases, the output projection as a Linear with zero bias).
    pub fn new(
        device: &Device,
        embed: usize,
        heads: usize,
        rng: &mut Rng,
    ) -> Result<MultiHeadAttention> {
        if heads == 0 || !embed.is_multiple_of(heads) {
            return Err(Error::InvalidArgument {
                op: "MultiHeadAttention",
                message: format!("embed {embed} is not divisible by {heads} heads"),
            });
        }
        let out = Linear::new(device, embed, embed, rng)?;
        Ok(MultiHeadAttention {
            in_proj_weight: Init::XavierUniform
                .tensor(device, &[3 * embed, embed], rng)?
                .requires_grad(),
            in_proj_bias: Tensor::zeros(device, &[3 * embed])?.requires_grad(),
            out_proj: Linear::from_tensors(
                out.weight.detach(),
                Some(Tensor::zeros(device, &[embed])?),
            )?,
            heads,
            batch_first: false,
        })
    }

    /// A copy with every parameter converted to `dtype` (see
    /// [`Linear::to_dtype`](super::Linear::to_dtype)): an f16 copy holds its projections at half
    /// the memory and computes in f32 (the projections widen the weights as they load them;
    /// the attention runs on their f32 outputs).
    ///
    /// # Errors
    /// `OutOfMemory` when the copy does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<MultiHeadAttention> {
        Ok(MultiHeadAttention {
            in_proj_weight: converted(&self.in_proj_weight, dtype)?,
            in_proj_bias: converted(&self.in_proj_bias, dtype)?,
            out_proj: self.out_proj.to_dtype(dtype)?,
            heads: self.heads,
            batch_first: self.batch_first,
        })
    }

    /// Inputs and output as [B, L, E] (default [L, B, E], as PyTorch's).
    pub fn batch_first(mut self, yes: bool) -> Self {
        self.batch_first = yes;
        self
    }

    /// Attention of `query` over `key`/`value`: [L, B, E] (or batch-first), with an optional
    /// causal mask and per-batch-entry key lengths \[B\] (f32; keys past them are ignored, like
    /// PyTorch's `key_padding_mask` with trailing padding). Key and value must have the
    /// query's shape (S = L). A batch entry of length 0 attends to nothing: its attention
    /// output is zeros, so the layer returns `out_proj.bias` there (PyTorch returns NaN).
    pub fn forward_qkv(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        causal: bool,
        key_lengths: Option<&Tensor>,
    ) -> Result<Tensor> {
        let bf = |t: &Tensor| {
            if self.batch_first {
                Ok(t.clone())
            } else {
                t.transpose(0, 1)
            }
        };
        let (q, k, v) = (bf(query)?, bf(key)?, bf(value)?);
        let [b, l, e] = *q.shape() else {
            return Err(Error::ShapeMismatch {
                op: "MultiHeadAttention",
                arg: "query",
                expected: "[L, B, E] or [B, L, E]".into(),
                got: shape_str(q.shape()),
            });
        };
        for (arg, t) in [("key", &k), ("value", &v)] {
            if t.shape() != q.shape() {
                return Err(Error::ShapeMismatch {
                    op: "MultiHeadAttention",
                    arg,
                    expected: format!(
                        "the query's {} (the fused kernels attend over as many keys as queries)",
                        shape_str(query.shape())
                    ),
                    got: shape_str(t.shape()),
                });
            }
        }
        let h = self.heads;
        let dh = e / h;
        let project = |x: &Tensor, part: usize| -> Result<Tensor> {
            let w = self.in_proj_weight.narrow(0, part * e, e)?;
            let bias = self.in_proj_bias.narrow(0, part * e, e)?;
            let y = Matmul::new(x, &w.t()?).bias(&bias).compute()?; // [B, L, E]
                                                                    // [B, L, H, dh] → [B, H, L, dh] → [B·H, L, dh]
            y.reshape(&[b, l, h, dh])?
                .permute(&[0, 2, 1, 3])?
                .reshape(&[b * h, l, dh])
        };
        let (qh, kh, vh) = (project(&q, 0)?, project(&k, 1)?, project(&v, 2)?);
        let o = attention(
            &qh,
            &kh,
            &vh,
            AttentionOptions {
                causal,
                lengths: key_lengths,
                heads: h,
                scale: None,
            },
        )?;
        let merged = o
            .reshape(&[b, h, l, dh])?
            .permute(&[0, 2, 1, 3])?
            .reshape(&[b, l, e])?;
        let y = self.out_proj.forward(&merged)?;
        if self.batch_first {
            Ok(y)
        } else {
            y.transpose(0, 1)?.contiguous()
        }
    }

    /// Self-attention: query = key = value = `x`.
    pub fn self_attention(
        &self,
        x: &Tensor,
        causal: bool,
        key_lengths: Option<&Tensor>,
    ) -> Result<Tensor> {
        self.forward_qkv(x, x, x, causal, key_lengths)
    }
}

impl Module for MultiHeadAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.self_attention(x, false, None)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![
            ("in_proj_weight".into(), self.in_proj_weight.clone()),
            ("in_proj_bias".into(), self.in_proj_bias.clone()),
        ];
        v.extend(
            self.out_proj
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (format!("out_proj.{n}"), t)),
        );
        v
    }
}
