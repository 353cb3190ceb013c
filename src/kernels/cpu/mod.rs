//! The CPU twin of every kernel: the test oracle, the CPU side of every benchmark and the way to
//! run without a GPU driver. Each twin takes its kernel's `Params` and the same buffers in the same
//! order (the read-only ones as an `Inputs` struct where there are many), and is generic over [`Float`] so gradient checks can run in f64. It is strong where the
//! time goes (GEMM through `matrixmultiply`, all cores) and plain everywhere else.

pub(crate) mod activations;
pub(crate) mod attention_backward_kv;
pub(crate) mod attention_forward;
pub(crate) mod axpy;
pub(crate) mod batch_norm_backward;
pub(crate) mod batch_norm_forward;
pub(crate) mod binary;
pub(crate) mod clip_scale;
pub(crate) mod conv2d_backward_data;
pub(crate) mod conv2d_backward_weight;
pub(crate) mod conv2d_forward;
pub(crate) mod cross_entropy_backward;
pub(crate) mod cross_entropy_forward;
pub(crate) mod dropout;
pub(crate) mod embedding_backward;
pub(crate) mod embedding_forward;
pub(crate) mod layer_norm_backward;
pub(crate) mod layer_norm_forward;
pub(crate) mod matmul;
pub(crate) mod optimizer_step;
pub(crate) mod pool2d_backward;
pub(crate) mod pool2d_forward;
pub(crate) mod recurrent_step_backward;
pub(crate) mod recurrent_step_forward;
pub(crate) mod reduce;
pub(crate) mod softmax_backward;
pub(crate) mod softmax_forward;
pub(crate) mod unary;
pub(crate) mod unary_backward;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The element types the CPU twins compute in: f32 (what tensors hold) and f64 (gradient checks).
pub trait Float:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn signum(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;

    /// C = α·A·B + β·C for one matrix of `[m, k, n]`, through `matrixmultiply` (packs, SIMD,
    /// threads); each operand is (pointer, row stride, column stride). β = 0 does not read C.
    ///
    /// # Safety
    /// Every element addressed by (m, k, n) and the strides must lie inside the allocations.
    unsafe fn gemm(
        mkn: [usize; 3],
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize, isize),
    );
}

macro_rules! float_impl {
    ($t:ty, $gemm:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn signum(self) -> Self {
                if self == 0.0 {
                    0.0
                } else {
                    <$t>::signum(self)
                }
            }
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            unsafe fn gemm(
                [m, k, n]: [usize; 3],
                alpha: Self,
                (a, rsa, csa): (*const Self, isize, isize),
                (b, rsb, csb): (*const Self, isize, isize),
                beta: Self,
                (c, rsc, csc): (*mut Self, isize, isize),
            ) {
                // SAFETY: the caller guarantees every addressed element is in bounds.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

float_impl!(f32, matrixmultiply::sgemm);
float_impl!(f64, matrixmultiply::dgemm);

/// Element offset of the `i`-th element (row-major over `shape`) of a strided tensor: the twin of
/// `strided_offset` in shaders/common/strided.wgsl.
pub(crate) fn strided_offset(i: usize, shape: &[u32], strides: &[u32]) -> usize {
    let mut rem = i;
    let mut off = 0;
    for d in (0..shape.len()).rev() {
        let n = shape[d] as usize;
        off += (rem % n) * strides[d] as usize;
        rem /= n;
    }
    off
}
