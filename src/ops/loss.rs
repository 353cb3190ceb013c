//! Losses: fused cross-entropy from logits (one forward kernel, one backward kernel), mean squared
//! error and binary cross-entropy with logits.

use crate::error::{shape_str, Error, Result};
use crate::kernels::{cross_entropy_backward, cross_entropy_forward};
use crate::ops::{same_device, u32_of};
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

/// How a loss reduces its per-element values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean (over counted rows, for cross-entropy with an ignore index).
    #[default]
    Mean,
    /// The sum.
    Sum,
}

/// Cross-entropy from logits against integer class ids, as PyTorch's `F.cross_entropy`.
///
/// ```
/// use timeloom::{CrossEntropy, Device, Tensor};
/// let dev = Device::Cpu;
/// let logits = Tensor::from_slice(&dev, &[2.0, 0.0, 0.0, 0.0, 3.0, 0.0], &[2, 3])?;
/// let targets = Tensor::from_slice(&dev, &[0.0, 1.0], &[2])?; // class ids as f32
/// let loss = CrossEntropy::new().compute(&logits, &targets)?;
/// let v = loss.read_blocking()?[0];
/// assert!((v - 0.1673).abs() < 1e-3); // (ln(e² + 2) − 2 + ln(e³ + 2) − 3) / 2
/// # Ok::<(), timeloom::Error>(())
/// ```
///
/// # Shapes
/// `logits` [N, C], `targets` \[N\] (class ids in [0, C), or the ignore index); the loss is a
/// rank-0 tensor. An out-of-range target gives a NaN loss.
#[derive(Clone, Copy, Debug)]
pub struct CrossEntropy {
    ignore_index: i32,
    reduction: Reduction,
}

impl Default for CrossEntropy {
    fn default() -> Self {
        CrossEntropy {
            ignore_index: -100,
            reduction: Reduction::Mean,
        }
    }
}

impl CrossEntropy {
    /// Mean over rows, ignore index −100 (PyTorch's defaults).
    pub fn new() -> CrossEntropy {
        CrossEntropy::default()
    }

    /// Rows whose target is `index` count neither in the loss nor in the mean.
    pub fn ignore_index(mut self, index: i32) -> Self {
        self.ignore_index = index;
        self
    }

    /// Mean or sum.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The loss of `logits` [N, C] against `targets` \[N\].
    pub fn compute(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        same_device("cross_entropy", "targets", logits, targets)?;
        let [rows, cols] = *logits.shape() else {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                arg: "logits",
                expected: "[N, C]; reshape [B, T, C] to [B·T, C]".into(),
                got: shape_str(logits.shape()),
            });
        };
        if targets.shape() != [rows] {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                arg: "targets",
                expected: format!("[{rows}], one class id per row of `logits`"),
                got: shape_str(targets.shape()),
            });
        }
        if rows == 0 || cols == 0 {
            return Err(Error::InvalidArgument {
                op: "cross_entropy",
                message: format!(
                    "`logits` has shape {}; it needs rows and classes",
                    shape_str(logits.shape())
                ),
            });
        }
        let x = logits.contiguous()?.detach();
        let t = targets.contiguous()?.detach();
        let saved = x.output_like(&[3, rows], "cross_entropy")?;
        let p = cross_entropy_forward::Params {
            rows: u32_of(rows),
            cols: u32_of(cols),
            x_off: u32_of(x.offset),
            t_off: u32_of(t.offset),
            ignore_index: self.ignore_index,
            _pad: [0; 3],
        };
        cross_entropy_forward::launch(
            &p,
            &cross_entropy_forward::Bindings {
                x: &x,
                targets: &t,
                out: &saved,
            },
        )?;
        // [Σ loss, Σ counts] in one reduction; the mean divides on the device.
        let totals = saved.narrow(0, 0, 2)?.sum(1)?;
        let loss_sum = totals.narrow(0, 0, 1)?;
        let loss = match self.reduction {
            Reduction::Sum => loss_sum.reshape(&[])?,
            Reduction::Mean => loss_sum.div(&totals.narrow(0, 1, 1)?)?.reshape(&[])?,
        };
        let (ignore_index, mean) = (self.ignore_index, self.reduction == Reduction::Mean);
        Ok(record(loss, "cross_entropy", &[logits], move |g, dy| {
            let dy = dy.contiguous()?;
            let dx = x.output_like(x.shape(), "cross_entropy_backward")?;
            let p = cross_entropy_backward::Params {
                rows: u32_of(rows),
                cols: u32_of(cols),
                x_off: u32_of(x.offset),
                t_off: u32_of(t.offset),
                ignore_index,
                mean: u32::from(mean),
                dx_off: 0,
                dy_off: u32_of(dy.offset),
            };
            cross_entropy_backward::launch(
                &p,
                &cross_entropy_backward::Bindings {
                    x: &x,
                    targets: &t,
                    saved: &saved,
                    totals: &totals,
                    dy: &dy,
                    dx: &dx,
                },
            )?;
            g.add(0, dx)
        }))
    }
}

/// Mean squared error: mean((prediction − target)²) over all elements.
pub fn mse_loss(prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
    if prediction.shape() != target.shape() {
        return Err(Error::ShapeMismatch {
            op: "mse_loss",
            arg: "target",
            expected: shape_str(prediction.shape()),
            got: shape_str(target.shape()),
        });
    }
    let d = prediction.sub(target)?;
    let n = d.numel();
    d.reshape(&[n])?.sum_squares(0)?.scale(1.0 / n as f32)
}

/// Binary cross-entropy with logits, mean over all elements, in the stable form
/// max(x, 0) − x·t + log(1 + e^−|x|) (PyTorch's `BCEWithLogitsLoss`). Its gradient is the exact
/// (σ(x) − t)/n, also at x = 0 where the pieces of the stable form have kinks.
pub fn bce_with_logits(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.shape() != target.shape() {
        return Err(Error::ShapeMismatch {
            op: "bce_with_logits",
            arg: "target",
            expected: shape_str(logits.shape()),
            got: shape_str(target.shape()),
        });
    }
    same_device("bce_with_logits", "target", logits, target)?;
    let (x, t) = (logits.detach(), target.detach());
    let n = x.numel();
    let loss = crate::tensor::autodiff::no_grad(|| -> Result<Tensor> {
        let softplus = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        let per = x.relu()?.sub(&x.mul(&t)?)?.add(&softplus)?;
        per.reshape(&[n])?.mean(0)
    })?;
    Ok(record(
        loss,
        "bce_with_logits",
        &[logits, target],
        move |g, dy| {
            let scale = 1.0 / n as f32;
            if g.wants(0) {
                g.add(0, x.sigmoid()?.sub(&t)?.mul(dy)?.scale(scale)?)?;
            }
            if g.wants(1) {
                g.add(1, x.neg()?.mul(dy)?.scale(scale)?)?;
            }
            Ok(())
        },
    ))
}
