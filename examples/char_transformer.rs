//! A small decoder-only transformer on tiny Shakespeare, with the same data pipeline as
//! `char_rnn`, and optionally an LSTM of about the same parameter count trained alongside: both
//! validation curves in one PNG (`runs/char_transformer/compare.png`) and samples from each.
//!
//! ```text
//! cargo run --release --example char_transformer                      # transformer only
//! cargo run --release --example char_transformer -- --compare-lstm    # and the LSTM beside it
//! cargo run --release --example char_transformer -- --device cpu --steps 2000 --embed 128 --layers 4
//! cargo run --release --example char_transformer -- --optimizer radam --schedule warmup-cosine
//! ```
//! Model: embedding + sinusoidal positions → N pre-norm blocks (causal multi-head attention,
//! GELU MLP) → LayerNorm → Linear → cross-entropy over every position of each window.
//! Optimizer: AdamW with weight decay 0.1 on the matrices and none on the biases and norm
//! gains (two parameter groups, as PyTorch recipes build it), global-norm clip 1.

#[path = "char_rnn.rs"]
#[allow(dead_code)]
pub mod char_rnn;

use std::path::PathBuf;
use std::time::Instant;

use char_rnn::optim_flags::{OptimizerChoice, ScheduleChoice};
use char_rnn::{cli, Batcher, Config, Corpus, Trainer};
use clap::Parser;
use timeloom::nn::{Embedding, LayerNorm, Linear, Module, TransformerBlock};
use timeloom::{
    no_grad, sinusoidal_positions, CrossEntropy, DType, Device, Error, Optimizer, Rng,
    SampleOptions, Tensor,
};

/// The transformer's shape and training.
#[derive(Clone, Debug)]
pub struct TfConfig {
    pub embed: usize,
    pub heads: usize,
    pub layers: usize,
    pub batch: usize,
    pub seq_len: usize,
    pub steps: usize,
    pub lr: f32,
    pub optimizer: OptimizerChoice,
    pub schedule: ScheduleChoice,
    /// Weight decay on the matrices (none on biases and norm gains); `None`: 0.1 for AdamW,
    /// 0 for the others (whose decay is L2).
    pub weight_decay: Option<f32>,
    pub seed: u64,
    pub eval_every: usize,
    pub quiet: bool,
}

impl Default for TfConfig {
    fn default() -> Self {
        TfConfig {
            embed: 64,
            heads: 4,
            layers: 2,
            batch: 16,
            seq_len: 64,
            steps: 400,
            lr: 3e-3,
            optimizer: OptimizerChoice::Adamw,
            schedule: ScheduleChoice::Constant,
            weight_decay: None,
            seed: 0,
            eval_every: 100,
            quiet: false,
        }
    }
}

/// Embedding + positions → blocks → LayerNorm → Linear.
pub struct CharTransformer {
    pub embedding: Embedding,
    pub blocks: Vec<TransformerBlock>,
    pub norm: LayerNorm,
    pub head: Linear,
    pub positions: Tensor,
    pub vocab: usize,
    pub device: Device,
}

