//! char-rnn: a character-level language model on tiny Shakespeare (data/tinyshakespeare.txt),
//! trained with truncated BPTT, that prints samples as it learns.
//!
//! ```text
//! cargo run --release --example char_rnn                         # the default run (a few minutes)
//! cargo run --release --example char_rnn -- --device cpu         # the same on the CPU twins
//! cargo run --release --example char_rnn -- --hidden 256 --layers 2 --steps 5000 --dropout 0.2
//! cargo run --release --example char_rnn -- --sample-only --checkpoint runs/default/checkpoint.safetensors \
//!     --prime "ROMEO:" --temperature 0.8 --top-k 10 --length 500 --seed 1
//! cargo run --release --example char_rnn -- --sample-only --checkpoint runs/default/checkpoint.safetensors \
//!     --precision f16                                            # from a half-precision copy
//! cargo run --release --example char_rnn -- --resume runs/default/checkpoint.safetensors --steps 2000
//! ```
//! Ctrl-C saves a checkpoint after the current step and exits; `--resume` continues from it.
//!
//! Data, exactly (so runs compare with other implementations): the vocabulary is the file's
//! distinct characters sorted by code point; the first 90% of characters train, the rest
//! validate; the training stream is cut into B rows, row b starting at b·⌊N/B⌋; each step takes
//! the next T characters of every row as inputs and the same window shifted by one as targets;
//! the hidden state is carried across windows, detached, and reset at each epoch; the loss is the
//! mean cross-entropy over B·T. Model: one-hot → stacked LSTM/GRU/RNN → Linear → cross-entropy.
//! Parameters are named `rnn.weight_ih_l0`, … (PyTorch's, under `rnn.`), `decoder.weight`,
//! `decoder.bias`, so the same model trains in PyTorch from the same file (`--init`).

#[path = "common/plot.rs"]
pub mod plot;

#[path = "common/cli.rs"]
pub mod cli;

#[path = "common/progress.rs"]
pub mod progress;

#[path = "common/optim_flags.rs"]
pub mod optim_flags;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::Parser;
use optim_flags::{OptimizerChoice, ScheduleChoice};
use timeloom::io::{serialize, write_atomic, Weights};
use timeloom::nn::{CellKind, Linear, Module, Recurrent};
use timeloom::{
    embedding, no_grad, CrossEntropy, DType, Device, Error, Optimizer, ReduceOnPlateau, Rng,
    SampleOptions, Tensor,
};

/// The text as ids over a sorted vocabulary, split 90/10 by character index.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub vocab: Vec<char>,
    pub ids: Vec<u32>,
    pub train_len: usize,
}

impl Corpus {
    pub fn new(text: &str) -> Result<Corpus, Error> {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        if vocab.is_empty() {
            return Err(Error::Format {
                what: "text".into(),
                message: "is empty".into(),
            });
        }
        let index: HashMap<char, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        let ids: Vec<u32> = text.chars().map(|c| index[&c]).collect();
        let train_len = ids.len() * 9 / 10;
        Ok(Corpus {
            vocab,
            ids,
            train_len,
        })
    }

    pub fn train(&self) -> &[u32] {
        &self.ids[..self.train_len]
    }

    pub fn val(&self) -> &[u32] {
        &self.ids[self.train_len..]
    }

    pub fn encode(&self, s: &str) -> Result<Vec<u32>, Error> {
        s.chars()
            .map(|c| {
                self.vocab
                    .binary_search(&c)
                    .map(|i| i as u32)
                    .map_err(|_| Error::InvalidArgument {
                        op: "char_rnn",
                        message: format!("{c:?} is not in the training text's vocabulary"),
                    })
            })
            .collect()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(|&i| self.vocab[i as usize]).collect()
    }
}

/// Windows of T characters from B contiguous rows of a stream.
#[derive(Clone, Debug)]
pub struct Batcher {
    data: Vec<u32>,
    pub rows: usize,
    pub steps: usize,
    pub row_len: usize,
    /// The next window's index within the epoch.
    pub pos: usize,
}

impl Batcher {
    pub fn new(data: &[u32], rows: usize, steps: usize) -> Result<Batcher, Error> {
        let row_len = data.len() / rows.max(1);
        if rows == 0 || steps == 0 || row_len < steps + 1 {
            return Err(Error::InvalidArgument {
                op: "char_rnn",
                message: format!(
                    "{} characters do not fill {rows} rows of {} + 1",
                    data.len(),
                    steps
                ),
            });
        }
        Ok(Batcher {
            data: data.to_vec(),
            rows,
            steps,
            row_len,
            pos: 0,
        })
    }

    /// Row b starts at b·⌊N/B⌋.
    pub fn row_start(&self, b: usize) -> usize {
        b * self.row_len
    }

    pub fn windows_per_epoch(&self) -> usize {
        (self.row_len - 1) / self.steps
    }

