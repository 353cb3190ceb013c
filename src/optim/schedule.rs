//! Learning-rate schedules: the factor the base rate is multiplied by before step k (k = 0 for
//! the first step). Each names its `torch.optim.lr_scheduler` counterpart and any difference;
//! the PyTorch ones are checked against torch's own rates (tests/fixtures/schedules.safetensors,
//! written by tools/make_fixtures.py).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};

/// How the learning rate changes with the step count.
///
/// ```
/// use timeloom::Schedule;
/// let s = Schedule::InverseTime { decay: 1.0 }; // α₀ / (1 + k), Robbins–Monro style
/// assert_eq!(s.factor(0), 1.0);
/// assert_eq!(s.factor(3), 0.25);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Schedule {
    /// α₀ (PyTorch: no scheduler).
    #[default]
    Constant,
    /// α₀ / (1 + decay·k) (no PyTorch scheduler; a `LambdaLR` there).
    InverseTime {
        /// How fast the rate falls.
        decay: f32,
    },
    /// α₀ / √(k + 1), i.e. α₀/√k with steps counted from 1 (a `LambdaLR` in PyTorch).
    InverseSqrt,
    /// α₀ · γ^⌊k / every⌋ (PyTorch's `StepLR(step_size=every, gamma)`).
    Step {
        /// Steps between drops.
        every: u32,
        /// Factor of each drop.
        gamma: f32,
    },
    /// α₀ · γ^k (PyTorch's `ExponentialLR`).
    Exponential {
        /// Factor per step.
        gamma: f32,
    },
    /// Cosine from α₀ down to α₀·`min_factor` over `total` steps, then flat. PyTorch's
    /// `CosineAnnealingLR(T_max=total, eta_min=α₀·min_factor)` agrees up to step `total` and
    /// then continues the cosine (the rate rises again); this stays at the minimum.
    Cosine {
        /// Steps of the descent.
        total: u32,
        /// The final factor.
        min_factor: f32,
    },
    /// Linear warm-up from α₀/`steps` to α₀ over `steps` steps, then `then` (counted from the
    /// end of the warm-up). In PyTorch: `SequentialLR([LinearLR(start_factor=1/steps,
    /// total_iters=steps − 1), then], milestones=[steps])`.
    Warmup {
        /// Steps of the warm-up.
        steps: u32,
        /// The schedule after it.
        then: Box<Schedule>,
    },
    /// α₀ · γ^(the number of milestones ≤ k) (PyTorch's `MultiStepLR`; a milestone listed twice
    /// counts twice, as there).
    MultiStep {
        /// Steps at which the rate drops.
        milestones: Vec<u32>,
        /// Factor of each drop.
        gamma: f32,
    },
    /// From `start` to `end` linearly over `total` steps, then `end` (PyTorch's
    /// `LinearLR(start_factor, end_factor, total_iters)`).
    Linear {
        /// The factor at step 0.
        start: f32,
        /// The factor from step `total` on.
        end: f32,
        /// Steps of the ramp.
        total: u32,
    },
    /// One cycle (PyTorch's `OneCycleLR` with `anneal_strategy="cos"`, two phases, `max_lr` =
    /// α₀): from 1/`div` up to 1 by step ⌊pct_start·total⌋ − 1, then down to 1/(`div`·
    /// `final_div`) at step total − 1, both halves cosine; flat at the end past `total` (where
    /// PyTorch raises). Momentum is not cycled (as `cycle_momentum=False`).
    OneCycle {
        /// Steps of the whole cycle.
        total: u32,
        /// The share of the cycle spent rising (PyTorch's default 0.3).
        pct_start: f32,
        /// The starting rate is α₀/`div` (PyTorch's `div_factor`, default 25).
        div: f32,
        /// The final rate is α₀/(`div`·`final_div`) (PyTorch's `final_div_factor`, default 1e4).
        final_div: f32,
    },
    /// Cosine from α₀ down to α₀·`min_factor` over `period` steps, then again from α₀, each
    /// period `mult` times the last (PyTorch's `CosineAnnealingWarmRestarts(T_0=period,
    /// T_mult=mult, eta_min=α₀·min_factor)`).
    CosineRestarts {
        /// Steps of the first period.
        period: u32,
        /// Growth of each period (1: all equal).
        mult: u32,
        /// The factor at the bottom of each period.
        min_factor: f32,
    },
    /// Any function of the step (PyTorch's `LambdaLR`; its lambda receives the same 0-based
    /// step count).
    ///
    /// ```
    /// use timeloom::{LrLambda, Schedule};
    /// let s = Schedule::Lambda(LrLambda::new(|k| 0.95f32.powi(k as i32)));
    /// assert_eq!(s.factor(0), 1.0);
    /// ```
    Lambda(LrLambda),
    /// `first` for steps 0..`until`, then `then` counted from `until` (PyTorch's `SequentialLR`
    /// with one milestone; nest for more).
    Sequential {
        /// The schedule before the milestone.
        first: Box<Schedule>,
        /// The milestone.
        until: u32,
        /// The schedule from it, its step 0 at the milestone.
        then: Box<Schedule>,
    },
}

