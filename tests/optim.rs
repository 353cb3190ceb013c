//! torch.optim parity: every rule, flag, parameter-group setting, scheduler and clipping norm
//! against runs PyTorch made (tools/make_fixtures.py `optimizer_runs`: a Linear 5 → 3 fitted
//! by MSE for 25 steps), on both devices, including runs resumed half-way through a saved
//! state dict.

use std::sync::OnceLock;

use timeloom::io::{self, Weights};
use timeloom::nn::{Linear, Module};
use timeloom::{
    mse_loss, Device, Gpu, LrLambda, NormType, Optimizer, ParamGroup, ReduceOnPlateau, Rng,
    Schedule, Tensor,
};

fn gpu() -> Device {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    Device::Gpu(
        GPU.get_or_init(|| Gpu::new_blocking().expect("the tests need a GPU adapter"))
            .clone(),
    )
}

fn fixture(name: &str) -> Weights {
    io::load(format!(
        "{}/tests/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// How a run drives its optimizer beyond `step`.
#[derive(Clone, Copy, PartialEq)]
enum Drive {
    /// Descend the MSE.
    Plain,
    /// Ascend −MSE (the optimizer has `maximize`).
    Ascend,
    /// Report each step's loss to ReduceOnPlateau(0.5, patience 1, threshold 1e-2).
    Plateau,
}

type Make = fn(&Linear) -> Optimizer;

fn plateau() -> ReduceOnPlateau {
    ReduceOnPlateau::new(0.5, 1).threshold(1e-2, true)
}

/// The model, data and optimizer of run `name` on `dev`, from the fixture's initial weights.
struct Run {
    lin: Linear,
    x: Tensor,
    y: Tensor,
}

impl Run {
    fn new(w: &Weights, dev: &Device) -> Run {
        let get = |k: &str| w.tensors[k].1.clone();
        let lin = Linear::new(dev, 5, 3, &mut Rng::new(1)).unwrap();
        lin.weight.write(&get("weight0")).unwrap();
        lin.bias.as_ref().unwrap().write(&get("bias0")).unwrap();
        Run {
            x: Tensor::from_slice(dev, &get("x"), &[16, 5]).unwrap(),
            y: Tensor::from_slice(dev, &get("y"), &[16, 3]).unwrap(),
            lin,
        }
    }

    /// One step; returns the loss before it and the rate group 0 used.
    fn step(&self, opt: &mut Optimizer, drive: Drive, sched: &mut ReduceOnPlateau) -> (f32, f32) {
        opt.zero_grad();
        let lr = opt.current_lr();
        let loss = mse_loss(&self.lin.forward(&self.x).unwrap(), &self.y).unwrap();
        if drive == Drive::Ascend {
            loss.neg().unwrap().backward().unwrap();
        } else {
            loss.backward().unwrap();
        }
        let l = loss.read_blocking().unwrap()[0];
        opt.step().unwrap();
        if drive == Drive::Plateau {
            sched.report(opt, l);
        }
        (l, lr)
    }
}

fn close(what: &str, got: f32, want: f32) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1e-2),
        "{what}: {got} vs torch's {want}"
    );
}

/// Every step's loss and rate, and the final weights, against torch's. With `resume_at`, the
/// run stops after that many steps, writes the model, the optimizer's state dict and the
/// plateau state to one safetensors file's bytes, and a fresh model and optimizer continue
/// from them.
fn check_run(name: &str, make: Make, drive: Drive, resume_at: Option<usize>) {
    let w = fixture(name);
    let losses = &w.tensors["losses"].1;
    let lrs = &w.tensors["lrs"].1;
    for dev in [gpu(), Device::Cpu] {
        let mut run = Run::new(&w, &dev);
        let mut opt = make(&run.lin);
        let mut sched = plateau();
        for (k, (&want_loss, &want_lr)) in losses.iter().zip(lrs).enumerate() {
            if resume_at == Some(k) {
                let names: Vec<String> = run
                    .lin
                    .named_parameters()
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                let dict = opt.named_state_dict(&names).unwrap();
                let mut tensors = run.lin.named_parameters();
                tensors.extend(dict.tensors);
                let mut meta = dict.metadata;
                meta.extend(sched.state_dict());
                let bytes = io::serialize(&tensors, Some(meta)).unwrap();
                drop((opt, run));

                let saved = io::parse("checkpoint", &bytes).unwrap();
                run = Run::new(&w, &dev);
                for (n, p) in run.lin.named_parameters() {
                    p.write(&saved.tensors[&n].1).unwrap();
                }
                opt = make(&run.lin);
                opt.load_named_state_dict(&saved, &names).unwrap();
                sched = plateau();
                sched.load_state_dict(&saved.metadata).unwrap();
            }
            let (loss, lr) = run.step(&mut opt, drive, &mut sched);
            close(&format!("{name} on {dev}: rate at step {k}"), lr, want_lr);
            close(
                &format!("{name} on {dev}: loss at step {k}"),
                loss,
                want_loss,
            );
        }
        let bias = run.lin.bias.as_ref().unwrap();
        for (key, t) in [("weight", &run.lin.weight), ("bias", bias)] {
            let got = t.read_blocking().unwrap();
            for (i, (g, want)) in got.iter().zip(&w.tensors[key].1).enumerate() {
                close(
                    &format!("{name} on {dev}: {key}[{i}] after 25 steps"),
                    *g,
                    *want,
                );
            }
        }
    }
}