    /// The next window: inputs and targets [T·B], time-major (t, b), and whether it starts an
    /// epoch (the caller then resets the hidden state).
    pub fn next_window(&mut self) -> (Vec<u32>, Vec<u32>, bool) {
        if self.pos >= self.windows_per_epoch() {
            self.pos = 0;
        }
        let starts_epoch = self.pos == 0;
        let mut x = Vec::with_capacity(self.rows * self.steps);
        let mut y = Vec::with_capacity(self.rows * self.steps);
        for t in 0..self.steps {
            for b in 0..self.rows {
                let i = self.row_start(b) + self.pos * self.steps + t;
                x.push(self.data[i]);
                y.push(self.data[i + 1]);
            }
        }
        self.pos += 1;
        (x, y, starts_epoch)
    }
}

/// Everything a run is, on the command line and in a checkpoint.
#[derive(Clone, Debug)]
pub struct Config {
    pub cell: CellKind,
    pub layers: usize,
    pub hidden: usize,
    pub dropout: f32,
    pub batch: usize,
    pub seq_len: usize,
    pub steps: usize,
    pub lr: f32,
    pub lr_decay: f32,
    pub clip: f32,
    /// An `--optimizer` value.
    pub optimizer: String,
    /// A `--schedule` value.
    pub schedule: String,
    pub seed: u64,
    pub eval_every: usize,
    pub sample_every: usize,
    pub checkpoint_every: usize,
    pub name: String,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cell: CellKind::Lstm,
            layers: 1,
            hidden: 128,
            dropout: 0.0,
            batch: 32,
            seq_len: 32,
            steps: 500,
            lr: 4e-3,
            lr_decay: 0.97,
            clip: 5.0,
            optimizer: "adam".into(),
            schedule: "step".into(),
            seed: 0,
            eval_every: 100,
            sample_every: 250,
            checkpoint_every: 250,
            name: "default".into(),
            quiet: false,
        }
    }
}

fn cell_name(c: CellKind) -> &'static str {
    match c {
        CellKind::Lstm => "lstm",
        CellKind::Gru => "gru",
        CellKind::RnnTanh => "rnn",
        CellKind::RnnRelu => "rnn_relu",
        CellKind::GruResetBefore => "gru_reset_before",
    }
}

/// One-hot → recurrent stack → Linear.
pub struct CharModel {
    pub rnn: Recurrent,
    pub decoder: Linear,
    pub vocab: usize,
    pub device: Device,
}

/// The carried hidden state (h, c).
pub type State = Option<(Tensor, Option<Tensor>)>;

impl CharModel {
    pub fn new(
        cfg: &Config,
        vocab: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<CharModel, Error> {
        let builder = match cfg.cell {
            CellKind::Lstm => Recurrent::lstm(vocab, cfg.hidden),
            CellKind::Gru => Recurrent::gru(vocab, cfg.hidden),
            CellKind::RnnTanh => Recurrent::rnn(vocab, cfg.hidden),
            CellKind::RnnRelu => Recurrent::rnn_relu(vocab, cfg.hidden),
            CellKind::GruResetBefore => Recurrent::gru_reset_before(vocab, cfg.hidden),
        };
        let rnn = builder
            .layers(cfg.layers)
            .dropout(cfg.dropout)
            .build(device, rng)?;
        let decoder = Linear::new(device, cfg.hidden, vocab, rng)?;
        Ok(CharModel {
            rnn,
            decoder,
            vocab,
            device: device.clone(),
        })
    }

    /// A copy with every parameter in `dtype`: f16 for inference at half the parameter memory
    /// (the kernels widen the weights as they load them; sums and outputs stay f32).
    pub fn to_dtype(&self, dtype: DType) -> Result<CharModel, Error> {
        Ok(CharModel {
            rnn: self.rnn.to_dtype(dtype)?,
            decoder: self.decoder.to_dtype(dtype)?,
            vocab: self.vocab,
            device: self.device.clone(),
        })
    }

    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .rnn
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("rnn.{n}"), t))
            .collect();
        v.extend(
            self.decoder
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (format!("decoder.{n}"), t)),
        );
        v
    }

    /// Logits [T·B, V] for ids [T·B] (time-major) from `state`, and the new state.
    pub fn forward(
        &self,
        ids: &[u32],
        steps: usize,
        batch: usize,
        state: &State,
    ) -> Result<(Tensor, State), Error> {
        let mut onehot = vec![0.0f32; ids.len() * self.vocab];
        for (k, &i) in ids.iter().enumerate() {
            onehot[k * self.vocab + i as usize] = 1.0;
        }
        let x = Tensor::from_slice(&self.device, &onehot, &[steps, batch, self.vocab])?;
        self.forward_onehot(&x, steps, batch, state)
    }

    /// [`CharModel::forward`] from one-hot rows x [T, B, V] already on the device.
    pub fn forward_onehot(
        &self,
        x: &Tensor,
        steps: usize,
        batch: usize,
        state: &State,
    ) -> Result<(Tensor, State), Error> {
        let st = state.as_ref().map(|(h, c)| (h, c.as_ref()));
        let out = self.rnn.forward_with(x, st, None)?;
        let hdim = out.output.shape()[2];
        let logits = self
            .decoder
            .forward(&out.output.reshape(&[steps * batch, hdim])?)?;
        Ok((logits, Some((out.h_n, out.c_n))))
    }
}

