//! Reductions over one axis: sum, mean, sum of squares, max, min; and over all elements.

use crate::error::{shape_str, Error, Result};
use crate::kernels::binary::BinaryOp;
use crate::kernels::reduce::{self, ReduceOp};
use crate::ops::{same_device, u32_of};
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

impl Tensor {
    /// Reduces `axis` away: y[o, i] = scale · ⊕_r f(x[o, r, i]).
    pub(crate) fn reduce_op(
        &self,
        axis: usize,
        op: ReduceOp,
        mean: bool,
        name: &'static str,
    ) -> Result<Tensor> {
        if axis >= self.rank() {
            return Err(Error::InvalidArgument {
                op: name,
                message: format!(
                    "axis {axis} is out of range for a tensor of shape {}",
                    shape_str(&self.shape)
                ),
            });
        }
        let len = self.shape[axis];
        if len == 0 {
            return Err(Error::InvalidArgument {
                op: name,
                message: format!(
                    "axis {axis} of {} is empty; a reduction over no elements has no value",
                    shape_str(&self.shape)
                ),
            });
        }
        let x = self.contiguous()?.detach();
        let outer: usize = self.shape[..axis].iter().product();
        let inner: usize = self.shape[axis + 1..].iter().product();
        let mut out_shape = self.shape.clone();
        out_shape.remove(axis);
        let y = self.output_like(&out_shape, name)?;
        if y.numel() == 0 {
            return Ok(y);
        }
        let scale = if mean { 1.0 / len as f32 } else { 1.0 };
        let p = reduce::Params {
            outer: u32_of(outer),
            len: u32_of(len),
            inner: u32_of(inner),
            op: op as u32,
            x_off: u32_of(x.offset),
            scale,
            ..reduce::Params::default()
        };
        reduce::launch(&p, &reduce::Bindings { x: &x, y: &y })?;
        let in_shape = self.shape.clone();
        let out = y.detach();
        Ok(record(y, name, &[self], move |g, dy| {
            // dy has the input's shape less `axis`: put the axis back as 1 and broadcast.
            let mut keep = in_shape.clone();
            keep[axis] = 1;
            let spread = dy.reshape(&keep)?.expand(&in_shape)?;
            let dx = match op {
                ReduceOp::SumSquares => spread.mul(&x)?.scale(2.0)?,
                ReduceOp::Max | ReduceOp::Min => {
                    // As torch.amax / amin: the elements equal to the extreme share the
                    // gradient equally (one winner takes it all).
                    let winners = x.binary_op(&out.reshape(&keep)?, BinaryOp::Eq)?;
                    let count = winners.sum(axis)?.reshape(&keep)?;
                    spread.mul(&winners)?.div(&count)?
                }
                _ if scale != 1.0 => spread.scale(scale)?,
                _ => spread,
            };
            g.add(0, dx)
        }))
    }

    /// Sum over `axis`, which is removed from the shape.
    pub fn sum(&self, axis: usize) -> Result<Tensor> {
        self.reduce_op(axis, ReduceOp::Sum, false, "sum")
    }
    /// Mean over `axis`, which is removed from the shape.
    pub fn mean(&self, axis: usize) -> Result<Tensor> {
        self.reduce_op(axis, ReduceOp::Sum, true, "mean")
    }
    /// Sum of squares over `axis`, which is removed from the shape.
    pub fn sum_squares(&self, axis: usize) -> Result<Tensor> {
        self.reduce_op(axis, ReduceOp::SumSquares, false, "sum_squares")
    }
    /// Maximum over `axis`, which is removed from the shape. Differentiable as `torch.amax`:
    /// elements tied for the maximum share its gradient equally.
    pub fn max(&self, axis: usize) -> Result<Tensor> {
        self.reduce_op(axis, ReduceOp::Max, false, "max")
    }
    /// Minimum over `axis`, which is removed from the shape; its gradient as [`Tensor::max`]'s.
    pub fn min(&self, axis: usize) -> Result<Tensor> {
        self.reduce_op(axis, ReduceOp::Min, false, "min")
    }
    /// Sum of all elements, as a rank-0 tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.sum(0)
    }
    /// Sum of the squares of all elements, as a rank-0 tensor (a squared norm).
    pub fn sum_squares_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.sum_squares(0)
    }
}

impl Tensor {
    /// Writes the whole-tensor reduction `op` of self (Σ x², Σ |x| or max |x|: a gradient
    /// norm's partial) into element `slot` of the contiguous `dst`.
    pub(crate) fn reduce_all_into(&self, dst: &Tensor, slot: usize, op: ReduceOp) -> Result<()> {
        if self.numel() == 0 {
            // The reduction kernel splits its length into chunks; there is none to split.
            return dst.narrow(0, slot, 1)?.fill_view(0.0);
        }
        same_device("reduce_all_into", "dst", self, dst)?;
        let x = self.contiguous()?;
        let p = reduce::Params {
            outer: 1,
            len: u32_of(x.numel()),
            inner: 1,
            op: op as u32,
            x_off: u32_of(x.offset),
            y_off: u32_of(dst.offset + slot),
            scale: 1.0,
            ..reduce::Params::default()
        };
        reduce::launch(&p, &reduce::Bindings { x: &x, y: dst })
    }
}