/// Each rule and flag (the measured worst relative error over the runs is in NOTES.md).
#[test]
fn every_rule_and_flag_follows_torch_optim_step_by_step() {
    let runs: [(&str, Make, Drive); 12] = [
        (
            "optim_adam",
            |m| Optimizer::adam(m.parameters(), 1e-2),
            Drive::Plain,
        ),
        (
            "optim_adamax",
            |m| Optimizer::adamax(m.parameters(), 2e-2).weight_decay(0.01),
            Drive::Plain,
        ),
        (
            "optim_adamw",
            |m| Optimizer::adamw(m.parameters(), 1e-2).weight_decay(0.1),
            Drive::Plain,
        ),
        (
            "optim_adam_maximize",
            |m| Optimizer::adam(m.parameters(), 1e-2).maximize(true),
            Drive::Ascend,
        ),
        (
            "optim_sgd_momentum_maximize",
            |m| Optimizer::momentum(m.parameters(), 5e-2, 0.9).maximize(true),
            Drive::Ascend,
        ),
        (
            "optim_adam_amsgrad",
            |m| {
                Optimizer::adam(m.parameters(), 3e-2)
                    .weight_decay(0.01)
                    .amsgrad(true)
            },
            Drive::Plain,
        ),
        (
            "optim_adamw_amsgrad",
            |m| {
                Optimizer::adamw(m.parameters(), 3e-2)
                    .weight_decay(0.1)
                    .amsgrad(true)
            },
            Drive::Plain,
        ),
        (
            "optim_rmsprop_centered",
            |m| {
                let alg = timeloom::Algorithm::RmsProp {
                    alpha: 0.9,
                    momentum: 0.5,
                };
                Optimizer::new(m.parameters(), alg, 1e-2).centered(true)
            },
            Drive::Plain,
        ),
        (
            "optim_nadam",
            |m| Optimizer::nadam(m.parameters(), 2e-2).weight_decay(0.01),
            Drive::Plain,
        ),
        (
            "optim_nadamw",
            |m| {
                Optimizer::nadam(m.parameters(), 2e-2)
                    .weight_decay(0.1)
                    .decoupled_weight_decay(true)
            },
            Drive::Plain,
        ),
        (
            "optim_radam",
            |m| Optimizer::radam(m.parameters(), 1e-2).weight_decay(0.01),
            Drive::Plain,
        ),
        (
            "optim_radamw",
            |m| {
                Optimizer::radam(m.parameters(), 1e-2)
                    .weight_decay(0.1)
                    .decoupled_weight_decay(true)
            },
            Drive::Plain,
        ),
    ];
    for (name, make, drive) in runs {
        check_run(name, make, drive, None);
    }
}

/// Clipping by the L1, L2 and L∞ norms (torch.nn.utils.clip_grad_norm_ before each SGD
/// momentum step).
#[test]
fn clipping_by_every_norm_follows_torch() {
    let runs: [(&str, Make); 3] = [
        ("optim_clip_l1", |m| {
            Optimizer::momentum(m.parameters(), 5e-2, 0.9)
                .clip_grad_norm(0.5)
                .norm_type(NormType::L1)
        }),
        ("optim_clip_l2", |m| {
            Optimizer::momentum(m.parameters(), 5e-2, 0.9).clip_grad_norm(0.5)
        }),
        ("optim_clip_inf", |m| {
            Optimizer::momentum(m.parameters(), 5e-2, 0.9)
                .clip_grad_norm(0.1)
                .norm_type(NormType::Inf)
        }),
    ];
    for (name, make) in runs {
        check_run(name, make, Drive::Plain, None);
    }
}