fn detach(state: &State) -> State {
    state
        .as_ref()
        .map(|(h, c)| (h.detach(), c.as_ref().map(Tensor::detach)))
}

/// A training run's state: everything a checkpoint holds.
pub struct Trainer {
    pub cfg: Config,
    pub corpus: Corpus,
    pub model: CharModel,
    pub opt: Optimizer,
    /// With `--schedule plateau`: the rule the validation losses are reported to.
    pub plateau: Option<ReduceOnPlateau>,
    pub batcher: Batcher,
    pub rng: Rng,
    pub state: State,
    pub step: usize,
}

fn make_optimizer(cfg: &Config, params: Vec<Tensor>, per_epoch: usize) -> Result<Optimizer, Error> {
    let schedule = ScheduleChoice::parse(&cfg.schedule)?;
    let mut opt = OptimizerChoice::parse(&cfg.optimizer)?
        .build(params, cfg.lr)
        .schedule(schedule.schedule(cfg.steps, per_epoch, cfg.lr_decay));
    if cfg.clip > 0.0 {
        opt = opt.clip_grad_norm(cfg.clip);
    }
    Ok(opt)
}

impl Trainer {
    pub fn new(cfg: Config, text: &str, device: &Device) -> Result<Trainer, Error> {
        let corpus = Corpus::new(text)?;
        let mut rng = Rng::new(cfg.seed);
        let model = CharModel::new(&cfg, corpus.vocab.len(), device, &mut rng)?;
        let batcher = Batcher::new(corpus.train(), cfg.batch, cfg.seq_len)?;
        let opt = make_optimizer(
            &cfg,
            model
                .named_parameters()
                .into_iter()
                .map(|(_, t)| t)
                .collect(),
            batcher.windows_per_epoch(),
        )?;
        Ok(Trainer {
            plateau: ScheduleChoice::parse(&cfg.schedule)?.plateau(),
            cfg,
            corpus,
            model,
            opt,
            batcher,
            rng,
            state: None,
            step: 0,
        })
    }

    /// One training step; returns the loss as a device scalar (read it when you want it).
    pub fn train_step(&mut self) -> Result<Tensor, Error> {
        let (x, y, new_epoch) = self.batcher.next_window();
        if new_epoch {
            self.state = None;
        }
        let (t, b) = (self.cfg.seq_len, self.cfg.batch);
        let targets: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let targets = Tensor::from_slice(&self.model.device, &targets, &[t * b])?;
        self.opt.zero_grad();
        let (logits, state) = self.model.forward(&x, t, b, &self.state)?;
        let loss = CrossEntropy::new().compute(&logits, &targets)?;
        loss.backward()?;
        self.opt.step()?;
        self.state = detach(&state);
        self.step += 1;
        Ok(loss)
    }

    /// Reports a validation loss to the plateau rule (`--schedule plateau`); returns the new
    /// base rate when it lowered it.
    pub fn report_validation(&mut self, val: f32) -> Option<f32> {
        let plateau = self.plateau.as_mut()?;
        plateau.report(&mut self.opt, val).then(|| self.opt.lr())
    }

    /// Mean cross-entropy over (up to `max_windows`) validation windows, state carried, with the
    /// model in evaluation mode (no dropout, and the training run's dropout seed untouched).
    pub fn val_loss(&mut self, max_windows: usize) -> Result<f32, Error> {
        self.model.rnn.set_training(false);
        let loss = self.val_loss_eval(max_windows);
        self.model.rnn.set_training(true);
        loss
    }

    fn val_loss_eval(&self, max_windows: usize) -> Result<f32, Error> {
        let mut b = Batcher::new(self.corpus.val(), self.cfg.batch.min(8), self.cfg.seq_len)?;
        let n = b.windows_per_epoch().min(max_windows);
        let mut state: State = None;
        let mut total = 0.0;
        for _ in 0..n {
            let (x, y, _) = b.next_window();
            let targets: Vec<f32> = y.iter().map(|&v| v as f32).collect();
            let loss = no_grad(|| -> Result<Tensor, Error> {
                let targets = Tensor::from_slice(&self.model.device, &targets, &[targets.len()])?;
                let (logits, st) = self.model.forward(&x, b.steps, b.rows, &state)?;
                state = st;
                CrossEntropy::new().compute(&logits, &targets)
            })?;
            total += loss.read_blocking()?[0];
        }
        Ok(total / n.max(1) as f32)
    }