impl Schedule {
    /// The factor of the base rate for step `k` (0-based).
    pub fn factor(&self, k: u32) -> f32 {
        let kf = k as f32;
        match self {
            Schedule::Constant => 1.0,
            Schedule::InverseTime { decay } => 1.0 / (1.0 + decay * kf),
            Schedule::InverseSqrt => 1.0 / (kf + 1.0).sqrt(),
            Schedule::Step { every, gamma } => gamma.powi((k / (*every).max(1)) as i32),
            Schedule::Exponential { gamma } => gamma.powf(kf),
            Schedule::Cosine { total, min_factor } => {
                let t = (kf / (*total).max(1) as f32).min(1.0);
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
            }
            Schedule::Warmup { steps, then } => {
                if k < *steps {
                    (kf + 1.0) / *steps as f32
                } else {
                    then.factor(k - steps)
                }
            }
            Schedule::MultiStep { milestones, gamma } => {
                gamma.powi(milestones.iter().filter(|&&m| m <= k).count() as i32)
            }
            Schedule::Linear { start, end, total } => {
                let t = f64::from(k.min(*total)) / f64::from((*total).max(1));
                (f64::from(*start) + (f64::from(*end) - f64::from(*start)) * t) as f32
            }
            Schedule::OneCycle {
                total,
                pct_start,
                div,
                final_div,
            } => one_cycle(k, *total, *pct_start, *div, *final_div),
            Schedule::CosineRestarts {
                period,
                mult,
                min_factor,
            } => {
                // Where in which period step k falls, as PyTorch counts without an epoch.
                let (mut t, mut len) = (u64::from(k), u64::from((*period).max(1)));
                while t >= len {
                    t -= len;
                    len = len.saturating_mul(u64::from((*mult).max(1)));
                }
                let cos = (std::f64::consts::PI * t as f64 / len as f64).cos();
                let m = f64::from(*min_factor);
                (m + (1.0 - m) * (1.0 + cos) / 2.0) as f32
            }
            Schedule::Sequential { first, until, then } => {
                if k < *until {
                    first.factor(k)
                } else {
                    then.factor(k - until)
                }
            }
            Schedule::Lambda(f) => (f.0)(k),
        }
    }
}

/// The function of a [`Schedule::Lambda`]: step → factor. Shared, so a schedule stays cheap to
/// clone; two are equal when they are the same function object.
#[derive(Clone)]
pub struct LrLambda(Arc<dyn Fn(u32) -> f32 + Send + Sync>);

impl LrLambda {
    /// Wraps `f`.
    pub fn new(f: impl Fn(u32) -> f32 + Send + Sync + 'static) -> LrLambda {
        LrLambda(Arc::new(f))
    }
}

impl std::fmt::Debug for LrLambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LrLambda(..)")
    }
}

