//! The optimizer state dict's tests: bit-identical resumes for Adam and SGD with momentum on
//! both devices, and for every rule that keeps a third state tensor or host-side products
//! (AMSGrad, centred RMSProp, NAdam, RAdam) and for parameter groups; typed errors for
//! mismatched or corrupt states.

use super::*;
use crate::nn::{Linear, Module};
use crate::optim::{ParamGroup, Schedule};
use crate::{Device, Rng};

/// A two-layer model's parameters, a fixed batch, and a loss that depends on every weight.
struct Toy {
    layers: [Linear; 2],
    x: Tensor,
}

impl Toy {
    fn new(dev: &Device) -> Toy {
        let mut rng = Rng::new(7);
        let layers = [
            Linear::new(dev, 5, 6, &mut rng).unwrap(),
            Linear::new(dev, 6, 3, &mut rng).unwrap(),
        ];
        let x = Tensor::from_slice(dev, &rng.normals(4 * 5), &[4, 5]).unwrap();
        Toy { layers, x }
    }
    fn params(&self) -> Vec<Tensor> {
        self.layers.iter().flat_map(|l| l.parameters()).collect()
    }
    fn step(&self, opt: &mut Optimizer) {
        opt.zero_grad();
        let h = self.layers[0].forward(&self.x).unwrap().tanh().unwrap();
        let y = self.layers[1].forward(&h).unwrap();
        y.square().unwrap().sum_all().unwrap().backward().unwrap();
        opt.step().unwrap();
    }
    fn values(&self) -> Vec<Vec<f32>> {
        self.params()
            .iter()
            .map(|p| p.read_blocking().unwrap())
            .collect()
    }
    fn copy_from(&self, other: &Toy) {
        for (p, q) in self.params().iter().zip(other.params()) {
            p.write(&q.read_blocking().unwrap()).unwrap();
        }
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "timeloom-optim-state-{}-{name}.safetensors",
        std::process::id()
    ))
}

/// N steps, save, load into a fresh optimizer over fresh parameters, M steps: the bits of
/// N + M steps straight, on `dev`, for `make`'s rule.
fn resumes_bit_identically(dev: &Device, make: fn(Vec<Tensor>) -> Optimizer, tag: &str) {
    let straight = Toy::new(dev);
    let mut opt = make(straight.params());
    for _ in 0..7 {
        straight.step(&mut opt);
    }
    let first = Toy::new(dev);
    let mut opt = make(first.params());
    for _ in 0..3 {
        first.step(&mut opt);
    }
    let path = temp(tag);
    opt.save(&path).unwrap();
    let resumed = Toy::new(dev);
    resumed.copy_from(&first);
    let mut opt = make(resumed.params());
    opt.load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(opt.steps(), 3);
    for _ in 0..4 {
        resumed.step(&mut opt);
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (i, (a, b)) in straight.values().iter().zip(resumed.values()).enumerate() {
        assert_eq!(
            bits(a),
            bits(&b),
            "{tag}: parameter {i} differs after resuming"
        );
    }
    // The test has teeth: the same resume without the optimizer's state ends elsewhere.
    let fresh = Toy::new(dev);
    fresh.copy_from(&first);
    let mut opt = make(fresh.params());
    for _ in 0..4 {
        fresh.step(&mut opt);
    }
    assert_ne!(
        straight
            .values()
            .iter()
            .map(|v| bits(v))
            .collect::<Vec<_>>(),
        fresh.values().iter().map(|v| bits(v)).collect::<Vec<_>>(),
        "{tag}: resuming without the state should not match"
    );
}

fn adam(p: Vec<Tensor>) -> Optimizer {
    // A schedule that moves every step: the resumed run must continue it, not restart it.
    Optimizer::adam(p, 1e-2)
        .schedule(crate::Schedule::Step {
            every: 2,
            gamma: 0.5,
        })
        .clip_grad_norm(1.0)
}

fn momentum(p: Vec<Tensor>) -> Optimizer {
    Optimizer::momentum(p, 1e-2, 0.9)
}

/// The rules added with the optimizer toolbox, in parameter groups of their own settings: a
/// third state tensor (AMSGrad, centred RMSProp), NAdam's momentum product (recomputed from the
/// loaded update counts) and RAdam's rectification crossing ρ_t = 5 after the resume.
fn toolbox(which: usize) -> fn(Vec<Tensor>) -> Optimizer {
    fn grouped(p: Vec<Tensor>, algorithm: Algorithm) -> Optimizer {
        let (head, tail) = p.split_at(2);
        Optimizer::new(head.to_vec(), algorithm, 1e-2).group(
            ParamGroup::new(tail.to_vec())
                .lr(3e-2)
                .weight_decay(0.01)
                .schedule(Schedule::Exponential { gamma: 0.9 }),
        )
    }
    [
        |p| {
            grouped(
                p,
                Algorithm::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                },
            )
            .amsgrad(true)
        },
        |p| {
            grouped(
                p,
                Algorithm::RmsProp {
                    alpha: 0.9,
                    momentum: 0.5,
                },
            )
            .centered(true)
        },
        |p| {
            grouped(
                p,
                Algorithm::NAdam {
                    beta1: 0.9,
                    beta2: 0.999,
                    momentum_decay: 4e-3,
                },
            )
        },
        |p| {
            grouped(
                p,
                Algorithm::RAdam {
                    beta1: 0.9,
                    beta2: 0.999,
                },
            )
            .decoupled_weight_decay(true)
        },
    ][which]
}

