//! Elementwise ops: unary maps (activations, math, affine, fill, strided copy) and binary maps
//! with NumPy broadcasting.

use crate::cpu;
use crate::error::{shape_str, Error, Result};
use crate::kernels::binary::{self, BinaryOp};
use crate::kernels::pack8;
use crate::kernels::unary::{self, UnaryOp};
use crate::ops::{same_device, u32_of};
use crate::tensor::{host_read, host_write, Storage, Tensor};

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
    /// y = α·f(x) + β into a fresh contiguous tensor.
    pub(crate) fn unary_op(&self, op: UnaryOp, alpha: f32, beta: f32) -> Result<Tensor> {
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
        };
        if p.numel == 0 {
            return Ok(y);
        }
        match &self.storage {
            Storage::Gpu(s) => unary::record(
                &s.gpu.inner,
                &p,
                Some(s.raw()),
                y.raw().expect("same device"),
            )?,
            Storage::Cpu(_) => cpu::unary::unary(&p, &host_read(self), &mut host_write(&y)),
        }
        Ok(y)
    }

    /// Sets every element of a contiguous tensor to `value`, in place.
    pub(crate) fn fill(&self, value: f32) -> Result<()> {
        debug_assert!(self.is_contiguous());
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
        match &self.storage {
            Storage::Gpu(s) if p.numel > 0 => unary::record(&s.gpu.inner, &p, None, s.raw()),
            Storage::Gpu(_) => Ok(()),
            Storage::Cpu(_) => {
                cpu::unary::unary(&p, &[], &mut host_write(self));
                Ok(())
            }
        }
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
        match (&self.storage, &rhs.storage) {
            (Storage::Gpu(a), Storage::Gpu(b)) => binary::record(
                &a.gpu.inner,
                &p,
                a.raw(),
                b.raw(),
                y.raw().expect("same device"),
            )?,
            _ => {
                // Two read locks on one storage are fine (a + a); the output is fresh.
                cpu::binary::binary(&p, &host_read(self), &host_read(rhs), &mut host_write(&y))
            }
        }
        Ok(y)
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
    /// Elementwise maximum, broadcasting.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Max)
    }
    /// Elementwise minimum, broadcasting.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Min)
    }
}
