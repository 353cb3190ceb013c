//! Why plain RNNs forget, made visible. Two experiments on a tanh RNN, an LSTM and a GRU of the
//! same hidden size:
//!
//! 1. **Gradient flow.** For a loss on the last hidden state, ‖∂L/∂h_t‖ as a function of the
//!    distance T − t, with every recurrent weight block set to ρ·Q (Q random orthogonal, so the
//!    spectral radius is exactly ρ) for ρ below, near and above 1, and again after training.
//!    The gradient with respect to h_t is read off a zero-valued leaf added to the state that
//!    enters step t, so the engine's own backward pass computes it.
//! 2. **The adding problem.** Sequences of T (default 100) pairs (value in [0, 1), marker); two
//!    markers are 1 and the target is the sum of their values. Each cell gets the same budget
//!    (steps, batch, Adam), its learning rate tuned on a small grid by validation MSE, and is
//!    trained with and without gradient-norm clipping at that rate (so the pair differs only
//!    in the clipping). The numbers reported are on a separate test set, not the one the rate
//!    was picked on. "Accuracy" is the share of sequences predicted within 0.1 of the target
//!    (always answering 1.0 scores about 19%, MSE 1/6).
//!
//! Initialisation is PyTorch's for every cell, except the LSTM's forget-gate bias, set to 1 as
//! is standard practice (Jozefowicz et al., 2015); the gradient table also shows the LSTM with
//! PyTorch's default bias, so the effect of that choice is visible rather than hidden.
//!
//! Writes `gradient_norms.csv`, `adding.csv` and PNG figures into `--out` (default
//! `runs/gradient_flow`): `gradients_rho_<ρ>.png` and `gradients_trained.png` (log10 norm
//! against distance; red RNN, blue LSTM, green GRU, grey LSTM with forget bias 0) and
//! `adding_accuracy.png` (validation accuracy against step; solid colours with clipping, light
//! colours without).
//!
//! ```text
//! cargo run --release --example gradient_flow -- --device cpu    # the CPU path is faster on lavapipe
//! cargo run --release --example gradient_flow -- --seq-len 150 --steps 3000 --clip 1.0 --lrs 1e-3,3e-3
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use timeloom::init::Init;
use timeloom::nn::{CellKind, Linear, Module, Recurrent};
use timeloom::{mse_loss, no_grad, Device, Optimizer, Rng, Tensor};

#[path = "common/plot.rs"]
mod plot;

#[path = "common/cli.rs"]
mod cli;

#[path = "common/progress.rs"]
mod progress;

/// What a run does; `Default` is the example's default run.
#[derive(Clone, Debug)]
pub struct Config {
    pub device: Device,
    pub hidden: usize,
    /// T of the gradient measurement and of the adding problem.
    pub seq_len: usize,
    /// Spectral radii of the recurrent weights for the gradient measurement.
    pub radii: Vec<f32>,
    /// Training steps per run of the adding problem (0: skip the training experiment).
    pub steps: usize,
    pub batch: usize,
    /// Learning rates tried for each cell.
    pub lrs: Vec<f32>,
    /// Gradient-norm clip of the clipped runs.
    pub clip: f32,
    pub seed: u64,
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device: Device::Cpu,
            hidden: 64,
            seq_len: 100,
            radii: vec![0.5, 1.0, 1.5],
            steps: 2000,
            batch: 32,
            lrs: vec![1e-3, 3e-3, 1e-2],
            clip: 1.0,
            seed: 0,
            out: Some(PathBuf::from("runs/gradient_flow")),
            quiet: false,
        }
    }
}

/// The models compared, with their plot colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Model {
    Rnn,
    Lstm,
    Gru,
    /// An LSTM with PyTorch's default forget-gate bias (for the gradient table only).
    LstmBias0,
}

