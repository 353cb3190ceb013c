//! Elementwise ops: unary maps (activations, math, affine, fill, strided copy) and binary maps
//! with NumPy broadcasting.

use crate::error::{shape_str, Error, Result};
use crate::kernels::binary::{self, BinaryOp};
use crate::kernels::unary::{self, UnaryOp};
use crate::kernels::{axpy, pack8, unary_backward};
use crate::ops::{same_device, u32_of};
use crate::tensor::autodiff::record;
use crate::tensor::{DType, Tensor};

/// The shape both operands broadcast to, NumPy style (trailing axes aligned; 1 stretches).
pub(crate) fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], d: usize| {
        if d + s.len() < rank {
            1
        } else {
            s[d + s.len() - rank]
        }
    };
    (0..rank)
        .map(|d| match (at(a, d), at(b, d)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::ShapeMismatch {
                op,
                arg: "rhs",
                expected: format!("a shape that broadcasts with {}", shape_str(a)),
                got: shape_str(b),
            }),
        })
        .collect()
}

impl Tensor {
    /// A contiguous, detached tensor that starts at element 0 of its buffer (copied when this one
    /// does not): for kernels that bind a whole buffer and read from its start.
    pub(crate) fn owned(&self) -> Result<Tensor> {
        let t = self.contiguous()?.detach();
        if t.offset == 0 {
            Ok(t)
        } else if t.dtype == DType::F16 {
            t.f16_copy()
        } else {
            t.affine(1.0, 0.0)
        }
    }