    /// Saves everything to resume from, atomically: the parameters, the optimizer's state
    /// (`Optimizer::named_state_dict`: `optim.{name}.s1`, `.s2` and its metadata), the carried
    /// hidden state, and the run's position and configuration as metadata.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut tensors = self.model.named_parameters();
        let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
        let opt = self.opt.named_state_dict(&names)?;
        tensors.extend(opt.tensors);
        if let Some((h, c)) = &self.state {
            tensors.push(("state.h".into(), h.clone()));
            if let Some(c) = c {
                tensors.push(("state.c".into(), c.clone()));
            }
        }
        let c = &self.cfg;
        let mut meta: HashMap<String, String> = [
            ("format", "timeloom char_rnn checkpoint 1".to_string()),
            ("step", self.step.to_string()),
            ("batcher_pos", self.batcher.pos.to_string()),
            ("rng", self.rng.state().to_string()),
            ("dropout_seed", self.model.rnn.dropout_seed().to_string()),
            ("cell", cell_name(c.cell).into()),
            ("layers", c.layers.to_string()),
            ("hidden", c.hidden.to_string()),
            ("batch", c.batch.to_string()),
            ("seq_len", c.seq_len.to_string()),
            (
                "vocab",
                self.corpus
                    .decode(&(0..self.corpus.vocab.len() as u32).collect::<Vec<_>>()),
            ),
            ("optimizer", c.optimizer.clone()),
            ("schedule", c.schedule.clone()),
            ("lr", c.lr.to_string()),
            ("seed", c.seed.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        meta.extend(opt.metadata);
        if let Some(p) = &self.plateau {
            meta.extend(p.state_dict());
        }
        write_atomic(path, &serialize(&tensors, Some(meta))?)
    }

    /// Restores a checkpoint written by [`Trainer::save`] for the same configuration and text.
    pub fn restore(&mut self, w: &Weights) -> Result<(), Error> {
        let meta = |k: &str| -> Result<String, Error> {
            w.metadata.get(k).cloned().ok_or_else(|| Error::Format {
                what: format!("{}: metadata `{k}`", w.source),
                message: "missing: not a char_rnn checkpoint".into(),
            })
        };
        let num = |k: &str| -> Result<u64, Error> {
            meta(k)?.parse().map_err(|_| Error::Format {
                what: format!("{}: metadata `{k}`", w.source),
                message: "not a number".into(),
            })
        };
        let c = &self.cfg;
        for (k, want) in [
            ("cell", cell_name(c.cell).to_string()),
            ("layers", c.layers.to_string()),
            ("hidden", c.hidden.to_string()),
            ("batch", c.batch.to_string()),
            ("seq_len", c.seq_len.to_string()),
        ] {
            let got = meta(k)?;
            if got != want {
                return Err(Error::Format {
                    what: format!("{}: `{k}`", w.source),
                    message: format!(
                        "the checkpoint has {got}; this run is configured with {want}"
                    ),
                });
            }
        }
        if meta("vocab")?
            != self
                .corpus
                .decode(&(0..self.corpus.vocab.len() as u32).collect::<Vec<_>>())
        {
            return Err(Error::Format {
                what: w.source.clone(),
                message: "the checkpoint was trained on a text with another vocabulary".into(),
            });
        }
        if meta("optimizer")? != c.optimizer {
            return Err(Error::Format {
                what: format!("{}: `optimizer`", w.source),
                message: format!(
                    "the checkpoint was trained with {}; this run uses {}: its state would not fit",
                    meta("optimizer")?,
                    c.optimizer
                ),
            });
        }
        // Absent from checkpoints written before `--schedule` existed: those used `step`.
        let schedule = w.metadata.get("schedule").map_or("step", String::as_str);
        if schedule != c.schedule {
            return Err(Error::Format {
                what: format!("{}: `schedule`", w.source),
                message: format!(
                    "the checkpoint was trained with --schedule {schedule}; this run uses {}: resume with --schedule {schedule}",
                    c.schedule
                ),
            });
        }
        // Check and parse everything before touching anything: a bad file must not half-load.
        let mut plateau = self.plateau.clone();
        if let Some(p) = &mut plateau {
            p.load_state_dict(&w.metadata)?;
        }
        let (step, pos, rng) = (num("step")?, num("batcher_pos")?, num("rng")?);
        // Absent from checkpoints written before it was saved: keep this run's seed then.
        let dropout_seed = w
            .metadata
            .contains_key("dropout_seed")
            .then(|| num("dropout_seed"))
            .transpose()?;
        let params = self.model.named_parameters();
        for (name, p) in &params {
            w.get(name, p.shape())?;
        }
        let dev = &self.model.device;
        // The carried state has the layer's shape, and a cell state exactly for an LSTM.
        let state_shape = [c.layers, c.batch, c.hidden];
        let lstm = c.cell == CellKind::Lstm;
        let tensor = |k: &str| -> Result<Option<Tensor>, Error> {
            w.tensors
                .get(k)
                .map(|_| Tensor::from_slice(dev, w.get(k, &state_shape)?, &state_shape))
                .transpose()
        };
        let (h, cs) = (tensor("state.h")?, tensor("state.c")?);
        if h.is_some() && cs.is_some() != lstm || h.is_none() && cs.is_some() {
            return Err(Error::Format {
                what: format!("{}: `state.c`", w.source),
                message: "the carried cell state does not match the cell (only an LSTM has one)"
                    .into(),
            });
        }
        // The optimizer checks all of its state before it changes anything, and the parameters'
        // shapes were checked above: past this line nothing is refused.
        let names: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
        self.opt.load_named_state_dict(w, &names)?;
        for (name, p) in &params {
            p.write(w.get(name, p.shape())?)?;
        }
        self.state = h.map(|h| (h, cs));
        self.plateau = plateau;
        self.step = step as usize;
        self.batcher.pos = pos as usize;
        self.rng = Rng::new(rng);
        if let Some(seed) = dropout_seed {
            self.model.rnn.set_dropout_seed(seed);
        }
        Ok(())
    }
}

/// Samples `length` characters after `prime`: temperature-scaled softmax, optionally restricted
/// to the `top_k` likeliest; temperature ≤ 1e-6 is greedy argmax. The whole generation is
/// recorded before anything is read: each token is drawn on the model's device
/// (`Tensor::sample_categorical`, seeded from `rng`) and fed to the next step as a one-hot row
/// (an embedding lookup in the identity), so `length` characters cost one submission and one
/// readback on the GPU instead of one of each per character.
pub fn sample(
    model: &CharModel,
    corpus: &Corpus,
    prime: &str,
    temperature: f32,
    top_k: usize,
    length: usize,
    rng: &mut Rng,
) -> Result<String, Error> {
    let prime_ids = corpus.encode(if prime.is_empty() { "\n" } else { prime })?;
    let seed = rng.next_u64();
    let v = corpus.vocab.len();
    no_grad(|| {
        let (logits, mut state) = model.forward(&prime_ids, prime_ids.len(), 1, &None)?;
        let mut last = logits.narrow(0, prime_ids.len() - 1, 1)?;
        let mut eye = vec![0.0f32; v * v];
        eye.iter_mut().step_by(v + 1).for_each(|e| *e = 1.0);
        let eye = Tensor::from_slice(&model.device, &eye, &[v, v])?;
        let mut drawn = Vec::with_capacity(length);
        for step in 0..length {
            let options = SampleOptions {
                temperature,
                top_k,
                seed,
                counter: step as u32,
            };
            let id = last.sample_categorical(&options)?;
            if step + 1 < length {
                let x = embedding(&eye, &id)?.reshape(&[1, 1, v])?;
                let (logits, st) = model.forward_onehot(&x, 1, 1, &state)?;
                state = st;
                last = logits;
            }
            drawn.push(id);
        }
        let ids: Vec<u32> = if drawn.is_empty() {
            Vec::new()
        } else {
            let parts: Vec<&Tensor> = drawn.iter().collect();
            Tensor::cat0(&parts)?
                .read_blocking()?
                .into_iter()
                .map(|i| i as u32)
                .collect()
        };
        Ok(format!("{prime}{}", corpus.decode(&ids)))
    })
}

fn fmt_secs(s: f64) -> String {
    if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.0}s")
    }
}