impl Model {
    pub const TRAINED: [Model; 3] = [Model::Rnn, Model::Lstm, Model::Gru];
    pub fn name(self) -> &'static str {
        match self {
            Model::Rnn => "rnn",
            Model::Lstm => "lstm",
            Model::Gru => "gru",
            Model::LstmBias0 => "lstm_bias0",
        }
    }
    /// The model's name in a figure's legend.
    fn label(self) -> &'static str {
        match self {
            Model::Rnn => "RNN (tanh)",
            Model::Lstm => "LSTM",
            Model::Gru => "GRU",
            Model::LstmBias0 => "LSTM, PyTorch's default forget bias",
        }
    }
    fn colour(self, light: bool) -> [u8; 3] {
        let c = match self {
            Model::Rnn => [210, 40, 40],
            Model::Lstm => [40, 80, 210],
            Model::Gru => [30, 150, 60],
            Model::LstmBias0 => [130, 130, 130],
        };
        if light {
            c.map(|v| v / 3 + 170)
        } else {
            c
        }
    }
    fn cell(self) -> CellKind {
        match self {
            Model::Rnn => CellKind::RnnTanh,
            Model::Lstm | Model::LstmBias0 => CellKind::Lstm,
            Model::Gru => CellKind::Gru,
        }
    }
}

/// A one-layer recurrent net on 2 input features with a linear read-out of its last state.
pub struct Net {
    pub rnn: Recurrent,
    pub head: Linear,
    pub model: Model,
}

impl Net {
    /// PyTorch's initialisation, the LSTM's forget-gate bias at 1, and with `radius` every
    /// H×H block of the recurrent weight set to radius·Q, Q random orthogonal.
    pub fn new(
        model: Model,
        dev: &Device,
        hidden: usize,
        radius: Option<f32>,
        rng: &mut Rng,
    ) -> timeloom::Result<Net> {
        let rnn = match model.cell() {
            CellKind::Lstm => Recurrent::lstm(2, hidden),
            CellKind::Gru => Recurrent::gru(2, hidden),
            _ => Recurrent::rnn(2, hidden),
        }
        .build(dev, rng)?;
        let params = rnn.named_parameters();
        let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        if let (Some(rho), Some(w_hh)) = (radius, get("weight_hh_l0")) {
            let gates = w_hh.shape()[0] / hidden;
            let mut values = Vec::with_capacity(w_hh.numel());
            for _ in 0..gates {
                let q = Init::Orthogonal(1.0).tensor(&Device::Cpu, &[hidden, hidden], rng)?;
                values.extend(q.read_blocking()?.iter().map(|v| v * rho));
            }
            w_hh.write(&values)?;
        }
        if model == Model::Lstm {
            // Gate order i, f, g, o: the forget gate's bias is rows H..2H, split over b_ih, b_hh.
            for (name, value) in [("bias_ih_l0", 1.0), ("bias_hh_l0", 0.0)] {
                if let Some(b) = get(name) {
                    let mut v = b.read_blocking()?;
                    v[hidden..2 * hidden].fill(value);
                    b.write(&v)?;
                }
            }
        }
        let head = Linear::new(dev, hidden, 1, rng)?;
        Ok(Net { rnn, head, model })
    }

    pub fn parameters(&self) -> Vec<Tensor> {
        let mut p = self.rnn.parameters();
        p.extend(self.head.parameters());
        p
    }

    /// Predictions [B] for inputs [T, B, 2].
    pub fn forward(&self, x: &Tensor) -> timeloom::Result<Tensor> {
        let out = self.rnn.forward_with(x, None, None)?;
        let b = x.shape()[1];
        let h = out.h_n.reshape(&[b, self.rnn.config().hidden])?;
        self.head.forward(&h)?.reshape(&[b])
    }
}