    /// A contiguous tensor with the same elements: `self` when already contiguous. An f16 view
    /// is copied as f16 (not recorded on the tape: f16 tensors are read, never trained).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        if self.dtype == DType::F16 {
            return self.f16_copy();
        }
        self.unary_op(UnaryOp::Identity, 1.0, 0.0)
    }

    /// y = α·f(x) + β into a fresh contiguous tensor.
    pub(crate) fn unary_op(&self, op: UnaryOp, alpha: f32, beta: f32) -> Result<Tensor> {
        self.unary_op_sloped(op, alpha, beta, 0.0)
    }

    /// [`Tensor::unary_op`] with the negative slope of `LeakyRelu`.
    pub(crate) fn unary_op_sloped(
        &self,
        op: UnaryOp,
        alpha: f32,
        beta: f32,
        slope: f32,
    ) -> Result<Tensor> {
        let y = self.output_like(&self.shape, "unary")?;
        let p = unary::Params {
            numel: u32_of(self.numel()),
            rank: u32_of(self.rank()),
            op: op as u32,
            contiguous: u32::from(self.is_contiguous()),
            x_off: u32_of(self.offset),
            y_off: 0,
            alpha,
            beta,
            shape: pack8(&self.shape),
            x_strides: pack8(&self.strides),
            slope,
            _pad: [0; 3],
        };
        if p.numel == 0 {
            return Ok(y);
        }
        unary::launch(
            &p,
            &unary::Bindings {
                x: Some(self),
                y: &y,
            },
        )?;
        let x = self.detach();
        Ok(record(y, "unary", &[self], move |g, dy| {
            if op == UnaryOp::Identity && alpha == 1.0 {
                return g.add(0, dy.clone()); // a copy passes its gradient through
            }
            g.add(0, x.unary_backward(op, alpha, slope, dy)?)
        }))
    }

    /// dx = α · dy · f'(self) for the unary map `op`: the backward of [`Tensor::unary_op`].
    pub(crate) fn unary_backward(
        &self,
        op: UnaryOp,
        alpha: f32,
        slope: f32,
        dy: &Tensor,
    ) -> Result<Tensor> {
        let (x, dy) = (self.contiguous()?, dy.contiguous()?);
        let dx = x.output_like(&x.shape, "unary_backward")?;
        let p = unary_backward::Params {
            numel: u32_of(x.numel()),
            op: op as u32,
            x_off: u32_of(x.offset),
            dy_off: u32_of(dy.offset),
            dx_off: 0,
            alpha,
            slope,
            _pad: 0,
        };
        if p.numel == 0 {
            return Ok(dx);
        }
        unary_backward::launch(
            &p,
            &unary_backward::Bindings {
                x: &x,
                dy: &dy,
                dx: &dx,
            },
        )?;
        Ok(dx)
    }

    /// self = α·x + β·self in place (self contiguous; β = 0 overwrites without reading).
    pub(crate) fn axpy_from(&self, x: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        same_device("axpy", "x", self, x)?;
        debug_assert!(self.is_contiguous() && x.numel() == self.numel());
        let x = x.contiguous()?;
        let p = axpy::Params {
            numel: u32_of(self.numel()),
            x_off: u32_of(x.offset),
            y_off: u32_of(self.offset),
            alpha,
            beta,
            ..axpy::Params::default()
        };
        if p.numel == 0 {
            return Ok(());
        }
        axpy::launch(&p, &axpy::Bindings { x: &x, y: self })
    }

    /// A contiguous copy of this tensor broadcast to `shape` (NumPy rules).
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        let target = broadcast_shape("expand", &self.shape, shape)?;
        if target != shape {
            return Err(Error::ShapeMismatch {
                op: "expand",
                arg: "shape",
                expected: format!("a shape that {} broadcasts to", shape_str(&self.shape)),
                got: shape_str(shape),
            });
        }
        let view = Tensor {
            storage: self.storage.clone(),
            shape: shape.to_vec(),
            strides: self.broadcast_strides(shape),
            offset: self.offset,
            dtype: self.dtype,
            autograd: None,
        };
        let y = view.unary_op(UnaryOp::Identity, 1.0, 0.0)?;
        let from = self.shape.clone();
        Ok(record(y, "expand", &[self], move |g, dy| {
            g.add(0, dy.sum_to(&from)?)
        }))
    }

    /// Sums this tensor down to `shape`, the reverse of broadcasting to its own shape: the
    /// gradient of a broadcast operand.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape == shape {
            return Ok(self.clone());
        }
        let mismatch = || Error::ShapeMismatch {
            op: "sum_to",
            arg: "shape",
            expected: format!("a shape that broadcasts to {}", shape_str(&self.shape)),
            got: shape_str(shape),
        };
        let lead = self.rank().checked_sub(shape.len()).ok_or_else(mismatch)?;
        let mut t = self.clone();
        for _ in 0..lead {
            t = t.sum(0)?;
        }
        for (d, &n) in shape.iter().enumerate() {
            if n == 1 && t.shape[d] != 1 {
                let mut keep = t.shape.clone();
                keep[d] = 1;
                t = t.sum(d)?.reshape(&keep)?;
            }
        }
        if t.shape != shape {
            return Err(mismatch());
        }
        Ok(t)
    }

    /// Sets every element of this contiguous view to `value`, in place.
    pub(crate) fn fill_view(&self, value: f32) -> Result<()> {
        if !self.is_contiguous() {
            return Err(Error::InvalidArgument {
                op: "fill",
                message: "a non-contiguous view".into(),
            });
        }
        self.fill(value)
    }

    /// Sets every element of a contiguous tensor to `value`, in place.
    pub(crate) fn fill(&self, value: f32) -> Result<()> {
        debug_assert!(self.is_contiguous());
        self.expect_f32("fill")?;
        let p = unary::Params {
            numel: u32_of(self.numel()),
            rank: u32_of(self.rank()),
            op: UnaryOp::Fill as u32,
            contiguous: 1,
            y_off: u32_of(self.offset),
            alpha: 1.0,
            beta: value,
            shape: pack8(&self.shape),
            ..unary::Params::default()
        };
        if p.numel == 0 {
            return Ok(());
        }
        unary::launch(&p, &unary::Bindings { x: None, y: self })
    }

    /// max(x, 0).
    pub fn relu(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Relu, 1.0, 0.0)
    }
    /// 1 / (1 + e⁻ˣ), stable for any finite x.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sigmoid, 1.0, 0.0)
    }
    /// tanh(x).
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Tanh, 1.0, 0.0)
    }
    /// x·Φ(x) (PyTorch's default, erf-based GELU).
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Gelu, 1.0, 0.0)
    }
    /// −x.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Neg, 1.0, 0.0)
    }
    /// |x|.
    pub fn abs(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Abs, 1.0, 0.0)
    }
    /// eˣ.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Exp, 1.0, 0.0)
    }
    /// ln x.
    pub fn log(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Log, 1.0, 0.0)
    }
    /// √x.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Sqrt, 1.0, 0.0)
    }
    /// x².
    pub fn square(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Square, 1.0, 0.0)
    }
    /// 1 / x.
    pub fn recip(&self) -> Result<Tensor> {
        self.unary_op(UnaryOp::Recip, 1.0, 0.0)
    }
    /// x for x ≥ 0, `slope`·x below.
    pub fn leaky_relu(&self, slope: f32) -> Result<Tensor> {
        self.unary_op_sloped(UnaryOp::LeakyRelu, 1.0, 0.0, slope)
    }
    /// α·x + β.
    pub fn affine(&self, alpha: f32, beta: f32) -> Result<Tensor> {
        self.unary_op(UnaryOp::Identity, alpha, beta)
    }
    /// s·x.
    pub fn scale(&self, s: f32) -> Result<Tensor> {
        self.unary_op(UnaryOp::Identity, s, 0.0)
    }

    /// y = f(self, rhs) with broadcasting into a fresh contiguous tensor.
    pub(crate) fn binary_op(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        same_device(op.name(), "rhs", self, rhs)?;
        let shape = broadcast_shape(op.name(), &self.shape, &rhs.shape)?;
        let y = self.output_like(&shape, op.name())?;
        let contiguous = self.shape == shape
            && rhs.shape == shape
            && self.is_contiguous()
            && rhs.is_contiguous();
        let p = binary::Params {
            numel: u32_of(y.numel()),
            rank: u32_of(shape.len()),
            op: op as u32,
            contiguous: u32::from(contiguous),
            a_off: u32_of(self.offset),
            b_off: u32_of(rhs.offset),
            y_off: 0,
            _pad: 0,
            shape: pack8(&shape),
            a_strides: pack8(&self.broadcast_strides(&shape)),
            b_strides: pack8(&rhs.broadcast_strides(&shape)),
        };
        if p.numel == 0 {
            return Ok(y);
        }
        binary::launch(
            &p,
            &binary::Bindings {
                a: self,
                b: rhs,
                y: &y,
            },
        )?;
        if op == BinaryOp::Eq {
            return Ok(y); // a mask: no gradient flows through it
        }
        let (a, b, out) = (self.detach(), rhs.detach(), y.detach());
        Ok(record(y, op.name(), &[self, rhs], move |g, dy| {
            let (da, db) = match op {
                BinaryOp::Add => (dy.clone(), dy.clone()),
                BinaryOp::Sub => (dy.clone(), if g.wants(1) { dy.neg()? } else { dy.clone() }),
                BinaryOp::Mul => (
                    if g.wants(0) { dy.mul(&b)? } else { dy.clone() },
                    if g.wants(1) { dy.mul(&a)? } else { dy.clone() },
                ),
                BinaryOp::Div => (
                    if g.wants(0) { dy.div(&b)? } else { dy.clone() },
                    // d(a/b)/db = −a/b²
                    if g.wants(1) {
                        dy.mul(&a)?.div(&b.square()?)?.neg()?
                    } else {
                        dy.clone()
                    },
                ),
                BinaryOp::Max | BinaryOp::Min => {
                    // As torch.maximum / minimum: the gradient goes to the input that won, and
                    // a tie splits it in half between them.
                    let (wa, wb) = (
                        out.binary_op(&a, BinaryOp::Eq)?,
                        out.binary_op(&b, BinaryOp::Eq)?,
                    );
                    let share = dy.div(&wa.add(&wb)?)?;
                    (share.mul(&wa)?, share.mul(&wb)?)
                }
                BinaryOp::Eq => unreachable!("returned above"),
            };
            if g.wants(0) {
                g.add(0, da.sum_to(a.shape())?)?;
            }
            if g.wants(1) {
                g.add(1, db.sum_to(b.shape())?)?;
            }
            Ok(())
        }))
    }

    /// self + rhs, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Add)
    }
    /// self − rhs, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Sub)
    }
    /// self · rhs elementwise, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Mul)
    }
    /// self / rhs elementwise, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Div)
    }
    /// Elementwise maximum, broadcasting. Differentiable as `torch.maximum`: the gradient goes
    /// to the larger input, split in half on a tie. With a NaN input, which value wins is up
    /// to the device (WGSL leaves it open; the CPU path drops the NaN), and so is the gradient.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Max)
    }
    /// Elementwise minimum, broadcasting; its gradient as [`Tensor::maximum`]'s.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Min)
    }
}

