//! Sequence to sequence with attention: dates written the ways people write them ("3 march
//! 2021", "Tuesday, March 3, 2021", "3rd of mar 21", "03.03.2021", ...) translated into ISO form
//! ("2021-03-03"). The data are generated here (years 1950–2049, nine formats, random case),
//! with a fixed-seed training set and a test set of dates that never occur in training.
//!
//! Encoder: character embedding → bidirectional LSTM (per-sequence lengths, so padding never
//! leaks into the reverse direction). Decoder: an LSTM started from the encoder's final states,
//! with dot-product (Luong) attention over the encoder states, masked at padding:
//! α = softmax(d_t · Eᵀ), c_t = α·E, o_t = tanh(W_c c_t + W_h d_t), logits = W_o o_t.
//! Training uses teacher forcing (the whole target in one decoder call), or with
//! `--sampling P` scheduled sampling (step by step; the share of model-fed steps rises
//! linearly to P). Decoding is greedy or beam search (`--beam K`), both batched over the test
//! set. Reports exact-match accuracy and writes `attention.png` (the attention weights of four
//! test dates: rows are output characters, columns input characters, darker is more weight).
//!
//! ```text
//! cargo run --release --example seq2seq                      # on the GPU
//! cargo run --release --example seq2seq -- --device cpu --steps 3000 --beam 3 --sampling 0.25
//! ```

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use timeloom::nn::{Embedding, Linear, Module, Recurrent};
use timeloom::{embedding, no_grad, CrossEntropy, Device, Optimizer, Rng, Tensor};

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
    pub train: usize,
    pub test: usize,
    pub steps: usize,
    pub batch: usize,
    pub embed: usize,
    /// Hidden units per encoder direction (the decoder has twice as many).
    pub hidden: usize,
    pub lr: f32,
    /// Final share of decoder inputs taken from the model's own previous prediction (0: pure
    /// teacher forcing).
    pub sampling: f32,
    /// Beam width for the beam-search evaluation (1: greedy only).
    pub beam: usize,
    pub seed: u64,
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device: Device::Cpu,
            train: 10_000,
            test: 1_000,
            steps: 1_000,
            batch: 64,
            embed: 32,
            hidden: 64,
            lr: 3e-3,
            sampling: 0.0,
            beam: 3,
            seed: 0,
            out: Some(PathBuf::from("runs/seq2seq")),
            quiet: false,
        }
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
/// Input characters; id 0 is padding.
const IN_CHARS: &str = " ,./0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Output characters; then BOS and EOS.
const OUT_CHARS: &str = "0123456789-";
const BOS: usize = 11;
pub const EOS: usize = 12;
pub const OUT_VOCAB: usize = 13;
/// "yyyy-mm-dd" and EOS.
const OUT_LEN: usize = 11;