/// `batch` adding-problem sequences of length `t`: inputs [T, B, 2] (row-major) and targets [B].
pub fn adding_batch(t: usize, batch: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let mut x = vec![0.0f32; t * batch * 2];
    let mut y = vec![0.0f32; batch];
    for b in 0..batch {
        for s in 0..t {
            x[(s * batch + b) * 2] = rng.uniform() as f32;
        }
        // One marker in each half, as in Hochreiter & Schmidhuber's formulation.
        let first = rng.int(0, t / 2 - 1);
        let second = rng.int(t / 2, t - 1);
        for s in [first, second] {
            x[(s * batch + b) * 2 + 1] = 1.0;
            y[b] += x[(s * batch + b) * 2];
        }
    }
    (x, y)
}

/// RMS over the batch of ‖∂L/∂h_t‖ for L = Σ_b r·h_T^b (r a fixed random unit vector), indexed
/// by the distance T − t (entry d − 1 for distance d = 1..=T).
pub fn gradient_norms(
    net: &Net,
    dev: &Device,
    t: usize,
    batch: usize,
    rng: &mut Rng,
) -> timeloom::Result<Vec<f64>> {
    let hidden = net.rnn.config().hidden;
    let (x, _) = adding_batch(t, batch, rng);
    let x = Tensor::from_slice(dev, &x, &[t, batch, 2])?;
    let r: Vec<f32> = {
        let v = rng.normals(hidden);
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter().map(|a| a / n).collect()
    };
    let r = Tensor::from_slice(dev, &r, &[hidden])?;
    let lstm = net.model.cell() == CellKind::Lstm;
    let mut h = Tensor::zeros(dev, &[1, batch, hidden])?;
    let mut c = if lstm {
        Some(Tensor::zeros(dev, &[1, batch, hidden])?)
    } else {
        None
    };
    let mut probes = Vec::with_capacity(t);
    for s in 0..t {
        let z = Tensor::zeros(dev, &[1, batch, hidden])?.requires_grad();
        let h_in = h.add(&z)?;
        probes.push(z);
        let out = net
            .rnn
            .forward_with(&x.narrow(0, s, 1)?, Some((&h_in, c.as_ref())), None)?;
        h = out.h_n;
        c = out.c_n;
    }
    h.mul(&r)?.sum_all()?.backward()?;
    // probes[s] perturbs the state entering step s: distance t − s from the end.
    let mut norms = vec![0.0; t];
    for (s, z) in probes.iter().enumerate() {
        // A probe without a gradient is disconnected from the loss: that is a bug in this
        // measurement, not a vanished gradient, so it must not read as zero.
        let g = z
            .grad()
            .ok_or_else(|| timeloom::Error::InvalidArgument {
                op: "gradient_norms",
                message: format!("the probe at step {s} got no gradient"),
            })?
            .read_blocking()?;
        let sq: f64 = g.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        norms[t - s - 1] = (sq / batch as f64).sqrt();
    }
    Ok(norms)
}

/// One adding-problem training run.
#[derive(Clone, Debug)]
pub struct Run {
    pub model: Model,
    pub lr: f32,
    pub clip: Option<f32>,
    /// (step, validation MSE, validation accuracy), every `eval_every` steps.
    pub curve: Vec<(usize, f32, f32)>,
    /// (MSE, accuracy) of the final model on the test set (512 sequences never used to choose).
    pub test: (f32, f32),
}

impl Run {
    pub fn final_mse(&self) -> f32 {
        self.curve.last().map_or(f32::INFINITY, |c| c.1)
    }
    /// Final MSE for choosing the learning rate, a diverged (NaN) run ranking last.
    pub fn rank_key(&self) -> f32 {
        let m = self.final_mse();
        if m.is_nan() {
            f32::INFINITY
        } else {
            m
        }
    }
    pub fn final_accuracy(&self) -> f32 {
        self.curve.last().map_or(0.0, |c| c.2)
    }
}

