//! Stacked, optionally bidirectional RNN / LSTM / GRU layers with PyTorch's parameter names and
//! layouts (`weight_ih_l{k}[_reverse]` [G·H, I], `weight_hh_l{k}[_reverse]` [G·H, H],
//! `bias_ih_l{k}`, `bias_hh_l{k}`), gate orders and initialisation U(±1/√H). Each layer is one
//! node on the tape, run by the timestep scheduler in `crate::recurrent`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{converted, Module};
use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::init::Init;
use crate::recurrent::{layer, CellKind, DirectionWeights};
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// The configuration of a recurrent stack; build it with [`Recurrent::lstm`] and friends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// The cell.
    pub cell: CellKind,
    /// Input features I.
    pub input: usize,
    /// Hidden units H.
    pub hidden: usize,
    /// Stacked layers.
    pub layers: usize,
    /// A second direction over the reversed sequence.
    pub bidirectional: bool,
    /// Dropout between layers (not after the last), in training mode.
    pub dropout: f32,
    /// Input and output as [B, T, ·] instead of [T, B, ·].
    pub batch_first: bool,
    /// One dispatch for the whole sequence (`Some(true)`), one per step (`Some(false)`), or the
    /// engine's rule for small states (`None`, the default; see NOTES.md).
    pub persistent: Option<bool>,
}

/// Builder of a [`Recurrent`] stack.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentBuilder {
    config: RecurrentConfig,
}

impl RecurrentBuilder {
    /// Stacked layers (default 1).
    pub fn layers(mut self, n: usize) -> Self {
        self.config.layers = n;
        self
    }
    /// Bidirectional (default false).
    pub fn bidirectional(mut self, yes: bool) -> Self {
        self.config.bidirectional = yes;
        self
    }
    /// Dropout between layers (default 0).
    pub fn dropout(mut self, p: f32) -> Self {
        self.config.dropout = p;
        self
    }
    /// Batch-first input and output (default false: [T, B, ·]).
    pub fn batch_first(mut self, yes: bool) -> Self {
        self.config.batch_first = yes;
        self
    }
    /// Forces the persistent one-launch-per-sequence path on or off. By default the CPU path
    /// takes it (the batch rows are split over the thread pool once and each task walks every
    /// timestep), and a GPU takes it when the state is small (H ≤ 128 and B·H ≤ 1024: one
    /// workgroup walks the sequence, where otherwise each step is a dispatch).
    pub fn persistent(mut self, on: bool) -> Self {
        self.config.persistent = Some(on);
        self
    }
    /// The stack, initialised U(±1/√H) from `rng` like PyTorch.
    pub fn build(self, device: &Device, rng: &mut Rng) -> Result<Recurrent> {
        let c = self.config;
        if c.layers == 0 || c.hidden == 0 || c.input == 0 {
            return Err(Error::InvalidArgument {
                op: "Recurrent::build",
                message: format!("input, hidden and layers must be positive: {c:?}"),
            });
        }
        if !(0.0..1.0).contains(&c.dropout) {
            return Err(Error::InvalidArgument {
                op: "Recurrent::build",
                message: format!("dropout {} is outside [0, 1)", c.dropout),
            });
        }
        let gh = c.cell.gates() * c.hidden;
        let bound = 1.0 / (c.hidden as f32).sqrt();
        let init = Init::Uniform(-bound, bound);
        let dirs = if c.bidirectional { 2 } else { 1 };
        let mut weights = Vec::new();
        for l in 0..c.layers {
            let inp = if l == 0 { c.input } else { dirs * c.hidden };
            let mut layer = Vec::new();
            for _ in 0..dirs {
                layer.push(DirectionWeights {
                    w_ih: init.tensor(device, &[gh, inp], rng)?.requires_grad(),
                    w_hh: init.tensor(device, &[gh, c.hidden], rng)?.requires_grad(),
                    b_ih: init.tensor(device, &[gh], rng)?.requires_grad(),
                    b_hh: init.tensor(device, &[gh], rng)?.requires_grad(),
                });
            }
            weights.push(layer);
        }
        Ok(Recurrent {
            config: c,
            weights,
            device: device.clone(),
            seed: AtomicU64::new(rng.next_u64()),
            training: true,
        })
    }
}