/// Set by Ctrl-C: the loop saves a checkpoint after the current step and stops.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// `log.csv`: one row per step, appended as training goes (flushed every few rows and at every
/// validation, so a kill loses at most the rows since the last flush) and continued by a resumed
/// run.
struct Log {
    file: std::io::BufWriter<std::fs::File>,
    unflushed: usize,
}

impl Log {
    const HEADER: &'static str = "step,train_loss,val_loss\n";

    /// The rows of an earlier run at `path` up to step `upto` (a resumed run's checkpoint: rows
    /// a kill left past it are replayed by the steps that follow). Nothing when there is no log.
    fn earlier(path: &Path, upto: usize) -> Vec<(usize, f32, Option<f32>)> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let mut f = line.split(',');
                let step = f.next()?.parse().ok()?;
                let loss = f.next()?.parse().ok()?;
                let val = f.next().and_then(|v| v.parse().ok());
                (step <= upto).then_some((step, loss, val))
            })
            .collect()
    }

    /// Starts the log at `path` with `rows` (written whole and atomically), then appends.
    fn start(path: &Path, rows: &[(usize, f32, Option<f32>)]) -> Result<Log, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut text = String::from(Self::HEADER);
        for &row in rows {
            text.push_str(&Self::row(row));
        }
        write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Log {
            file: std::io::BufWriter::new(file),
            unflushed: 0,
        })
    }

    fn row((step, loss, val): (usize, f32, Option<f32>)) -> String {
        format!(
            "{step},{loss},{}\n",
            val.map_or(String::new(), |v| v.to_string())
        )
    }

    /// Writes out what is buffered.
    fn push_flush(&mut self, path: &Path) -> Result<(), Error> {
        self.unflushed = 0;
        self.file.flush().map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Appends a row; flushes every 10 rows, or now with `flush`.
    fn push(
        &mut self,
        row: (usize, f32, Option<f32>),
        flush: bool,
        path: &Path,
    ) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        self.file.write_all(Self::row(row).as_bytes()).map_err(io)?;
        self.unflushed += 1;
        if flush || self.unflushed >= 10 {
            self.file.flush().map_err(io)?;
            self.unflushed = 0;
        }
        Ok(())
    }
}