/// Trains `model` on the adding problem; the same seeds for every run, so runs differ only in
/// the model, learning rate and clipping.
pub fn train(
    cfg: &Config,
    model: Model,
    lr: f32,
    clip: Option<f32>,
) -> timeloom::Result<(Run, Net)> {
    let dev = &cfg.device;
    let t = cfg.seq_len;
    let net = Net::new(model, dev, cfg.hidden, None, &mut Rng::new(cfg.seed))?;
    let mut opt = Optimizer::adam(net.parameters(), lr);
    if let Some(c) = clip {
        opt = opt.clip_grad_norm(c);
    }
    let mut data = Rng::new(cfg.seed + 1);
    let (vx, vy) = adding_batch(t, 512, &mut Rng::new(cfg.seed + 2));
    let val_x = Tensor::from_slice(dev, &vx, &[t, 512, 2])?;
    let (tx, ty) = adding_batch(t, 512, &mut Rng::new(cfg.seed + 4));
    let test_x = Tensor::from_slice(dev, &tx, &[t, 512, 2])?;
    let eval_every = (cfg.steps / 30).max(1);
    let mut curve = Vec::new();
    let evaluate_on = |net: &Net, val_x: &Tensor, vy: &[f32]| -> timeloom::Result<(f32, f32)> {
        let p = no_grad(|| net.forward(val_x))?.read_blocking()?;
        let mse = p
            .iter()
            .zip(vy)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            / vy.len() as f32;
        let acc = p
            .iter()
            .zip(vy)
            .filter(|(a, b)| (*a - *b).abs() < 0.1)
            .count() as f32
            / vy.len() as f32;
        Ok((mse, acc))
    };
    let evaluate = |net: &Net| evaluate_on(net, &val_x, &vy);
    let (m0, a0) = evaluate(&net)?;
    curve.push((0, m0, a0));
    let bar = (!cfg.quiet).then(|| progress::Progress::new(0, cfg.steps as u64, "steps"));
    for step in 1..=cfg.steps {
        let (x, y) = adding_batch(t, cfg.batch, &mut data);
        let x = Tensor::from_slice(dev, &x, &[t, cfg.batch, 2])?;
        let y = Tensor::from_slice(dev, &y, &[cfg.batch])?;
        opt.zero_grad();
        mse_loss(&net.forward(&x)?, &y)?.backward()?;
        opt.step()?;
        if step % eval_every == 0 || step == cfg.steps {
            let (m, a) = evaluate(&net)?;
            curve.push((step, m, a));
            if let Some(b) = &bar {
                b.set(
                    step as u64,
                    format!(
                        "{} lr {lr}: validation accuracy {:.1}%",
                        model.name(),
                        a * 100.0
                    ),
                );
            }
        }
    }
    if let Some(b) = &bar {
        b.finish();
    }
    let test = evaluate_on(&net, &test_x, &ty)?;
    Ok((
        Run {
            model,
            lr,
            clip,
            curve,
            test,
        },
        net,
    ))
}

/// ‖Δθ‖ of one plain-SGD step on a tanh RNN with spectral radius 1.5 (exploding), without and
/// with clipping at `clip`: (gradient norm, update norm without clipping, update norm with).
pub fn update_norms(cfg: &Config, lr: f32, clip: f32) -> timeloom::Result<(f32, f32, f32)> {
    let dev = &cfg.device;
    let mut out = Vec::new();
    let mut grad_norm = 0.0;
    for clipped in [false, true] {
        let net = Net::new(
            Model::Rnn,
            dev,
            cfg.hidden,
            Some(1.5),
            &mut Rng::new(cfg.seed),
        )?;
        let (x, y) = adding_batch(cfg.seq_len, cfg.batch, &mut Rng::new(cfg.seed + 3));
        let x = Tensor::from_slice(dev, &x, &[cfg.seq_len, cfg.batch, 2])?;
        let y = Tensor::from_slice(dev, &y, &[cfg.batch])?;
        let mut opt = Optimizer::sgd(net.parameters(), lr);
        if clipped {
            opt = opt.clip_grad_norm(clip);
        }
        let before: Vec<Vec<f32>> = net
            .parameters()
            .iter()
            .map(|p| p.read_blocking())
            .collect::<Result<_, _>>()?;
        opt.zero_grad();
        mse_loss(&net.forward(&x)?, &y)?.backward()?;
        if !clipped {
            grad_norm = net
                .parameters()
                .iter()
                .map(|p| {
                    p.grad().map_or(Ok(0.0), |g| {
                        Ok::<f32, timeloom::Error>(g.read_blocking()?.iter().map(|v| v * v).sum())
                    })
                })
                .sum::<Result<f32, _>>()?
                .sqrt();
        }
        opt.step()?;
        let mut sq = 0.0f64;
        for (p, b) in net.parameters().iter().zip(&before) {
            for (a, b) in p.read_blocking()?.iter().zip(b) {
                sq += f64::from(a - b).powi(2);
            }
        }
        out.push(sq.sqrt() as f32);
    }
    Ok((grad_norm, out[0], out[1]))
}