#[test]
fn the_toolbox_rules_and_groups_resume_bit_identically_on_both_devices() {
    let gpu = Device::Gpu(crate::testing::gpu());
    for (which, tag) in ["amsgrad", "centered", "nadam", "radamw"]
        .iter()
        .enumerate()
    {
        for (dev, name) in [(&Device::Cpu, "cpu"), (&gpu, "gpu")] {
            resumes_bit_identically(dev, toolbox(which), &format!("{tag}-{name}"));
        }
    }
}

#[test]
fn adam_resumes_bit_identically_on_the_cpu() {
    resumes_bit_identically(&Device::Cpu, adam, "adam-cpu");
}

#[test]
fn sgd_momentum_resumes_bit_identically_on_the_cpu() {
    resumes_bit_identically(&Device::Cpu, momentum, "momentum-cpu");
}

#[test]
fn adam_resumes_bit_identically_on_the_gpu() {
    resumes_bit_identically(&Device::Gpu(crate::testing::gpu()), adam, "adam-gpu");
}

#[test]
fn sgd_momentum_resumes_bit_identically_on_the_gpu() {
    resumes_bit_identically(
        &Device::Gpu(crate::testing::gpu()),
        momentum,
        "momentum-gpu",
    );
}

/// One Adam step's state over the toy, as bytes of a file.
fn saved_adam_state(names: Option<&[String]>) -> (Toy, Vec<u8>) {
    let toy = Toy::new(&Device::Cpu);
    let mut opt = Optimizer::adam(toy.params(), 1e-2);
    toy.step(&mut opt);
    let dict = match names {
        Some(n) => opt.named_state_dict(n).unwrap(),
        None => opt.state_dict(),
    };
    (
        toy,
        io::serialize(&dict.tensors, Some(dict.metadata)).unwrap(),
    )
}

/// Loads `w` into `opt` and asserts a `Format` error whose message contains `needle`, with
/// nothing loaded.
fn refused(opt: &mut Optimizer, w: &Weights, needle: &str) {
    let e = opt.load_state_dict(w).unwrap_err();
    assert!(
        matches!(&e, Error::Format { .. }) && e.to_string().contains(needle),
        "expected a Format error about {needle:?}: {e}"
    );
    assert_eq!(opt.steps(), 0, "nothing loads on an error");
    assert!(opt.states.iter().all(Option::is_none));
}