/// The whole training run with progress, log, plot, samples and checkpoints. A resumed run
/// (`trainer.step` > 0) continues the log and the plot of the run in `out_dir`.
pub fn train(
    trainer: &mut Trainer,
    out_dir: &Path,
) -> Result<Vec<(usize, f32, Option<f32>)>, Error> {
    let cfg = trainer.cfg.clone();
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let log_path = out_dir.join("log.csv");
    let mut history = if trainer.step > 0 {
        Log::earlier(&log_path, trainer.step)
    } else {
        Vec::new()
    };
    let mut log = Log::start(&log_path, &history)?;
    let start = Instant::now();
    let first = trainer.step;
    let chars_per_step = (cfg.batch * cfg.seq_len) as f64;
    let progress =
        (!cfg.quiet).then(|| progress::Progress::new(first as u64, cfg.steps as u64, "steps"));
    let say = |line: String| {
        if let Some(p) = &progress {
            p.println(line);
        }
    };
    while trainer.step < cfg.steps {
        let loss = trainer.train_step()?.read_blocking()?[0];
        let step = trainer.step;
        let done = (step - first) as f64;
        let rate = done * chars_per_step / start.elapsed().as_secs_f64();
        if let Some(p) = &progress {
            p.set(step as u64, format!("loss {loss:.4}  {rate:.0} chars/s"));
        }
        let mut val = None;
        if cfg.eval_every > 0 && (step.is_multiple_of(cfg.eval_every) || step == cfg.steps) {
            let v = trainer.val_loss(20)?;
            val = Some(v);
            say(format!(
                "step {step:>6}  train loss {loss:.4}  validation loss {v:.4}  ({rate:.0} chars/s)"
            ));
            if let Some(lr) = trainer.report_validation(v) {
                say(format!(
                    "step {step:>6}  validation loss on a plateau: rate now {lr:.2e}"
                ));
            }
        }
        history.push((step, loss, val));
        log.push((step, loss, val), val.is_some(), &log_path)?;
        if val.is_some() {
            let train_pts: Vec<(f64, f64)> = history
                .iter()
                .map(|&(s, l, _)| (s as f64, f64::from(l)))
                .collect();
            let val_pts: Vec<(f64, f64)> = history
                .iter()
                .filter_map(|&(s, _, v)| v.map(|v| (s as f64, f64::from(v))))
                .collect();
            let lines = [
                plot::Line {
                    label: "training (one batch)",
                    points: &train_pts,
                    color: [70, 110, 200],
                },
                plot::Line {
                    label: "validation (20 batches)",
                    points: &val_pts,
                    color: [220, 80, 40],
                },
            ];
            let chart = plot::Chart {
                title: &format!(
                    "char_rnn: {} ({} × {} units) on tiny Shakespeare",
                    match cfg.cell {
                        CellKind::Lstm => "LSTM",
                        CellKind::Gru => "GRU",
                        CellKind::GruResetBefore => "GRU (reset before)",
                        CellKind::RnnTanh => "RNN (tanh)",
                        CellKind::RnnRelu => "RNN (ReLU)",
                    },
                    cfg.layers,
                    cfg.hidden
                ),
                x: "training step",
                y: "cross-entropy (nats per character)",
                log_y: false,
                legend: plotters::chart::SeriesLabelPosition::UpperRight,
            };
            plot::save(out_dir, "loss.png", chart.png(&lines, 800, 420))?;
        }
        if cfg.sample_every > 0 && step.is_multiple_of(cfg.sample_every) && !cfg.quiet {
            let mut rng = Rng::new(cfg.seed ^ step as u64);
            // A line break where the text has one, else its first character.
            let vocab = &trainer.corpus.vocab;
            let prime = if vocab.contains(&'\n') {
                '\n'
            } else {
                vocab[0]
            }
            .to_string();
            trainer.model.rnn.set_training(false);
            let text = sample(
                &trainer.model,
                &trainer.corpus,
                &prime,
                0.8,
                0,
                200,
                &mut rng,
            );
            trainer.model.rnn.set_training(true);
            say(format!("----- sample at step {step} -----{}\n-----", text?));
        }
        let interrupted = INTERRUPTED.load(Ordering::Relaxed);
        if interrupted
            || (cfg.checkpoint_every > 0
                && (step.is_multiple_of(cfg.checkpoint_every) || step == cfg.steps))
        {
            // The log first: a kill after the checkpoint must not lose rows up to it, which a
            // resumed run would not replay.
            log.push_flush(&log_path)?;
            trainer.save(&out_dir.join("checkpoint.safetensors"))?;
        }
        if interrupted {
            let line = format!(
                "interrupted at step {step}: saved {}",
                out_dir.join("checkpoint.safetensors").display()
            );
            // Said even when quiet: the user pressed Ctrl-C and should know where the run is.
            match &progress {
                Some(p) => p.println(line),
                None => println!("{line}"),
            }
            break;
        }
    }
    log.push_flush(&log_path)?;
    if let Some(p) = &progress {
        p.finish();
    }
    Ok(history)
}

