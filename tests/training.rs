//! Public behaviour of the training core: gradients through the tape against finite
//! differences and GPU against CPU, the stochastic-gradient toy problem with and without a
//! decaying schedule, and shortened runs of the `mlp_digits` and `mnist_cnn` examples.

// The examples included below each bring their own copy of examples/common/plot.rs.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/mlp_digits.rs"]
#[allow(dead_code)]
mod mlp_digits;

#[path = "../examples/gradient_flow.rs"]
#[allow(dead_code)]
mod gradient_flow;

#[path = "../examples/seq2seq.rs"]
#[allow(dead_code)]
mod seq2seq;

#[path = "../examples/mnist_cnn.rs"]
#[allow(dead_code)]
mod mnist_cnn;

use std::sync::OnceLock;

use timeloom::nn::{Activation, Linear, Module, Sequential};
use timeloom::{
    bce_with_logits, mse_loss, no_grad, CrossEntropy, Device, Gpu, Optimizer, Rng, Schedule, Tensor,
};

fn gpu() -> Device {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    Device::Gpu(
        GPU.get_or_init(|| Gpu::new_blocking().expect("the tests need a GPU adapter"))
            .clone(),
    )
}

/// Central differences of `loss` with respect to every element of `param` (f32 engine on the
/// CPU device, evaluated in f64 from the f32 results), compared with the tape's gradient.
fn check_gradient(what: &str, param: &Tensor, loss: &dyn Fn() -> Tensor) {
    param.zero_grad();
    loss().backward().unwrap();
    let analytic = param.grad().unwrap().read_blocking().unwrap();
    let base = param.read_blocking().unwrap();
    let h = 1e-2f32;
    for i in 0..base.len() {
        let mut v = base.clone();
        v[i] = base[i] + h;
        param.write(&v).unwrap();
        let fp = f64::from(no_grad(loss).read_blocking().unwrap()[0]);
        v[i] = base[i] - h;
        param.write(&v).unwrap();
        let fm = f64::from(no_grad(loss).read_blocking().unwrap()[0]);
        let numeric = (fp - fm) / (2.0 * f64::from(h));
        let err = (numeric - f64::from(analytic[i])).abs();
        // f32 forward passes: the difference quotient carries ~1e-5/h of rounding.
        assert!(
            err <= 2e-3 * (1.0 + numeric.abs()),
            "{what}[{i}]: tape {} vs numeric {numeric}",
            analytic[i]
        );
    }
    param.write(&base).unwrap();
}

/// Whether the examples' figures can draw their text (examples/common/plot.rs's font): without
/// one they skip the figure with a line saying what to install, and the tests skip its checks.
fn font_installed() -> bool {
    let path = std::env::var("TIMELOOM_FONT")
        .unwrap_or_else(|_| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    let found = std::path::Path::new(&path).is_file();
    if !found {
        eprintln!("no font at {path}: the figure's checks are skipped");
    }
    found
}

#[test]
fn tape_gradients_of_an_mlp_match_finite_differences() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(3);
    let l1 = Linear::new(&dev, 5, 4, &mut rng).unwrap();
    let l2 = Linear::new(&dev, 4, 3, &mut rng).unwrap();
    let x = Tensor::from_slice(&dev, &rng.normals(6 * 5), &[6, 5]).unwrap();
    let t = Tensor::from_slice(&dev, &[0.0, 2.0, 1.0, 1.0, 0.0, 2.0], &[6]).unwrap();
    let loss = || {
        let h = l1.forward(&x).unwrap().tanh().unwrap();
        CrossEntropy::new()
            .compute(&l2.forward(&h).unwrap(), &t)
            .unwrap()
    };
    for (name, p) in l1
        .named_parameters()
        .into_iter()
        .chain(l2.named_parameters())
    {
        check_gradient(&name, &p, &loss);
    }
}