#[test]
fn mismatched_states_are_typed_errors_and_load_nothing() {
    let (toy, bytes) = saved_adam_state(None);
    let good = io::parse("good", &bytes).unwrap();

    // Another algorithm.
    let mut sgd = Optimizer::momentum(toy.params(), 0.1, 0.9);
    refused(&mut sgd, &good, "adam");
    let mut sgd = Optimizer::momentum(toy.params(), 0.1, 0.9);
    refused(&mut sgd, &good, "optimizer_algorithm");

    // Fewer parameters than the state holds.
    let mut short = Optimizer::adam(toy.params()[..3].to_vec(), 0.1);
    refused(&mut short, &good, "4 parameters");

    // Same count, another shape (the layers swapped).
    let mut p = toy.params();
    p.swap(0, 2);
    p.swap(1, 3);
    let mut swapped = Optimizer::adam(p, 0.1);
    refused(&mut swapped, &good, "has shape");

    // A state tensor missing, or one too many.
    let mut w = good.clone();
    w.tensors.remove("optim.1.s2");
    let mut opt = Optimizer::adam(toy.params(), 0.1);
    refused(&mut opt, &w, "optim.1.s2");
    let mut w = good.clone();
    w.tensors.remove("optim.1.s1");
    w.tensors.remove("optim.1.s2");
    refused(&mut opt, &w, "step count of 1");
    let mut w = good.clone();
    let extra = w.tensors["optim.0.s1"].clone();
    w.tensors.insert("optim.9.s1".into(), extra);
    refused(&mut opt, &w, "optim.9.s1");

    // Metadata that is missing, does not parse, or comes from a newer format.
    for (key, value, needle) in [
        (STEP, None, "missing"),
        (STEP, Some("-1"), "not a step count"),
        (PARAM_STEPS, Some("1,1,x,1"), "`x`"),
        (FORMAT, Some("2"), "version 2"),
        // Counts the bias corrections (β^t with t an i32) cannot take.
        (STEP, Some("4294967295"), "past the"),
        (PARAM_STEPS, Some("1,1,4294967295,1"), "past the"),
    ] {
        let mut w = good.clone();
        match value {
            Some(v) => w.metadata.insert(key.into(), v.into()),
            None => w.metadata.remove(key),
        };
        refused(&mut opt, &w, needle);
    }

    // Names that do not fit are the caller's mistake, not the file's.
    let e = opt.load_named_state_dict(&good, &["a".into()]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let twice: Vec<String> = ["a", "b", "a", "c"].map(String::from).to_vec();
    let e = opt.named_state_dict(&twice).unwrap_err();
    assert!(e.to_string().contains("`a`"), "{e}");

    // The good file loads after all that.
    opt.load_state_dict(&good).unwrap();
    assert_eq!(opt.steps(), 1);
}

#[test]
fn named_states_load_by_name_and_index_keys_do_not() {
    let names: Vec<String> = ["l0.weight", "l0.bias", "l1.weight", "l1.bias"]
        .map(String::from)
        .to_vec();
    let (toy, bytes) = saved_adam_state(Some(&names));
    let w = io::parse("named", &bytes).unwrap();
    assert!(w.tensors.contains_key("optim.l1.bias.s2"));
    let mut opt = Optimizer::adam(toy.params(), 0.1);
    refused(&mut opt, &w, "optim.0.s1");
    opt.load_named_state_dict(&w, &names).unwrap();
    assert_eq!(opt.steps(), 1);
}

/// Garbage and truncated files are `Format` errors from the parser, not panics.
#[test]
fn corrupt_files_are_format_errors() {
    let (toy, bytes) = saved_adam_state(None);
    let path = temp("corrupt");
    io::write_atomic(&path, &bytes[..bytes.len() / 2]).unwrap();
    let mut opt = Optimizer::adam(toy.params(), 0.1);
    let r = opt.load(&path);
    std::fs::remove_file(&path).ok();
    assert!(matches!(r, Err(Error::Format { .. })), "{r:?}");
    assert_eq!(opt.steps(), 0);
}