fn write(dir: &Option<PathBuf>, name: &str, bytes: &[u8]) -> timeloom::Result<()> {
    if let Some(dir) = dir {
        cli::ensure_dir(dir)?;
        timeloom::io::write_atomic(dir.join(name), bytes)?;
    }
    Ok(())
}

/// Writes a figure (see `plot::save`) when there is an output folder.
fn figure(dir: &Option<PathBuf>, name: &str, png: Result<Vec<u8>, String>) -> timeloom::Result<()> {
    match dir {
        Some(dir) => plot::save(dir, name, png),
        None => Ok(()),
    }
}

/// The gradient norm against distance, one curve per model, on a log axis.
fn gradient_figure(title: &str, curves: &[(Model, Vec<f64>)]) -> Result<Vec<u8>, String> {
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|(_, n)| {
            n.iter()
                .enumerate()
                .map(|(d, &v)| ((d + 1) as f64, v))
                .collect()
        })
        .collect();
    let lines: Vec<plot::Line<'_>> = curves
        .iter()
        .zip(&points)
        .map(|((m, _), p)| plot::Line {
            label: m.label(),
            points: p,
            color: m.colour(false),
        })
        .collect();
    plot::Chart {
        title,
        x: "distance from the loss (timesteps)",
        y: "gradient norm ‖∂L/∂h‖",
        log_y: true,
        legend: plotters::chart::SeriesLabelPosition::LowerLeft,
    }
    .png(&lines, 720, 440)
}

/// Everything the example measures.
pub struct Report {
    /// (radius or None for "trained", model, norms by distance).
    pub gradients: Vec<(Option<f32>, Model, Vec<f64>)>,
    /// The tuned runs, with clipping and without.
    pub runs: Vec<Run>,
    /// (gradient norm, update norm unclipped, update norm clipped) of the exploding RNN.
    pub update: (f32, f32, f32),
}

