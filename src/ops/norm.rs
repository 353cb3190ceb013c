//! Layer normalisation and embedding lookup, forward and backward kernels, on the tape.

use crate::error::{shape_str, Error, Result};
use crate::kernels::{
    batch_norm_backward, batch_norm_forward, embedding_backward, embedding_forward,
    layer_norm_backward, layer_norm_forward,
};
use crate::ops::{read_only_f16, same_device, same_device_any_dtype, u32_of};
use crate::tensor::autodiff::record;
use crate::tensor::{DType, Tensor};

impl Tensor {
    /// Layer normalisation over the last axis, as PyTorch's `F.layer_norm` with
    /// `normalized_shape` = the last dimension: (x − μ)/√(σ² + ε)·γ + β, or without γ, β.
    ///
    /// # Shapes
    /// self [..., D]; `gamma`, `beta` \[D\]; result [..., D].
    pub fn layer_norm(&self, affine: Option<(&Tensor, &Tensor)>, eps: f32) -> Result<Tensor> {
        let op = "layer_norm";
        let cols = *self.shape().last().ok_or_else(|| Error::InvalidArgument {
            op,
            message: "a rank-0 tensor has no last axis".into(),
        })?;
        if cols == 0 {
            return Err(Error::InvalidArgument {
                op,
                message: "the last axis is empty".into(),
            });
        }
        // An f16 γ or β (a half-precision model's, for inference) is widened: D values each.
        let widened = match affine {
            Some((g, b)) if g.dtype() == DType::F16 || b.dtype() == DType::F16 => {
                read_only_f16(op, "gamma", g)?;
                read_only_f16(op, "beta", b)?;
                Some((g.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?))
            }
            _ => None,
        };
        let affine = widened.as_ref().map(|(g, b)| (g, b)).or(affine);
        if let Some((g, b)) = affine {
            vectors_of(op, self, cols, [("gamma", g), ("beta", b)])?;
        }
        let x = self.contiguous()?.detach();
        let rows = x.numel() / cols;
        // The kernels read γ and β from element 0 of their buffers.
        let affine_owned = affine
            .map(|(g, b)| Ok::<_, Error>((g.owned()?, b.owned()?)))
            .transpose()?;
        let y = x.output_like(self.shape(), op)?;
        let stats = x.output_like(&[2, rows], op)?;
        let p = layer_norm_forward::Params {
            rows: u32_of(rows),
            cols: u32_of(cols),
            x_off: u32_of(x.offset),
            affine: u32::from(affine.is_some()),
            eps,
            _pad: [0; 3],
        };
        if rows > 0 {
            layer_norm_forward::launch(
                &p,
                &layer_norm_forward::Bindings {
                    x: &x,
                    affine: affine_owned.as_ref().map(|(g, b)| (g, b)),
                    y: &y,
                    stats: &stats,
                },
            )?;
        }
        let mut inputs = vec![self];
        if let Some((g, b)) = affine {
            inputs.extend([g, b]);
        }
        let has_affine = affine.is_some();
        Ok(record(y, op, &inputs, move |grads, dy| {
            let dy = dy.contiguous()?;
            if grads.wants(0) {
                let dx = x.output_like(x.shape(), "layer_norm_backward")?;
                let p = layer_norm_backward::Params {
                    rows: u32_of(rows),
                    cols: u32_of(cols),
                    x_off: u32_of(x.offset),
                    affine: u32::from(has_affine),
                    dy_off: u32_of(dy.offset),
                    _pad: [0; 3],
                };
                layer_norm_backward::launch(
                    &p,
                    &layer_norm_backward::Bindings {
                        x: &x,
                        gamma: affine_owned.as_ref().map(|(g, _)| g),
                        stats: &stats,
                        dy: &dy,
                        dx: &dx,
                    },
                )?;
                grads.add(0, dx)?;
            }
            if has_affine && (grads.wants(1) || grads.wants(2)) {
                // dγ = Σ_rows dy ⊙ x̂, dβ = Σ_rows dy: column sums over the rows.
                let dy2 = dy.reshape(&[rows, cols])?;
                if grads.wants(1) {
                    let mean = stats.narrow(0, 0, 1)?.reshape(&[rows, 1])?;
                    let rstd = stats.narrow(0, 1, 1)?.reshape(&[rows, 1])?;
                    let xhat = x.reshape(&[rows, cols])?.sub(&mean)?.mul(&rstd)?;
                    grads.add(1, dy2.mul(&xhat)?.sum(0)?)?;
                }
                if grads.wants(2) {
                    grads.add(2, dy2.sum(0)?)?;
                }
            }
            Ok(())
        }))
    }
}

