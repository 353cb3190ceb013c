//! Scaled-dot-product attention: the fused kernel (the L×L score matrix never exists) and the
//! materialised reference path (QKᵀ → softmax → ·V through ordinary ops), which the tests and the
//! bench compare against.

use crate::error::{shape_str, Error, Result};
use crate::kernels::attention_backward_kv as bwd;
use crate::kernels::attention_forward::{self as fwd, Params};
use crate::ops::{same_device, u32_of};
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

/// Masks and scale of an attention call.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionOptions<'a> {
    /// Each query sees only keys at or before its own position.
    pub causal: bool,
    /// Per batch entry, the number of valid keys (\[B\], f32, whole numbers in [0, L]); keys past
    /// it are masked. Being device data, the values are not checked: a fraction is truncated,
    /// a value past L counts as L, and a negative or NaN one is a caller's mistake with
    /// undefined masking.
    pub lengths: Option<&'a Tensor>,
    /// Heads per batch entry: row bh of Q belongs to batch entry bh / heads (default 1).
    pub heads: usize,
    /// The score scale; 1/√d when `None`.
    pub scale: Option<f32>,
}

fn check(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(usize, usize, usize)> {
    let op = "attention";
    same_device(op, "k", q, k)?;
    same_device(op, "v", q, v)?;
    let [bh, len, dim] = *q.shape() else {
        return Err(Error::ShapeMismatch {
            op,
            arg: "q",
            expected: "[batch × heads, L, d]".into(),
            got: shape_str(q.shape()),
        });
    };
    for (arg, t) in [("k", k), ("v", v)] {
        if t.shape() != q.shape() {
            return Err(Error::ShapeMismatch {
                op,
                arg,
                expected: shape_str(q.shape()),
                got: shape_str(t.shape()),
            });
        }
    }
    if bh == 0 || len == 0 || dim == 0 {
        return Err(Error::InvalidArgument {
            op,
            message: format!(
                "`q` has shape {}: every dimension must be positive",
                shape_str(q.shape())
            ),
        });
    }
    Ok((bh, len, dim))
}

/// softmax(scale·Q·Kᵀ + masks)·V, fused: memory O(L·d), never O(L²). A query with no key to
/// attend to gets zeros.
///
/// # Shapes
/// `q`, `k`, `v` [BH, L, d] with d ≤ 128; result [BH, L, d].
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, opts: AttentionOptions<'_>) -> Result<Tensor> {
    let (bh, len, dim) = check(q, k, v)?;
    // The GPU kernels hold a row in registers; the limit holds on both devices so that a model
    // that runs on one runs on the other.
    if dim > fwd::MAX_DIM as usize {
        return Err(Error::Unsupported {
            op: "attention",
            message: format!(
                "head dimension {dim} is over {}; split heads further",
                fwd::MAX_DIM
            ),
        });
    }
    let heads = opts.heads.max(1);
    if !bh.is_multiple_of(heads) {
        return Err(Error::InvalidArgument {
            op: "attention",
            message: format!("{bh} rows are not a multiple of {heads} heads"),
        });
    }
    let batch = bh / heads;
    let lengths = match opts.lengths {
        Some(l) => {
            same_device("attention", "lengths", q, l)?;
            if l.shape() != [batch] {
                return Err(Error::ShapeMismatch {
                    op: "attention",
                    arg: "lengths",
                    expected: format!("[{batch}]"),
                    got: shape_str(l.shape()),
                });
            }
            l.owned()?
        }
        None => Tensor::full(&q.device(), &[batch], len as f32)?,
    };
    // The backward kernels read Q, K and V from element 0: views are copied to their own buffers.
    let (qc, kc, vc) = (q.owned()?, k.owned()?, v.owned()?);
    let o = qc.output_like(&[bh, len, dim], "attention")?;
    let lse = qc.output_like(&[bh, len], "attention")?;
    let p = Params {
        len: u32_of(len),
        heads: u32_of(heads),
        causal: u32::from(opts.causal),
        scale: opts.scale.unwrap_or(1.0 / (dim as f32).sqrt()),
        q_off: u32_of(qc.offset),
        k_off: u32_of(kc.offset),
        v_off: u32_of(vc.offset),
        bh: u32_of(bh),
    };
    let b = fwd::Bindings {
        q: &qc,
        k: &kc,
        v: &vc,
        lengths: &lengths,
        o: &o,
        lse: &lse,
    };
    fwd::launch(&p, u32_of(dim), &b)?;
    let saved_o = o.detach();
    Ok(record(o, "attention", &[q, k, v], move |grads, d_o| {
        let d_o = d_o.owned()?;
        // D = rowsum(dO ⊙ O), then [lse ‖ D] as one [2, BH·L] buffer for the kernels.
        let d = d_o.mul(&saved_o)?.sum(2)?;
        let stats = Tensor::cat0(&[&lse.reshape(&[1, bh * len])?, &d.reshape(&[1, bh * len])?])?;
        let bp = bwd::Params {
            len: p.len,
            heads: p.heads,
            causal: p.causal,
            scale: p.scale,
            bh: u32_of(bh),
            _pad: [0; 3],
        };
        let dq = qc.output_like(&[bh, len, dim], "attention_backward")?;
        let dkv = qc.output_like(&[2 * bh, len, dim], "attention_backward")?;
        let b = bwd::Bindings {
            q: &qc,
            k: &kc,
            v: &vc,
            d_o: &d_o,
            stats: &stats,
            lengths: &lengths,
            dq: &dq,
            dkv: &dkv,
        };
        bwd::launch(&bp, u32_of(dim), &b)?;
        grads.add(0, dq)?;
        if grads.wants(1) {
            grads.add(1, dkv.narrow(0, 0, bh)?)?;
        }
        if grads.wants(2) {
            grads.add(2, dkv.narrow(0, bh, bh)?)?;
        }
        Ok(())
    }))
}

