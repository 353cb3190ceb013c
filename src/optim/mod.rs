//! Optimizers as one fused update kernel per parameter (`optimizer_step`), with their state on
//! the device; learning-rate schedules; gradient clipping by global norm (reduced on the device
//! and applied inside the update kernel: no readback per step) or by value.

mod schedule;
mod state;

pub use schedule::{ReduceOnPlateau, Schedule};
pub use state::StateDict;

use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::ops::optimizer::{self, StepParams, CLIP_SCALE, CLIP_VALUE, MAXIMIZE, NESTEROV};
use crate::ops::u32_of;
use crate::tensor::Tensor;

/// The update rule, with its own hyper-parameters (PyTorch's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Algorithm {
    /// SGD, with momentum μ, dampening τ and optional Nesterov momentum.
    Sgd {
        /// μ (0: plain SGD).
        momentum: f32,
        /// τ.
        dampening: f32,
        /// Nesterov accelerated gradient.
        nesterov: bool,
    },
    /// AdaGrad.
    AdaGrad {
        /// The rate decays as lr / (1 + (t − 1)·lr_decay).
        lr_decay: f32,
        /// Initial value of the sum of squares.
        initial_accumulator_value: f32,
    },
    /// RMSProp (not centred).
    RmsProp {
        /// Smoothing constant α of the squared-gradient average.
        alpha: f32,
        /// Momentum μ.
        momentum: f32,
    },
    /// AdaDelta.
    AdaDelta {
        /// ρ, the decay of both running averages.
        rho: f32,
    },
    /// Adam (bias-corrected).
    Adam {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
    /// AdamW: Adam with decoupled weight decay.
    AdamW {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
    /// Adamax: Adam with the infinity norm (PyTorch's `Adamax`).
    Adamax {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
}

impl Algorithm {
    fn code(self) -> u32 {
        match self {
            Algorithm::Sgd { .. } => 0,
            Algorithm::AdaGrad { .. } => 1,
            Algorithm::RmsProp { .. } => 2,
            Algorithm::AdaDelta { .. } => 3,
            Algorithm::Adam { .. } => 4,
            Algorithm::AdamW { .. } => 5,
            Algorithm::Adamax { .. } => 6,
        }
    }

    /// PyTorch's default ε for the rule.
    fn default_eps(self) -> f32 {
        match self {
            Algorithm::AdaGrad { .. } => 1e-10,
            Algorithm::AdaDelta { .. } => 1e-6,
            _ => 1e-8,
        }
    }
}

/// What an optimizer keeps for one parameter.
#[derive(Clone, Debug)]
pub struct ParamState {
    /// Updates this parameter has received (Adam's bias correction uses it).
    pub step: u32,
    /// First state tensor: momentum buffer, sum of squares, square average or first moment.
    pub s1: Tensor,
    /// Second state tensor: RMSProp's momentum, AdaDelta's accumulated delta or second moment.
    pub s2: Tensor,
}

/// An optimizer over a list of parameters.
///
/// ```
/// use timeloom::{Device, Optimizer, Tensor};
/// let w = Tensor::from_slice(&Device::Cpu, &[3.0], &[1])?.requires_grad();
/// let mut opt = Optimizer::sgd(vec![w.clone()], 0.25);
/// for _ in 0..20 {
///     opt.zero_grad();
///     w.square()?.sum_all()?.backward()?; // d/dw w² = 2w
///     opt.step()?;
/// }
/// assert!(w.read_blocking()?[0].abs() < 1e-3);
/// # Ok::<(), timeloom::Error>(())
/// ```
pub struct Optimizer {
    algorithm: Algorithm,
    lr: f32,
    eps: f32,
    weight_decay: f32,
    l1: f32,
    maximize: bool,
    schedule: Schedule,
    clip_norm: Option<f32>,
    clip_value: Option<f32>,
    params: Vec<Tensor>,
    states: Vec<Option<ParamState>>,
    step: u32,
    /// [P] partial sums of squares and [2] (norm, scale), for clipping by norm.
    clip_buffers: Option<(Tensor, Tensor)>,
}

impl Optimizer {
    /// An optimizer with `algorithm` at base rate `lr` and PyTorch's default ε.
    pub fn new(params: Vec<Tensor>, algorithm: Algorithm, lr: f32) -> Optimizer {
        let weight_decay = if matches!(algorithm, Algorithm::AdamW { .. }) {
            1e-2
        } else {
            0.0
        };
        Optimizer {
            algorithm,
            lr,
            eps: algorithm.default_eps(),
            weight_decay,
            l1: 0.0,
            maximize: false,
            schedule: Schedule::Constant,
            clip_norm: None,
            clip_value: None,
            states: vec![None; params.len()],
            params,
            step: 0,
            clip_buffers: None,
        }
    }
    /// Plain SGD.
    pub fn sgd(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::Sgd {
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
            },
            lr,
        )
    }
    /// SGD with momentum.
    pub fn momentum(params: Vec<Tensor>, lr: f32, momentum: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::Sgd {
                momentum,
                dampening: 0.0,
                nesterov: false,
            },
            lr,
        )
    }
    /// SGD with Nesterov momentum.
    pub fn nesterov(params: Vec<Tensor>, lr: f32, momentum: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::Sgd {
                momentum,
                dampening: 0.0,
                nesterov: true,
            },
            lr,
        )
    }
    /// AdaGrad (PyTorch's default rate is 0.01).
    pub fn adagrad(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::AdaGrad {
                lr_decay: 0.0,
                initial_accumulator_value: 0.0,
            },
            lr,
        )
    }
    /// RMSProp with α = 0.99 (PyTorch's default rate is 0.01).
    pub fn rmsprop(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::RmsProp {
                alpha: 0.99,
                momentum: 0.0,
            },
            lr,
        )
    }
    /// AdaDelta with ρ = 0.9 (PyTorch's default rate is 1.0).
    pub fn adadelta(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(params, Algorithm::AdaDelta { rho: 0.9 }, lr)
    }
    /// Adam with β = (0.9, 0.999) (PyTorch's default rate is 1e-3).
    pub fn adam(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            lr,
        )
    }
    /// AdamW with β = (0.9, 0.999) and weight decay 1e-2.
    pub fn adamw(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::AdamW {
                beta1: 0.9,
                beta2: 0.999,
            },
            lr,
        )
    }

    /// Adamax (PyTorch's `torch.optim.Adamax`, same defaults: β = (0.9, 0.999), ε = 1e-8; its
    /// default rate is 2e-3): Adam with the infinity norm, u = max(β2·u, |g| + ε) and
    /// θ −= lr/(1 − β1^t) · m/u.
    pub fn adamax(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::Adamax {
                beta1: 0.9,
                beta2: 0.999,
            },
            lr,
        )
    }

    /// L2 weight decay λ (added to the gradient; for AdamW, decoupled).
    pub fn weight_decay(mut self, lambda: f32) -> Self {
        self.weight_decay = lambda;
        self
    }
    /// Ascend the objective instead of descending it (torch.optim's `maximize=True`, for every
    /// rule): the gradient is negated before anything else the rule does.
    pub fn maximize(mut self, yes: bool) -> Self {
        self.maximize = yes;
        self
    }
    /// L1 penalty: l1·sign(θ) is added to the gradient.
    pub fn l1(mut self, l1: f32) -> Self {
        self.l1 = l1;
        self
    }
    /// ε of the rule.
    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }
    /// The learning-rate schedule.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }
    /// Scales all gradients together so their global L2 norm is at most `max_norm`, on the
    /// device, inside the update kernels.
    pub fn clip_grad_norm(mut self, max_norm: f32) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }
    /// Clamps every gradient element to [−c, c].
    pub fn clip_grad_value(mut self, c: f32) -> Self {
        self.clip_value = Some(c);
        self
    }

    /// The parameters, in the order given.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }
    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.step
    }
    /// The base rate (what the schedule's factor multiplies).
    pub fn lr(&self) -> f32 {
        self.lr
    }
    /// Sets the base rate (as [`ReduceOnPlateau`] does; the optimizer's state dict
    /// ([`Optimizer::state_dict`]) does not hold it, so save it beside one if it changes).
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
    /// The rate the next step will use.
    pub fn current_lr(&self) -> f32 {
        self.lr * self.schedule.factor(self.step)
    }
    /// The global gradient norm before clipping at the last step, as a rank-0 tensor on the
    /// device (read it asynchronously for logging; reading does not stall the next step's
    /// recording). `None` without `clip_grad_norm`.
    pub fn grad_norm(&self) -> Option<Tensor> {
        let (_, out) = self.clip_buffers.as_ref()?;
        out.narrow(0, 0, 1).ok()?.reshape(&[]).ok()
    }

    /// The state to checkpoint: the optimizer's step count (which drives the schedule) and, per
    /// parameter, its own state (`None` before its first update).
    ///
    /// The tensors are the optimizer's own buffers, not copies: the next `step` updates them
    /// in place. Save or read them before stepping again (as a checkpoint writer does), or
    /// copy them to keep a snapshot in memory.
    pub fn state(&self) -> (u32, Vec<Option<ParamState>>) {
        (self.step, self.states.clone())
    }

    /// Restores a state from [`Optimizer::state`] (of an optimizer over the same parameters).
    /// Nothing changes unless every state fits its parameter: shape, device and layout.
    pub fn load_state(&mut self, step: u32, states: Vec<Option<ParamState>>) -> Result<()> {
        if states.len() != self.params.len() {
            return Err(Error::Format {
                what: "optimizer state".into(),
                message: format!(
                    "holds {} parameters; this optimizer has {}",
                    states.len(),
                    self.params.len()
                ),
            });
        }
        for (i, (s, p)) in states.iter().zip(&self.params).enumerate() {
            let Some(s) = s else { continue };
            let what = || format!("optimizer state of parameter {i}");
            for t in [&s.s1, &s.s2] {
                if t.shape() != p.shape() {
                    return Err(Error::Format {
                        what: what(),
                        message: format!(
                            "has shape {}; the parameter has {}",
                            shape_str(t.shape()),
                            shape_str(p.shape())
                        ),
                    });
                }
                if !t.device().same(&p.device()) {
                    return Err(Error::DeviceMismatch {
                        op: "Optimizer::load_state",
                        arg: "states",
                        expected: p.device().to_string(),
                        got: t.device().to_string(),
                    });
                }
                if !t.is_contiguous() || t.offset != 0 {
                    return Err(Error::InvalidArgument {
                        op: "Optimizer::load_state",
                        message: format!(
                            "{} is a view; pass tensors that own their storage",
                            what()
                        ),
                    });
                }
            }
        }
        // The update writes each state and its parameter in place in one step: no two may share
        // storage (on the host that would also take two locks on one buffer).
        let state_tensors: Vec<&Tensor> = states
            .iter()
            .flatten()
            .flat_map(|s| [&s.s1, &s.s2])
            .collect();
        for (i, a) in state_tensors.iter().enumerate() {
            let others = state_tensors[i + 1..].iter().copied().chain(&self.params);
            if others.clone().any(|b| a.shares_storage(b)) {
                return Err(Error::InvalidArgument {
                    op: "Optimizer::load_state",
                    message:
                        "two state tensors, or a state tensor and a parameter, share storage; \
                              give every state tensor a buffer of its own"
                            .into(),
                });
            }
        }
        self.step = step;
        self.states = states;
        Ok(())
    }

    /// Forgets every parameter's gradient (dispatches nothing).
    pub fn zero_grad(&self) {
        for p in &self.params {
            p.zero_grad();
        }
    }

    /// One update of every parameter that received a gradient: at most one dispatch per
    /// parameter, plus P + 1 for clipping by norm.
    ///
    /// Settings PyTorch refuses (a negative rate, ε or decay, betas outside [0, 1), Nesterov
    /// without momentum or with dampening, a negative clip bound), a rate that is not finite
    /// (torch takes it; no step with it means anything) and parameters that are views are
    /// errors, returned before anything is updated.
    pub fn step(&mut self) -> Result<()> {
        self.check_settings()?;
        let grads: Vec<Option<Tensor>> = self.params.iter().map(Tensor::grad).collect();
        for (i, param) in self.params.iter().enumerate() {
            if grads[i].is_some() && (!param.is_contiguous() || param.offset != 0) {
                return Err(Error::InvalidArgument {
                    op: "Optimizer::step",
                    message: format!(
                        "parameter {i} ({}) is a view; parameters must own their storage",
                        shape_str(param.shape())
                    ),
                });
            }
        }
        self.step += 1;
        let t = self.step;
        let lr = self.current_lr_for(t - 1);
        let clip = match self.clip_norm {
            Some(max_norm) => Some(self.global_norm_scale(&grads, max_norm)?),
            None => None,
        };
        let (beta1, beta2, dampening, lr_decay, nesterov) = match self.algorithm {
            Algorithm::Sgd {
                momentum,
                dampening,
                nesterov,
            } => (momentum, 0.0, dampening, 0.0, nesterov),
            Algorithm::AdaGrad { lr_decay, .. } => (0.0, 0.0, 0.0, lr_decay, false),
            Algorithm::RmsProp { alpha, momentum } => (momentum, alpha, 0.0, 0.0, false),
            Algorithm::AdaDelta { rho } => (0.0, rho, 0.0, 0.0, false),
            Algorithm::Adam { beta1, beta2 }
            | Algorithm::AdamW { beta1, beta2 }
            | Algorithm::Adamax { beta1, beta2 } => (beta1, beta2, 0.0, 0.0, false),
        };
        let mut flags = 0;
        if nesterov {
            flags |= NESTEROV;
        }
        if clip.is_some() {
            flags |= CLIP_SCALE;
        }
        if self.clip_value.is_some() {
            flags |= CLIP_VALUE;
        }
        if self.maximize {
            flags |= MAXIMIZE;
        }
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            let param = &self.params[i];
            if self.states[i].is_none() {
                // Each parameter counts its own updates, as torch.optim does: one whose first
                // gradient arrives late still gets an unbiased first Adam step.
                let init = match self.algorithm {
                    Algorithm::AdaGrad {
                        initial_accumulator_value,
                        ..
                    } => initial_accumulator_value,
                    _ => 0.0,
                };
                let dev = param.device();
                self.states[i] = Some(ParamState {
                    step: 0,
                    s1: Tensor::full(&dev, param.shape(), init)?,
                    s2: Tensor::zeros(&dev, param.shape())?,
                });
            }
            let state = self.states[i].as_mut().expect("created above");
            state.step += 1;
            let t = state.step;
            let (s1, s2) = (&state.s1, &state.s2);
            let p = StepParams {
                numel: u32_of(param.numel()),
                algo: self.algorithm.code(),
                step: t,
                flags,
                lr,
                beta1,
                beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
                l1: self.l1,
                dampening,
                clip_value: self.clip_value.unwrap_or(0.0),
                // In f64, rounded once: 1 − β^t in f32 loses digits while β^t is near 1
                // (β2 = 0.999 early on); torch computes it in double on the host. Against
                // torch.optim runs (tests/training.rs) this took the worst relative error over
                // 25 Adam steps from 6e-5 to 6e-7 (AdamW: 7e-5 to 7e-6).
                bias_correction1: (1.0 - f64::from(beta1).powi(t as i32)) as f32,
                bias_correction2: (1.0 - f64::from(beta2).powi(t as i32)) as f32,
                lr_decay,
                _pad: 0,
            };
            optimizer::optimizer_step(&p, param, g, s1, s2, clip.as_ref())?;
        }
        Ok(())
    }

    /// The checks torch.optim makes in its constructors, made here because the builders
    /// return `Self`.
    fn check_settings(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::InvalidArgument {
                op: "Optimizer::step",
                message,
            })
        };
        // Written so that NaN fails every check.
        let unit = |v: f32| (0.0..1.0).contains(&v);
        let nonneg = |v: f32| v >= 0.0;
        if !(nonneg(self.lr) && self.lr.is_finite()) {
            return bad(format!(
                "learning rate {} must be finite and at least 0",
                self.lr
            ));
        }
        for (name, v) in [
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("l1", self.l1),
        ] {
            if !nonneg(v) {
                return bad(format!("{name} {v} must be at least 0"));
            }
        }
        for (name, v) in [
            ("clip_grad_norm", self.clip_norm),
            ("clip_grad_value", self.clip_value),
        ] {
            if let Some(v) = v {
                if !nonneg(v) {
                    return bad(format!("{name} {v} must be at least 0"));
                }
            }
        }
        match self.algorithm {
            Algorithm::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                if !nonneg(momentum) {
                    return bad(format!("momentum {momentum} must be at least 0"));
                }
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return bad(format!("Nesterov momentum needs momentum > 0 and dampening 0; got momentum {momentum}, dampening {dampening}"));
                }
            }
            Algorithm::AdaGrad {
                lr_decay,
                initial_accumulator_value,
            } => {
                if !(nonneg(lr_decay) && nonneg(initial_accumulator_value)) {
                    return bad(format!("AdaGrad lr_decay {lr_decay} and initial_accumulator_value {initial_accumulator_value} must be at least 0"));
                }
            }
            Algorithm::RmsProp { alpha, momentum } => {
                if !(nonneg(alpha) && nonneg(momentum)) {
                    return bad(format!(
                        "RMSProp alpha {alpha} and momentum {momentum} must be at least 0"
                    ));
                }
            }
            Algorithm::AdaDelta { rho } => {
                if !(0.0..=1.0).contains(&rho) {
                    return bad(format!("AdaDelta rho {rho} must lie in [0, 1]"));
                }
            }
            Algorithm::Adam { beta1, beta2 }
            | Algorithm::AdamW { beta1, beta2 }
            | Algorithm::Adamax { beta1, beta2 } => {
                if !unit(beta1) || !unit(beta2) {
                    return bad(format!("Adam betas ({beta1}, {beta2}) must lie in [0, 1)"));
                }
            }
        }
        Ok(())
    }

    fn current_lr_for(&self, k: u32) -> f32 {
        self.lr * self.schedule.factor(k)
    }

    /// Records Σ‖g‖² per parameter into a [P] buffer and the (norm, scale) pair into [2].
    fn global_norm_scale(&mut self, grads: &[Option<Tensor>], max_norm: f32) -> Result<Tensor> {
        let Some(first) = grads.iter().flatten().next() else {
            return Tensor::from_slice(&Device::Cpu, &[0.0, 1.0], &[2]);
        };
        let dev = first.device();
        let count = self.params.len();
        if self
            .clip_buffers
            .as_ref()
            .is_none_or(|(p, _)| !p.device().same(&dev))
        {
            self.clip_buffers = Some((Tensor::zeros(&dev, &[count])?, Tensor::zeros(&dev, &[2])?));
        }
        let (partial, out) = self.clip_buffers.clone().expect("created above");
        for (i, g) in grads.iter().enumerate() {
            match g {
                Some(g) => g.sum_squares_into(&partial, i)?,
                None => partial.narrow(0, i, 1)?.fill_view(0.0)?,
            }
        }
        optimizer::clip_scale(max_norm, &partial, &out)?;
        Ok(out)
    }
}