/// Rows of `weight` [V, D] picked by `ids` (class ids as f32, any shape): result [ids..., D].
/// The gradient of `weight` sums repeated ids in a fixed order: deterministic, no atomics.
/// An id outside [0, V) gives a row of NaN. An f16 table (a whole one, for inference) is
/// widened on load: the rows come out in f32, exactly the table's values; it cannot be trained
/// (keep an f32 copy for that).
pub fn embedding(weight: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let op = "embedding";
    let half = weight.dtype() == DType::F16;
    if half {
        same_device_any_dtype(op, "ids", weight, ids)?;
        ids.expect_f32(op)?;
    } else {
        same_device(op, "ids", weight, ids)?;
    }
    let [vocab, dim] = *weight.shape() else {
        return Err(Error::ShapeMismatch {
            op,
            arg: "weight",
            expected: "[vocabulary, dim]".into(),
            got: shape_str(weight.shape()),
        });
    };
    let w = if half {
        if !weight.is_contiguous() || weight.offset != 0 {
            return Err(Error::Unsupported {
                op,
                message: "an f16 table must be a whole tensor, not a view: look rows up in the \
                          whole table, or convert the view to f32 first"
                    .into(),
            });
        }
        read_only_f16(op, "table", weight)?;
        weight.detach()
    } else {
        weight.owned()?
    };
    let ids_c = ids.contiguous()?.detach();
    let tokens = ids_c.numel();
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    // The rows come out in f32 whatever the table's dtype (ids are f32 on the same device).
    let y = ids_c.output_like(&shape, op)?;
    let p = embedding_forward::Params {
        tokens: u32_of(tokens),
        dim: u32_of(dim),
        vocab: u32_of(vocab),
        ids_off: u32_of(ids_c.offset),
    };
    if tokens > 0 {
        embedding_forward::launch(
            &p,
            &embedding_forward::Bindings {
                weight: &w,
                ids: &ids_c,
                y: &y,
            },
        )?;
    }
    if half {
        return Ok(y);
    }
    Ok(record(y, op, &[weight], move |grads, dy| {
        let dy = dy.contiguous()?;
        let dw = w.output_like(&[vocab, dim], "embedding_backward")?;
        let mut pb = p;
        pb.tokens = u32_of(tokens);
        let dy = if dy.offset == 0 {
            dy
        } else {
            dy.affine(1.0, 0.0)?
        };
        embedding_backward::launch(
            &pb,
            &embedding_backward::Bindings {
                dy: &dy,
                ids: &ids_c,
                dw: &dw,
            },
        )?;
        grads.add(0, dw)
    }))
}

/// The sinusoidal positional encoding of "Attention Is All You Need": row t, column 2i is
/// sin(t / 10000^(2i/D)), column 2i + 1 the cosine. [len, dim], row-major.
pub fn sinusoidal_positions(len: usize, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; len * dim];
    for t in 0..len {
        for c in 0..dim {
            let i = (c / 2) as f64;
            let angle = t as f64 / 10000f64.powf(2.0 * i / dim as f64);
            v[t * dim + c] = if c % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    v
}

/// Checks that every (name, tensor) of `args` is a [len] vector on `x`'s device.
fn vectors_of<'a>(
    op: &'static str,
    x: &Tensor,
    len: usize,
    args: impl IntoIterator<Item = (&'static str, &'a Tensor)>,
) -> Result<()> {
    for (arg, t) in args {
        same_device(op, arg, x, t)?;
        if t.shape() != [len] {
            return Err(Error::ShapeMismatch {
                op,
                arg,
                expected: format!("[{len}]"),
                got: shape_str(t.shape()),
            });
        }
    }
    Ok(())
}

/// Batch normalisation's running statistics: (mean, variance), each [C].
pub type RunningStats<'a> = (&'a Tensor, &'a Tensor);

