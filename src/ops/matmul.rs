//! Matrix products: `Matmul`, a builder for C = act(α·A·B + β·C + bias), batched, with either
//! operand a transposed view (no copy), and `Tensor::matmul` for the plain product.

use crate::error::{shape_str, Error, Result};
use crate::kernels::matmul::{self, Bindings, Params};
use crate::ops::{read_only_f16, same_device_any_dtype, u32_of};
use crate::tensor::{DType, Tensor};

/// The activation a [`Matmul`] applies to its result, in the same kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// None: the identity.
    #[default]
    None = 0,
    /// max(x, 0).
    Relu = 1,
    /// 1 / (1 + e⁻ˣ).
    Sigmoid = 2,
    /// tanh(x).
    Tanh = 3,
    /// x·Φ(x), erf-based as PyTorch's default.
    Gelu = 4,
}

/// C = act(α·A·B + β·C + bias) as one kernel.
///
/// A is [M, K] or [batch, M, K], B is [K, N] or [batch, K, N]; a 2-D operand is shared by every
/// batch. Either may be a transposed view (`w.t()?`): the kernel reads it through its strides.
///
/// ```
/// use timeloom::{Activation, Device, Matmul, Tensor};
/// let dev = Device::Cpu;
/// let x = Tensor::from_slice(&dev, &[1.0, 2.0], &[1, 2])?;          // [batch 1, in 2]
/// let w = Tensor::from_slice(&dev, &[1.0, 0.0, -1.0, 1.0], &[2, 2])?; // [out 2, in 2]
/// let b = Tensor::from_slice(&dev, &[0.5, -4.0], &[2])?;
/// // A Linear layer: relu(x·wᵀ + b).
/// let y = Matmul::new(&x, &w.t()?).bias(&b).activation(Activation::Relu).compute()?;
/// assert_eq!(y.read_blocking()?, vec![1.5, 0.0]);
/// # Ok::<(), timeloom::Error>(())
/// ```
///
/// # Shapes
/// `a` [M, K] or [batch, M, K]; `b` [K, N] or [batch, K, N]; `bias` \[N\] (or \[M\] with
/// [`Matmul::row_bias`]); result [M, N] or [batch, M, N].
///
/// # Element types
/// `a`, `b` and the bias may each be f16 ([`DType::F16`]: f16 weights at half the memory and
/// half the bytes read); they are widened as they are loaded, products and sums are f32, and
/// the result is f32. An f16 operand may not track gradients (inference, or a frozen copy).
#[derive(Clone, Debug)]
pub struct Matmul<'a> {
    a: &'a Tensor,
    b: &'a Tensor,
    alpha: f32,
    bias: Option<(&'a Tensor, u32)>,
    activation: Activation,
}

/// (batch, rows, cols, row stride, col stride, batch stride) of a matrix operand.
type MatrixView = (usize, usize, usize, usize, usize, usize);

fn matrix_view(arg: &'static str, t: &Tensor) -> Result<MatrixView> {
    match *t.shape() {
        [r, c] => Ok((1, r, c, t.strides()[0], t.strides()[1], 0)),
        [b, r, c] => Ok((b, r, c, t.strides()[1], t.strides()[2], t.strides()[0])),
        _ => Err(Error::ShapeMismatch {
            op: "matmul",
            arg,
            expected: "[rows, cols] or [batch, rows, cols]; reshape higher ranks to 3-D".into(),
            got: shape_str(t.shape()),
        }),
    }
}