/// Two parameter groups (the weight decayed at the optimizer's rate, the bias undecayed at its
/// own), each with its own LambdaLR function, resumed after 12 steps.
#[test]
fn parameter_groups_follow_torch_and_resume() {
    check_run(
        "optim_groups",
        |m| {
            let bias = ParamGroup::new(vec![m.bias.clone().unwrap()])
                .lr(3e-2)
                .weight_decay(0.0)
                .schedule(Schedule::Lambda(LrLambda::new(|k| {
                    (1.0 / (1.0 + 0.1 * f64::from(k))) as f32
                })));
            Optimizer::adamw(vec![m.weight.clone()], 1e-2)
                .weight_decay(0.1)
                .schedule(Schedule::Lambda(LrLambda::new(|k| {
                    0.95f64.powi(k as i32) as f32
                })))
                .group(bias)
        },
        Drive::Plain,
        Some(12),
    );
}

/// ReduceLROnPlateau driven by each step's loss, and OneCycleLR, each resumed in the middle
/// (the lowered rate and the plateau's counters come back from the file).
#[test]
fn plateau_and_one_cycle_runs_follow_torch_across_a_resume() {
    check_run(
        "optim_plateau",
        |m| Optimizer::momentum(m.parameters(), 0.1, 0.9),
        Drive::Plateau,
        // Step 19's report lowers the rate only because step 18's did not improve: the
        // plateau's counters must come back from the file.
        Some(19),
    );
    check_run(
        "optim_onecycle",
        |m| {
            Optimizer::adam(m.parameters(), 5e-2).schedule(Schedule::OneCycle {
                total: 25,
                pct_start: 0.3,
                div: 25.0,
                final_div: 1e4,
            })
        },
        Drive::Plain,
        Some(11),
    );
}