/// `--cell`: the recurrent layer, by the names the checkpoints record.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CellArg {
    Lstm,
    Gru,
    #[value(name = "gru_reset_before")]
    GruResetBefore,
    Rnn,
    #[value(name = "rnn_relu")]
    RnnRelu,
}

impl From<CellArg> for CellKind {
    fn from(c: CellArg) -> CellKind {
        match c {
            CellArg::Lstm => CellKind::Lstm,
            CellArg::Gru => CellKind::Gru,
            CellArg::GruResetBefore => CellKind::GruResetBefore,
            CellArg::Rnn => CellKind::RnnTanh,
            CellArg::RnnRelu => CellKind::RnnRelu,
        }
    }
}

/// A temperature: finite (0 or below 1e-6 samples greedily).
fn finite(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

/// char-rnn: a character-level language model on tiny Shakespeare, trained with truncated BPTT;
/// Ctrl-C saves a checkpoint that `--resume` continues from.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    device: cli::DeviceArgs,
    /// The text to learn.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/tinyshakespeare.txt"))]
    data: PathBuf,
    /// The recurrent layer.
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    cell: CellArg,
    /// Stacked recurrent layers.
    #[arg(long, default_value_t = Config::default().layers, value_parser = cli::count)]
    layers: usize,
    /// Hidden units per layer.
    #[arg(long, default_value_t = Config::default().hidden, value_parser = cli::count)]
    hidden: usize,
    /// Dropout between stacked layers.
    #[arg(long, default_value_t = Config::default().dropout)]
    dropout: f32,
    /// Rows of text per step (B).
    #[arg(long, default_value_t = Config::default().batch, value_parser = cli::count)]
    batch: usize,
    /// Characters per row per step (T): the truncation length of BPTT.
    #[arg(long, default_value_t = Config::default().seq_len, value_parser = cli::count)]
    seq_len: usize,
    /// Training steps in all (a resumed run counts the steps already taken).
    #[arg(long, default_value_t = Config::default().steps)]
    steps: usize,
    /// Train this many passes over the text instead of `--steps`.
    #[arg(long)]
    epochs: Option<usize>,
    /// Learning rate.
    #[arg(long, default_value_t = Config::default().lr)]
    lr: f32,
    /// Learning-rate factor per epoch (`--schedule step`).
    #[arg(long, default_value_t = Config::default().lr_decay)]
    lr_decay: f32,
    /// Global gradient-norm clip (0: none).
    #[arg(long, default_value_t = Config::default().clip)]
    clip: f32,
    /// The update rule (PyTorch's defaults for everything else).
    #[arg(long, value_enum, default_value_t = OptimizerChoice::Adam)]
    optimizer: OptimizerChoice,
    /// How the rate changes over the run.
    #[arg(long, value_enum, default_value_t = ScheduleChoice::Step)]
    schedule: ScheduleChoice,
    /// Seed of the initialisation, dropout and sampling.
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
    /// Steps between validation losses (0: never).
    #[arg(long, default_value_t = Config::default().eval_every)]
    eval_every: usize,
    /// Steps between printed samples (0: never).
    #[arg(long, default_value_t = Config::default().sample_every)]
    sample_every: usize,
    /// Steps between checkpoints (0: only on Ctrl-C).
    #[arg(long, default_value_t = Config::default().checkpoint_every)]
    checkpoint_every: usize,
    /// The run's name: its folder is runs/NAME under the current directory.
    #[arg(long, default_value_t = Config::default().name)]
    name: String,
    /// The run's folder, instead of runs/NAME.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only sample from `--checkpoint`; no training.
    #[arg(long, requires = "checkpoint")]
    sample_only: bool,
    /// The checkpoint `--sample-only` samples from.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue the run saved in this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start from these weights (safetensors with the model's parameter names, e.g. from PyTorch).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Text the samples start from.
    #[arg(long, default_value = "ROMEO:")]
    prime: String,
    /// Sampling temperature (≤ 1e-6: greedy).
    #[arg(long, default_value_t = 0.8, value_parser = finite)]
    temperature: f32,
    /// Sample from the k likeliest characters only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Characters per sample.
    #[arg(long, default_value_t = 500)]
    length: usize,
    /// Element type of the model's parameters: f16 samples from a half-precision copy (half
    /// the parameter memory; with --sample-only: mixed-precision training is not written yet).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    precision: PrecisionArg,
}

/// `--precision`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
enum PrecisionArg {
    F32,
    F16,
}