impl Tensor {
    /// Concatenates contiguous tensors of equal trailing shape along axis 0.
    pub fn cat0(parts: &[&Tensor]) -> Result<Tensor> {
        let first = parts.first().ok_or_else(|| Error::InvalidArgument {
            op: "cat0",
            message: "nothing to concatenate".into(),
        })?;
        let tail = &first.shape()[1.min(first.rank())..];
        let mut rows = 0;
        for (i, p) in parts.iter().enumerate() {
            same_device("cat0", "parts", first, p)?;
            if p.rank() == 0 || &p.shape()[1..] != tail {
                return Err(Error::ShapeMismatch {
                    op: "cat0",
                    arg: "parts",
                    expected: format!(
                        "[_, {}] like part 0",
                        tail.iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    got: format!("part {i}: {}", shape_str(p.shape())),
                });
            }
            rows += p.shape()[0];
        }
        let mut shape = first.shape().to_vec();
        shape[0] = rows;
        let out = first.output_like(&shape, "cat0")?;
        let flat = out.detach().reshape(&[out.numel()])?;
        let mut at = 0;
        let mut sizes = Vec::new();
        for p in parts {
            flat.narrow(0, at, p.numel())?
                .axpy_from(&p.detach(), 1.0, 0.0)?;
            sizes.push(p.shape()[0]);
            at += p.numel();
        }
        Ok(record(out, "cat0", parts, move |g, dy| {
            let mut row = 0;
            for (i, &n) in sizes.iter().enumerate() {
                if g.wants(i) {
                    g.add(i, dy.narrow(0, row, n)?.contiguous()?)?;
                }
                row += n;
            }
            Ok(())
        }))
    }
}