#[test]
fn broadcasting_ops_and_losses_have_correct_gradients() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(4);
    let a = Tensor::from_slice(&dev, &rng.normals(12), &[3, 4])
        .unwrap()
        .requires_grad();
    let row: Vec<f32> = rng.normals(4).iter().map(|v| v.abs() + 1.0).collect();
    let row = Tensor::from_slice(&dev, &row, &[4])
        .unwrap()
        .requires_grad();
    let col = Tensor::from_slice(&dev, &rng.normals(3), &[3, 1])
        .unwrap()
        .requires_grad();
    let target = Tensor::from_slice(&dev, &rng.normals(12), &[3, 4]).unwrap();
    let bits = Tensor::from_slice(
        &dev,
        &[1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
        &[3, 4],
    )
    .unwrap();
    let loss = || {
        let y = a
            .add(&col)
            .unwrap()
            .mul(&col)
            .unwrap()
            .div(&row)
            .unwrap()
            .sub(&row)
            .unwrap();
        let z = y
            .sigmoid()
            .unwrap()
            .gelu()
            .unwrap()
            .leaky_relu(0.1)
            .unwrap();
        let m = z.mean(1).unwrap().sum_all().unwrap();
        let s = y
            .softmax()
            .unwrap()
            .log_softmax()
            .unwrap()
            .sum_squares(0)
            .unwrap()
            .sum_all()
            .unwrap();
        m.add(&s)
            .unwrap()
            .add(&mse_loss(&y, &target).unwrap())
            .unwrap()
            .add(&bce_with_logits(&y, &bits).unwrap())
            .unwrap()
    };
    check_gradient("a", &a, &loss);
    check_gradient("row", &row, &loss);
    check_gradient("col", &col, &loss);
}

/// max / min over an axis, elementwise maximum / minimum and narrow along inner axes of
/// contiguous and transposed tensors, against finite differences (values spaced 0.5 apart, so
/// no step of h = 0.01 changes a winner).
#[test]
fn extremes_and_narrow_views_have_correct_gradients() {
    let dev = Device::Cpu;
    // A shuffled 0, 0.5, …, 5.5 and another set offset by 0.25: no two values within 0.25.
    let order = [7.0, 2.0, 11.0, 0.0, 5.0, 9.0, 3.0, 10.0, 1.0, 6.0, 8.0, 4.0];
    let av: Vec<f32> = order.iter().map(|v| v * 0.5).collect();
    let bv: Vec<f32> = order.iter().rev().map(|v| v * 0.5 + 0.25).collect();
    let a = Tensor::from_slice(&dev, &av, &[3, 4])
        .unwrap()
        .requires_grad();
    let b = Tensor::from_slice(&dev, &bv, &[3, 4])
        .unwrap()
        .requires_grad();
    let row = Tensor::from_slice(&dev, &[1.25, 2.75, 0.75, 4.25], &[4])
        .unwrap()
        .requires_grad();
    let loss = || {
        let sum = |t: Tensor| t.sum_all().unwrap();
        let terms = [
            sum(a.max(1).unwrap().square().unwrap()),
            sum(a.min(0).unwrap().scale(2.0).unwrap()),
            sum(a.maximum(&b).unwrap().square().unwrap()),
            sum(a.minimum(&row).unwrap().scale(3.0).unwrap()),
            sum(a.narrow(1, 1, 2).unwrap().square().unwrap()),
            sum(a
                .transpose(0, 1)
                .unwrap()
                .narrow(1, 1, 2)
                .unwrap()
                .scale(5.0)
                .unwrap()),
            sum(b
                .narrow(0, 2, 1)
                .unwrap()
                .narrow(1, 3, 1)
                .unwrap()
                .square()
                .unwrap()),
        ];
        terms
            .iter()
            .skip(1)
            .fold(terms[0].clone(), |acc, t| acc.add(t).unwrap())
    };
    check_gradient("a", &a, &loss);
    check_gradient("b", &b, &loss);
    check_gradient("row", &row, &loss);
}