impl CharTransformer {
    pub fn new(
        cfg: &TfConfig,
        vocab: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<CharTransformer, Error> {
        let blocks = (0..cfg.layers)
            .map(|_| TransformerBlock::new(device, cfg.embed, cfg.heads, true, rng))
            .collect::<Result<_, _>>()?;
        Ok(CharTransformer {
            embedding: Embedding::new(device, vocab, cfg.embed, rng)?,
            blocks,
            norm: LayerNorm::new(device, cfg.embed)?,
            head: Linear::new(device, cfg.embed, vocab, rng)?,
            positions: Tensor::from_slice(
                device,
                &sinusoidal_positions(cfg.seq_len, cfg.embed),
                &[cfg.seq_len, cfg.embed],
            )?,
            vocab,
            device: device.clone(),
        })
    }

    /// A copy with every parameter in `dtype`: f16 for inference at half the parameter memory
    /// (weights widened as the kernels load them; activations and sums f32).
    pub fn to_dtype(&self, dtype: DType) -> Result<CharTransformer, Error> {
        Ok(CharTransformer {
            embedding: self.embedding.to_dtype(dtype)?,
            blocks: self
                .blocks
                .iter()
                .map(|b| b.to_dtype(dtype))
                .collect::<Result<_, _>>()?,
            norm: self.norm.to_dtype(dtype)?,
            head: self.head.to_dtype(dtype)?,
            positions: self.positions.clone(),
            vocab: self.vocab,
            device: self.device.clone(),
        })
    }

    pub fn parameters(&self) -> Vec<Tensor> {
        let mut v = self.embedding.parameters();
        for b in &self.blocks {
            v.extend(b.parameters());
        }
        v.extend(self.norm.parameters());
        v.extend(self.head.parameters());
        v
    }

    /// Logits [B·L, V] for ids [B, L] (batch-major, L ≤ the configured context).
    pub fn forward(&self, ids: &[u32], batch: usize, len: usize) -> Result<Tensor, Error> {
        let ids: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
        self.forward_ids(&Tensor::from_slice(&self.device, &ids, &[batch, len])?)
    }

    /// [`CharTransformer::forward`] from ids [B, L] already on the device (class ids as f32).
    pub fn forward_ids(&self, ids: &Tensor) -> Result<Tensor, Error> {
        let (batch, len) = (ids.shape()[0], ids.shape()[1]);
        let mut h = self
            .embedding
            .forward(ids)?
            .add(&self.positions.narrow(0, 0, len)?)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        let e = h.shape()[2];
        self.head
            .forward(&self.norm.forward(&h)?.reshape(&[batch * len, e])?)
    }
}

/// Time-major windows (t, b) from the batcher, reordered batch-major (b, t).
fn batch_major(x: &[u32], t: usize, b: usize) -> Vec<u32> {
    (0..b)
        .flat_map(|bi| (0..t).map(move |ti| x[ti * b + bi]))
        .collect()
}

pub fn val_loss(
    model: &CharTransformer,
    corpus: &Corpus,
    cfg: &TfConfig,
    windows: usize,
) -> Result<f32, Error> {
    let mut b = Batcher::new(corpus.val(), cfg.batch.min(8), cfg.seq_len)?;
    let n = b.windows_per_epoch().min(windows);
    let mut total = 0.0;
    for _ in 0..n {
        let (x, y, _) = b.next_window();
        let (x, y) = (
            batch_major(&x, b.steps, b.rows),
            batch_major(&y, b.steps, b.rows),
        );
        let targets: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let loss = no_grad(|| -> Result<Tensor, Error> {
            let t = Tensor::from_slice(&model.device, &targets, &[targets.len()])?;
            CrossEntropy::new().compute(&model.forward(&x, b.rows, b.steps)?, &t)
        })?;
        total += loss.read_blocking()?[0];
    }
    Ok(total / n.max(1) as f32)
}

/// The optimizer PyTorch recipes build for a transformer: weight decay on the matrices (the
/// embedding included), none on biases and LayerNorm gains and shifts (parameter group 1),
/// and a global-norm clip of 1.
pub fn make_optimizer(model: &CharTransformer, cfg: &TfConfig, per_epoch: usize) -> Optimizer {
    let decoupled = matches!(
        cfg.optimizer,
        OptimizerChoice::Adamw | OptimizerChoice::AdamwAmsgrad
    );
    let decay = cfg
        .weight_decay
        .unwrap_or(if decoupled { 0.1 } else { 0.0 });
    let (matrices, vectors) = timeloom::optim::split_decay(model.parameters());
    cfg.optimizer
        .build_with_no_decay_group(matrices, vectors, cfg.lr, decay)
        .schedule(cfg.schedule.schedule(cfg.steps, per_epoch, 1.0))
        .clip_grad_norm(1.0)
}

/// Trains the transformer; returns (step, train loss, validation loss) at each evaluation.
pub fn train(
    model: &CharTransformer,
    corpus: &Corpus,
    cfg: &TfConfig,
) -> Result<Vec<(usize, f32, f32)>, Error> {
    let mut batcher = Batcher::new(corpus.train(), cfg.batch, cfg.seq_len)?;
    let mut opt = make_optimizer(model, cfg, batcher.windows_per_epoch());
    let mut plateau = cfg.schedule.plateau();
    let mut curve = Vec::new();
    let start = Instant::now();
    for step in 1..=cfg.steps {
        let (x, y, _) = batcher.next_window();
        let (x, y) = (
            batch_major(&x, cfg.seq_len, cfg.batch),
            batch_major(&y, cfg.seq_len, cfg.batch),
        );
        let targets: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let targets = Tensor::from_slice(&model.device, &targets, &[targets.len()])?;
        opt.zero_grad();
        let loss =
            CrossEntropy::new().compute(&model.forward(&x, cfg.batch, cfg.seq_len)?, &targets)?;
        loss.backward()?;
        opt.step()?;
        if step % cfg.eval_every == 0 || step == cfg.steps {
            let train = loss.read_blocking()?[0];
            let val = val_loss(model, corpus, cfg, 10)?;
            if !cfg.quiet {
                let rate = (step * cfg.batch * cfg.seq_len) as f64 / start.elapsed().as_secs_f64();
                println!("transformer step {step:>5}  train {train:.4}  validation {val:.4}  ({rate:.0} chars/s)");
            }
            if let Some(p) = &mut plateau {
                if p.report(&mut opt, val) && !cfg.quiet {
                    println!("validation loss on a plateau: rate now {:.2e}", opt.lr());
                }
            }
            curve.push((step, train, val));
        }
    }
    Ok(curve)
}

/// Samples `length` characters after `prime`, with the last `seq_len` characters as context:
/// each drawn on the model's device (`Tensor::sample_categorical`, seeded from `rng`), the
/// context window kept there, one readback at the end, so `length` characters cost one
/// submission on the GPU instead of one of each per character.
pub fn sample(
    model: &CharTransformer,
    corpus: &Corpus,
    cfg: &TfConfig,
    prime: &str,
    temperature: f32,
    length: usize,
    rng: &mut Rng,
) -> Result<String, Error> {
    let prime_ids = corpus.encode(if prime.is_empty() { "\n" } else { prime })?;
    let seed = rng.next_u64();
    no_grad(|| {
        // The context window lives on the device: each drawn id is appended there (the oldest
        // dropped once the window is full), so the whole generation is recorded before
        // anything is read.
        let start: Vec<f32> = prime_ids[prime_ids.len().saturating_sub(cfg.seq_len)..]
            .iter()
            .map(|&i| i as f32)
            .collect();
        let mut window = Tensor::from_slice(&model.device, &start, &[start.len()])?;
        let mut drawn = Vec::with_capacity(length);
        for step in 0..length {
            let len = window.shape()[0];
            let logits = model.forward_ids(&window.reshape(&[1, len])?)?;
            let options = SampleOptions {
                temperature,
                seed,
                counter: step as u32,
                ..SampleOptions::default()
            };
            let id = logits.narrow(0, len - 1, 1)?.sample_categorical(&options)?;
            let kept = if len == cfg.seq_len {
                window.narrow(0, 1, len - 1)?
            } else {
                window
            };
            window = Tensor::cat0(&[&kept, &id])?;
            drawn.push(id);
        }
        let mut ids = prime_ids;
        if !drawn.is_empty() {
            let parts: Vec<&Tensor> = drawn.iter().collect();
            ids.extend(
                Tensor::cat0(&parts)?
                    .read_blocking()?
                    .iter()
                    .map(|&i| i as u32),
            );
        }
        Ok(corpus.decode(&ids))
    })
}

/// A small decoder-only transformer on tiny Shakespeare, optionally beside an LSTM of about the
/// same parameter count; both validation curves in runs/char_transformer/compare.png.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    device: cli::DeviceArgs,
    /// Also train an LSTM of about the same parameter count and plot both curves.
    #[arg(long)]
    compare_lstm: bool,
    /// Width of the embedding and of every block.
    #[arg(long, default_value_t = TfConfig::default().embed, value_parser = cli::count)]
    embed: usize,
    /// Attention heads per block.
    #[arg(long, default_value_t = TfConfig::default().heads, value_parser = cli::count)]
    heads: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = TfConfig::default().layers, value_parser = cli::count)]
    layers: usize,
    /// Windows per step.
    #[arg(long, default_value_t = TfConfig::default().batch, value_parser = cli::count)]
    batch: usize,
    /// Characters per window (the context).
    #[arg(long, default_value_t = TfConfig::default().seq_len, value_parser = cli::count)]
    seq_len: usize,
    /// Training steps.
    #[arg(long, default_value_t = TfConfig::default().steps)]
    steps: usize,
    /// The base learning rate.
    #[arg(long, default_value_t = TfConfig::default().lr)]
    lr: f32,
    /// The update rule (PyTorch's defaults for everything else).
    #[arg(long, value_enum, default_value_t = TfConfig::default().optimizer)]
    optimizer: OptimizerChoice,
    /// How the rate changes over the run (`step` decays by nothing here: the same as constant).
    #[arg(long, value_enum, default_value_t = TfConfig::default().schedule)]
    schedule: ScheduleChoice,
    /// Weight decay on the matrices; biases and norm gains get none [default: 0.1 for adamw,
    /// 0 for the others, whose decay is L2].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = TfConfig::default().seed)]
    seed: u64,
    /// Steps between validation losses.
    #[arg(long, default_value_t = TfConfig::default().eval_every, value_parser = cli::count)]
    eval_every: usize,
}