/// The outputs of a recurrent stack.
#[derive(Clone, Debug)]
pub struct RecurrentOutput {
    /// Every step of the last layer: [T, B, dirs·H] ([B, T, dirs·H] batch-first); zeros past a
    /// sequence's length.
    pub output: Tensor,
    /// Final hidden states [layers·dirs, B, H].
    pub h_n: Tensor,
    /// Final cell states [layers·dirs, B, H] (LSTM only).
    pub c_n: Option<Tensor>,
}

/// A stack of RNN, LSTM or GRU layers, semantically PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU`.
///
/// ```
/// use timeloom::nn::Recurrent;
/// use timeloom::{Device, Rng, Tensor};
/// let dev = Device::Cpu;
/// let lstm = Recurrent::lstm(3, 5).layers(2).build(&dev, &mut Rng::new(0))?;
/// let x = Tensor::zeros(&dev, &[7, 2, 3])?; // [T, B, I]
/// let out = lstm.forward_with(&x, None, None)?;
/// assert_eq!(out.output.shape(), [7, 2, 5]);
/// assert_eq!(out.h_n.shape(), [2, 2, 5]);
/// # Ok::<(), timeloom::Error>(())
/// ```
pub struct Recurrent {
    config: RecurrentConfig,
    /// [layer][direction]
    weights: Vec<Vec<DirectionWeights>>,
    device: Device,
    seed: AtomicU64,
    training: bool,
}

fn builder(cell: CellKind, input: usize, hidden: usize) -> RecurrentBuilder {
    RecurrentBuilder {
        config: RecurrentConfig {
            cell,
            input,
            hidden,
            layers: 1,
            bidirectional: false,
            dropout: 0.0,
            batch_first: false,
            persistent: None,
        },
    }
}

