//! Optimizers as one fused update kernel per parameter (`optimizer_step`), with their state on
//! the device; parameter groups; learning-rate schedules; gradient clipping by global norm
//! (L2, L1 or L∞, reduced on the device and applied inside the update kernel: no readback per
//! step) or by value.

mod algorithm;
mod group;
mod schedule;
mod state;

pub use algorithm::Algorithm;
pub use group::{split_decay, ParamGroup};
pub use schedule::{LrLambda, ReduceOnPlateau, Schedule};
pub use state::StateDict;

use group::GroupSettings;

use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::ops::optimizer::{
    self, Norm, StepParams, StepState, AMSGRAD, CENTERED, CLIP_SCALE, CLIP_VALUE, DECOUPLED,
    MAXIMIZE, NESTEROV,
};
use crate::ops::u32_of;
use crate::tensor::Tensor;

/// The gradient norm that [`Optimizer::clip_grad_norm`] bounds (torch's `norm_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormType {
    /// Σ|g| over every gradient element (`norm_type=1`).
    L1,
    /// √Σg² (`norm_type=2`, the default).
    #[default]
    L2,
    /// max |g| (`norm_type=inf`).
    Inf,
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
    /// Third state tensor, only for AMSGrad (the running maximum of the second moment) and
    /// centred RMSProp (the gradient's running mean).
    pub s3: Option<Tensor>,
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
    amsgrad: bool,
    centered: bool,
    decoupled: bool,
    schedule: Schedule,
    clip_norm: Option<f32>,
    norm_type: NormType,
    error_if_nonfinite: bool,
    clip_value: Option<f32>,
    /// Every group's parameters, group after group.
    params: Vec<Tensor>,
    /// Each group's size (they partition `params` in order) and own settings; group 0 holds
    /// the constructor's parameters and follows the optimizer's settings.
    groups: Vec<(usize, GroupSettings)>,
    /// Whether `params` was checked for a tensor given twice since it last changed.
    distinct: bool,
    states: Vec<Option<ParamState>>,
    /// NAdam's running Π μ per parameter, with the update count it is for.
    mu_products: Vec<(u32, f64)>,
    step: u32,
    /// [P] per-parameter partials of the norm and [2] (norm, scale), for clipping by norm.
    clip_buffers: Option<(Tensor, Tensor)>,
}

