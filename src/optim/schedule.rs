//! Learning-rate schedules: the factor the base rate is multiplied by before step k (k = 0 for
//! the first step). Each names its `torch.optim.lr_scheduler` counterpart and any difference;
//! the PyTorch ones are checked against torch's own rates (tests/fixtures/schedules.safetensors,
//! written by tools/make_fixtures.py).

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
        }
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
}