#[allow(dead_code)]
fn main() {
    cli::main(try_main)
}

fn try_main() -> Result<(), Error> {
    let args = cli::parse::<Cli>();
    let cfg = Config {
        cell: args.cell.into(),
        layers: args.layers,
        hidden: args.hidden,
        dropout: args.dropout,
        batch: args.batch,
        seq_len: args.seq_len,
        steps: args.steps,
        lr: args.lr,
        lr_decay: args.lr_decay,
        clip: args.clip,
        optimizer: args.optimizer.name(),
        schedule: args.schedule.name(),
        seed: args.seed,
        eval_every: args.eval_every,
        sample_every: args.sample_every,
        checkpoint_every: args.checkpoint_every,
        name: args.name.clone(),
        ..Config::default()
    };
    let Cli {
        data,
        epochs,
        sample_only,
        checkpoint,
        resume,
        init,
        prime,
        temperature,
        top_k,
        length,
        out,
        precision,
        ..
    } = args;
    let text = std::fs::read(&data).map_err(|source| Error::Io {
        path: data.clone(),
        source,
    })?;
    let text = String::from_utf8(text).map_err(|e| Error::Format {
        what: data.display().to_string(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    let dev = args.device.open()?;
    let mut trainer = Trainer::new(cfg.clone(), &text, &dev)?;
    if let Some(e) = epochs {
        trainer.cfg.steps = e * trainer.batcher.windows_per_epoch();
    }
    if sample_only {
        let path = checkpoint.ok_or_else(|| Error::InvalidArgument {
            op: "char_rnn",
            message: "--sample-only needs --checkpoint PATH".into(),
        })?;
        trainer.restore(&timeloom::io::load(&path)?)?;
        trainer.model.rnn.set_training(false);
        if precision == PrecisionArg::F16 {
            trainer.model = trainer.model.to_dtype(DType::F16)?;
        }
        let bytes: usize = trainer
            .model
            .named_parameters()
            .iter()
            .map(|(_, t)| t.numel() * t.dtype().size())
            .sum();
        eprintln!("parameters: {bytes} bytes ({precision:?})");
        let mut rng = Rng::new(cfg.seed);
        println!(
            "{}",
            sample(
                &trainer.model,
                &trainer.corpus,
                &prime,
                temperature,
                top_k,
                length,
                &mut rng
            )?
        );
        return Ok(());
    }
    if precision == PrecisionArg::F16 {
        return Err(Error::InvalidArgument {
            op: "char_rnn",
            message: "--precision f16 samples from a half-precision copy (with --sample-only); mixed-precision training is not written yet: train in f32".into(),
        });
    }
    if let Some(path) = init {
        timeloom::io::load(&path).and_then(|w| {
            for (name, p) in trainer.model.named_parameters() {
                p.write(w.get(&name, p.shape())?)?;
            }
            Ok(())
        })?;
    }
    if let Some(path) = resume {
        trainer.restore(&timeloom::io::load(&path)?)?;
        println!("resumed at step {}", trainer.step);
    }
    let c = trainer.cfg.clone();
    println!(
        "vocabulary {} characters; {} train / {} validation; {} windows per epoch; {:?} {} x {}, batch {}, seq {}, {} steps",
        trainer.corpus.vocab.len(),
        trainer.corpus.train_len,
        trainer.corpus.ids.len() - trainer.corpus.train_len,
        trainer.batcher.windows_per_epoch(),
        c.cell,
        c.layers,
        c.hidden,
        c.batch,
        c.seq_len,
        c.steps
    );
    let out_dir = out.unwrap_or_else(|| Path::new("runs").join(&c.name));
    if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed)) {
        eprintln!("Ctrl-C will not save a checkpoint: {e}");
    }
    let start = Instant::now();
    let first = trainer.step;
    let history = train(&mut trainer, &out_dir)?;
    // A resumed run's history starts with the earlier run's rows: count this run's steps.
    let steps_run = history.iter().filter(|h| h.0 > first).count();
    let secs = start.elapsed().as_secs_f64();
    let last_val = history.iter().rev().find_map(|h| h.2);
    println!(
        "\ntrained {} steps in {} ({:.0} chars/s); final validation loss {:?}",
        steps_run,
        fmt_secs(secs),
        steps_run as f64 * (c.batch * c.seq_len) as f64 / secs,
        last_val
    );
    if let Device::Gpu(g) = &dev {
        let s = g.stats();
        println!(
            "GPU: {} dispatches, {} submissions over {} steps",
            s.dispatches, s.submissions, steps_run
        );
    }
    trainer.model.rnn.set_training(false);
    let mut rng = Rng::new(c.seed);
    println!(
        "----- sample -----\n{}",
        sample(
            &trainer.model,
            &trainer.corpus,
            &prime,
            temperature,
            top_k,
            length,
            &mut rng
        )?
    );
    println!(
        "wrote {}/log.csv, loss.png and checkpoint.safetensors",
        out_dir.display()
    );
    Ok(())
}