/// Ties, as torch defines them, on both devices: amax-style reductions share the gradient
/// among the tied elements, maximum / minimum split it in half.
#[test]
fn tied_extremes_share_their_gradient_as_torch_does() {
    for dev in [gpu(), Device::Cpu] {
        let t = |v: &[f32]| {
            Tensor::from_slice(&dev, v, &[v.len()])
                .unwrap()
                .requires_grad()
        };
        let x = t(&[1.0, 3.0, 3.0, 2.0]);
        x.max(0).unwrap().backward().unwrap();
        assert_eq!(
            x.grad().unwrap().read_blocking().unwrap(),
            [0.0, 0.5, 0.5, 0.0]
        );
        let x = t(&[2.0, -1.0, -1.0, -1.0]);
        x.min(0).unwrap().backward().unwrap();
        let third = 1.0 / 3.0;
        let g = x.grad().unwrap().read_blocking().unwrap();
        assert!(
            g[0] == 0.0 && g[1..].iter().all(|v| (v - third).abs() < 1e-7),
            "{g:?}"
        );
        // a = [1, 2, 5], b = [1, 3, 4]: a tie, then b wins, then a wins (reversed for minimum).
        for (maximum, want_a, want_b) in [
            (true, [0.5, 0.0, 1.0], [0.5, 1.0, 0.0]),
            (false, [0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
        ] {
            let (a, b) = (t(&[1.0, 2.0, 5.0]), t(&[1.0, 3.0, 4.0]));
            let y = if maximum {
                a.maximum(&b)
            } else {
                a.minimum(&b)
            };
            y.unwrap().sum_all().unwrap().backward().unwrap();
            assert_eq!(a.grad().unwrap().read_blocking().unwrap(), want_a);
            assert_eq!(b.grad().unwrap().read_blocking().unwrap(), want_b);
        }
    }
}

#[test]
fn gpu_gradients_equal_cpu_gradients_for_a_training_step() {
    let mut out = Vec::new();
    for dev in [gpu(), Device::Cpu] {
        let mut rng = Rng::new(8);
        let model = Sequential::new()
            .add(Linear::new(&dev, 33, 17, &mut rng).unwrap())
            .add(Activation::Gelu)
            .add(Linear::new(&dev, 17, 7, &mut rng).unwrap());
        let x = Tensor::from_slice(&dev, &rng.normals(13 * 33), &[13, 33]).unwrap();
        let t: Vec<f32> = (0..13).map(|i| (i % 7) as f32).collect();
        let t = Tensor::from_slice(&dev, &t, &[13]).unwrap();
        CrossEntropy::new()
            .compute(&model.forward(&x).unwrap(), &t)
            .unwrap()
            .backward()
            .unwrap();
        let grads: Vec<Vec<f32>> = model
            .parameters()
            .iter()
            .map(|p| p.grad().unwrap().read_blocking().unwrap())
            .collect();
        out.push(grads);
    }
    for (i, (g, c)) in out[0].iter().zip(&out[1]).enumerate() {
        for (j, (a, b)) in g.iter().zip(c).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "param {i}[{j}]: gpu {a} vs cpu {b}"
            );
        }
    }
}

/// The toy problem from the course material: data x ∈ {−10, …, 10}, loss (x_i − θ)², batch 1,
/// θ₀ = −20, step 0.5. A constant step jumps θ onto each sample in turn (θ − 0.5·2(θ − x) = x),
/// so it never settles; α₀/(1 + k) makes θ the running mean of the samples, which converges to 0.
fn toy_sgd(schedule: Schedule, epochs: usize) -> Vec<f32> {
    let dev = Device::Cpu;
    let theta = Tensor::from_slice(&dev, &[-20.0], &[1])
        .unwrap()
        .requires_grad();
    let mut opt = Optimizer::sgd(vec![theta.clone()], 0.5).schedule(schedule);
    let data: Vec<f32> = (-10..=10).map(|v| v as f32).collect();
    let mut rng = Rng::new(5);
    let mut trace = Vec::new();
    for _ in 0..epochs {
        let mut order: Vec<usize> = (0..data.len()).collect();
        timeloom::data::shuffle(&mut order, &mut rng);
        for i in order {
            let x = Tensor::from_slice(&dev, &[data[i]], &[1]).unwrap();
            opt.zero_grad();
            x.sub(&theta)
                .unwrap()
                .square()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            opt.step().unwrap();
            trace.push(theta.read_blocking().unwrap()[0]);
        }
    }
    trace
}

#[test]
fn constant_step_sgd_keeps_bouncing_and_a_decaying_step_converges_to_the_mean() {
    let constant = toy_sgd(Schedule::Constant, 10);
    let last_epoch = &constant[constant.len() - 21..];
    let spread = last_epoch.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        spread >= 9.0,
        "a constant step should keep jumping between samples; max |θ| = {spread}"
    );
    let decaying = toy_sgd(Schedule::InverseTime { decay: 1.0 }, 10);
    let end = *decaying.last().unwrap();
    assert!(
        end.abs() < 1e-3,
        "α₀/(1+k) should converge to the mean 0, got {end}"
    );
    let late = &decaying[decaying.len() - 21..];
    assert!(
        late.iter().all(|v| v.abs() < 1.0),
        "and stay near it: {late:?}"
    );
}

#[test]
fn mlp_digits_learns_real_digits() {
    // A shortened default run: 6 epochs instead of 20. The full run reaches ≈ 97%.
    let cfg = mlp_digits::Config {
        device: gpu(),
        epochs: 6,
        quiet: true,
        ..mlp_digits::Config::default()
    };
    let history = mlp_digits::run(&cfg).unwrap();
    let (loss, acc) = *history.last().unwrap();
    assert!(history[0].0 > loss, "the loss falls: {history:?}");
    assert!(acc >= 0.93, "test accuracy after 6 epochs: {acc}");
}

