//! The update rules an [`Optimizer`](super::Optimizer) can run, their PyTorch defaults and the
//! scalars each needs per step, computed on the host in f64 and rounded once (torch computes
//! them in Python floats).

/// The update rule, with its own hyper-parameters (PyTorch's names and defaults). Flags that
/// PyTorch passes to the same constructor are builder methods of
/// [`Optimizer`](super::Optimizer): `amsgrad`, `centered`, `decoupled_weight_decay`,
/// `maximize`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Algorithm {
    /// SGD, with momentum μ, dampening τ and optional Nesterov momentum (`torch.optim.SGD`).
    Sgd {
        /// μ (0: plain SGD).
        momentum: f32,
        /// τ.
        dampening: f32,
        /// Nesterov accelerated gradient.
        nesterov: bool,
    },
    /// AdaGrad (`torch.optim.Adagrad`).
    AdaGrad {
        /// The rate decays as lr / (1 + (t − 1)·lr_decay).
        lr_decay: f32,
        /// Initial value of the sum of squares.
        initial_accumulator_value: f32,
    },
    /// RMSProp (`torch.optim.RMSprop`; centred with `Optimizer::centered`).
    RmsProp {
        /// Smoothing constant α of the squared-gradient average.
        alpha: f32,
        /// Momentum μ.
        momentum: f32,
    },
    /// AdaDelta (`torch.optim.Adadelta`).
    AdaDelta {
        /// ρ, the decay of both running averages.
        rho: f32,
    },
    /// Adam, bias-corrected (`torch.optim.Adam`; AMSGrad with `Optimizer::amsgrad`).
    Adam {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
    /// AdamW: Adam with decoupled weight decay (`torch.optim.AdamW`).
    AdamW {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
    /// Adamax: Adam with the infinity norm (`torch.optim.Adamax`).
    Adamax {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
    /// NAdam: Adam with Nesterov momentum and the momentum-decay schedule of Dozat's paper
    /// (`torch.optim.NAdam`; NAdamW with `Optimizer::decoupled_weight_decay`).
    NAdam {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
        /// ψ, the momentum decay (PyTorch's default 4e-3).
        momentum_decay: f32,
    },
    /// RAdam: Adam with the variance rectification of Liu et al.; an SGD-with-momentum step
    /// while ρ_t ≤ 5 (`torch.optim.RAdam`; RAdamW with `Optimizer::decoupled_weight_decay`).
    RAdam {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
    },
}

/// What the kernel needs per step beyond the settings: the bias corrections and the rule's
/// own coefficients (see `Params` in shaders/optimizer_step.wgsl).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct StepScalars {
    pub bias_correction1: f32,
    pub bias_correction2: f32,
    pub coef_a: f32,
    pub coef_b: f32,
}

impl Algorithm {
    pub(crate) fn code(self) -> u32 {
        match self {
            Algorithm::Sgd { .. } => 0,
            Algorithm::AdaGrad { .. } => 1,
            Algorithm::RmsProp { .. } => 2,
            Algorithm::AdaDelta { .. } => 3,
            Algorithm::Adam { .. } => 4,
            Algorithm::AdamW { .. } => 5,
            Algorithm::Adamax { .. } => 6,
            Algorithm::NAdam { .. } => 7,
            Algorithm::RAdam { .. } => 8,
        }
    }

    /// The name a saved state records (the variant, not its hyper-parameters).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Sgd { .. } => "sgd",
            Algorithm::AdaGrad { .. } => "adagrad",
            Algorithm::RmsProp { .. } => "rmsprop",
            Algorithm::AdaDelta { .. } => "adadelta",
            Algorithm::Adam { .. } => "adam",
            Algorithm::AdamW { .. } => "adamw",
            Algorithm::Adamax { .. } => "adamax",
            Algorithm::NAdam { .. } => "nadam",
            Algorithm::RAdam { .. } => "radam",
        }
    }

    /// PyTorch's default ε for the rule.
    pub(crate) fn default_eps(self) -> f32 {
        match self {
            Algorithm::AdaGrad { .. } => 1e-10,
            Algorithm::AdaDelta { .. } => 1e-6,
            _ => 1e-8,
        }
    }

    /// (β1, β2) of the moment rules; for the others the kernel's `beta1`, `beta2` slots:
    /// momentum and α (RMSProp), momentum (SGD), ρ (AdaDelta).
    pub(crate) fn betas(self) -> (f32, f32) {
        match self {
            Algorithm::Sgd { momentum, .. } => (momentum, 0.0),
            Algorithm::AdaGrad { .. } => (0.0, 0.0),
            Algorithm::RmsProp { alpha, momentum } => (momentum, alpha),
            Algorithm::AdaDelta { rho } => (0.0, rho),
            Algorithm::Adam { beta1, beta2 }
            | Algorithm::AdamW { beta1, beta2 }
            | Algorithm::Adamax { beta1, beta2 }
            | Algorithm::NAdam { beta1, beta2, .. }
            | Algorithm::RAdam { beta1, beta2 } => (beta1, beta2),
        }
    }

    /// The step scalars of update `t` (1-based) of one parameter at rate `lr`. `mu_product` is
    /// NAdam's running Π μ_k over k < t (1 before the first update); it is advanced to k ≤ t.
    pub(crate) fn scalars(self, t: u32, lr: f32, mu_product: &mut f64) -> StepScalars {
        let (b1, b2) = self.betas();
        let (b1, b2, lr) = (f64::from(b1), f64::from(b2), f64::from(lr));
        let ti = t.min(i32::MAX as u32) as i32;
        // In f64, rounded once: 1 − β^t in f32 loses digits while β^t is near 1 (β2 = 0.999
        // early on). Against torch.optim runs (tests/training.rs) this took the worst relative
        // error over 25 Adam steps from 6e-5 to 6e-7 (AdamW: 7e-5 to 7e-6).
        let bc1 = 1.0 - b1.powi(ti);
        let bc2 = 1.0 - b2.powi(ti);
        let (mut a, mut b) = (0.0, 0.0);
        match self {
            Algorithm::NAdam { momentum_decay, .. } => {
                let psi = f64::from(momentum_decay);
                let mu = |k: f64| b1 * (1.0 - 0.5 * 0.96f64.powf(k * psi));
                let (mu_t, mu_next) = (mu(f64::from(t)), mu(f64::from(t) + 1.0));
                *mu_product *= mu_t;
                a = lr * (1.0 - mu_t) / (1.0 - *mu_product);
                b = lr * mu_next / (1.0 - *mu_product * mu_next);
            }
            Algorithm::RAdam { .. } => {
                let rho_inf = 2.0 / (1.0 - b2) - 1.0;
                let rho_t = rho_inf - 2.0 * f64::from(t) * b2.powi(ti) / bc2;
                if rho_t > 5.0 {
                    let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                        .sqrt();
                    a = rect * bc2.sqrt();
                }
            }
            _ => {}
        }
        StepScalars {
            bias_correction1: bc1 as f32,
            bias_correction2: bc2 as f32,
            coef_a: a as f32,
            coef_b: b as f32,
        }
    }

    /// NAdam's Π μ_k for k = 1..=t, recomputed from the start (after a state is loaded).
    pub(crate) fn mu_product(self, t: u32) -> f64 {
        let mut p = 1.0;
        for k in 1..=t {
            self.scalars(k, 0.0, &mut p);
        }
        p
    }
}
