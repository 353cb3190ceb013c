//! `optimizer_step`: params and bindings of the fused in-place update every optimizer uses.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("optimizer_step", "grid", "float");

/// `optimizer_step` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "optimizer_step",
    source: SOURCE,
    bindings: &[
        Access::ReadWrite,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Read,
    ],
};

/// Flag bits of `Params::flags`.
pub(crate) const NESTEROV: u32 = 1;
pub(crate) const CLIP_SCALE: u32 = 2;
pub(crate) const CLIP_VALUE: u32 = 4;
/// Ascend instead of descend (torch.optim's `maximize=True`): the gradient is negated first.
pub(crate) const MAXIMIZE: u32 = 8;
/// Adam/AdamW with AMSGrad: the denominator uses the running maximum of v (kept in s3).
pub(crate) const AMSGRAD: u32 = 16;
/// Centred RMSProp: the gradient's running mean (kept in s3) is taken out of the denominator.
pub(crate) const CENTERED: u32 = 32;
/// NAdam/RAdam with decoupled weight decay (torch's `decoupled_weight_decay=True`).
pub(crate) const DECOUPLED: u32 = 64;

params! {
    /// Mirrors `struct Params` in shaders/optimizer_step.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub numel: u32,
        /// 0 SGD, 1 AdaGrad, 2 RMSProp, 3 AdaDelta, 4 Adam, 5 AdamW, 6 Adamax, 7 NAdam,
        /// 8 RAdam.
        pub algo: u32,
        /// 1-based step count t.
        pub step: u32,
        pub flags: u32,
        pub lr: f32,
        /// Momentum (SGD, RMSProp) or β1 (Adam).
        pub beta1: f32,
        /// β2 (Adam), α (RMSProp) or ρ (AdaDelta).
        pub beta2: f32,
        pub eps: f32,
        pub weight_decay: f32,
        pub l1: f32,
        pub dampening: f32,
        pub clip_value: f32,
        /// 1 − β1^t.
        pub bias_correction1: f32,
        /// 1 − β2^t.
        pub bias_correction2: f32,
        pub lr_decay: f32,
        /// NAdam: lr·(1 − μ_t)/(1 − Πμ); RAdam: r_t·√(1 − β2^t), or 0 before the variance is
        /// tractable.
        pub coef_a: f32,
        /// NAdam: lr·μ_{t+1}/(1 − Πμ·μ_{t+1}).
        pub coef_b: f32,
        /// 1 − lr·λ, the factor of decoupled weight decay.
        pub decay_keep: f32,
        pub _pad0: u32,
        pub _pad1: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one update, in binding order; `s3` is the third state of AMSGrad and centred
/// RMSProp, and `clip` the [norm, scale] pair when `CLIP_SCALE` is set (the device binds
/// placeholders without them).
pub(crate) struct Bindings<'a> {
    pub param: &'a Tensor,
    pub grad: &'a Tensor,
    pub s1: &'a Tensor,
    pub s2: &'a Tensor,
    pub s3: Option<&'a Tensor>,
    pub clip: Option<&'a Tensor>,
}

