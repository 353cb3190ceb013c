//! Learning-rate schedules: the factor the base rate is multiplied by before step k (k = 0 for
//! the first step).

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
    /// α₀.
    #[default]
    Constant,
    /// α₀ / (1 + decay·k).
    InverseTime {
        /// How fast the rate falls.
        decay: f32,
    },
    /// α₀ / √(k + 1), i.e. α₀/√k with steps counted from 1.
    InverseSqrt,
    /// α₀ · γ^⌊k / every⌋.
    Step {
        /// Steps between drops.
        every: u32,
        /// Factor of each drop.
        gamma: f32,
    },
    /// α₀ · γ^k.
    Exponential {
        /// Factor per step.
        gamma: f32,
    },
    /// Cosine from α₀ down to α₀·`min_factor` over `total` steps, then flat.
    Cosine {
        /// Steps of the descent.
        total: u32,
        /// The final factor.
        min_factor: f32,
    },
    /// Linear warm-up from α₀/`steps` to α₀ over `steps` steps, then `then` (counted from the
    /// end of the warm-up).
    Warmup {
        /// Steps of the warm-up.
        steps: u32,
        /// The schedule after it.
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
        }
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
}