pub fn run(cfg: &Config) -> timeloom::Result<Report> {
    let dev = &cfg.device;
    let say = |s: String| {
        if !cfg.quiet {
            println!("{s}");
        }
    };
    let mut gradients = Vec::new();
    let mut csv = String::from("phase,model,radius,distance,grad_norm\n");
    let models = [Model::Rnn, Model::Lstm, Model::Gru, Model::LstmBias0];
    for &rho in &cfg.radii {
        let mut curves = Vec::new();
        for m in models {
            let net = Net::new(m, dev, cfg.hidden, Some(rho), &mut Rng::new(cfg.seed))?;
            let n = gradient_norms(&net, dev, cfg.seq_len, 16, &mut Rng::new(cfg.seed + 7))?;
            for (d, v) in n.iter().enumerate() {
                let _ = writeln!(csv, "init,{},{rho},{},{v:e}", m.name(), d + 1);
            }
            curves.push((m, n.clone()));
            gradients.push((Some(rho), m, n));
        }
        figure(
            &cfg.out,
            &format!("gradients_rho_{rho}.png"),
            gradient_figure(
                &format!("Gradient norm against distance at initialisation, spectral radius {rho}"),
                &curves,
            ),
        )?;
    }
    let update = update_norms(cfg, 0.1, cfg.clip)?;

    let mut runs = Vec::new();
    let mut adding_csv = String::from("model,lr,clip,step,val_mse,val_accuracy\n");
    let mut trained = Vec::new();
    if cfg.steps > 0 {
        for m in Model::TRAINED {
            // Tune the learning rate with clipping, then rerun the best without.
            let mut best: Option<(Run, Net)> = None;
            for &lr in &cfg.lrs {
                let start = Instant::now();
                let (r, net) = train(cfg, m, lr, Some(cfg.clip))?;
                say(format!(
                    "  {:<5} lr {lr:<6} clip {:<4} final val MSE {:.4}  accuracy {:5.1}%  ({:.0} s)",
                    m.name(),
                    cfg.clip,
                    r.final_mse(),
                    r.final_accuracy() * 100.0,
                    start.elapsed().as_secs_f64()
                ));
                for &(s, mse, acc) in &r.curve {
                    let _ = writeln!(adding_csv, "{},{lr},{},{s},{mse},{acc}", m.name(), cfg.clip);
                }
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| r.rank_key() < b.rank_key())
                {
                    best = Some((r, net));
                }
            }
            let (best, net) = best.expect("at least one learning rate");
            let (unclipped, _) = train(cfg, m, best.lr, None)?;
            say(format!(
                "  {:<5} lr {:<6} no clip  final val MSE {:.4}  accuracy {:5.1}%",
                m.name(),
                best.lr,
                unclipped.final_mse(),
                unclipped.final_accuracy() * 100.0
            ));
            for &(s, mse, acc) in &unclipped.curve {
                let _ = writeln!(adding_csv, "{},{},none,{s},{mse},{acc}", m.name(), best.lr);
            }
            let n = gradient_norms(&net, dev, cfg.seq_len, 16, &mut Rng::new(cfg.seed + 7))?;
            for (d, v) in n.iter().enumerate() {
                let _ = writeln!(csv, "trained,{},,{},{v:e}", m.name(), d + 1);
            }
            trained.push((m, n.clone()));
            gradients.push((None, m, n));
            runs.push(best);
            runs.push(unclipped);
        }
        figure(
            &cfg.out,
            "gradients_trained.png",
            gradient_figure("Gradient norm against distance after training", &trained),
        )?;
        let points: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .map(|r| {
                r.curve
                    .iter()
                    .map(|&(s, _, a)| (s as f64, 100.0 * f64::from(a)))
                    .collect()
            })
            .collect();
        let labels: Vec<String> = runs
            .iter()
            .map(|r| match r.clip {
                Some(c) => format!("{}, lr {}, clipped at {c}", r.model.label(), r.lr),
                None => format!("{}, lr {}, unclipped", r.model.label(), r.lr),
            })
            .collect();
        let lines: Vec<plot::Line<'_>> = runs
            .iter()
            .zip(&points)
            .zip(&labels)
            .map(|((r, p), l)| plot::Line {
                label: l,
                points: p,
                color: r.model.colour(r.clip.is_none()),
            })
            .collect();
        figure(
            &cfg.out,
            "adding_accuracy.png",
            plot::Chart {
                title: &format!(
                    "The adding problem, T = {}: validation accuracy",
                    cfg.seq_len
                ),
                x: "training step",
                y: "validation accuracy (%, |error| < 0.1)",
                log_y: false,
                legend: plotters::chart::SeriesLabelPosition::LowerRight,
            }
            .png(&lines, 720, 440),
        )?;
        write(&cfg.out, "adding.csv", adding_csv.as_bytes())?;
    }
    write(&cfg.out, "gradient_norms.csv", csv.as_bytes())?;
    Ok(Report {
        gradients,
        runs,
        update,
    })
}