#[allow(dead_code)]
fn main() {
    cli::main(try_main)
}

fn try_main() -> Result<(), Error> {
    let args = cli::parse::<Cli>();
    let cfg = TfConfig {
        embed: args.embed,
        heads: args.heads,
        layers: args.layers,
        batch: args.batch,
        seq_len: args.seq_len,
        steps: args.steps,
        lr: args.lr,
        optimizer: args.optimizer,
        schedule: args.schedule,
        weight_decay: args.weight_decay,
        seed: args.seed,
        eval_every: args.eval_every,
        ..TfConfig::default()
    };
    let compare = args.compare_lstm;
    let dev = args.device.open()?;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/tinyshakespeare.txt"
    ))
    .map_err(|source| Error::Io {
        path: "data/tinyshakespeare.txt".into(),
        source,
    })?;
    let corpus = Corpus::new(&text)?;
    let model = CharTransformer::new(&cfg, corpus.vocab.len(), &dev, &mut Rng::new(cfg.seed))?;
    let n_params: usize = model.parameters().iter().map(Tensor::numel).sum();
    println!(
        "transformer: {} layers, width {}, {} heads, {n_params} parameters",
        cfg.layers, cfg.embed, cfg.heads
    );
    let curve = train(&model, &corpus, &cfg)?;
    let mut series = vec![(
        curve
            .iter()
            .map(|&(s, _, v)| (s as f64, f64::from(v)))
            .collect::<Vec<_>>(),
        [220, 80, 40],
    )];
    println!(
        "----- transformer sample -----\n{}",
        sample(&model, &corpus, &cfg, "ROMEO:", 0.8, 200, &mut Rng::new(1))?
    );
    // The trained model as f16 (inference at half the parameter memory), against itself.
    let half = model.to_dtype(DType::F16)?;
    let bytes = |m: &CharTransformer| -> usize {
        m.parameters()
            .iter()
            .map(|t| t.numel() * t.dtype().size())
            .sum()
    };
    println!(
        "f16 copy: {} parameter bytes (f32: {}); validation loss {:.4} (f32: {:.4})",
        bytes(&half),
        bytes(&model),
        val_loss(&half, &corpus, &cfg, 20)?,
        val_loss(&model, &corpus, &cfg, 20)?
    );
    println!(
        "----- f16 copy's sample -----\n{}",
        sample(&half, &corpus, &cfg, "ROMEO:", 0.8, 200, &mut Rng::new(1))?
    );
    if compare {
        // An LSTM with about the same number of parameters: 4·H·(V + H + 2) + H·V + V ≈ n_params.
        let v = corpus.vocab.len() as f64;
        let h = ((-(5.0 * v + 8.0)
            + ((5.0 * v + 8.0).powi(2) + 16.0 * (n_params as f64 - v)).sqrt())
            / 8.0)
            .round() as usize;
        let rnn_cfg = Config {
            hidden: h,
            batch: cfg.batch,
            seq_len: cfg.seq_len,
            steps: cfg.steps,
            eval_every: cfg.eval_every,
            sample_every: 0,
            checkpoint_every: 0,
            quiet: true,
            lr: cfg.lr,
            ..Config::default()
        };
        let mut lstm = Trainer::new(rnn_cfg, &text, &dev)?;
        let lstm_params: usize = lstm
            .model
            .named_parameters()
            .iter()
            .map(|(_, t)| t.numel())
            .sum();
        println!("LSTM: hidden {h}, {lstm_params} parameters");
        let mut lstm_curve = Vec::new();
        while lstm.step < cfg.steps {
            let loss = lstm.train_step()?;
            if lstm.step % cfg.eval_every == 0 || lstm.step == cfg.steps {
                let (train, val) = (loss.read_blocking()?[0], lstm.val_loss(10)?);
                println!(
                    "LSTM        step {:>5}  train {train:.4}  validation {val:.4}",
                    lstm.step
                );
                lstm_curve.push((lstm.step as f64, f64::from(val)));
            }
        }
        series.push((lstm_curve, [70, 110, 200]));
        println!(
            "----- LSTM sample -----\n{}",
            char_rnn::sample(
                &lstm.model,
                &lstm.corpus,
                "ROMEO:",
                0.8,
                0,
                200,
                &mut Rng::new(1)
            )?
        );
    }
    // Under the current directory, as every example writes.
    let dir = PathBuf::from("runs/char_transformer");
    let names = ["transformer", "LSTM"];
    let lines: Vec<char_rnn::plot::Line<'_>> = series
        .iter()
        .zip(names)
        .map(|((s, c), label)| char_rnn::plot::Line {
            label,
            points: s,
            color: *c,
        })
        .collect();
    let chart = char_rnn::plot::Chart {
        title: "Character-level models on tiny Shakespeare: validation loss",
        x: "training step",
        y: "cross-entropy (nats per character)",
        log_y: false,
        legend: plotters::chart::SeriesLabelPosition::UpperRight,
    };
    char_rnn::plot::save(&dir, "compare.png", chart.png(&lines, 800, 420))?;
    println!("wrote {}", dir.join("compare.png").display());
    Ok(())
}