impl<'a> Matmul<'a> {
    /// The product A·B with α = 1, no bias and no activation.
    pub fn new(a: &'a Tensor, b: &'a Tensor) -> Matmul<'a> {
        Matmul {
            a,
            b,
            alpha: 1.0,
            bias: None,
            activation: Activation::None,
        }
    }

    /// Scales the product: α·A·B.
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    /// Adds `bias` \[N\] to every row of the result (a Linear layer's bias).
    pub fn bias(mut self, bias: &'a Tensor) -> Self {
        self.bias = Some((bias, 1));
        self
    }

    /// Adds `bias` \[M\] to every column of the result (a convolution's per-channel bias).
    pub fn row_bias(mut self, bias: &'a Tensor) -> Self {
        self.bias = Some((bias, 2));
        self
    }

    /// Applies `activation` to the result in the same kernel.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// A fresh result: act(α·A·B + bias). Records onto the tape when an operand tracks
    /// gradients.
    pub fn compute(self) -> Result<Tensor> {
        let (batch, m, n) = self.check()?;
        let tracked = crate::tensor::autodiff::is_grad_enabled()
            && (self.a.tracks_grad()
                || self.b.tracks_grad()
                || self.bias.is_some_and(|(t, _)| t.tracks_grad()));
        if tracked && self.activation != Activation::None {
            // The activation's backward needs its input: keep the pre-activation as its own node.
            let act = self.activation;
            let z = Matmul {
                activation: Activation::None,
                ..self
            }
            .compute()?;
            return match act {
                Activation::Relu => z.relu(),
                Activation::Sigmoid => z.sigmoid(),
                Activation::Tanh => z.tanh(),
                Activation::Gelu => z.gelu(),
                Activation::None => Ok(z),
            };
        }
        let shape = if batch == 1 && self.a.rank() == 2 && self.b.rank() == 2 {
            vec![m, n]
        } else {
            vec![batch, m, n]
        };
        let c = self.a.output_of(&shape, DType::F32, "matmul")?;
        self.clone().run(&c, 0.0)?;
        if !tracked {
            return Ok(c);
        }
        let (a, b, alpha) = (self.a.detach(), self.b.detach(), self.alpha);
        let bias_mode = self.bias.map(|(_, mode)| mode);
        let mut inputs = vec![self.a, self.b];
        if let Some((t, _)) = self.bias {
            inputs.push(t);
        }
        Ok(crate::tensor::autodiff::record(
            c,
            "matmul",
            &inputs,
            move |g, dy| {
                let last2 = |t: &Tensor| t.transpose(t.rank() - 2, t.rank() - 1);
                if g.wants(0) {
                    // dA = α·dC·Bᵀ, summed over the batch when A was shared by it.
                    let bt = last2(&b)?;
                    let mm = Matmul::new(dy, &bt).alpha(alpha);
                    if a.rank() == 2 && dy.rank() == 3 {
                        g.add(0, mm.compute()?.sum(0)?)?;
                    } else {
                        g.add_term(0, mm)?;
                    }
                }
                if g.wants(1) {
                    // dB = α·Aᵀ·dC; a B shared by the batch gets one GEMM with K = batch·M.
                    if b.rank() == 2 && dy.rank() == 3 {
                        let k = a.shape()[a.rank() - 1];
                        let a2 = if a.rank() == 3 {
                            a.reshape(&[batch * m, k])?
                        } else {
                            a.expand(&[batch, m, k])?.reshape(&[batch * m, k])?
                        };
                        let dy2 = dy.reshape(&[batch * m, n])?;
                        let a2t = a2.t()?;
                        g.add_term(1, Matmul::new(&a2t, &dy2).alpha(alpha))?;
                    } else {
                        let at = last2(&a)?;
                        g.add_term(1, Matmul::new(&at, dy).alpha(alpha))?;
                    }
                }
                if let Some(mode) = bias_mode {
                    if g.wants(2) {
                        let rows = dy.reshape(&[dy.numel() / n, n])?;
                        let db = if mode == 1 {
                            rows.sum(0)? // [N]: summed over every row of every batch
                        } else {
                            let per_row = rows.sum(1)?.reshape(&[dy.numel() / (m * n), m])?;
                            per_row.sum(0)? // [M]
                        };
                        g.add(2, db)?;
                    }
                }
                Ok(())
            },
        ))
    }

    /// Writes act(α·A·B + β·C + bias) into `c` in place (β = 1 accumulates, as gradients do).
    /// `c` may be a strided view but must not share storage with A, B or the bias.
    pub fn accumulate_into(self, c: &Tensor, beta: f32) -> Result<()> {
        let (batch, m, n) = self.check()?;
        c.expect_f32("matmul")?;
        same_device_any_dtype("matmul", "c", self.a, c)?;
        let ok = match *c.shape() {
            [r, cc] => batch == 1 && r == m && cc == n,
            [b, r, cc] => b == batch && r == m && cc == n,
            _ => false,
        };
        if !ok {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                arg: "c",
                expected: format!("[{m}, {n}] or [{batch}, {m}, {n}]"),
                got: shape_str(c.shape()),
            });
        }
        let aliased = c.shares_storage(self.a)
            || c.shares_storage(self.b)
            || self.bias.is_some_and(|(t, _)| c.shares_storage(t));
        if aliased {
            return Err(Error::InvalidArgument {
                op: "matmul",
                message: "`c` shares storage with an input; accumulate into a separate tensor"
                    .into(),
            });
        }
        self.run(c, beta)
    }

    /// Checks devices, element types and shapes; returns (batch, M, N).
    fn check(&self) -> Result<(usize, usize, usize)> {
        same_device_any_dtype("matmul", "b", self.a, self.b)?;
        let operands = [
            ("a", Some(self.a)),
            ("b", Some(self.b)),
            ("bias", self.bias.map(|(t, _)| t)),
        ];
        for (arg, t) in operands {
            if let Some(t) = t {
                read_only_f16("matmul", arg, t)?;
            }
        }
        let (ba, m, k, ..) = matrix_view("a", self.a)?;
        let (bb, kb, n, ..) = matrix_view("b", self.b)?;
        if kb != k {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                arg: "b",
                expected: format!("{k} rows, as `a` {} has columns", shape_str(self.a.shape())),
                got: shape_str(self.b.shape()),
            });
        }
        let batch = match (self.a.rank(), self.b.rank()) {
            (3, 3) if ba != bb => {
                return Err(Error::ShapeMismatch {
                    op: "matmul",
                    arg: "b",
                    expected: format!("batch {ba}, as `a` has"),
                    got: shape_str(self.b.shape()),
                })
            }
            _ => ba.max(bb),
        };
        for (arg, t) in [("a", self.a), ("b", self.b)] {
            if t.numel() == 0 {
                return Err(Error::InvalidArgument {
                    op: "matmul",
                    message: format!(
                        "`{arg}` has shape {}; zero-size dimensions are not supported: skip the call \
                         for an empty batch",
                        shape_str(t.shape())
                    ),
                });
            }
        }
        if let Some((bias, mode)) = self.bias {
            same_device_any_dtype("matmul", "bias", self.a, bias)?;
            let want = if mode == 1 { n } else { m };
            if bias.shape() != [want] {
                return Err(Error::ShapeMismatch {
                    op: "matmul",
                    arg: "bias",
                    expected: format!("[{want}]"),
                    got: shape_str(bias.shape()),
                });
            }
        }
        Ok((batch, m, n))
    }

    fn run(self, c: &Tensor, beta: f32) -> Result<()> {
        let (_, m, k, a_rs, a_cs, a_bs) = matrix_view("a", self.a)?;
        let (_, _, n, b_rs, b_cs, b_bs) = matrix_view("b", self.b)?;
        let (batch, _, _, c_rs, c_cs, c_bs) = matrix_view("c", c)?;
        // A contiguous bias may be a view into a larger tensor; a strided one is copied.
        let bias = match self.bias {
            Some((t, mode)) => Some((t.contiguous()?, mode)),
            None => None,
        };
        let mut p = Params {
            m: u32_of(m),
            n: u32_of(n),
            k: u32_of(k),
            batch: u32_of(batch),
            a_off: u32_of(self.a.offset),
            a_rs: u32_of(a_rs),
            a_cs: u32_of(a_cs),
            a_bs: u32_of(a_bs),
            b_off: u32_of(self.b.offset),
            b_rs: u32_of(b_rs),
            b_cs: u32_of(b_cs),
            b_bs: u32_of(b_bs),
            c_off: u32_of(c.offset),
            c_rs: u32_of(c_rs),
            c_cs: u32_of(c_cs),
            c_bs: u32_of(if batch == 1 { 0 } else { c_bs }),
            bias_off: bias.as_ref().map_or(0, |(t, _)| u32_of(t.offset)),
            bias_mode: bias.as_ref().map_or(0, |&(_, mode)| mode),
            activation: self.activation as u32,
            alpha: self.alpha,
            beta,
            ..Params::default()
        };
        let bias = bias.as_ref().map(|(t, _)| t);
        matmul::launch(
            &mut p,
            &Bindings {
                a: self.a,
                b: self.b,
                bias,
                c,
            },
        )
    }
}

impl crate::tensor::autodiff::GradTerm for Matmul<'_> {
    fn accumulate_into(self, buf: &Tensor, beta: f32) -> Result<()> {
        Matmul::accumulate_into(self, buf, beta)
    }

    fn compute(self) -> Result<Tensor> {
        Matmul::compute(self)
    }
}

impl Tensor {
    /// The matrix product self·rhs (see [`Matmul`] for batches, bias, activation, α and β).
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        Matmul::new(self, rhs).compute()
    }
}