#[test]
fn mnist_cnn_learns_real_mnist_in_one_epoch_on_the_gpu() {
    // One epoch of the default run (six): chance is 10%, the full run reaches ≈ 98%.
    let out = std::env::temp_dir().join(format!("timeloom-mnist-{}", std::process::id()));
    let cfg = mnist_cnn::Config {
        device: gpu(),
        epochs: 1,
        out: Some(out.clone()),
        quiet: true,
        ..mnist_cnn::Config::default()
    };
    let history = mnist_cnn::run(&cfg).unwrap();
    let acc = history[0].accuracy;
    assert!(acc > 0.90, "test accuracy after one epoch: {acc}");
    if font_installed() {
        let png = std::fs::read(out.join("misclassified.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn gradient_flow_shows_vanishing_and_bounded_updates_on_the_gpu() {
    // The shortened example: T = 60, no training.
    let cfg = gradient_flow::Config {
        device: gpu(),
        hidden: 32,
        seq_len: 60,
        radii: vec![0.5, 1.5],
        steps: 0,
        out: None,
        quiet: true,
        ..gradient_flow::Config::default()
    };
    let report = gradient_flow::run(&cfg).unwrap();
    let at = |rho: f32, m: gradient_flow::Model, d: usize| {
        report
            .gradients
            .iter()
            .find(|(r, mm, _)| *r == Some(rho) && *mm == m)
            .map(|(_, _, n)| n[d - 1])
            .unwrap()
    };
    use gradient_flow::Model::{Lstm, Rnn};
    // Spectral radius below 1: the RNN's gradient 50 steps back is orders of magnitude below
    // the LSTM's (measured: about 1e-16 against 1e-5 at H = 64, T = 100).
    let (rnn, lstm) = (at(0.5, Rnn, 50), at(0.5, Lstm, 50));
    assert!(
        rnn < 1e-4 * lstm,
        "ρ = 0.5, d = 50: RNN {rnn:e}, LSTM {lstm:e}"
    );
    assert!(
        at(0.5, Rnn, 50) < 1e-6 * at(0.5, Rnn, 1),
        "the RNN's gradient vanishes"
    );
    // Above 1 the RNN's gradient grows with distance instead.
    assert!(at(1.5, Rnn, 50) > at(1.5, Rnn, 1), "ρ = 1.5 explodes");
    // Clipping bounds the SGD update by lr · clip (lr 0.1, clip 1), where the raw step is larger.
    let (grad, raw, clipped) = report.update;
    assert!(
        grad > 10.0 && raw > 1.0,
        "the exploding gradient is large: {grad}, {raw}"
    );
    assert!(clipped <= 0.1 * 1.0001, "clipped update norm {clipped}");
    assert!(
        clipped > 0.099,
        "the clipped step is the bound itself: {clipped}"
    );
}

#[test]
fn gradient_flow_training_keeps_a_finite_learning_rate_and_records_curves() {
    // The training half of the example, tiny, on the CPU path. A rate of 1e4 stands for a run
    // that diverges, and the tuning must not keep it; a diverged run's NaN MSE ranks last
    // (NaN compares false, so a plain `<` would keep it).
    let diverged = gradient_flow::Run {
        model: gradient_flow::Model::Rnn,
        lr: 1.0,
        clip: None,
        curve: vec![(0, 0.2, 0.1), (10, f32::NAN, 0.0)],
        test: (f32::NAN, 0.0),
    };
    assert_eq!(diverged.rank_key(), f32::INFINITY);
    let cfg = gradient_flow::Config {
        hidden: 8,
        seq_len: 12,
        radii: vec![],
        steps: 30,
        batch: 8,
        lrs: vec![1e4, 1e-2],
        out: None,
        quiet: true,
        ..gradient_flow::Config::default()
    };
    let report = gradient_flow::run(&cfg).unwrap();
    assert_eq!(report.runs.len(), 6, "tuned and unclipped run per cell");
    for r in &report.runs {
        assert_eq!(r.lr, 1e-2, "{:?} kept lr {}", r.model, r.lr);
        assert!(r.final_mse().is_finite() && r.curve.len() > 2, "{r:?}");
    }
    assert!(report.runs.iter().any(|r| r.clip.is_none()));
}

#[test]
fn seq2seq_translates_held_out_dates() {
    // 150 steps instead of the default 1,000, on the CPU path (about 0.1 s a step there against
    // about 0.9 s on lavapipe; every op it uses is checked GPU against CPU elsewhere).
    let out = std::env::temp_dir().join(format!("timeloom-seq2seq-{}", std::process::id()));
    let cfg = seq2seq::Config {
        steps: 150,
        test: 500,
        beam: 2,
        out: Some(out.clone()),
        quiet: true,
        ..seq2seq::Config::default()
    };
    let r = seq2seq::run(&cfg).unwrap();
    assert!(
        r.losses[0].1 > r.losses.last().unwrap().1,
        "the loss falls: {:?}",
        r.losses
    );
    assert!(
        r.greedy_exact >= 0.9,
        "greedy exact match {}",
        r.greedy_exact
    );
    assert!(
        r.beam_exact.unwrap() >= 0.9,
        "beam exact match {:?}",
        r.beam_exact
    );
    assert_eq!(
        r.beam_one_agrees, 1.0,
        "a beam of width 1 is greedy decoding"
    );
    if font_installed() {
        assert!(std::fs::metadata(out.join("attention.png")).unwrap().len() > 100);
    }
    let _ = std::fs::remove_dir_all(out);
}

/// Beam bookkeeping with a finished hypothesis: it stays one candidate with its score (the
/// log-probabilities of its row no longer count), and it is dropped once two live ones beat it.
#[test]
fn seq2seq_beam_search_keeps_finished_hypotheses_as_they_are() {
    use seq2seq::{beam_step, EOS, OUT_VOCAB};
    let hyps = vec![vec![3, EOS], vec![4]];
    let mut logp = vec![-100.0; 2 * OUT_VOCAB];
    logp[OUT_VOCAB + 5] = -0.2;
    logp[OUT_VOCAB + 6] = -0.6;
    let (parents, score, next) = beam_step(&[-1.0, -0.5], &hyps, &logp, 2);
    assert_eq!(parents, [1.0, 0.0]);
    assert_eq!(score, [-0.7, -1.0]);
    assert_eq!(next, [vec![4, 5], vec![3, EOS, EOS]]);
    // Two live extensions better than the finished one push it out.
    logp[OUT_VOCAB + 6] = -0.3;
    let (_, score, next) = beam_step(&[-1.0, -0.6], &hyps, &logp, 2);
    assert_eq!(next, [vec![4, 5], vec![4, 6]]);
    assert!(
        (score[0] + 0.8).abs() < 1e-6 && (score[1] + 0.9).abs() < 1e-6,
        "{score:?}"
    );
}

#[test]
fn seq2seq_scheduled_sampling_trains() {
    // The step-by-step path that feeds the model its own predictions (half of them by the end).
    let cfg = seq2seq::Config {
        steps: 40,
        batch: 32,
        test: 100,
        beam: 1,
        sampling: 0.5,
        out: None,
        quiet: true,
        ..seq2seq::Config::default()
    };
    let r = seq2seq::run(&cfg).unwrap();
    let (first, last) = (r.losses[0].1, r.losses.last().unwrap().1);
    assert!(
        last.is_finite() && last < 0.7 * first,
        "loss {first} → {last}"
    );
}

#[test]
fn seq2seq_dates_are_valid_and_iso() {
    assert_eq!(
        [2000, 1900, 2024, 2023].map(|y| seq2seq::days_in(y, 2)),
        [29, 28, 29, 28]
    );
    let mut rng = Rng::new(5);
    for _ in 0..2000 {
        let (human, iso) = seq2seq::random_date(&mut rng);
        let parts: Vec<u32> = iso.split('-').map(|p| p.parse().unwrap()).collect();
        assert!(
            human.len() <= 40 && (1950..2050).contains(&parts[0]),
            "{human} {iso}"
        );
        let (y, m, d) = (parts[0] as usize, parts[1] as usize, parts[2] as usize);
        assert!(
            (1..=12).contains(&m) && (1..=seq2seq::days_in(y, m)).contains(&d),
            "{iso}"
        );
        // Every format carries the year's last two digits.
        assert!(human.contains(&format!("{:02}", y % 100)), "{human} {iso}");
    }
}

#[test]
fn bce_with_logits_has_the_exact_gradient_at_zero() {
    let dev = Device::Cpu;
    let x = Tensor::from_slice(&dev, &[0.0, 0.0, 2.0, -1.0], &[4])
        .unwrap()
        .requires_grad();
    let t = Tensor::from_slice(&dev, &[0.0, 1.0, 1.0, 0.0], &[4]).unwrap();
    bce_with_logits(&x, &t).unwrap().backward().unwrap();
    let g = x.grad().unwrap().read_blocking().unwrap();
    let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
    let want = [
        (0.5 - 0.0) / 4.0,
        (0.5 - 1.0) / 4.0,
        (sig(2.0) - 1.0) / 4.0,
        sig(-1.0) / 4.0,
    ];
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{g:?} vs {want:?}");
    }
}

#[test]
fn a_parameter_first_updated_late_gets_an_unbiased_first_adam_step() {
    let dev = gpu();
    let a = Tensor::from_slice(&dev, &[1.0], &[1])
        .unwrap()
        .requires_grad();
    let b = Tensor::from_slice(&dev, &[1.0], &[1])
        .unwrap()
        .requires_grad();
    let mut opt = Optimizer::adam(vec![a.clone(), b.clone()], 0.1);
    for step in 0..4 {
        opt.zero_grad();
        // b takes part only from the fourth step on.
        let loss = if step < 3 {
            a.square().unwrap().sum_all().unwrap()
        } else {
            a.add(&b).unwrap().square().unwrap().sum_all().unwrap()
        };
        loss.backward().unwrap();
        opt.step().unwrap();
    }
    // A first Adam step moves by lr·ĝ/(|ĝ| + ε) ≈ lr, whatever the global step count.
    let moved = 1.0 - b.read_blocking().unwrap()[0];
    assert!((moved - 0.1).abs() < 1e-4, "b moved {moved}");
    let (_, states) = opt.state();
    assert_eq!(states[0].as_ref().unwrap().step, 4);
    assert_eq!(states[1].as_ref().unwrap().step, 1);
    // Restoring states from another device is refused, and nothing changes.
    let cpu_state = timeloom::ParamState {
        step: 1,
        s1: Tensor::zeros(&Device::Cpu, &[1]).unwrap(),
        s2: Tensor::zeros(&Device::Cpu, &[1]).unwrap(),
        s3: None,
    };
    let e = opt.load_state(9, vec![Some(cpu_state), None]).unwrap_err();
    assert!(matches!(e, timeloom::Error::DeviceMismatch { .. }), "{e}");
    assert_eq!(opt.steps(), 4);
    let e = a
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward_with(&Tensor::full(&Device::Cpu, &[], 1.0).unwrap())
        .unwrap_err();
    assert!(matches!(e, timeloom::Error::DeviceMismatch { .. }), "{e}");
}

/// Buffers the same step writes in place must not alias what it reads or writes: on the host
/// that would also take two locks on one buffer and hang.
#[test]
fn in_place_state_that_aliases_what_the_step_touches_is_refused() {
    let dev = Device::Cpu;
    let w = Tensor::from_slice(&dev, &[1.0, 2.0], &[2])
        .unwrap()
        .requires_grad();
    let mut opt = Optimizer::adam(vec![w.clone()], 0.1);
    let s = Tensor::zeros(&dev, &[2]).unwrap();
    let shared = timeloom::ParamState {
        step: 1,
        s1: s.clone(),
        s2: s,
        s3: None,
    };
    let e = opt.load_state(1, vec![Some(shared)]).unwrap_err();
    assert!(matches!(e, timeloom::Error::InvalidArgument { .. }), "{e}");
    let on_param = timeloom::ParamState {
        step: 1,
        s1: w.detach(),
        s2: Tensor::zeros(&dev, &[2]).unwrap(),
        s3: None,
    };
    let e = opt.load_state(1, vec![Some(on_param)]).unwrap_err();
    assert!(matches!(e, timeloom::Error::InvalidArgument { .. }), "{e}");
    assert_eq!(opt.steps(), 0);

    let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let gamma = Tensor::full(&dev, &[2], 1.0).unwrap();
    let beta = Tensor::zeros(&dev, &[2]).unwrap();
    let var = Tensor::full(&dev, &[2], 1.0).unwrap();
    let e = x
        .batch_norm(Some((&beta, &var)), Some((&gamma, &beta)), true, 0.1, 1e-5)
        .unwrap_err();
    assert!(matches!(e, timeloom::Error::InvalidArgument { .. }), "{e}");
    let mean = Tensor::zeros(&dev, &[2]).unwrap();
    x.batch_norm(Some((&mean, &var)), Some((&gamma, &beta)), true, 0.1, 1e-5)
        .unwrap();
}