/// The table `main` prints: ‖∂L/∂h_t‖ at a few distances.
pub fn table(report: &Report, seq_len: usize) -> String {
    let ds: Vec<usize> = [1, 10, 25, 50, 100]
        .into_iter()
        .filter(|&d| d <= seq_len)
        .collect();
    let mut s = format!("{:<10} {:<8}", "model", "radius");
    for d in &ds {
        let _ = write!(s, " {:>10}", format!("d={d}"));
    }
    s.push('\n');
    for (rho, m, n) in &report.gradients {
        let r = rho.map_or("trained".to_string(), |r| r.to_string());
        let _ = write!(s, "{:<10} {:<8}", m.name(), r);
        for &d in &ds {
            let _ = write!(s, " {:>10.2e}", n[d - 1]);
        }
        s.push('\n');
    }
    s
}

/// Why plain RNNs forget: gradient norms against distance, and the adding problem, for a
/// tanh RNN, an LSTM and a GRU.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    device: cli::DeviceArgs,
    /// Hidden units of every cell.
    #[arg(long, default_value_t = Config::default().hidden, value_parser = cli::count)]
    hidden: usize,
    /// T of the gradient measurement and of the adding problem.
    #[arg(long, default_value_t = Config::default().seq_len, value_parser = cli::count)]
    seq_len: usize,
    /// Training steps per run of the adding problem (0: skip the training experiment).
    #[arg(long, default_value_t = Config::default().steps)]
    steps: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = Config::default().batch, value_parser = cli::count)]
    batch: usize,
    /// Gradient-norm clip of the clipped runs.
    #[arg(long, default_value_t = Config::default().clip)]
    clip: f32,
    /// Learning rates tried for each cell, comma separated.
    #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = Config::default().lrs)]
    lrs: Vec<f32>,
    /// Seed of the data, the weights and the batch order.
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
    /// Folder for the CSVs and figures.
    #[arg(long, default_value_os_t = Config::default().out.expect("the default run writes its figures"))]
    out: PathBuf,
}

#[allow(dead_code)]
fn main() {
    cli::main(try_main)
}

fn try_main() -> timeloom::Result<()> {
    let args = cli::parse::<Cli>();
    let cfg = Config {
        device: args.device.open()?,
        hidden: args.hidden,
        seq_len: args.seq_len,
        steps: args.steps,
        batch: args.batch,
        clip: args.clip,
        lrs: args.lrs,
        seed: args.seed,
        out: Some(args.out),
        ..Config::default()
    };
    println!(
        "device: {}; hidden {}; T = {}",
        cfg.device, cfg.hidden, cfg.seq_len
    );
    let start = Instant::now();
    let report = run(&cfg)?;
    println!("\n‖∂L/∂h_t‖ at distance d = T − t (RMS over 16 sequences):");
    print!("{}", table(&report, cfg.seq_len));
    let (g, u, uc) = report.update;
    println!(
        "\nexploding (tanh RNN, ρ = 1.5): gradient norm {g:.3e}; one SGD step (lr 0.1) moves the weights by {u:.3e}, with clipping at {} by {uc:.3e}",
        cfg.clip
    );
    if !report.runs.is_empty() {
        println!(
            "\nadding problem, T = {} ({} steps, batch {}, Adam):",
            cfg.seq_len, cfg.steps, cfg.batch
        );
        for r in &report.runs {
            println!(
                "  {:<5} lr {:<6} clip {:<5} test MSE {:.4}  accuracy {:5.1}%",
                r.model.name(),
                r.lr,
                r.clip.map_or("none".to_string(), |c| c.to_string()),
                r.test.0,
                r.test.1 * 100.0
            );
        }
    }
    if let Some(out) = &cfg.out {
        println!("wrote figures and CSVs to {}", out.display());
    }
    println!("{:.0} s in all", start.elapsed().as_secs_f64());
    Ok(())
}