impl Recurrent {
    /// An `nn.LSTM`-like stack: gates i, f, g, o; parameters `weight_ih_l{k}`,
    /// `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (`_reverse` for the second direction).
    ///
    /// ```
    /// use timeloom::nn::Recurrent;
    /// use timeloom::{Device, Rng, Tensor};
    /// let dev = Device::Cpu;
    /// let lstm = Recurrent::lstm(4, 8).bidirectional(true).batch_first(true).build(&dev, &mut Rng::new(0))?;
    /// let x = Tensor::zeros(&dev, &[2, 5, 4])?; // [B, T, I]
    /// let out = lstm.forward_with(&x, None, None)?;
    /// assert_eq!(out.output.shape(), [2, 5, 16]); // both directions side by side
    /// assert_eq!(out.c_n.unwrap().shape(), [2, 2, 8]); // [layers·dirs, B, H]
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn lstm(input: usize, hidden: usize) -> RecurrentBuilder {
        builder(CellKind::Lstm, input, hidden)
    }
    /// An `nn.GRU`-like stack: gates r, z, n with the reset applied after the hidden projection
    /// (PyTorch's variant, `reset_after`); PyTorch's parameter names.
    ///
    /// ```
    /// use timeloom::nn::{Module, Recurrent};
    /// use timeloom::{Device, Rng, Tensor};
    /// let dev = Device::Cpu;
    /// let gru = Recurrent::gru(3, 6).layers(2).build(&dev, &mut Rng::new(0))?;
    /// assert_eq!(gru.named_parameters()[0].0, "weight_ih_l0");
    /// let h0 = Tensor::zeros(&dev, &[2, 1, 6])?; // [layers, B, H]
    /// let out = gru.forward_with(&Tensor::zeros(&dev, &[7, 1, 3])?, Some((&h0, None)), None)?;
    /// assert_eq!(out.h_n.shape(), [2, 1, 6]);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn gru(input: usize, hidden: usize) -> RecurrentBuilder {
        builder(CellKind::Gru, input, hidden)
    }
    /// A GRU stack with the reset gate applied before the hidden projection (Cho et al. 2014);
    /// PyTorch's parameter names and layout.
    pub fn gru_reset_before(input: usize, hidden: usize) -> RecurrentBuilder {
        builder(CellKind::GruResetBefore, input, hidden)
    }
    /// An `nn.RNN`-like stack with tanh.
    pub fn rnn(input: usize, hidden: usize) -> RecurrentBuilder {
        builder(CellKind::RnnTanh, input, hidden)
    }
    /// An `nn.RNN`-like stack with ReLU.
    pub fn rnn_relu(input: usize, hidden: usize) -> RecurrentBuilder {
        builder(CellKind::RnnRelu, input, hidden)
    }

    /// The configuration.
    pub fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    /// The seed the next dropout mask between layers is drawn from; each training forward
    /// advances it. Save it with a checkpoint and restore it with
    /// [`Recurrent::set_dropout_seed`] so that a resumed run draws the masks it would have.
    pub fn dropout_seed(&self) -> u64 {
        self.seed.load(Ordering::Relaxed)
    }

    /// Sets the seed of the next dropout mask (see [`Recurrent::dropout_seed`]).
    pub fn set_dropout_seed(&self, seed: u64) {
        self.seed.store(seed, Ordering::Relaxed);
    }

    fn dirs(&self) -> usize {
        if self.config.bidirectional {
            2
        } else {
            1
        }
    }

    /// Runs the stack over `x` ([T, B, I], or [B, T, I] batch-first) from `state` = (h0, c0)
    /// [layers·dirs, B, H] (zeros when `None`), with per-sequence `lengths` \[B\] (f32; `None`: all
    /// T). A step past a sequence's length leaves its state alone and outputs zeros, so each
    /// sequence's result equals running it alone. `c0` is for LSTMs only (an error otherwise).
    ///
    /// Lengths are whole numbers in [1, T]. Being device data they are not checked (that would
    /// need a readback): step t counts while t < length, so a fraction counts up, a length past
    /// T counts as T, and 0 (or a negative one) leaves the state at h0 with zero outputs where
    /// PyTorch raises.
    pub fn forward_with(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, Option<&Tensor>)>,
        lengths: Option<&Tensor>,
    ) -> Result<RecurrentOutput> {
        let c = &self.config;
        let x = if c.batch_first {
            x.transpose(0, 1)?
        } else {
            x.clone()
        };
        let [steps, batch, input] = *x.shape() else {
            return Err(Error::ShapeMismatch {
                op: "Recurrent::forward",
                arg: "input",
                expected: if c.batch_first {
                    "[B, T, I]"
                } else {
                    "[T, B, I]"
                }
                .into(),
                got: shape_str(x.shape()),
            });
        };
        if input != c.input {
            return Err(Error::ShapeMismatch {
                op: "Recurrent::forward",
                arg: "input",
                expected: format!("{} features, as configured", c.input),
                got: shape_str(x.shape()),
            });
        }
        let dirs = self.dirs();
        let state_shape = [c.layers * dirs, batch, c.hidden];
        let zeros = || Tensor::zeros(&x.device(), &state_shape);
        let (h0, c0) = match state {
            Some((h, cs)) => (h.clone(), cs.cloned()),
            None => (zeros()?, None),
        };
        for (name, t) in [("h0", Some(&h0)), ("c0", c0.as_ref())] {
            if let Some(t) = t {
                if t.shape() != state_shape {
                    return Err(Error::ShapeMismatch {
                        op: "Recurrent::forward",
                        arg: if name == "h0" { "h0" } else { "c0" },
                        expected: format!(
                            "[layers × directions, batch, hidden] = {}",
                            shape_str(&state_shape)
                        ),
                        got: shape_str(t.shape()),
                    });
                }
            }
        }
        let lstm = c.cell == CellKind::Lstm;
        let c0 = match (lstm, c0) {
            (true, None) => Some(zeros()?),
            (true, some) => some,
            (false, None) => None,
            (false, Some(_)) => {
                // Dropping it silently would leave its gradient `None` with no hint why.
                return Err(Error::InvalidArgument {
                    op: "Recurrent::forward",
                    message: format!(
                        "a cell state c0 was given to a {:?} layer, which has none: pass None (only LSTMs take c0)",
                        c.cell
                    ),
                });
            }
        };
        for (arg, t) in [("h0", Some(&h0)), ("c0", c0.as_ref()), ("lengths", lengths)] {
            if let Some(t) = t {
                crate::ops::same_device("Recurrent::forward", arg, &x, t)?;
            }
        }
        let lengths = match lengths {
            Some(l) => {
                if l.shape() != [batch] {
                    return Err(Error::ShapeMismatch {
                        op: "Recurrent::forward",
                        arg: "lengths",
                        expected: format!("[{batch}]"),
                        got: shape_str(l.shape()),
                    });
                }
                l.clone()
            }
            None => Tensor::full(&x.device(), &[batch], steps as f32)?,
        };
        let mut h_parts = Vec::new();
        let mut c_parts = Vec::new();
        let mut h = x;
        for (l, dirs_w) in self.weights.iter().enumerate() {
            let h0_l = h0.narrow(0, l * dirs, dirs)?;
            let c0_l = c0
                .as_ref()
                .map(|c| c.narrow(0, l * dirs, dirs))
                .transpose()?;
            let out = layer(
                c.cell,
                &h,
                &h0_l,
                c0_l.as_ref(),
                dirs_w,
                &lengths,
                c.persistent,
            )?;
            h = out.y;
            if self.training && c.dropout > 0.0 && l + 1 < c.layers {
                let seed = self
                    .seed
                    .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
                h = h.dropout(c.dropout, seed)?;
            }
            h_parts.push(out.h_n);
            if let Some(cn) = out.c_n {
                c_parts.push(cn);
            }
        }
        let cat = |parts: &[Tensor]| -> Result<Tensor> {
            if parts.len() == 1 {
                Ok(parts[0].clone())
            } else {
                Tensor::cat0(&parts.iter().collect::<Vec<_>>())
            }
        };
        let h_n = cat(&h_parts)?;
        let c_n = if lstm { Some(cat(&c_parts)?) } else { None };
        let output = if c.batch_first { h.transpose(0, 1)? } else { h };
        Ok(RecurrentOutput { output, h_n, c_n })
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A copy of this stack with every parameter converted to `dtype`, same configuration and
    /// mode (new storage, never shared). f16 (half the parameter memory) is for inference: the
    /// parameters do not track gradients, the kernels widen them as they load them, and the
    /// states, sums and outputs are f32; an input that tracks gradients while the tape records
    /// is refused with `Unsupported` (run under [`no_grad`](crate::no_grad)). f32 gives
    /// trainable parameters again (a loaded `.half()` model converted back).
    ///
    /// ```
    /// use timeloom::nn::Recurrent;
    /// use timeloom::{no_grad, DType, Device, Rng, Tensor};
    /// let dev = Device::Cpu;
    /// let lstm = Recurrent::lstm(3, 4).build(&dev, &mut Rng::new(0))?;
    /// let half = lstm.to_dtype(DType::F16)?;
    /// let x = Tensor::full(&dev, &[5, 2, 3], 1.0)?;
    /// let y = no_grad(|| half.forward_with(&x, None, None))?.output;
    /// let want = lstm.forward_with(&x, None, None)?.output;
    /// for (a, b) in y.read_blocking()?.iter().zip(want.read_blocking()?) {
    ///     assert!((a - b).abs() < 1e-2); // f16 weights: about 3 significant digits
    /// }
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfMemory` when the copy does not fit the device.
    pub fn to_dtype(&self, dtype: DType) -> Result<Recurrent> {
        let weights = self
            .weights
            .iter()
            .map(|dirs| {
                dirs.iter()
                    .map(|w| {
                        Ok(DirectionWeights {
                            w_ih: converted(&w.w_ih, dtype)?,
                            w_hh: converted(&w.w_hh, dtype)?,
                            b_ih: converted(&w.b_ih, dtype)?,
                            b_hh: converted(&w.b_hh, dtype)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Recurrent {
            config: self.config,
            weights,
            device: self.device.clone(),
            seed: AtomicU64::new(self.seed.load(Ordering::Relaxed)),
            training: self.training,
        })
    }
}

impl Module for Recurrent {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(x, None, None)?.output)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (l, dirs) in self.weights.iter().enumerate() {
            for (d, w) in dirs.iter().enumerate() {
                let suffix = if d == 1 { "_reverse" } else { "" };
                v.push((format!("weight_ih_l{l}{suffix}"), w.w_ih.clone()));
                v.push((format!("weight_hh_l{l}{suffix}"), w.w_hh.clone()));
                v.push((format!("bias_ih_l{l}{suffix}"), w.b_ih.clone()));
                v.push((format!("bias_hh_l{l}{suffix}"), w.b_hh.clone()));
            }
        }
        v
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