impl Tensor {
    /// Batch normalisation per channel of [N, C, ...] (axis 1), as PyTorch's `F.batch_norm`:
    /// (x − μ)/√(σ² + ε)·γ + β. In training μ and σ² are the batch's (biased σ²) and `running`,
    /// when given, moves in place by `momentum` towards μ and the unbiased σ²
    /// (r ← (1 − m)·r + m·batch, PyTorch's convention); in evaluation μ and σ² are `running`.
    /// Differentiable in `self`, γ and β; the running statistics are never differentiated.
    ///
    /// ```
    /// use timeloom::{Device, Tensor};
    /// let dev = Device::Cpu;
    /// let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let (mean, var) = (Tensor::zeros(&dev, &[2])?, Tensor::full(&dev, &[2], 1.0)?);
    /// let y = x.batch_norm(Some((&mean, &var)), None, true, 0.1, 1e-5)?;
    /// assert!((y.read_blocking()?[0] + 1.0).abs() < 1e-3); // (1 − 2)/1
    /// assert!((mean.read_blocking()?[0] - 0.2).abs() < 1e-6); // 0.9·0 + 0.1·2
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Shapes
    /// self [N, C] or [N, C, *]; running statistics, γ and β \[C\].
    ///
    /// # Errors
    /// `InvalidArgument` in evaluation without running statistics, in training with one value
    /// per channel, or when the running statistics are views or share a buffer.
    pub fn batch_norm(
        &self,
        running: Option<RunningStats<'_>>,
        affine: Option<(&Tensor, &Tensor)>,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<Tensor> {
        let op = "batch_norm";
        if self.rank() < 2 {
            return Err(Error::ShapeMismatch {
                op,
                arg: "input",
                expected: "[N, C] or [N, C, *]".into(),
                got: shape_str(self.shape()),
            });
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        let s: usize = self.shape()[2..].iter().product();
        let invalid = |message: String| Error::InvalidArgument { op, message };
        if training && n * s < 2 {
            return Err(invalid(format!(
                "training needs more than one value per channel, got input {}: use a larger batch or evaluation mode",
                shape_str(self.shape())
            )));
        }
        if !training && running.is_none() {
            return Err(invalid(
                "evaluation normalises with running statistics: pass them, or train".into(),
            ));
        }
        let args = running
            .iter()
            .flat_map(|(m, v)| [("running_mean", *m), ("running_var", *v)])
            .chain(
                affine
                    .iter()
                    .flat_map(|(g, b)| [("weight", *g), ("bias", *b)]),
            );
        vectors_of(op, self, c, args)?;
        if let Some((m, v)) = running {
            if m.offset != 0
                || v.offset != 0
                || !m.is_contiguous()
                || !v.is_contiguous()
                || m.shares_storage(v)
            {
                return Err(invalid(
                    "the running statistics are updated in place: pass two whole tensors, not views of one buffer".into(),
                ));
            }
            // Written while the input and the affine map are read: they must not alias.
            let read = std::iter::once(self).chain(affine.iter().flat_map(|(g, b)| [*g, *b]));
            if read
                .clone()
                .any(|t| t.shares_storage(m) || t.shares_storage(v))
            {
                return Err(invalid(
                    "the running statistics share storage with the input or the affine parameters, which the same step reads: pass tensors of their own".into(),
                ));
            }
        }
        let x = self.owned()?;
        // The kernel reads γ and β from element 0 of their buffers.
        let affine_owned = affine
            .map(|(g, b)| Ok::<_, Error>((g.owned()?, b.owned()?)))
            .transpose()?;
        // Without running statistics the kernel writes none; it still needs two buffers.
        let (rm, rv) = match running {
            Some((m, v)) => (m.detach(), v.detach()),
            None => (x.output_like(&[1], op)?, x.output_like(&[1], op)?),
        };
        let y = x.output_like(self.shape(), op)?;
        let stats = x.output_like(&[2, c], op)?;
        let p = batch_norm_forward::Params {
            n: u32_of(n),
            c: u32_of(c),
            s: u32_of(s),
            training: u32::from(training),
            momentum,
            eps,
            affine: u32::from(affine.is_some()),
            track: u32::from(training && running.is_some()),
        };
        if y.numel() > 0 {
            batch_norm_forward::launch(
                &p,
                &batch_norm_forward::Bindings {
                    x: &x,
                    affine: affine_owned.as_ref().map(|(g, b)| (g, b)),
                    running_mean: &rm,
                    running_var: &rv,
                    y: &y,
                    stats: &stats,
                },
            )?;
        }
        let mut inputs = vec![self];
        if let Some((g, b)) = affine {
            inputs.extend([g, b]);
        }
        let has_affine = affine.is_some();
        Ok(record(y, op, &inputs, move |grads, dy| {
            if dy.numel() == 0 {
                return grads.add_zeros_to_all();
            }
            let dy = dy.owned()?;
            let dx = x.output_like(x.shape(), "batch_norm_backward")?;
            let dgamma = x.output_like(&[c], "batch_norm_backward")?;
            let dbeta = x.output_like(&[c], "batch_norm_backward")?;
            let bp = batch_norm_backward::Params {
                n: p.n,
                c: p.c,
                s: p.s,
                training: p.training,
                affine: p.affine,
                _pad: [0; 3],
            };
            batch_norm_backward::launch(
                &bp,
                &batch_norm_backward::Bindings {
                    x: &x,
                    gamma: affine_owned.as_ref().map(|(g, _)| g),
                    stats: &stats,
                    dy: &dy,
                    dx: &dx,
                    dgamma: &dgamma,
                    dbeta: &dbeta,
                },
            )?;
            if grads.wants(0) {
                grads.add(0, dx)?;
            }
            if has_affine {
                if grads.wants(1) {
                    grads.add(1, dgamma)?;
                }
                if grads.wants(2) {
                    grads.add(2, dbeta)?;
                }
            }
            Ok(())
        }))
    }
}