/// error_if_nonfinite: a NaN gradient is an error naming its parameter, nothing is updated,
/// and the step count stays; without the flag the NaN reaches the update, as torch's does.
#[test]
fn error_if_nonfinite_refuses_a_nan_gradient_before_any_update() {
    for dev in [gpu(), Device::Cpu] {
        let a = Tensor::from_slice(&dev, &[1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let b = Tensor::from_slice(&dev, &[3.0], &[1])
            .unwrap()
            .requires_grad();
        let mut opt = Optimizer::sgd(vec![a.clone(), b.clone()], 0.1)
            .clip_grad_norm(1.0)
            .error_if_nonfinite(true);
        a.sum_all().unwrap().backward().unwrap();
        let nan = Tensor::from_slice(&dev, &[f32::NAN], &[1]).unwrap();
        b.mul(&nan).unwrap().sum_all().unwrap().backward().unwrap();
        let e = opt.step().unwrap_err();
        assert!(
            matches!(e, timeloom::Error::NonFinite { index: 1, .. }),
            "{dev}: {e}"
        );
        assert_eq!(opt.steps(), 0);
        assert_eq!(a.read_blocking().unwrap(), [1.0, 2.0], "{dev}");
        // Finite gradients: the step runs.
        opt.zero_grad();
        a.sum_all().unwrap().backward().unwrap();
        opt.step().unwrap();
        assert_eq!(opt.steps(), 1);
    }
}

/// A state saved with AMSGrad does not load into Adam without it (and the reverse), a
/// parameter given to two groups is refused, and flags a rule does not have are errors.
#[test]
fn mismatched_flags_and_groups_are_errors() {
    let dev = Device::Cpu;
    let w = Tensor::from_slice(&dev, &[1.0, 2.0], &[2])
        .unwrap()
        .requires_grad();
    let mut ams = Optimizer::adam(vec![w.clone()], 0.1).amsgrad(true);
    w.square().unwrap().sum_all().unwrap().backward().unwrap();
    ams.step().unwrap();
    let dict = ams.state_dict();
    assert!(dict.tensors.iter().any(|(k, _)| k == "optim.0.s3"));
    let bytes = io::serialize(&dict.tensors, Some(dict.metadata)).unwrap();
    let saved = io::parse("ams", &bytes).unwrap();
    let mut plain = Optimizer::adam(vec![w.clone()], 0.1);
    let e = plain.load_state_dict(&saved).unwrap_err();
    assert!(e.to_string().contains("amsgrad"), "{e}");
    let mut again = Optimizer::adam(vec![w.clone()], 0.1).amsgrad(true);
    again.load_state_dict(&saved).unwrap();
    assert_eq!(again.steps(), 1);
    // Plain Adam's state into an AMSGrad optimizer.
    let dict = plain.state_dict();
    let bytes = io::serialize(&dict.tensors, Some(dict.metadata)).unwrap();
    let mut more = Optimizer::adam(vec![w.clone()], 0.1).amsgrad(true);
    more.load_state_dict(&io::parse("plain", &bytes).unwrap())
        .unwrap(); // nothing updated yet: no tensors, nothing to mismatch
                   // Group sizes must match.
    let v = Tensor::from_slice(&dev, &[1.0], &[1])
        .unwrap()
        .requires_grad();
    let one = Optimizer::adam(vec![w.clone(), v.clone()], 0.1);
    let dict = one.state_dict();
    let bytes = io::serialize(&dict.tensors, Some(dict.metadata)).unwrap();
    let mut two = Optimizer::adam(vec![w.clone()], 0.1).group(ParamGroup::new(vec![v.clone()]));
    let e = two
        .load_state_dict(&io::parse("groups", &bytes).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("optimizer_groups"), "{e}");

    let cases = [
        Optimizer::sgd(vec![w.clone()], 0.1).amsgrad(true),
        Optimizer::adam(vec![w.clone()], 0.1).centered(true),
        Optimizer::adamax(vec![w.clone()], 0.1).decoupled_weight_decay(true),
        Optimizer::sgd(vec![w.clone()], 0.1).error_if_nonfinite(true),
        Optimizer::sgd(vec![w.clone()], 0.1).group(ParamGroup::new(vec![w.clone()])),
        Optimizer::sgd(vec![w.clone()], 0.1).group(ParamGroup::new(vec![v.clone()]).lr(-1.0)),
    ];
    for mut opt in cases {
        let e = opt.step().unwrap_err();
        assert!(matches!(e, timeloom::Error::InvalidArgument { .. }), "{e}");
        assert_eq!(opt.steps(), 0);
    }
}

/// Groups are `Params` values, not kernels: a step over three groups with different rates,
/// decays and schedules (and AMSGrad's third state, and clipping by the L∞ norm) compiles no
/// pipeline past the first step, records one update dispatch per parameter plus the P + 1 of
/// the clip, reads nothing back and submits nothing until flushed.
#[test]
fn groups_add_no_pipeline_and_a_step_is_one_dispatch_per_parameter() {
    let g = Gpu::new_blocking().unwrap();
    let dev = Device::Gpu(g.clone());
    let params: Vec<Tensor> = (0..6)
        .map(|i| {
            Tensor::from_slice(&dev, &vec![0.5 + i as f32; 7 + i], &[7 + i])
                .unwrap()
                .requires_grad()
        })
        .collect();
    let mut opt = Optimizer::adamw(params[..2].to_vec(), 1e-2)
        .amsgrad(true)
        .clip_grad_norm(1.0)
        .norm_type(NormType::Inf)
        .group(
            ParamGroup::new(params[2..4].to_vec())
                .lr(3e-3)
                .weight_decay(0.0),
        )
        .group(
            ParamGroup::new(params[4..].to_vec())
                .weight_decay(0.3)
                .schedule(Schedule::Exponential { gamma: 0.5 }),
        );
    let step = |opt: &mut Optimizer| {
        opt.zero_grad();
        for p in &params {
            p.square().unwrap().sum_all().unwrap().backward().unwrap();
        }
        opt.step().unwrap();
    };
    step(&mut opt);
    g.flush().unwrap();
    let gradients = {
        // The backward passes alone, for the difference below.
        let before = g.stats();
        for p in &params {
            p.zero_grad();
            p.square().unwrap().sum_all().unwrap().backward().unwrap();
        }
        g.flush().unwrap();
        g.stats().since(&before).dispatches
    };
    let before = g.stats();
    step(&mut opt);
    let during = g.stats().since(&before);
    assert_eq!(during.pipeline_compiles, 0, "a group compiled a pipeline");
    assert_eq!(
        during.submissions, 0,
        "a step submits nothing before a flush"
    );
    assert_eq!(during.blocking_waits, 0, "a step reads nothing back");
    let n = params.len() as u64;
    assert_eq!(
        during.dispatches - gradients,
        n + (n + 1),
        "updates (one per parameter) and the clip's partials and factor"
    );
}