impl PartialEq for LrLambda {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// PyTorch's two-phase cosine one-cycle factor at step `k` (in f64, as torch computes it).
fn one_cycle(k: u32, total: u32, pct_start: f32, div: f32, final_div: f32) -> f32 {
    let (div, final_div) = (f64::from(div), f64::from(final_div));
    let initial = 1.0 / div;
    let min = initial / final_div;
    let rise_end = f64::from(pct_start) * f64::from(total) - 1.0;
    let last = f64::from(total.max(1)) - 1.0;
    let k = f64::from(k).min(last);
    let anneal = |from: f64, to: f64, pct: f64| {
        to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
    };
    let f = if k <= rise_end && rise_end > 0.0 {
        anneal(initial, 1.0, k / rise_end)
    } else {
        anneal(1.0, min, (k - rise_end) / (last - rise_end))
    };
    f as f32
}

/// PyTorch's `ReduceLROnPlateau`: lowers an optimizer's base rate when a metric the caller
/// reports (a validation loss, read whenever the caller reads it: nothing here reads the
/// device) has stopped improving. Same defaults and rules as PyTorch: after more than
/// `patience` reports without an improvement beyond the threshold (relative by default: better
/// than best·(1 − 1e-4)), outside a cooldown, the rate is multiplied by `factor`, not below
/// `min_lr`, and changes only by more than `eps`. With a [`Schedule`] too, the schedule's factor
/// multiplies the lowered rate.
///
/// ```
/// use timeloom::{Device, Optimizer, ReduceOnPlateau, Tensor};
/// let w = Tensor::zeros(&Device::Cpu, &[1])?.requires_grad();
/// let mut opt = Optimizer::sgd(vec![w], 1.0);
/// let mut plateau = ReduceOnPlateau::new(0.5, 1);
/// for loss in [1.0, 0.9, 0.9, 0.9] {
///     plateau.report(&mut opt, loss);
/// }
/// assert_eq!(opt.lr(), 0.5); // two reports without improvement: more than `patience`
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ReduceOnPlateau {
    factor: f32,
    patience: u32,
    maximize: bool,
    threshold: f64,
    relative: bool,
    cooldown: u32,
    min_lr: f32,
    eps: f32,
    best: f64,
    bad: u32,
    cooling: u32,
}

impl ReduceOnPlateau {
    /// Multiply the rate by `factor` after more than `patience` reports without improvement;
    /// a smaller metric is better (PyTorch's `mode="min"`), threshold 1e-4 relative, no
    /// cooldown, no floor.
    pub fn new(factor: f32, patience: u32) -> ReduceOnPlateau {
        ReduceOnPlateau {
            factor,
            patience,
            maximize: false,
            threshold: 1e-4,
            relative: true,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: f64::INFINITY,
            bad: 0,
            cooling: 0,
        }
    }
    /// A larger metric is better (PyTorch's `mode="max"`: an accuracy).
    pub fn maximize(mut self) -> Self {
        self.maximize = true;
        self.best = f64::NEG_INFINITY;
        self
    }
    /// What counts as an improvement: by more than `threshold` times the best so far
    /// (`relative`, PyTorch's `threshold_mode="rel"`) or by more than `threshold` itself.
    pub fn threshold(mut self, threshold: f32, relative: bool) -> Self {
        self.threshold = f64::from(threshold);
        self.relative = relative;
        self
    }
    /// Reports to ignore after each reduction.
    pub fn cooldown(mut self, reports: u32) -> Self {
        self.cooldown = reports;
        self
    }
    /// The floor of the rate.
    pub fn min_lr(mut self, lr: f32) -> Self {
        self.min_lr = lr;
        self
    }

