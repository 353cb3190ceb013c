//! Views: reshape, transpose, permute, narrow and broadcast share storage; `contiguous` and
//! `owned` copy only when they must.

use super::{checked_numel, contiguous_strides, Tensor};
use crate::error::{shape_str, Error, Result};
use crate::tensor::autodiff::record;

impl Tensor {
    fn view(&self, shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            shape,
            strides,
            offset,
            dtype: self.dtype,
            autograd: None,
        }
    }

    /// The same elements with another shape: a view when contiguous, else a copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let numel = checked_numel("reshape", shape)?;
        if numel != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                arg: "shape",
                expected: format!(
                    "{} elements, as {} has",
                    self.numel(),
                    shape_str(&self.shape)
                ),
                got: format!("{} ({numel} elements)", shape_str(shape)),
            });
        }
        let base = if self.is_contiguous() {
            self.clone()
        } else {
            self.contiguous()?
        };
        let out = base.view(shape.to_vec(), contiguous_strides(shape), base.offset);
        let from = self.shape.clone();
        Ok(record(out, "reshape", &[self], move |g, dy| {
            g.add(0, dy.reshape(&from)?)
        }))
    }

    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis >= self.rank() {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "axis {axis} is out of range for a tensor of shape {}",
                    shape_str(&self.shape)
                ),
            });
        }
        Ok(())
    }

    /// Swaps two axes (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let (mut shape, mut strides) = (self.shape.clone(), self.strides.clone());
        shape.swap(a, b);
        strides.swap(a, b);
        let out = self.view(shape, strides, self.offset);
        Ok(record(out, "transpose", &[self], move |g, dy| {
            g.add(0, dy.transpose(a, b)?)
        }))
    }

    /// The transpose of a matrix (a view).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::ShapeMismatch {
                op: "t",
                arg: "self",
                expected: "a matrix [rows, columns]; use `transpose(a, b)` for other ranks".into(),
                got: shape_str(&self.shape),
            });
        }
        self.transpose(0, 1)
    }

    /// Reorders the axes: axis `i` of the result is axis `order[i]` of `self` (a view).
    pub fn permute(&self, order: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        if order.len() != self.rank()
            || order
                .iter()
                .any(|&a| a >= self.rank() || std::mem::replace(&mut seen[a], true))
        {
            return Err(Error::InvalidArgument {
                op: "permute",
                message: format!(
                    "{order:?} is not a permutation of the {} axes of {}",
                    self.rank(),
                    shape_str(&self.shape)
                ),
            });
        }
        let shape = order.iter().map(|&a| self.shape[a]).collect();
        let strides = order.iter().map(|&a| self.strides[a]).collect();
        let out = self.view(shape, strides, self.offset);
        let mut inverse = vec![0; order.len()];
        for (i, &a) in order.iter().enumerate() {
            inverse[a] = i;
        }
        Ok(record(out, "permute", &[self], move |g, dy| {
            g.add(0, dy.permute(&inverse)?)
        }))
    }

    /// Elements `start..start + len` along `axis` (a view), differentiable along any axis.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        self.check_axis("narrow", axis)?;
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.shape[axis])
        {
            return Err(Error::InvalidArgument {
                op: "narrow",
                message: format!(
                    "{start}..{} is outside axis {axis} of length {}",
                    start.saturating_add(len),
                    self.shape[axis]
                ),
            });
        }
        let mut shape = self.shape.clone();
        shape[axis] = len;
        let out = self.view(
            shape,
            self.strides.clone(),
            self.offset + start * self.strides[axis],
        );
        let full = self.shape.clone();
        Ok(record(out, "narrow", &[self], move |g, dy| {
            // dy written into zeros of the input's shape. When only unit axes precede `axis`
            // the slice is one contiguous range of that zero tensor (the common case: the
            // recurrent layers' packed outputs, rows of a batch).
            if full[..axis].iter().all(|&n| n == 1) {
                let dx = Tensor::zeros(&dy.device(), &full)?;
                let inner: usize = full[axis + 1..].iter().product();
                dx.reshape(&[dx.numel()])?
                    .narrow(0, start * inner, len * inner)?
                    .axpy_from(dy, 1.0, 0.0)?;
                return g.add(0, dx);
            }
            // Otherwise with `axis` moved to the front the slice is such a range; the gradient
            // goes back as a view in the input's order.
            let rank = full.len();
            let order: Vec<usize> = std::iter::once(axis)
                .chain((0..rank).filter(|&d| d != axis))
                .collect();
            let front: Vec<usize> = order.iter().map(|&d| full[d]).collect();
            let dx = Tensor::zeros(&dy.device(), &front)?;
            let inner: usize = front[1..].iter().product();
            dx.reshape(&[dx.numel()])?
                .narrow(0, start * inner, len * inner)?
                .axpy_from(&dy.permute(&order)?, 1.0, 0.0)?;
            let mut inverse = vec![0; rank];
            for (i, &a) in order.iter().enumerate() {
                inverse[a] = i;
            }
            g.add(0, dx.permute(&inverse)?)
        }))
    }

    /// A view of this tensor broadcast to `shape` (stride 0 on stretched axes). Internal: the
    /// result aliases elements, so it is only ever read.
    pub(crate) fn broadcast_strides(&self, shape: &[usize]) -> Vec<usize> {
        let lead = shape.len() - self.rank();
        (0..shape.len())
            .map(|d| {
                if d < lead || self.shape[d - lead] == 1 && shape[d] != 1 {
                    0
                } else {
                    self.strides[d - lead]
                }
            })
            .collect()
    }
}
