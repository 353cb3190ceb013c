//! `--optimizer` and `--schedule`, shared by char_rnn and char_transformer: each value builds
//! the timeloom optimizer or schedule that PyTorch users know by that name, with PyTorch's
//! defaults for everything the value does not name.

#![allow(dead_code)]

use clap::ValueEnum;
use timeloom::{Error, Optimizer, ParamGroup, ReduceOnPlateau, Schedule, Tensor};

/// The values of `--optimizer`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerChoice {
    /// torch.optim.SGD.
    Sgd,
    /// SGD with momentum 0.9.
    Momentum,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// torch.optim.Adagrad.
    Adagrad,
    /// torch.optim.RMSprop (α = 0.99).
    Rmsprop,
    /// RMSprop with centered=True.
    RmspropCentered,
    /// torch.optim.Adadelta (ρ = 0.9).
    Adadelta,
    /// torch.optim.Adam.
    Adam,
    /// Adam with amsgrad=True.
    AdamAmsgrad,
    /// torch.optim.AdamW (weight decay 0.01 unless the example sets its own).
    Adamw,
    /// AdamW with amsgrad=True.
    AdamwAmsgrad,
    /// torch.optim.Adamax.
    Adamax,
    /// torch.optim.NAdam.
    Nadam,
    /// torch.optim.RAdam.
    Radam,
}

impl OptimizerChoice {
    /// The flag's spelling (what a checkpoint records).
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("every value is listed")
            .get_name()
            .to_string()
    }

    /// The value named `name` (as [`OptimizerChoice::name`] spells it).
    pub fn parse(name: &str) -> Result<OptimizerChoice, Error> {
        OptimizerChoice::from_str(name, false).map_err(|_| Error::InvalidArgument {
            op: "--optimizer",
            message: format!("`{name}` is not an optimizer: use one of {}", Self::names()),
        })
    }

    fn names() -> String {
        let all: Vec<String> = Self::value_variants().iter().map(|v| v.name()).collect();
        all.join(", ")
    }

    /// The optimizer over `params` at base rate `lr`.
    pub fn build(self, params: Vec<Tensor>, lr: f32) -> Optimizer {
        use OptimizerChoice as O;
        match self {
            O::Sgd => Optimizer::sgd(params, lr),
            O::Momentum => Optimizer::momentum(params, lr, 0.9),
            O::Nesterov => Optimizer::nesterov(params, lr, 0.9),
            O::Adagrad => Optimizer::adagrad(params, lr),
            O::Rmsprop => Optimizer::rmsprop(params, lr),
            O::RmspropCentered => Optimizer::rmsprop(params, lr).centered(true),
            O::Adadelta => Optimizer::adadelta(params, lr),
            O::Adam => Optimizer::adam(params, lr),
            O::AdamAmsgrad => Optimizer::adam(params, lr).amsgrad(true),
            O::Adamw => Optimizer::adamw(params, lr),
            O::AdamwAmsgrad => Optimizer::adamw(params, lr).amsgrad(true),
            O::Adamax => Optimizer::adamax(params, lr),
            O::Nadam => Optimizer::nadam(params, lr),
            O::Radam => Optimizer::radam(params, lr),
        }
    }

    /// As PyTorch recipes build a transformer's optimizer: weight decay `decay` on the matrices
    /// (`decay` params), none on the biases and norm gains (group 1, `no_decay`). Rules whose
    /// decay is L2 get it as L2.
    pub fn build_with_no_decay_group(
        self,
        decay: Vec<Tensor>,
        no_decay: Vec<Tensor>,
        lr: f32,
        weight_decay: f32,
    ) -> Optimizer {
        self.build(decay, lr)
            .weight_decay(weight_decay)
            .group(ParamGroup::new(no_decay).weight_decay(0.0))
    }
}

/// The values of `--schedule`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleChoice {
    /// The rate times `--lr-decay` after each epoch (StepLR with a step of one epoch).
    Step,
    /// The same rate throughout.
    Constant,
    /// Cosine from the rate to 0 over the run (CosineAnnealingLR, T_max = the run's steps).
    Cosine,
    /// Linear warm-up over the first 5% of the steps, then cosine to 0.
    WarmupCosine,
    /// One cycle over the run, peaking at the rate after 30% (OneCycleLR's defaults).
    Onecycle,
    /// Halve the rate when the validation loss has not improved for 2 evaluations
    /// (ReduceLROnPlateau, factor 0.5, patience 2).
    Plateau,
}

impl ScheduleChoice {
    /// The flag's spelling (what a checkpoint records).
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("every value is listed")
            .get_name()
            .to_string()
    }

    /// The value named `name` (as [`ScheduleChoice::name`] spells it).
    pub fn parse(name: &str) -> Result<ScheduleChoice, Error> {
        ScheduleChoice::from_str(name, false).map_err(|_| {
            let all: Vec<String> = Self::value_variants().iter().map(|v| v.name()).collect();
            Error::InvalidArgument {
                op: "--schedule",
                message: format!("`{name}` is not a schedule: use one of {}", all.join(", ")),
            }
        })
    }

    /// The schedule of a run of `steps` steps with `per_epoch` steps an epoch; `lr_decay` is
    /// `step`'s factor per epoch.
    pub fn schedule(self, steps: usize, per_epoch: usize, lr_decay: f32) -> Schedule {
        let total = steps.max(1) as u32;
        match self {
            ScheduleChoice::Step => Schedule::Step {
                every: per_epoch.max(1) as u32,
                gamma: lr_decay,
            },
            ScheduleChoice::Constant | ScheduleChoice::Plateau => Schedule::Constant,
            ScheduleChoice::Cosine => Schedule::Cosine {
                total,
                min_factor: 0.0,
            },
            ScheduleChoice::WarmupCosine => {
                let warm = (total / 20).max(1);
                Schedule::Warmup {
                    steps: warm,
                    then: Box::new(Schedule::Cosine {
                        total: total.saturating_sub(warm).max(1),
                        min_factor: 0.0,
                    }),
                }
            }
            ScheduleChoice::Onecycle => Schedule::OneCycle {
                total,
                pct_start: 0.3,
                div: 25.0,
                final_div: 1e4,
            },
        }
    }

    /// The plateau rule that `plateau` reports validation losses to.
    pub fn plateau(self) -> Option<ReduceOnPlateau> {
        (self == ScheduleChoice::Plateau).then(|| ReduceOnPlateau::new(0.5, 2))
    }
}