/// The same attention through ordinary ops (batched matmul, an additive mask, softmax, matmul):
/// O(L²) memory, differentiable through the tape. `lengths` are host values here.
pub fn attention_reference(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
    lengths: Option<&[usize]>,
    heads: usize,
) -> Result<Tensor> {
    let (bh, len, dim) = check(q, k, v)?;
    let heads = heads.max(1);
    if !bh.is_multiple_of(heads) || lengths.is_some_and(|l| l.len() != bh / heads) {
        return Err(Error::InvalidArgument {
            op: "attention_reference",
            message: format!("{bh} rows need a multiple of {heads} heads and one length per batch entry ({} given)", lengths.map_or(0, <[usize]>::len)),
        });
    }
    let scale = 1.0 / (dim as f32).sqrt();
    let scores = super::matmul::Matmul::new(q, &k.transpose(1, 2)?)
        .alpha(scale)
        .compute()?;
    // The additive mask, only as large as it must be: none without masking, one [1, L, L]
    // plane broadcast over the rows for a causal mask alone, [BH, L, L] with lengths (an
    // unmasked call used to upload BH·L² zeros: 128 MiB at L = 1024, most of the path's time).
    let short = lengths.is_some_and(|l| l.iter().any(|&n| n < len));
    let masked = if causal || short {
        let rows = if short { bh } else { 1 };
        let mut mask = vec![0.0f32; rows * len * len];
        for b in 0..rows {
            let kv = lengths.map_or(len, |l| l[b / heads].min(len));
            for i in 0..len {
                for j in 0..len {
                    if j >= kv || (causal && j > i) {
                        mask[(b * len + i) * len + j] = -1.0e30;
                    }
                }
            }
        }
        scores.add(&Tensor::from_slice(&q.device(), &mask, &[rows, len, len])?)?
    } else {
        scores
    };
    let out = masked.softmax()?.matmul(v)?;
    if !lengths.is_some_and(|l| l.contains(&0)) {
        return Ok(out);
    }
    // A query with no key at all (length 0) gets zeros, as the fused kernels give, not the
    // uniform average that the softmax of an all-masked row would be.
    let keep: Vec<f32> = (0..bh * len)
        .map(|r| {
            let kv = lengths.map_or(len, |l| l[r / len / heads]);
            f32::from(u8::from(kv > 0))
        })
        .collect();
    let keep = Tensor::from_slice(&q.device(), &keep, &[bh, len, 1])?;
    out.mul(&keep)
}