    /// Reports `metric`; lowers `opt`'s base rates when the plateau rule says so (the
    /// optimizer's and each group's own, each by the rule), and returns whether it did.
    pub fn report(&mut self, opt: &mut super::Optimizer, metric: f32) -> bool {
        let m = f64::from(metric);
        let better = match (self.maximize, self.relative) {
            (false, true) => m < self.best * (1.0 - self.threshold),
            (false, false) => m < self.best - self.threshold,
            (true, true) => m > self.best * (1.0 + self.threshold),
            (true, false) => m > self.best + self.threshold,
        };
        if better {
            self.best = m;
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        if self.cooling > 0 {
            self.cooling -= 1;
            self.bad = 0;
        }
        if self.bad <= self.patience {
            return false;
        }
        self.cooling = self.cooldown;
        self.bad = 0;
        opt.reduce_rates(self.factor, self.min_lr, self.eps)
    }

    /// What a resumed run needs (torch's scheduler `state_dict`): the best metric, the reports
    /// without improvement and the cooldown left, as metadata strings to save beside the
    /// optimizer's state dict (keys start with `plateau_`). The rate itself is in the
    /// optimizer's state dict.
    ///
    /// ```
    /// use timeloom::ReduceOnPlateau;
    /// let mut a = ReduceOnPlateau::new(0.5, 1);
    /// let w = timeloom::Tensor::zeros(&timeloom::Device::Cpu, &[1])?;
    /// let mut opt = timeloom::Optimizer::sgd(vec![w], 1.0);
    /// a.report(&mut opt, 0.7);
    /// let mut b = ReduceOnPlateau::new(0.5, 1);
    /// b.load_state_dict(&a.state_dict())?;
    /// assert_eq!(b.state_dict(), a.state_dict());
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn state_dict(&self) -> HashMap<String, String> {
        [
            // Debug of an f64 reads back to the same bits, infinities included.
            ("plateau_best", format!("{:?}", self.best)),
            ("plateau_bad", self.bad.to_string()),
            ("plateau_cooling", self.cooling.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Restores what [`ReduceOnPlateau::state_dict`] wrote (other keys are ignored, so the
    /// metadata of a whole checkpoint may be passed).
    ///
    /// # Errors
    /// `Format` when a key is missing or does not parse; nothing changes then.
    pub fn load_state_dict(&mut self, metadata: &HashMap<String, String>) -> Result<()> {
        let get = |k: &str| {
            metadata.get(k).ok_or_else(|| Error::Format {
                what: format!("ReduceOnPlateau state `{k}`"),
                message: "missing: save it with ReduceOnPlateau::state_dict".into(),
            })
        };
        let bad = |k: &str, v: &str| Error::Format {
            what: format!("ReduceOnPlateau state `{k}`"),
            message: format!("`{v}` does not parse"),
        };
        let best_s = get("plateau_best")?;
        let best: f64 = best_s.parse().map_err(|_| bad("plateau_best", best_s))?;
        let bad_s = get("plateau_bad")?;
        let reports: u32 = bad_s.parse().map_err(|_| bad("plateau_bad", bad_s))?;
        let cool_s = get("plateau_cooling")?;
        let cooling: u32 = cool_s.parse().map_err(|_| bad("plateau_cooling", cool_s))?;
        (self.best, self.bad, self.cooling) = (best, reports, cooling);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn every_schedule_follows_its_formula() {
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(Schedule::Constant.factor(7), 1.0));
        assert!(close(
            Schedule::InverseTime { decay: 0.5 }.factor(4),
            1.0 / 3.0
        ));
        assert!(close(Schedule::InverseSqrt.factor(3), 0.5));
        let step = Schedule::Step {
            every: 10,
            gamma: 0.1,
        };
        assert!(
            close(step.factor(9), 1.0)
                && close(step.factor(10), 0.1)
                && close(step.factor(25), 0.01)
        );
        assert!(close(Schedule::Exponential { gamma: 0.5 }.factor(3), 0.125));
        let cos = Schedule::Cosine {
            total: 100,
            min_factor: 0.1,
        };
        assert!(
            close(cos.factor(0), 1.0)
                && close(cos.factor(50), 0.55)
                && close(cos.factor(100), 0.1)
                && close(cos.factor(500), 0.1)
        );
        let warm = Schedule::Warmup {
            steps: 4,
            then: Box::new(Schedule::Exponential { gamma: 0.5 }),
        };
        let got: Vec<f32> = (0..6).map(|k| warm.factor(k)).collect();
        assert_eq!(got, [0.25, 0.5, 0.75, 1.0, 1.0, 0.5]);
    }

    /// The PyTorch schedulers' own rates (base rate 1) for 40 steps, from
    /// tests/fixtures/schedules.safetensors (tools/make_fixtures.py): the factors agree to 1e-6.
    #[test]
    fn the_pytorch_schedulers_give_torchs_rates() {
        let w = crate::io::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schedules.safetensors"
        ))
        .unwrap();
        let cases = [
            (
                "multistep",
                Schedule::MultiStep {
                    milestones: vec![5, 12, 12, 30],
                    gamma: 0.5,
                },
            ),
            (
                "linear",
                Schedule::Linear {
                    start: 0.25,
                    end: 0.75,
                    total: 8,
                },
            ),
            (
                "onecycle",
                Schedule::OneCycle {
                    total: 40,
                    pct_start: 0.3,
                    div: 25.0,
                    final_div: 1e4,
                },
            ),
            (
                "cosine_restarts",
                Schedule::CosineRestarts {
                    period: 6,
                    mult: 2,
                    min_factor: 0.1,
                },
            ),
            (
                "sequential",
                Schedule::Sequential {
                    first: Box::new(Schedule::Linear {
                        start: 0.1,
                        end: 1.0,
                        total: 5,
                    }),
                    until: 5,
                    then: Box::new(Schedule::Exponential { gamma: 0.9 }),
                },
            ),
        ];
        for (name, schedule) in cases {
            let (_, want) = &w.tensors[name];
            assert_eq!(want.len(), 40, "{name}");
            for (k, &t) in want.iter().enumerate() {
                let got = schedule.factor(k as u32);
                assert!(
                    (got - t).abs() <= 1e-6 * t.abs().max(1e-3),
                    "{name} at step {k}: {got} vs torch's {t}"
                );
            }
        }
        // Degenerate sizes give numbers, not NaN.
        for total in [0, 1, 2] {
            let s = Schedule::OneCycle {
                total,
                pct_start: 0.3,
                div: 25.0,
                final_div: 1e4,
            };
            assert!((0..4).all(|k| s.factor(k).is_finite()), "total {total}");
        }
    }

    /// ReduceLROnPlateau's rates for a fixed metric sequence (tools/make_fixtures.py `plateau`):
    /// min mode with a relative threshold and a cooldown, max mode with an absolute threshold
    /// and a floor.
    #[test]
    fn reduce_on_plateau_gives_torchs_rates() {
        use super::ReduceOnPlateau;
        use crate::{Device, Optimizer, Tensor};
        let w = crate::io::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/plateau.safetensors"
        ))
        .unwrap();
        let metrics = &w.tensors["metrics"].1;
        let cases = [
            (
                "min_rel",
                ReduceOnPlateau::new(0.5, 2)
                    .threshold(1e-2, true)
                    .cooldown(1),
                1.0,
            ),
            (
                "max_abs",
                ReduceOnPlateau::new(0.3, 1)
                    .maximize()
                    .threshold(0.05, false)
                    .min_lr(0.02),
                -1.0,
            ),
        ];
        for (name, mut plateau, sign) in cases {
            let p = Tensor::zeros(&Device::Cpu, &[1]).unwrap().requires_grad();
            let mut opt = Optimizer::sgd(vec![p], 1.0);
            for (k, (&m, &want)) in metrics.iter().zip(&w.tensors[name].1).enumerate() {
                plateau.report(&mut opt, sign * m);
                assert!(
                    (opt.lr() - want).abs() <= 1e-6 * want,
                    "{name} after report {k}: {} vs torch's {want}",
                    opt.lr()
                );
            }
        }
    }
}