/// Days in `month` (1–12) of `year`, leap years included.
pub fn days_in(year: usize, month: usize) -> usize {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week, 0 = Sunday (Sakamoto's method).
fn weekday(y: usize, m: usize, d: usize) -> usize {
    const T: [usize; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if m < 3 { y - 1 } else { y };
    (y + y / 4 - y / 100 + y / 400 + T[m - 1] + d) % 7
}

fn ordinal(d: usize) -> String {
    let suffix = match (d % 10, d % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{d}{suffix}")
}

/// One random date: (human form, ISO form).
pub fn random_date(rng: &mut Rng) -> (String, String) {
    let y = 1950 + rng.int(0, 99);
    let m = 1 + rng.int(0, 11);
    let d = 1 + rng.int(0, days_in(y, m) - 1);
    let month = MONTHS[m - 1];
    let mon = &month[..3];
    let day = WEEKDAYS[weekday(y, m, d)];
    let human = match rng.int(0, 8) {
        0 => format!("{d} {month} {y}"),
        1 => format!("{month} {d}, {y}"),
        2 => format!("{mon} {d} {y}"),
        3 => format!("{d:02}.{m:02}.{y}"),
        4 => format!("{d}/{m}/{:02}", y % 100),
        5 => format!("{y}{m:02}{d:02}"),
        6 => format!("{day}, {month} {d}, {y}"),
        7 => format!("{} of {mon} {:02}", ordinal(d), y % 100),
        _ => format!("{mon} {d:02} {y}"),
    };
    let human = match rng.int(0, 2) {
        0 => human.to_uppercase(),
        1 => {
            let mut c = human.chars();
            c.next()
                .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        }
        _ => human,
    };
    (human, format!("{y:04}-{m:02}-{d:02}"))
}

/// A batch: input ids [B, S] (padded with 0), lengths [B], decoder inputs and targets [B, 11].
pub struct Batch {
    pub ids: Vec<f32>,
    pub lengths: Vec<f32>,
    pub s: usize,
    pub dec_in: Vec<f32>,
    pub target: Vec<f32>,
}

pub fn encode_batch(pairs: &[(String, String)]) -> Batch {
    let s = pairs.iter().map(|(h, _)| h.len()).max().unwrap_or(1).max(1);
    let (mut ids, mut lengths, mut dec_in, mut target) = (vec![], vec![], vec![], vec![]);
    for (h, iso) in pairs {
        let mut row: Vec<f32> = h
            .chars()
            .map(|c| IN_CHARS.find(c).map_or(0.0, |i| (i + 1) as f32))
            .collect();
        lengths.push(row.len() as f32);
        row.resize(s, 0.0);
        ids.extend(row);
        let out: Vec<usize> = iso
            .chars()
            .map(|c| OUT_CHARS.find(c).expect("ISO characters"))
            .collect();
        dec_in.push(BOS as f32);
        dec_in.extend(out.iter().map(|&o| o as f32));
        target.extend(out.iter().map(|&o| o as f32));
        target.push(EOS as f32);
    }
    Batch {
        ids,
        lengths,
        s,
        dec_in,
        target,
    }
}

/// One example's attention weights: [output step][input position].
pub type AttentionMap = Vec<Vec<f32>>;

/// The encoder–decoder.
pub struct Seq2Seq {
    enc_embed: Embedding,
    encoder: Recurrent,
    dec_embed: Embedding,
    decoder: Recurrent,
    w_context: Linear,
    w_hidden: Linear,
    w_out: Linear,
    hidden: usize,
}

/// The encoder's view of a batch: states [B, S, 2H], the additive padding mask [B, 1, S] and
/// the decoder's initial state [1, B, 2H] (both directions' final states side by side).
pub struct Encoded {
    pub states: Tensor,
    pub mask: Tensor,
    pub h: Tensor,
    pub c: Tensor,
}

impl Seq2Seq {
    pub fn new(cfg: &Config, rng: &mut Rng) -> timeloom::Result<Seq2Seq> {
        let (dev, e, h) = (&cfg.device, cfg.embed, cfg.hidden);
        Ok(Seq2Seq {
            enc_embed: Embedding::new(dev, IN_CHARS.len() + 1, e, rng)?,
            encoder: Recurrent::lstm(e, h)
                .bidirectional(true)
                .batch_first(true)
                .build(dev, rng)?,
            dec_embed: Embedding::new(dev, OUT_VOCAB, e, rng)?,
            decoder: Recurrent::lstm(e, 2 * h)
                .batch_first(true)
                .build(dev, rng)?,
            w_context: Linear::new(dev, 2 * h, 2 * h, rng)?,
            w_hidden: Linear::new(dev, 2 * h, 2 * h, rng)?,
            w_out: Linear::new(dev, 2 * h, OUT_VOCAB, rng)?,
            hidden: h,
        })
    }

    pub fn parameters(&self) -> Vec<Tensor> {
        let mut p = Vec::new();
        for m in [
            &self.enc_embed as &dyn Module,
            &self.encoder,
            &self.dec_embed,
            &self.decoder,
            &self.w_context,
            &self.w_hidden,
            &self.w_out,
        ] {
            p.extend(m.parameters());
        }
        p
    }

    pub fn encode(&self, dev: &Device, b: &Batch) -> timeloom::Result<Encoded> {
        let n = b.lengths.len();
        let ids = Tensor::from_slice(dev, &b.ids, &[n, b.s])?;
        let lengths = Tensor::from_slice(dev, &b.lengths, &[n])?;
        let out =
            self.encoder
                .forward_with(&self.enc_embed.forward(&ids)?, None, Some(&lengths))?;
        let mask: Vec<f32> = (0..n * b.s)
            .map(|i| {
                if (i % b.s) < b.lengths[i / b.s] as usize {
                    0.0
                } else {
                    -1e9
                }
            })
            .collect();
        let join = |t: &Tensor| -> timeloom::Result<Tensor> {
            // [2, B, H] → [B, 2, H] → [1, B, 2H]
            t.permute(&[1, 0, 2])?
                .contiguous()?
                .reshape(&[1, n, 2 * self.hidden])
        };
        let c = out.c_n.as_ref().expect("an LSTM has a cell state");
        Ok(Encoded {
            states: out.output,
            mask: Tensor::from_slice(dev, &mask, &[n, 1, b.s])?,
            h: join(&out.h_n)?,
            c: join(c)?,
        })
    }

    /// Attention over `enc` for decoder outputs `d` [B, Tq, 2H]: (logits [B, Tq, V], α [B, Tq, S]).
    pub fn attend(&self, enc: &Encoded, d: &Tensor) -> timeloom::Result<(Tensor, Tensor)> {
        let scores = d.matmul(&enc.states.transpose(1, 2)?)?;
        let alpha = scores.add(&enc.mask)?.softmax()?;
        let context = alpha.matmul(&enc.states)?;
        let o = self
            .w_context
            .forward(&context)?
            .add(&self.w_hidden.forward(d)?)?
            .tanh()?;
        Ok((self.w_out.forward(&o)?, alpha))
    }

    /// One decoder step from `state` for tokens [B]: (logits [B, V], α [B, S], new state).
    #[allow(clippy::type_complexity)]
    pub fn step(
        &self,
        dev: &Device,
        enc: &Encoded,
        tokens: &[f32],
        state: (&Tensor, &Tensor),
    ) -> timeloom::Result<(Tensor, Tensor, (Tensor, Tensor))> {
        let n = tokens.len();
        let x = self
            .dec_embed
            .forward(&Tensor::from_slice(dev, tokens, &[n, 1])?)?;
        let out = self
            .decoder
            .forward_with(&x, Some((state.0, Some(state.1))), None)?;
        let (logits, alpha) = self.attend(enc, &out.output)?;
        let c = out.c_n.expect("an LSTM has a cell state");
        Ok((
            logits.reshape(&[n, OUT_VOCAB])?,
            alpha.reshape(&[n, enc.mask.shape()[2]])?,
            (out.h_n, c),
        ))
    }

    /// The training loss of a batch. With `sampling` > 0, each decoder input is the model's
    /// own previous prediction with that probability (scheduled sampling, step by step);
    /// otherwise the whole gold target goes through the decoder in one call.
    pub fn loss(
        &self,
        dev: &Device,
        b: &Batch,
        sampling: f32,
        rng: &mut Rng,
    ) -> timeloom::Result<Tensor> {
        let n = b.lengths.len();
        let enc = self.encode(dev, b)?;
        let ce = CrossEntropy::new();
        if sampling <= 0.0 {
            let x = self
                .dec_embed
                .forward(&Tensor::from_slice(dev, &b.dec_in, &[n, OUT_LEN])?)?;
            let out = self
                .decoder
                .forward_with(&x, Some((&enc.h, Some(&enc.c))), None)?;
            let (logits, _) = self.attend(&enc, &out.output)?;
            let target = Tensor::from_slice(dev, &b.target, &[n * OUT_LEN])?;
            return ce.compute(&logits.reshape(&[n * OUT_LEN, OUT_VOCAB])?, &target);
        }
        let (mut h, mut c) = (enc.h.clone(), enc.c.clone());
        let mut total: Option<Tensor> = None;
        let mut predicted = vec![BOS as f32; n];
        for t in 0..OUT_LEN {
            let tokens: Vec<f32> = (0..n)
                .map(|i| {
                    if t > 0 && (rng.uniform() as f32) < sampling {
                        predicted[i]
                    } else {
                        b.dec_in[i * OUT_LEN + t]
                    }
                })
                .collect();
            let (logits, _, state) = self.step(dev, &enc, &tokens, (&h, &c))?;
            (h, c) = state;
            let target: Vec<f32> = (0..n).map(|i| b.target[i * OUT_LEN + t]).collect();
            let l = ce.compute(&logits, &Tensor::from_slice(dev, &target, &[n])?)?;
            predicted = argmax_rows(&logits.read_blocking()?, OUT_VOCAB)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            total = Some(match total {
                Some(s) => s.add(&l)?,
                None => l,
            });
        }
        total.expect("OUT_LEN > 0").scale(1.0 / OUT_LEN as f32)
    }

    /// Greedy decoding of a batch: the ISO strings and, for each example, α [11][S].
    pub fn greedy(
        &self,
        dev: &Device,
        b: &Batch,
    ) -> timeloom::Result<(Vec<String>, Vec<AttentionMap>)> {
        no_grad(|| {
            let n = b.lengths.len();
            let enc = self.encode(dev, b)?;
            let (mut h, mut c) = (enc.h.clone(), enc.c.clone());
            let mut tokens = vec![BOS as f32; n];
            let mut out = vec![Vec::new(); n];
            let mut attention = vec![Vec::new(); n];
            for _ in 0..OUT_LEN {
                let (logits, alpha, state) = self.step(dev, &enc, &tokens, (&h, &c))?;
                (h, c) = state;
                let next = argmax_rows(&logits.read_blocking()?, OUT_VOCAB);
                let alpha = alpha.read_blocking()?;
                for i in 0..n {
                    out[i].push(next[i]);
                    attention[i].push(alpha[i * b.s..(i + 1) * b.s].to_vec());
                }
                tokens = next.iter().map(|&v| v as f32).collect();
                if out.iter().all(|t| t.contains(&EOS)) {
                    break;
                }
            }
            Ok((out.iter().map(|t| detokenize(t)).collect(), attention))
        })
    }

    /// Beam search of width `k`, batched over the examples: the best hypothesis of each. A
    /// hypothesis that has emitted EOS is finished: its score stays as it is (the sum of its
    /// tokens' log-probabilities, EOS included) and it holds its place in the beam until a live
    /// one scores higher. Decoding stops when every hypothesis has finished, or after OUT_LEN.
    pub fn beam(&self, dev: &Device, b: &Batch, k: usize) -> timeloom::Result<Vec<String>> {
        no_grad(|| {
            let n = b.lengths.len();
            let enc = self.encode(dev, b)?;
            let rows = n * k;
            let hd = 2 * self.hidden;
            // Every hypothesis row r belongs to example r / k: gather its encoder view.
            let of_example: Vec<f32> = (0..rows).map(|r| (r / k) as f32).collect();
            let gather = |t: &Tensor, width: usize, idx: &[f32]| -> timeloom::Result<Tensor> {
                let ids = Tensor::from_slice(dev, idx, &[idx.len()])?;
                embedding(&t.reshape(&[t.numel() / width, width])?, &ids)
            };
            let beams = Encoded {
                states: gather(&enc.states, b.s * hd, &of_example)?.reshape(&[rows, b.s, hd])?,
                mask: gather(&enc.mask, b.s, &of_example)?.reshape(&[rows, 1, b.s])?,
                h: gather(&enc.h, hd, &of_example)?.reshape(&[1, rows, hd])?,
                c: gather(&enc.c, hd, &of_example)?.reshape(&[1, rows, hd])?,
            };
            let (mut h, mut c) = (beams.h.clone(), beams.c.clone());
            // Only the first beam of each example is live at the start.
            let mut score: Vec<f32> = (0..rows)
                .map(|r| if r % k == 0 { 0.0 } else { f32::NEG_INFINITY })
                .collect();
            let mut hyps: Vec<Vec<usize>> = vec![Vec::new(); rows];
            let mut tokens = vec![BOS as f32; rows];
            for _ in 0..OUT_LEN {
                let (logits, _, state) = self.step(dev, &beams, &tokens, (&h, &c))?;
                let logp = logits.log_softmax()?.read_blocking()?;
                let (parents, new_score, new_hyps) = beam_step(&score, &hyps, &logp, k);
                h = gather(&state.0, hd, &parents)?.reshape(&[1, rows, hd])?;
                c = gather(&state.1, hd, &parents)?.reshape(&[1, rows, hd])?;
                tokens = new_hyps
                    .iter()
                    .map(|t| *t.last().expect("pushed") as f32)
                    .collect();
                score = new_score;
                hyps = new_hyps;
                if hyps.iter().all(|t| t.last() == Some(&EOS)) {
                    break;
                }
            }
            Ok((0..n)
                .map(|e| {
                    let best = (e * k..(e + 1) * k)
                        .max_by(|&a, &b| score[a].total_cmp(&score[b]))
                        .expect("k ≥ 1");
                    detokenize(&hyps[best])
                })
                .collect())
        })
    }
}

/// One step of beam bookkeeping for examples of `k` hypotheses each (row r belongs to example
/// r / k): every live hypothesis extended by every token, scored by its summed log-probability
/// (`logp` [rows, OUT_VOCAB]); a finished one (its last token EOS) as one candidate that keeps
/// its score; the best `k` per example kept. Returns each new row's parent row (as f32, for the
/// state gather), its score and its tokens.
pub fn beam_step(
    score: &[f32],
    hyps: &[Vec<usize>],
    logp: &[f32],
    k: usize,
) -> (Vec<f32>, Vec<f32>, Vec<Vec<usize>>) {
    let rows = score.len();
    let mut parents = Vec::with_capacity(rows);
    let (mut new_score, mut new_hyps) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for e in 0..rows / k {
        let mut cand: Vec<(f32, usize, usize)> = Vec::new();
        for r in e * k..(e + 1) * k {
            if hyps[r].last() == Some(&EOS) {
                // Finished: it carries its score forward unchanged, as one candidate, so it
                // competes with the live ones on equal terms.
                cand.push((score[r], r, EOS));
                continue;
            }
            for (v, &lp) in logp[r * OUT_VOCAB..(r + 1) * OUT_VOCAB].iter().enumerate() {
                cand.push((score[r] + lp, r, v));
            }
        }
        cand.sort_by(|a, b| b.0.total_cmp(&a.0));
        for &(s, r, v) in cand.iter().take(k) {
            parents.push(r as f32);
            new_score.push(s);
            let mut hyp = hyps[r].clone();
            hyp.push(v);
            new_hyps.push(hyp);
        }
    }
    (parents, new_score, new_hyps)
}

fn argmax_rows(v: &[f32], width: usize) -> Vec<usize> {
    v.chunks(width)
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect()
}

/// Output tokens up to the first EOS as a string.
fn detokenize(tokens: &[usize]) -> String {
    tokens
        .iter()
        .take_while(|&&t| t != EOS)
        .map(|&t| OUT_CHARS.chars().nth(t).unwrap_or('?'))
        .collect()
}

/// What a run measured.
pub struct Report {
    /// (step, mean training loss over the last interval).
    pub losses: Vec<(usize, f32)>,
    pub greedy_exact: f32,
    pub beam_exact: Option<f32>,
    /// The share of the first 100 test dates on which a beam of width 1 decodes what greedy
    /// decoding does (1.0 unless the beam's bookkeeping is wrong).
    pub beam_one_agrees: f32,
    pub seconds: f64,
}

pub fn run(cfg: &Config) -> timeloom::Result<Report> {
    let dev = &cfg.device;
    let mut data = Rng::new(cfg.seed + 1);
    let train: Vec<(String, String)> = (0..cfg.train).map(|_| random_date(&mut data)).collect();
    // Held out: no test date (in any format) occurs in the training set.
    let seen: std::collections::HashSet<&str> = train.iter().map(|(_, iso)| iso.as_str()).collect();
    let mut test_rng = Rng::new(cfg.seed + 1_000_003);
    let test: Vec<(String, String)> = std::iter::repeat_with(|| random_date(&mut test_rng))
        .filter(|(_, iso)| !seen.contains(iso.as_str()))
        .take(cfg.test)
        .collect();
    let mut rng = Rng::new(cfg.seed);
    let model = Seq2Seq::new(cfg, &mut rng)?;
    let mut opt = Optimizer::adam(model.parameters(), cfg.lr).clip_grad_norm(5.0);
    let mut losses = Vec::new();
    let start = Instant::now();
    let every = (cfg.steps / 20).max(1);
    let mut total = Tensor::zeros(dev, &[])?;
    let bar = (!cfg.quiet).then(|| progress::Progress::new(0, cfg.steps as u64, "steps"));
    for step in 1..=cfg.steps {
        let pairs: Vec<(String, String)> = (0..cfg.batch)
            .map(|_| train[rng.int(0, train.len() - 1)].clone())
            .collect();
        let b = encode_batch(&pairs);
        let sampling = cfg.sampling * step as f32 / cfg.steps as f32;
        opt.zero_grad();
        let loss = model.loss(dev, &b, sampling, &mut rng)?;
        loss.backward()?;
        opt.step()?;
        total = no_grad(|| total.add(&loss))?;
        if step % every == 0 {
            let mean = total.read_blocking()?[0] / every as f32;
            total = Tensor::zeros(dev, &[])?;
            losses.push((step, mean));
            if let Some(b) = &bar {
                b.set(step as u64, format!("loss {mean:.4}"));
            }
        }
    }
    if let Some(b) = &bar {
        b.finish();
    }
    let seconds = start.elapsed().as_secs_f64();
    let exact = |got: &[String]| {
        got.iter()
            .zip(&test)
            .filter(|(g, (_, iso))| *g == iso)
            .count() as f32
            / test.len() as f32
    };
    let (mut greedy, mut attention) = (Vec::new(), Vec::new());
    for chunk in test.chunks(500) {
        let (g, a) = model.greedy(dev, &encode_batch(chunk))?;
        greedy.extend(g);
        attention.extend(a);
    }
    let greedy_exact = exact(&greedy);
    let beam_exact = if cfg.beam > 1 {
        let mut beams = Vec::new();
        for chunk in test.chunks(250) {
            beams.extend(model.beam(dev, &encode_batch(chunk), cfg.beam)?);
        }
        Some(exact(&beams))
    } else {
        None
    };
    let first = &test[..100.min(test.len())];
    let beam_one = model.beam(dev, &encode_batch(first), 1)?;
    let beam_one_agrees = beam_one.iter().zip(&greedy).filter(|(b, g)| b == g).count() as f32
        / first.len().max(1) as f32;
    if !cfg.quiet {
        for ((h, iso), g) in test.iter().zip(&greedy).take(6) {
            println!("  {h:<32} → {g}   (want {iso})");
        }
    }
    if let Some(dir) = &cfg.out {
        let canvas = attention_figure(&test[..4.min(test.len())], &greedy, &attention);
        plot::save(
            dir,
            "attention.png",
            plot::titled(
                &canvas,
                "seq2seq: where the decoder looks, four held-out dates",
                "rows: output characters (ISO date, then end); columns: input characters; \
                 darker blue: more attention weight",
            ),
        )?;
    }
    Ok(Report {
        losses,
        greedy_exact,
        beam_exact,
        beam_one_agrees,
        seconds,
    })
}

/// The attention weights of a few examples side by side: each a grid of output characters
/// (rows, the decoded string) by input characters (columns), darker for more weight.
fn attention_figure(
    examples: &[(String, String)],
    decoded: &[String],
    attention: &[AttentionMap],
) -> plot::Canvas {
    let cell = 12i64;
    let label = 14i64;
    let widths: Vec<i64> = examples
        .iter()
        .map(|(h, _)| label + h.len() as i64 * cell + 20)
        .collect();
    let w = widths.iter().sum::<i64>().max(1) as usize;
    let h = (label + OUT_LEN as i64 * cell + 30) as usize;
    let mut c = plot::Canvas::new(w, h);
    let mut x0 = 0i64;
    for (k, (human, _)) in examples.iter().enumerate() {
        let out: Vec<char> = decoded[k].chars().chain(std::iter::once('.')).collect();
        for (i, ch) in human.chars().enumerate() {
            c.text(
                x0 + label + i as i64 * cell + 3,
                2,
                &ch.to_string(),
                2,
                [0, 0, 0],
            );
        }
        for (t, row) in attention[k].iter().enumerate().take(out.len()) {
            let y = label + t as i64 * cell;
            c.text(x0 + 2, y + 1, &out[t].to_string(), 2, [0, 0, 0]);
            for (i, &a) in row.iter().take(human.len()).enumerate() {
                let g = (255.0 * (1.0 - a.clamp(0.0, 1.0))) as u8;
                for dy in 0..cell - 1 {
                    for dx in 0..cell - 1 {
                        c.set(x0 + label + i as i64 * cell + dx, y + dy, [g, g, 255]);
                    }
                }
            }
        }
        x0 += widths[k];
    }
    c
}

/// Sequence to sequence with attention: dates as people write them into ISO form.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    device: cli::DeviceArgs,
    /// Training steps.
    #[arg(long, default_value_t = Config::default().steps)]
    steps: usize,
    /// Dates per step.
    #[arg(long, default_value_t = Config::default().batch, value_parser = cli::count)]
    batch: usize,
    /// Hidden units per encoder direction (the decoder has twice as many).
    #[arg(long, default_value_t = Config::default().hidden, value_parser = cli::count)]
    hidden: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = Config::default().lr)]
    lr: f32,
    /// Final share of decoder inputs taken from the model's own previous prediction
    /// (scheduled sampling; 0: pure teacher forcing).
    #[arg(long, default_value_t = Config::default().sampling)]
    sampling: f32,
    /// Beam width for the beam-search evaluation (1: greedy only).
    #[arg(long, default_value_t = Config::default().beam, value_parser = cli::count)]
    beam: usize,
    /// Seed of the data, the initialisation and the batch order.
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
    /// Folder for attention.png.
    #[arg(long, default_value_os_t = Config::default().out.expect("the default run writes its PNG"))]
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
        steps: args.steps,
        batch: args.batch,
        hidden: args.hidden,
        lr: args.lr,
        sampling: args.sampling,
        beam: args.beam,
        seed: args.seed,
        out: Some(args.out),
        ..Config::default()
    };
    let r = run(&cfg)?;
    println!(
        "exact match on {} held-out dates: greedy {:.1}%{}; training {:.0} s",
        cfg.test,
        r.greedy_exact * 100.0,
        r.beam_exact.map_or(String::new(), |b| format!(
            ", beam {} {:.1}%",
            cfg.beam,
            b * 100.0
        )),
        r.seconds
    );
    if let Some(out) = &cfg.out {
        println!("wrote {}", out.join("attention.png").display());
    }
    if let Device::Gpu(g) = &cfg.device {
        println!("{:?}", g.stats());
    }
    Ok(())
}
