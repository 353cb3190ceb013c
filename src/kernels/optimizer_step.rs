//! `optimizer_step`: params and bindings of the fused in-place update every optimizer uses.

use bytemuck::{Pod, Zeroable};

use super::{record_strided, wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("optimizer_step", "grid");

/// Flag bits of `Params::flags`.
pub(crate) const NESTEROV: u32 = 1;
pub(crate) const CLIP_SCALE: u32 = 2;
pub(crate) const CLIP_VALUE: u32 = 4;

/// Mirrors `struct Params` in shaders/optimizer_step.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub numel: u32,
    /// 0 SGD, 1 AdaGrad, 2 RMSProp, 3 AdaDelta, 4 Adam, 5 AdamW.
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
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The buffers of one update, in binding order; `clip` is the [norm, scale] pair or the dummy.
pub(crate) struct Bindings<'a> {
    pub param: &'a RawBuffer,
    pub grad: &'a RawBuffer,
    pub s1: &'a RawBuffer,
    pub s2: &'a RawBuffer,
    pub clip: &'a RawBuffer,
}

pub(crate) fn record(gpu: &GpuInner, p: &Params, b: &Bindings<'_>) -> Result<()> {
    let buffers = [b.param, b.grad, b.s1, b.s2, b.clip];
    record_strided(
        gpu,
        Kernel::OptimizerStep,
        bytemuck::bytes_of(p),
        &buffers,
        u64::from(p.numel),
    )
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, Tol};
    use crate::{Algorithm, Device, Optimizer, Tensor};

    const STEPS: usize = 4;
    const LR: f64 = 0.1;
    const WD: f64 = 0.05;

    /// θ after `STEPS` steps on L = ½ Σ c_i θ_i², written out from PyTorch's documented update
    /// rules, one element at a time in f64.
    fn reference(alg: Algorithm, theta0: &[f64], c: &[f64]) -> Vec<f64> {
        theta0
            .iter()
            .zip(c)
            .map(|(&t0, &ci)| {
                let (mut th, mut s1, mut s2) = (t0, 0.0f64, 0.0f64);
                for t in 1..=STEPS {
                    let mut g = ci * th;
                    if !matches!(alg, Algorithm::AdamW { .. }) {
                        g += WD * th;
                    }
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
                            let step = g / (s1.sqrt() + 1e-8);
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
                            if matches!(alg, Algorithm::AdamW { .. }) {
                                th -= LR * WD * th;
                            }
                            s1 = b1 * s1 + (1.0 - b1) * g;
                            s2 = b2 * s2 + (1.0 - b2) * g * g;
                            let m_hat = s1 / (1.0 - b1.powi(t as i32));
                            let v_hat = s2 / (1.0 - b2.powi(t as i32));
                            th -= LR * m_hat / (v_hat.sqrt() + 1e-8);
                        }
                    }
                }
                th
            })
            .collect()
    }

    #[test]
    fn every_optimizer_follows_its_documented_update_on_both_devices() {
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
        ];
        let theta0 = [1.0, -2.0, 0.5, 3.0, -0.25];
        let c = [1.0, 0.5, 2.0, 0.1, 4.0];
        for alg in algorithms {
            let want: Vec<f32> = reference(alg, &theta0, &c)
                .iter()
                .map(|&v| v as f32)
                .collect();
            for dev in [Device::Gpu(gpu()), Device::Cpu] {
                let th: Vec<f32> = theta0.iter().map(|&v| v as f32).collect();
                let cf: Vec<f32> = c.iter().map(|&v| v as f32).collect();
                let theta = Tensor::from_slice(&dev, &th, &[5]).unwrap().requires_grad();
                let ct = Tensor::from_slice(&dev, &cf, &[5]).unwrap();
                let mut opt =
                    Optimizer::new(vec![theta.clone()], alg, LR as f32).weight_decay(WD as f32);
                for _ in 0..STEPS {
                    opt.zero_grad();
                    theta
                        .square()
                        .unwrap()
                        .mul(&ct)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .scale(0.5)
                        .unwrap()
                        .backward()
                        .unwrap();
                    opt.step().unwrap();
                }
                let got = theta.read_blocking().unwrap();
                assert_close(
                    &format!("{alg:?} on {dev}"),
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
}