/// Updates `b.param` and its state in place where the parameter lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.param) {
        On::Gpu(gpu) => record_strided(
            gpu,
            Kernel::OptimizerStep,
            bytemuck::bytes_of(p),
            &[
                b.param.gpu_raw(),
                b.grad.gpu_raw(),
                b.s1.gpu_raw(),
                b.s2.gpu_raw(),
                b.s3.map_or(&gpu.dummy_out, Tensor::gpu_raw),
                b.clip.map_or(&gpu.dummy, Tensor::gpu_raw),
            ],
            u64::from(p.numel),
        ),
        On::Cpu => {
            let clip: Vec<f32> = b.clip.map_or(vec![0.0, 1.0], |c| host_read(c).clone());
            let mut s3_guard = b.s3.map(host_write);
            let s3: &mut [f32] = match s3_guard.as_deref_mut() {
                Some(v) => v,
                None => &mut [],
            };
            cpu::optimizer_step::optimizer_step(
                p,
                &mut host_write(b.param),
                &host_read(b.grad)[b.grad.offset..],
                &mut host_write(b.s1),
                &mut host_write(b.s2),
                s3,
                &clip,
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, Tol};
    use crate::{Algorithm, Device, Optimizer, Tensor};

    // Eight steps: RAdam's rectified branch starts at step 6 (β2 = 0.999).
    const STEPS: usize = 8;
    const LR: f64 = 0.1;
    const WD: f64 = 0.05;

    /// The builder flags of a case: AMSGrad, centred, decoupled weight decay.
    #[derive(Clone, Copy, Debug, Default)]
    struct Flags {
        amsgrad: bool,
        centered: bool,
        decoupled: bool,
    }

    /// θ after `STEPS` steps on L = ½ Σ c_i θ_i², written out from PyTorch's documented update
    /// rules (its single-tensor code where the documentation is loose), one element at a time
    /// in f64.
    fn reference(alg: Algorithm, f: Flags, theta0: &[f64], c: &[f64]) -> Vec<f64> {
        theta0
            .iter()
            .zip(c)
            .map(|(&t0, &ci)| {
                let (mut th, mut s1, mut s2, mut s3) = (t0, 0.0f64, 0.0f64, 0.0f64);
                let mut mu_product = 1.0f64;
                for t in 1..=STEPS {
                    let mut g = ci * th;
                    if matches!(alg, Algorithm::AdamW { .. }) || f.decoupled {
                        th *= 1.0 - LR * WD;
                    } else {
                        g += WD * th;
                    }
                    let ti = t as i32;
                    match alg {
                        Algorithm::Sgd {
                            momentum,
                            dampening,
                            nesterov,
                        } => {
                            let (mu, tau) = (f64::from(momentum), f64::from(dampening));
                            if mu != 0.0 {
                                s1 = if t == 1 { g } else { mu * s1 + (1.0 - tau) * g };
                                g = if nesterov { g + mu * s1 } else { s1 };
                            }
                            th -= LR * g;
                        }
                        Algorithm::AdaGrad { .. } => {
                            s1 += g * g;
                            th -= LR * g / (s1.sqrt() + 1e-10);
                        }
                        Algorithm::RmsProp { alpha, momentum } => {
                            let (a, mu) = (f64::from(alpha), f64::from(momentum));
                            s1 = a * s1 + (1.0 - a) * g * g;
                            let mut avg = s1;
                            if f.centered {
                                s3 = a * s3 + (1.0 - a) * g;
                                avg = s1 - s3 * s3;
                            }
                            let step = g / (avg.sqrt() + 1e-8);
                            s2 = mu * s2 + step;
                            th -= LR * if mu != 0.0 { s2 } else { step };
                        }
                        Algorithm::AdaDelta { rho } => {
                            let r = f64::from(rho);
                            s1 = r * s1 + (1.0 - r) * g * g;
                            let delta = (s2 + 1e-6).sqrt() / (s1 + 1e-6).sqrt() * g;
                            s2 = r * s2 + (1.0 - r) * delta * delta;
                            th -= LR * delta;
                        }
                        Algorithm::Adam { beta1, beta2 } | Algorithm::AdamW { beta1, beta2 } => {
                            let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                            s1 = b1 * s1 + (1.0 - b1) * g;
                            s2 = b2 * s2 + (1.0 - b2) * g * g;
                            s3 = s3.max(s2);
                            let v = if f.amsgrad { s3 } else { s2 };
                            let m_hat = s1 / (1.0 - b1.powi(ti));
                            let v_hat = v / (1.0 - b2.powi(ti));
                            th -= LR * m_hat / (v_hat.sqrt() + 1e-8);
                        }
                        Algorithm::Adamax { beta1, beta2 } => {
                            let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                            s1 = b1 * s1 + (1.0 - b1) * g;
                            s2 = (b2 * s2).max(g.abs() + 1e-8);
                            th -= LR / (1.0 - b1.powi(ti)) * s1 / s2;
                        }
                        Algorithm::NAdam {
                            beta1,
                            beta2,
                            momentum_decay,
                        } => {
                            let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                            let psi = f64::from(momentum_decay);
                            let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * psi));
                            let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1) as f64 * psi));
                            mu_product *= mu;
                            s1 = b1 * s1 + (1.0 - b1) * g;
                            s2 = b2 * s2 + (1.0 - b2) * g * g;
                            let denom = (s2 / (1.0 - b2.powi(ti))).sqrt() + 1e-8;
                            th -= LR * (1.0 - mu) / (1.0 - mu_product) * g / denom;
                            th -= LR * mu_next / (1.0 - mu_product * mu_next) * s1 / denom;
                        }
                        Algorithm::RAdam { beta1, beta2 } => {
                            let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                            s1 = b1 * s1 + (1.0 - b1) * g;
                            s2 = b2 * s2 + (1.0 - b2) * g * g;
                            let (bc1, bc2) = (1.0 - b1.powi(ti), 1.0 - b2.powi(ti));
                            let rho_inf = 2.0 / (1.0 - b2) - 1.0;
                            let rho_t = rho_inf - 2.0 * t as f64 * b2.powi(ti) / bc2;
                            th -= if rho_t > 5.0 {
                                let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                                    .sqrt();
                                s1 / bc1 * LR * rect * bc2.sqrt() / (s2.sqrt() + 1e-8)
                            } else {
                                s1 / bc1 * LR
                            };
                        }
                    }
                }
                th
            })
            .collect()
    }

    #[test]
    fn every_optimizer_follows_its_documented_update_on_both_devices() {
        let plain = Flags::default();
        let adam = Algorithm::Adam {
            beta1: 0.9,
            beta2: 0.999,
        };
        let nadam = Algorithm::NAdam {
            beta1: 0.9,
            beta2: 0.999,
            momentum_decay: 4e-3,
        };
        let radam = Algorithm::RAdam {
            beta1: 0.9,
            beta2: 0.999,
        };
        let flagged = [
            (
                adam,
                Flags {
                    amsgrad: true,
                    ..plain
                },
            ),
            (
                Algorithm::AdamW {
                    beta1: 0.9,
                    beta2: 0.999,
                },
                Flags {
                    amsgrad: true,
                    ..plain
                },
            ),
            (
                Algorithm::RmsProp {
                    alpha: 0.9,
                    momentum: 0.5,
                },
                Flags {
                    centered: true,
                    ..plain
                },
            ),
            (
                Algorithm::RmsProp {
                    alpha: 0.99,
                    momentum: 0.0,
                },
                Flags {
                    centered: true,
                    ..plain
                },
            ),
            (nadam, plain),
            (
                nadam,
                Flags {
                    decoupled: true,
                    ..plain
                },
            ),
            (radam, plain),
            (
                radam,
                Flags {
                    decoupled: true,
                    ..plain
                },
            ),
        ];
        let algorithms = [
            Algorithm::Sgd {
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
            },
            Algorithm::Sgd {
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
            },
            Algorithm::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
            },
            Algorithm::AdaGrad {
                lr_decay: 0.0,
                initial_accumulator_value: 0.0,
            },
            Algorithm::RmsProp {
                alpha: 0.99,
                momentum: 0.5,
            },
            Algorithm::AdaDelta { rho: 0.9 },
            Algorithm::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            Algorithm::AdamW {
                beta1: 0.9,
                beta2: 0.999,
            },
            Algorithm::Adamax {
                beta1: 0.9,
                beta2: 0.999,
            },
        ];
        let theta0 = [1.0, -2.0, 0.5, 3.0, -0.25];
        let c = [1.0, 0.5, 2.0, 0.1, 4.0];
        let cases = algorithms.into_iter().map(|a| (a, plain)).chain(flagged);
        for (alg, flags) in cases {
            let want: Vec<f32> = reference(alg, flags, &theta0, &c)
                .iter()
                .map(|&v| v as f32)
                .collect();
            for dev in [Device::Gpu(gpu()), Device::Cpu] {
                let th: Vec<f32> = theta0.iter().map(|&v| v as f32).collect();
                let cf: Vec<f32> = c.iter().map(|&v| v as f32).collect();
                let theta = Tensor::from_slice(&dev, &th, &[5]).unwrap().requires_grad();
                let ct = Tensor::from_slice(&dev, &cf, &[5]).unwrap();
                let mut opt = Optimizer::new(vec![theta.clone()], alg, LR as f32)
                    .weight_decay(WD as f32)
                    .amsgrad(flags.amsgrad)
                    .centered(flags.centered)
                    .decoupled_weight_decay(flags.decoupled);
                for _ in 0..STEPS {
                    opt.zero_grad();
                    backprop(&theta, &ct);
                    opt.step().unwrap();
                }
                let got = theta.read_blocking().unwrap();
                assert_close(
                    &format!("{alg:?} {flags:?} on {dev}"),
                    &got,
                    &want,
                    Tol {
                        abs: 1e-5,
                        rel: 1e-4,
                    },
                );
            }
        }
    }

    #[test]
    fn clipping_by_global_norm_equals_the_host_computation_and_a_step_is_one_submission() {
        let g = gpu();
        let dev = Device::Gpu(g.clone());
        let a = Tensor::from_slice(&dev, &[3.0, 4.0], &[2])
            .unwrap()
            .requires_grad();
        let b = Tensor::from_slice(&dev, &[12.0], &[1])
            .unwrap()
            .requires_grad();
        let mut opt = Optimizer::sgd(vec![a.clone(), b.clone()], 1.0).clip_grad_norm(6.5);
        // L = ½(‖a‖² + b²): gradients (3, 4) and 12, global norm 13, scaled by 6.5 / 13 = 0.5.
        opt.zero_grad();
        let l = a
            .square()
            .unwrap()
            .sum_all()
            .unwrap()
            .add(&b.square().unwrap().sum_all().unwrap())
            .unwrap()
            .scale(0.5)
            .unwrap();
        l.backward().unwrap();
        opt.step().unwrap();
        let norm = opt.grad_norm().unwrap().read_blocking().unwrap()[0];
        assert!((norm - 13.0).abs() < 1e-4, "pre-clip norm {norm}");
        let (av, bv) = (a.read_blocking().unwrap(), b.read_blocking().unwrap());
        assert_close(
            "a",
            &av,
            &[1.5, 2.0],
            Tol {
                abs: 1e-4,
                rel: 1e-5,
            },
        );
        assert_close(
            "b",
            &bv,
            &[6.0],
            Tol {
                abs: 1e-4,
                rel: 1e-5,
            },
        );

        // A whole training step on a private device: forward, backward, clip, update = one submission.
        let g2 = crate::Gpu::new_blocking().unwrap();
        let dev2 = Device::Gpu(g2.clone());
        let w = Tensor::from_slice(&dev2, &[0.5; 12], &[3, 4])
            .unwrap()
            .requires_grad();
        let x = Tensor::from_slice(&dev2, &[0.1; 8], &[2, 4]).unwrap();
        let t = Tensor::from_slice(&dev2, &[0.0, 2.0], &[2]).unwrap();
        let mut opt = Optimizer::adam(vec![w.clone()], 1e-2).clip_grad_norm(1.0);
        let step = |opt: &mut Optimizer| {
            opt.zero_grad();
            let loss = crate::CrossEntropy::new()
                .compute(&x.matmul(&w.t().unwrap()).unwrap(), &t)
                .unwrap();
            loss.backward().unwrap();
            opt.step().unwrap();
        };
        step(&mut opt);
        g2.synchronize().unwrap();
        let before = g2.stats();
        step(&mut opt);
        assert_eq!(
            g2.stats().since(&before).submissions,
            0,
            "recording a step submits nothing"
        );
        g2.flush().unwrap();
        assert_eq!(g2.stats().since(&before).submissions, 1);
    }

    /// Gradient ½·Σ c·θ² → c·θ: a parameter whose gradient is `c ⊙ θ`.
    fn backprop(theta: &Tensor, c: &Tensor) {
        theta
            .square()
            .unwrap()
            .mul(c)
            .unwrap()
            .sum_all()
            .unwrap()
            .scale(0.5)
            .unwrap()
            .backward()
            .unwrap();
    }

    /// Clipping by norm and by value on both devices (the CPU twin of clip_scale included): a
    /// norm under the bound leaves gradients alone, one over it scales them, a NaN gradient
    /// poisons every clipped update as torch's does, clipping by value keeps NaN, and a
    /// zero-size parameter takes part without a division by zero.
    #[test]
    fn clipping_matches_torch_on_both_devices_with_nan_and_empty_parameters() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let param = |v: &[f32]| {
                Tensor::from_slice(&dev, v, &[v.len()])
                    .unwrap()
                    .requires_grad()
            };
            let ones = |n: usize| Tensor::from_slice(&dev, &vec![1.0; n], &[n]).unwrap();
            // ‖g‖ = 5 under the bound 6: SGD with lr 1 moves θ by exactly g.
            let (a, empty) = (param(&[3.0, 4.0]), param(&[]));
            let mut opt = Optimizer::sgd(vec![a.clone(), empty.clone()], 1.0).clip_grad_norm(6.0);
            opt.zero_grad();
            backprop(&a, &ones(2));
            empty
                .backward_with(&Tensor::zeros(&dev, &[0]).unwrap())
                .unwrap();
            assert!(empty.grad().is_some(), "the empty parameter takes part");
            opt.step().unwrap();
            assert_eq!(opt.grad_norm().unwrap().read_blocking().unwrap(), [5.0]);
            assert_eq!(a.read_blocking().unwrap(), [0.0, 0.0], "{dev}: unclipped");
            // ‖g‖ = 5 over the bound 1: g scaled by 1 / (5 + 1e-6).
            let a = param(&[3.0, 4.0]);
            let mut opt = Optimizer::sgd(vec![a.clone()], 1.0).clip_grad_norm(1.0);
            backprop(&a, &ones(2));
            opt.step().unwrap();
            let s = 1.0 / (5.0 + 1e-6);
            assert_close(
                &format!("{dev}: clipped"),
                &a.read_blocking().unwrap(),
                &[3.0 - 3.0 * s, 4.0 - 4.0 * s],
                Tol {
                    abs: 1e-6,
                    rel: 1e-6,
                },
            );
            // One NaN gradient: every parameter's clipped update is NaN.
            let (a, b) = (param(&[1.0, 2.0]), param(&[3.0]));
            let mut opt = Optimizer::sgd(vec![a.clone(), b.clone()], 0.1).clip_grad_norm(1.0);
            backprop(
                &a,
                &Tensor::from_slice(&dev, &[1.0, f32::NAN], &[2]).unwrap(),
            );
            backprop(&b, &ones(1));
            opt.step().unwrap();
            assert!(b.read_blocking().unwrap()[0].is_nan(), "{dev}: NaN norm");
            // Clipping by value keeps a NaN and clamps the rest.
            let a = param(&[1.0, 2.0, -3.0]);
            let mut opt = Optimizer::sgd(vec![a.clone()], 1.0).clip_grad_value(0.5);
            let c = Tensor::from_slice(&dev, &[f32::NAN, 0.1, 1.0], &[3]).unwrap();
            backprop(&a, &c);
            opt.step().unwrap();
            let got = a.read_blocking().unwrap();
            assert!(
                got[0].is_nan(),
                "{dev}: clip by value dropped a NaN: {got:?}"
            );
            assert_close(
                &format!("{dev}: clip by value"),
                &got[1..],
                &[1.8, -2.5],
                Tol {
                    abs: 1e-6,
                    rel: 1e-6,
                },
            );
        }
    }

    /// A parameter whose first gradient arrives at the optimizer's third step still gets an
    /// unbiased first Adam step (lr · sign(g)), as torch.optim's per-parameter step count does.
    #[test]
    fn adam_counts_steps_per_parameter() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let (a, late) = (
                Tensor::from_slice(&dev, &[1.0], &[1])
                    .unwrap()
                    .requires_grad(),
                Tensor::from_slice(&dev, &[2.0], &[1])
                    .unwrap()
                    .requires_grad(),
            );
            let one = Tensor::from_slice(&dev, &[1.0], &[1]).unwrap();
            let mut opt = Optimizer::adam(vec![a.clone(), late.clone()], 0.1);
            for step in 0..3 {
                opt.zero_grad();
                backprop(&a, &one);
                if step == 2 {
                    backprop(&late, &one);
                }
                opt.step().unwrap();
            }
            let got = late.read_blocking().unwrap()[0];
            assert!((got - 1.9).abs() < 1e-5, "{dev}: {got}");
        }
    }

    /// Settings torch.optim refuses are errors, and a failed step changes nothing.
    #[test]
    fn invalid_settings_and_views_fail_before_any_update() {
        let dev = Device::Cpu;
        let w = Tensor::from_slice(&dev, &[1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let one = Tensor::from_slice(&dev, &[1.0, 1.0], &[2]).unwrap();
        let adam = |b1: f32| Algorithm::Adam {
            beta1: b1,
            beta2: 0.999,
        };
        let nesterov = Algorithm::Sgd {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: true,
        };
        let cases = [
            Optimizer::sgd(vec![w.clone()], -1.0),
            Optimizer::sgd(vec![w.clone()], f32::NAN),
            Optimizer::new(vec![w.clone()], adam(1.0), 1e-3),
            Optimizer::new(vec![w.clone()], nesterov, 1e-3),
            Optimizer::adam(vec![w.clone()], 1e-3).eps(-1.0),
            Optimizer::adam(vec![w.clone()], 1e-3).weight_decay(-0.1),
            Optimizer::sgd(vec![w.clone()], 0.1).clip_grad_norm(-1.0),
            Optimizer::sgd(vec![w.clone()], 0.1).clip_grad_value(f32::NAN),
            Optimizer::new(vec![w.clone()], Algorithm::AdaDelta { rho: 1.5 }, 1.0),
        ];
        for mut opt in cases {
            opt.zero_grad();
            backprop(&w, &one);
            let e = opt.step().unwrap_err();
            assert!(matches!(e, crate::Error::InvalidArgument { .. }), "{e}");
            assert_eq!(opt.steps(), 0);
        }
        assert_eq!(w.read_blocking().unwrap(), [1.0, 2.0]);
        // A view among the parameters: the first parameter is not updated either.
        let whole = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[3]).unwrap();
        let view = whole.narrow(0, 1, 2).unwrap().requires_grad();
        let mut opt = Optimizer::sgd(vec![w.clone(), view.clone()], 0.1);
        backprop(&w, &one);
        backprop(&view, &one);
        assert!(opt.step().is_err());
        assert_eq!(
            (opt.steps(), w.read_blocking().unwrap()),
            (0, vec![1.0, 2.0])
        );
    }

    /// Weight decay 0 is skipped, not multiplied: an infinite weight with a zero gradient stays
    /// infinite under SGD and AdamW (0 · inf would make it NaN), on both devices.
    #[test]
    fn zero_weight_decay_leaves_an_infinite_weight_alone() {
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            for adamw in [false, true] {
                let w = Tensor::from_slice(&dev, &[f32::INFINITY, 1.0], &[2])
                    .unwrap()
                    .requires_grad();
                let mask = Tensor::from_slice(&dev, &[0.0, 1.0], &[2]).unwrap();
                let opt = if adamw {
                    Optimizer::adamw(vec![w.clone()], 0.1)
                } else {
                    Optimizer::sgd(vec![w.clone()], 0.1)
                };
                let mut opt = opt.weight_decay(0.0);
                // d/dw Σ w ⊙ mask = mask: the infinite weight's gradient is exactly 0.
                w.mul(&mask).unwrap().sum_all().unwrap().backward().unwrap();
                opt.step().unwrap();
                let got = w.read_blocking().unwrap();
                assert_eq!(got[0], f32::INFINITY, "{dev} adamw={adamw}: {got:?}");
                assert!(got[1] < 1.0, "{dev} adamw={adamw}: {got:?}");
            }
        }
    }

    /// A clip bound of 0 is torch's too: it zeroes every gradient, so SGD leaves θ alone.
    #[test]
    fn a_zero_clip_bound_zeroes_the_update() {
        let w = Tensor::from_slice(&Device::Cpu, &[1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let mut opt = Optimizer::sgd(vec![w.clone()], 0.5).clip_grad_norm(0.0);
        backprop(
            &w,
            &Tensor::from_slice(&Device::Cpu, &[1.0, 1.0], &[2]).unwrap(),
        );
        opt.step().unwrap();
        assert_eq!(w.read_blocking().unwrap(), [1.0, 2.0]);
    }
}