impl Optimizer {
    /// An optimizer with `algorithm` at base rate `lr` and PyTorch's default ε (and AdamW's
    /// default weight decay 1e-2). Its parameters are group 0; add groups with
    /// [`Optimizer::group`].
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
            amsgrad: false,
            centered: false,
            decoupled: false,
            schedule: Schedule::Constant,
            clip_norm: None,
            norm_type: NormType::L2,
            error_if_nonfinite: false,
            clip_value: None,
            states: vec![None; params.len()],
            mu_products: vec![(0, 1.0); params.len()],
            groups: vec![(params.len(), GroupSettings::default())],
            distinct: false,
            params,
            step: 0,
            clip_buffers: None,
        }
    }
    /// Plain SGD (`torch.optim.SGD(params, lr)`).
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
    /// SGD with momentum μ (`torch.optim.SGD(params, lr, momentum)`: the first step's buffer is
    /// the gradient itself, as there).
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
    /// SGD with Nesterov momentum (`torch.optim.SGD(params, lr, momentum, nesterov=True)`).
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
    /// AdaGrad (`torch.optim.Adagrad`, same defaults; its default rate is 0.01).
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
    /// RMSProp with α = 0.99 (`torch.optim.RMSprop`, same defaults; its default rate is 0.01);
    /// centred with [`Optimizer::centered`].
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
    /// AdaDelta with ρ = 0.9 (`torch.optim.Adadelta`, same defaults; its default rate is 1.0).
    pub fn adadelta(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(params, Algorithm::AdaDelta { rho: 0.9 }, lr)
    }
    /// Adam with β = (0.9, 0.999) (`torch.optim.Adam`, same defaults; its default rate is
    /// 1e-3); AMSGrad with [`Optimizer::amsgrad`], AdamW's decay with
    /// [`Optimizer::decoupled_weight_decay`].
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
    /// AdamW with β = (0.9, 0.999) and weight decay 1e-2 (`torch.optim.AdamW`, same defaults;
    /// its default rate is 1e-3); AMSGrad with [`Optimizer::amsgrad`].
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

    /// NAdam (`torch.optim.NAdam`, same defaults: β = (0.9, 0.999), ε = 1e-8, momentum decay
    /// 4e-3; its default rate is 2e-3). Weight decay is L2 unless
    /// [`Optimizer::decoupled_weight_decay`] (NAdamW).
    pub fn nadam(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::NAdam {
                beta1: 0.9,
                beta2: 0.999,
                momentum_decay: 4e-3,
            },
            lr,
        )
    }

    /// RAdam (`torch.optim.RAdam`, same defaults: β = (0.9, 0.999), ε = 1e-8; its default rate
    /// is 1e-3). Weight decay is L2 unless [`Optimizer::decoupled_weight_decay`] (RAdamW).
    pub fn radam(params: Vec<Tensor>, lr: f32) -> Optimizer {
        Optimizer::new(
            params,
            Algorithm::RAdam {
                beta1: 0.9,
                beta2: 0.999,
            },
            lr,
        )
    }

    /// Weight decay λ: L2 (λθ added to the gradient), or decoupled (θ ← θ(1 − lr·λ) before the
    /// update) for AdamW and with [`Optimizer::decoupled_weight_decay`]. Groups may set their
    /// own ([`ParamGroup::weight_decay`]).
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
    /// AMSGrad (torch's `amsgrad=True`, Adam and AdamW only): the denominator uses the largest
    /// second moment seen so far, kept in a third state tensor.
    pub fn amsgrad(mut self, yes: bool) -> Self {
        self.amsgrad = yes;
        self
    }
    /// Centred RMSProp (torch's `centered=True`, RMSProp only): the square average less the
    /// square of the gradient's running mean (kept in a third state tensor), an estimate of
    /// the variance.
    pub fn centered(mut self, yes: bool) -> Self {
        self.centered = yes;
        self
    }
    /// Decoupled weight decay for Adam, NAdam and RAdam (torch's
    /// `decoupled_weight_decay=True`: AdamW, NAdamW, RAdamW); AdamW always decouples.
    pub fn decoupled_weight_decay(mut self, yes: bool) -> Self {
        self.decoupled = yes;
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
    /// Scales all gradients together so their global norm (L2 unless
    /// [`Optimizer::norm_type`]) is at most `max_norm`, on the device, inside the update
    /// kernels: `torch.nn.utils.clip_grad_norm_` over every parameter before `step`, with the
    /// same factor max_norm / (norm + 1e-6), and a NaN or infinite norm passed through to the
    /// update as there (unless [`Optimizer::error_if_nonfinite`]).
    pub fn clip_grad_norm(mut self, max_norm: f32) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }
    /// The norm [`Optimizer::clip_grad_norm`] bounds (torch's `norm_type`: 1, 2 or inf).
    pub fn norm_type(mut self, norm: NormType) -> Self {
        self.norm_type = norm;
        self
    }
    /// With [`Optimizer::clip_grad_norm`]: a step whose gradient norm is NaN or infinite
    /// returns `Error::NonFinite`, naming the first parameter whose gradient made it so, and
    /// updates nothing (torch's `error_if_nonfinite=True`). As torch's, the check reads the norm
    /// back: one device round trip per step.
    pub fn error_if_nonfinite(mut self, yes: bool) -> Self {
        self.error_if_nonfinite = yes;
        self
    }

    /// Adds a parameter group with its own settings (builder form of
    /// [`Optimizer::add_param_group`]).
    pub fn group(mut self, group: ParamGroup) -> Self {
        self.add_param_group(group);
        self
    }
    /// Adds a parameter group with its own settings (torch's `add_param_group`), for instance
    /// when layers are unfrozen part-way through training. A parameter may belong to one group
    /// only: `step` refuses one given twice.
    pub fn add_param_group(&mut self, group: ParamGroup) {
        let n = group.params.len();
        self.params.extend(group.params);
        self.states.extend(std::iter::repeat_n(None, n));
        self.mu_products.extend(std::iter::repeat_n((0, 1.0), n));
        self.groups.push((n, group.settings));
        self.distinct = false;
    }
    /// Groups: the constructor's parameters are group 0, then one per
    /// [`Optimizer::group`], in order.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
    /// Group `g`'s base rate: its own, or the optimizer's.
    ///
    /// # Errors
    /// `InvalidArgument` for a group that does not exist.
    pub fn group_lr(&self, g: usize) -> Result<f32> {
        Ok(self.group_settings(g)?.lr.unwrap_or(self.lr))
    }
    /// Sets group `g`'s own base rate (it no longer follows [`Optimizer::set_lr`]).
    ///
    /// # Errors
    /// `InvalidArgument` for a group that does not exist.
    pub fn set_group_lr(&mut self, g: usize, lr: f32) -> Result<()> {
        self.group_settings(g)?;
        self.groups[g].1.lr = Some(lr);
        Ok(())
    }
    /// The rate group `g`'s next step will use.
    ///
    /// # Errors
    /// `InvalidArgument` for a group that does not exist.
    pub fn current_group_lr(&self, g: usize) -> Result<f32> {
        let s = self.group_settings(g)?;
        let schedule = s.schedule.as_ref().unwrap_or(&self.schedule);
        Ok(s.lr.unwrap_or(self.lr) * schedule.factor(self.step))
    }

    fn group_settings(&self, g: usize) -> Result<&GroupSettings> {
        self.groups
            .get(g)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::InvalidArgument {
                op: "Optimizer::group_lr",
                message: format!(
                    "no group {g}: this optimizer has {} (group 0 is the constructor's parameters)",
                    self.groups.len()
                ),
            })
    }

    /// Multiplies every base rate (the optimizer's and each group's own) by `factor`, not below
    /// `min`, changing only those that move by more than `eps` (ReduceLROnPlateau's rule for
    /// each group); returns whether any changed.
    pub(crate) fn reduce_rates(&mut self, factor: f32, min: f32, eps: f32) -> bool {
        let rates = std::iter::once(&mut self.lr)
            .chain(self.groups.iter_mut().filter_map(|(_, s)| s.lr.as_mut()));
        let mut changed = false;
        for lr in rates {
            let new = (*lr * factor).max(min);
            if *lr - new > eps {
                *lr = new;
                changed = true;
            }
        }
        changed
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
    /// The optimizer's base rate (what the schedule's factor multiplies), which every group
    /// without its own rate follows.
    pub fn lr(&self) -> f32 {
        self.lr
    }
    /// Sets the optimizer's base rate, for every group without its own
    /// ([`Optimizer::set_group_lr`] sets one group's). The state dict holds the base rates, so
    /// a rate lowered by [`ReduceOnPlateau`] resumes lowered; set it after loading to change it.
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
    /// The rate the next step will use, in group 0.
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
        let needs_s3 = self.needs_s3();
        for (i, (s, p)) in states.iter().zip(&self.params).enumerate() {
            let Some(s) = s else { continue };
            let what = || format!("optimizer state of parameter {i}");
            if s.s3.is_some() != needs_s3 {
                return Err(Error::Format {
                    what: what(),
                    message: self.s3_mismatch(s.s3.is_some()),
                });
            }
            for t in [&s.s1, &s.s2].into_iter().chain(&s.s3) {
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
            .flat_map(|s| [&s.s1, &s.s2].into_iter().chain(&s.s3))
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
        // NAdam's momentum products are recomputed from the loaded update counts.
        self.mu_products = vec![(0, 1.0); self.params.len()];
        Ok(())
    }

    /// Whether each parameter keeps a third state tensor (AMSGrad, centred RMSProp).
    fn needs_s3(&self) -> bool {
        self.amsgrad || self.centered
    }

    /// Why a state with (`has`) or without a third tensor does not fit this optimizer.
    fn s3_mismatch(&self, has: bool) -> String {
        let flag = if self.centered { "centered" } else { "amsgrad" };
        if has {
            "holds a third state tensor (AMSGrad's maximum or centred RMSProp's gradient mean) this optimizer does not use: build it with the same amsgrad/centered setting as the one that saved the state".into()
        } else {
            format!("has no third state tensor, which this optimizer ({flag}) keeps: the state was saved without {flag}; build the optimizer the same way, or start it without a saved state")
        }
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
    /// without momentum or with dampening, a negative clip bound, a flag the rule does not
    /// have, a parameter in two groups), a rate that is not finite (torch takes it; no step
    /// with it means anything) and parameters that are views are errors, returned before
    /// anything is updated.
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
        let clip = match self.clip_norm {
            Some(max_norm) => Some(self.global_norm_scale(&grads, max_norm)?),
            None => None,
        };
        self.step += 1;
        let k = self.step - 1;
        let (beta1, beta2) = self.algorithm.betas();
        let (dampening, lr_decay, nesterov) = match self.algorithm {
            Algorithm::Sgd {
                dampening,
                nesterov,
                ..
            } => (dampening, 0.0, nesterov),
            Algorithm::AdaGrad { lr_decay, .. } => (0.0, lr_decay, false),
            _ => (0.0, 0.0, false),
        };
        let mut flags = 0;
        for (on, bit) in [
            (nesterov, NESTEROV),
            (clip.is_some(), CLIP_SCALE),
            (self.clip_value.is_some(), CLIP_VALUE),
            (self.maximize, MAXIMIZE),
            (self.amsgrad, AMSGRAD),
            (self.centered, CENTERED),
            (self.decoupled, DECOUPLED),
        ] {
            if on {
                flags |= bit;
            }
        }
        let decoupled = self.decoupled || matches!(self.algorithm, Algorithm::AdamW { .. });
        let needs_s3 = self.needs_s3();
        let mut first = 0;
        for (size, settings) in &self.groups {
            let range = first..first + size;
            first += size;
            let schedule = settings.schedule.as_ref().unwrap_or(&self.schedule);
            let lr = settings.lr.unwrap_or(self.lr) * schedule.factor(k);
            let weight_decay = settings.weight_decay.unwrap_or(self.weight_decay);
            let l1 = settings.l1.unwrap_or(self.l1);
            for i in range {
                let Some(g) = &grads[i] else { continue };
                let param = &self.params[i];
                if self.states[i].is_none() {
                    // Each parameter counts its own updates, as torch.optim does: one whose
                    // first gradient arrives late still gets an unbiased first Adam step.
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
                        s3: if needs_s3 {
                            Some(Tensor::zeros(&dev, param.shape())?)
                        } else {
                            None
                        },
                    });
                }
                let state = self.states[i].as_mut().expect("created above");
                state.step += 1;
                let t = state.step;
                let (mu_step, mu) = &mut self.mu_products[i];
                if *mu_step + 1 != t {
                    // First update since construction or a load: Π μ over the updates so far.
                    *mu = self.algorithm.mu_product(t - 1);
                }
                let sc = self.algorithm.scalars(t, lr, mu);
                *mu_step = t;
                let p = StepParams {
                    numel: u32_of(param.numel()),
                    algo: self.algorithm.code(),
                    step: t,
                    flags,
                    lr,
                    beta1,
                    beta2,
                    eps: self.eps,
                    weight_decay,
                    l1,
                    dampening,
                    clip_value: self.clip_value.unwrap_or(0.0),
                    bias_correction1: sc.bias_correction1,
                    bias_correction2: sc.bias_correction2,
                    lr_decay,
                    coef_a: sc.coef_a,
                    coef_b: sc.coef_b,
                    // torch's param.mul_(1 - lr * weight_decay), the factor in f64.
                    decay_keep: if decoupled {
                        (1.0 - f64::from(lr) * f64::from(weight_decay)) as f32
                    } else {
                        1.0
                    },
                    _pad0: 0,
                    _pad1: 0,
                };
                let st = StepState {
                    s1: &state.s1,
                    s2: &state.s2,
                    s3: state.s3.as_ref(),
                };
                optimizer::optimizer_step(&p, param, g, st, clip.as_ref())?;
            }
        }
        Ok(())
    }

    /// The checks torch.optim makes in its constructors, made here because the builders
    /// return `Self`.
    fn check_settings(&mut self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::InvalidArgument {
                op: "Optimizer::step",
                message,
            })
        };
        // Written so that NaN fails every check.
        let unit = |v: f32| (0.0..1.0).contains(&v);
        let nonneg = |v: f32| v >= 0.0;
        let mut rates = vec![("learning rate", self.lr)];
        let mut others = vec![
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("l1", self.l1),
        ];
        for (_, g) in &self.groups {
            rates.extend(g.lr.map(|v| ("a group's learning rate", v)));
            others.extend(g.weight_decay.map(|v| ("a group's weight_decay", v)));
            others.extend(g.l1.map(|v| ("a group's l1", v)));
        }
        for (name, v) in rates {
            if !(nonneg(v) && v.is_finite()) {
                return bad(format!("{name} {v} must be finite and at least 0"));
            }
        }
        for (name, v) in others {
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
        let name = self.algorithm.name();
        let adam_like = matches!(
            self.algorithm,
            Algorithm::Adam { .. } | Algorithm::AdamW { .. }
        );
        if self.amsgrad && !adam_like {
            return bad(format!(
                "amsgrad is an option of Adam and AdamW, not of {name}"
            ));
        }
        if self.centered && !matches!(self.algorithm, Algorithm::RmsProp { .. }) {
            return bad(format!("centered is an option of RMSProp, not of {name}"));
        }
        if self.decoupled
            && !matches!(
                self.algorithm,
                Algorithm::Adam { .. }
                    | Algorithm::AdamW { .. }
                    | Algorithm::NAdam { .. }
                    | Algorithm::RAdam { .. }
            )
        {
            return bad(format!(
                "decoupled_weight_decay is an option of Adam, NAdam and RAdam, not of {name}"
            ));
        }
        if self.error_if_nonfinite && self.clip_norm.is_none() {
            return bad(
                "error_if_nonfinite checks the norm clip_grad_norm computes: set clip_grad_norm too"
                    .into(),
            );
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
            Algorithm::NAdam { momentum_decay, .. } if !nonneg(momentum_decay) => {
                return bad(format!(
                    "NAdam momentum_decay {momentum_decay} must be at least 0"
                ));
            }
            Algorithm::Adam { beta1, beta2 }
            | Algorithm::AdamW { beta1, beta2 }
            | Algorithm::Adamax { beta1, beta2 }
            | Algorithm::NAdam { beta1, beta2, .. }
            | Algorithm::RAdam { beta1, beta2 } => {
                if !unit(beta1) || !unit(beta2) {
                    return bad(format!(
                        "{name} betas ({beta1}, {beta2}) must lie in [0, 1)"
                    ));
                }
            }
        }
        if !self.distinct {
            for (i, a) in self.params.iter().enumerate() {
                if let Some(j) = self.params[i + 1..]
                    .iter()
                    .position(|b| a.shares_storage(b))
                {
                    return bad(format!(
                        "parameters {i} and {} are the same tensor (or share storage): give each parameter to one group only",
                        i + 1 + j
                    ));
                }
            }
            self.distinct = true;
        }
        Ok(())
    }

    /// Records each parameter's partial of the norm into a [P] buffer and the (norm, scale)
    /// pair into [2]; with `error_if_nonfinite`, reads the partials back and refuses a
    /// non-finite norm.
    fn global_norm_scale(&mut self, grads: &[Option<Tensor>], max_norm: f32) -> Result<Tensor> {
        let Some(first) = grads.iter().flatten().next() else {
            return Tensor::from_slice(&Device::Cpu, &[0.0, 1.0], &[2]);
        };
        let dev = first.device();
        let count = self.params.len();
        if self
            .clip_buffers
            .as_ref()
            .is_none_or(|(p, _)| p.numel() != count || !p.device().same(&dev))
        {
            self.clip_buffers = Some((Tensor::zeros(&dev, &[count])?, Tensor::zeros(&dev, &[2])?));
        }
        let (partial, out) = self.clip_buffers.clone().expect("created above");
        let norm = match self.norm_type {
            NormType::L1 => Norm::L1,
            NormType::L2 => Norm::L2,
            NormType::Inf => Norm::Inf,
        };
        for (i, g) in grads.iter().enumerate() {
            match g {
                Some(g) => optimizer::norm_partial(g, norm, &partial, i)?,
                None => partial.narrow(0, i, 1)?.fill_view(0.0)?,
            }
        }
        if self.error_if_nonfinite {
            let partials = partial.read_blocking()?;
            if let Some(i) = partials.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!(
                        "the {:?} gradient norm (each parameter's part; parameter {i}'s gradient has a NaN or infinity, or its norm overflows); nothing was updated",
                        self.norm_type
                    ),
                    index: i,
                    value: partials[i],
                    producer: "Optimizer::step (error_if_nonfinite)".into(),
                });
            }
        }
        optimizer::clip_scale(max_norm, norm, &partial, &out)?;
        Ok(out)
    }
}
