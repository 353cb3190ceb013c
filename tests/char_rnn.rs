//! The char-rnn example's promises: the data pipeline exactly as specified, learning on the real
//! text, resume equivalence, atomic checkpoints and deterministic sampling.

// char_transformer includes char_rnn (one copy of the example code, not two).
#[path = "../examples/char_transformer.rs"]
#[allow(dead_code)]
mod char_transformer;

use char_transformer::char_rnn;

use std::sync::OnceLock;

use char_rnn::{sample, train, Batcher, CharModel, Config, Corpus, Trainer};
use timeloom::{DType, Device, Gpu, Rng};

fn gpu() -> Device {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    Device::Gpu(
        GPU.get_or_init(|| Gpu::new_blocking().expect("the tests need a GPU adapter"))
            .clone(),
    )
}

fn shakespeare() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/tinyshakespeare.txt"
    ))
    .unwrap()
}

fn small(steps: usize) -> Config {
    Config {
        hidden: 48,
        batch: 8,
        seq_len: 16,
        steps,
        eval_every: 0,
        sample_every: 0,
        checkpoint_every: 0,
        quiet: true,
        lr: 1e-2,
        ..Config::default()
    }
}

#[test]
fn the_data_pipeline_is_exactly_as_specified() {
    let text = "hello world, hello rust!";
    let c = Corpus::new(text).unwrap();
    // Distinct characters sorted by code point.
    assert_eq!(c.vocab.iter().collect::<String>(), " !,dehlorstuw");
    assert_eq!(c.decode(&c.ids), text);
    // First 90% by index: 24 characters → 21 train, 3 validation.
    assert_eq!((c.train().len(), c.val().len()), (21, 3));
    let mut b = Batcher::new(c.train(), 3, 2).unwrap();
    // Rows of ⌊21/3⌋ = 7 characters starting at 0, 7, 14; (7 − 1) / 2 = 3 windows an epoch.
    assert_eq!(
        (
            b.row_len,
            b.row_start(1),
            b.row_start(2),
            b.windows_per_epoch()
        ),
        (7, 7, 14, 3)
    );
    let (x, y, first) = b.next_window();
    assert!(first);
    // Time-major: t = 0 of rows 0, 1, 2, then t = 1.
    // Rows "hello w" | "orld, h" | "ello ru"; window 0 is "he" | "or" | "el", read by time.
    assert_eq!(c.decode(&x), "hoeerl");
    assert_eq!(c.decode(&y), "erllll"); // the same windows shifted by one: "el" | "rl" | "ll"
    let (x2, _, first2) = b.next_window();
    assert!(!first2);
    assert_eq!(c.decode(&x2), "lllldo"); // "ll" | "ld" | "lo"
    b.next_window();
    let (_, _, wrapped) = b.next_window();
    assert!(wrapped, "the fourth window starts the second epoch");
}

#[test]
fn a_short_run_on_the_real_text_learns() {
    let mut t = Trainer::new(small(250), &shakespeare(), &gpu()).unwrap();
    let first = t.train_step().unwrap().read_blocking().unwrap()[0];
    assert!(
        (first - 65f32.ln()).abs() < 0.3,
        "starts near ln(vocab) = 4.17: {first}"
    );
    let mut last = Vec::new();
    while t.step < t.cfg.steps {
        let l = t.train_step().unwrap().read_blocking().unwrap()[0];
        if t.step > t.cfg.steps - 20 {
            last.push(l);
        }
    }
    let mean = last.iter().sum::<f32>() / last.len() as f32;
    assert!(
        mean < 2.5,
        "training loss after {} steps: {mean}",
        t.cfg.steps
    );
}

#[test]
fn n_steps_then_resume_then_m_steps_equals_n_plus_m_steps() {
    let text = shakespeare();
    let dev = gpu();
    // Two layers with dropout between them: the masks' seed must resume too.
    let cfg = Config {
        layers: 2,
        dropout: 0.3,
        ..small(12)
    };
    let mut straight = Trainer::new(cfg.clone(), &text, &dev).unwrap();
    for _ in 0..12 {
        straight.train_step().unwrap();
    }
    let dir = std::env::temp_dir().join(format!("timeloom-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    let mut first = Trainer::new(cfg.clone(), &text, &dev).unwrap();
    for _ in 0..5 {
        first.train_step().unwrap();
    }
    first.save(&path).unwrap();
    let mut resumed = Trainer::new(cfg.clone(), &text, &dev).unwrap();
    resumed
        .restore(&timeloom::io::load(&path).unwrap())
        .unwrap();
    for _ in 0..7 {
        resumed.train_step().unwrap();
    }
    for ((name, a), (_, b)) in straight
        .model
        .named_parameters()
        .iter()
        .zip(resumed.model.named_parameters())
    {
        let (a, b) = (a.read_blocking().unwrap(), b.read_blocking().unwrap());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{name}: differs by {worst}");
    }
    // A checkpoint of another shape is refused with the field named, and nothing is loaded.
    let mut other = Trainer::new(
        Config {
            hidden: 32,
            ..cfg.clone()
        },
        &text,
        &dev,
    )
    .unwrap();
    let e = other
        .restore(&timeloom::io::load(&path).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden"), "{e}");
    // An interrupted write leaves the good checkpoint loadable.
    let bytes = std::fs::read(&path).unwrap();
    assert!(timeloom::io::write_atomic_with(&path, &bytes, Some(100)).is_err());
    let mut again = Trainer::new(cfg.clone(), &text, &dev).unwrap();
    again.restore(&timeloom::io::load(&path).unwrap()).unwrap();
    assert_eq!(again.step, 5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sampling_is_deterministic_and_temperature_zero_is_argmax() {
    let t = Trainer::new(small(1), &shakespeare(), &Device::Cpu).unwrap();
    let a = sample(&t.model, &t.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(3)).unwrap();
    let b = sample(&t.model, &t.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(3)).unwrap();
    assert_eq!(a, b);
    assert!(a.starts_with("ROMEO:") && a.chars().count() == 46);
    // Temperature 0 is greedy whatever the seed, and so is top-1 at any temperature.
    let greedy = sample(&t.model, &t.corpus, "ROMEO:", 0.0, 0, 40, &mut Rng::new(3)).unwrap();
    let again = sample(&t.model, &t.corpus, "ROMEO:", 0.0, 0, 40, &mut Rng::new(9)).unwrap();
    let top1 = sample(&t.model, &t.corpus, "ROMEO:", 1.0, 1, 40, &mut Rng::new(5)).unwrap();
    assert_eq!(greedy, again);
    assert_eq!(greedy, top1, "top-1 is argmax too");
}

/// Generation on the GPU draws on the device and reads once: 40 characters, one submission
/// and one wait (the old loop paid one of each per character); and the same weights and seed
/// on the CPU path give the same text.
#[test]
fn gpu_sampling_takes_one_submission_and_matches_the_cpu_path() {
    // A device of its own: the counters of the shared one count the other tests' work too.
    let g = Gpu::new_blocking().expect("the tests need a GPU adapter");
    let dev = Device::Gpu(g.clone());
    let t = Trainer::new(small(1), &shakespeare(), &dev).unwrap();
    // A first sample tunes and compiles what generation runs (matmul's per-shape autotune times
    // its candidates with waits of its own) and grows the params arena to the batch's size.
    sample(&t.model, &t.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(1)).unwrap();
    let before = g.stats();
    let on_gpu = sample(&t.model, &t.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(3)).unwrap();
    let s = g.stats().since(&before);
    assert_eq!((s.submissions, s.blocking_waits), (1, 1), "{s:?}");
    assert!(on_gpu.starts_with("ROMEO:") && on_gpu.chars().count() == 46);
    let c = Trainer::new(small(1), &shakespeare(), &Device::Cpu).unwrap();
    let on_cpu = sample(&c.model, &c.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(3)).unwrap();
    assert_eq!(on_gpu, on_cpu);
}

/// A half-precision copy of the model (`--precision f16 --sample-only`) holds half the
/// parameter bytes, generates in one submission on the GPU, and writes the same text on both
/// devices for one seed.
#[test]
fn an_f16_copy_samples_in_one_submission_on_both_devices() {
    let g = Gpu::new_blocking().expect("the tests need a GPU adapter");
    let dev = Device::Gpu(g.clone());
    let mut texts = Vec::new();
    for (d, on_gpu) in [(dev.clone(), true), (Device::Cpu, false)] {
        let t = Trainer::new(small(1), &shakespeare(), &d).unwrap();
        let half = t.model.to_dtype(DType::F16).unwrap();
        let size = |m: &CharModel| -> usize {
            m.named_parameters()
                .iter()
                .map(|(_, p)| p.numel() * p.dtype().size())
                .sum()
        };
        assert_eq!(2 * size(&half), size(&t.model));
        sample(&half, &t.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(1)).unwrap();
        let before = g.stats();
        texts.push(sample(&half, &t.corpus, "ROMEO:", 0.8, 5, 40, &mut Rng::new(3)).unwrap());
        if on_gpu {
            let s = g.stats().since(&before);
            assert_eq!((s.submissions, s.blocking_waits), (1, 1), "{s:?}");
        }
    }
    assert!(texts[0].starts_with("ROMEO:") && texts[0].chars().count() == 46);
    assert_eq!(texts[0], texts[1]);
}

/// The transformer generates on the device too: its context window stays there (the oldest id
/// dropped once 8 are held), 30 characters cost one submission and one wait, and the CPU path
/// with the same weights and seed writes the same text.
#[test]
fn char_transformer_sampling_takes_one_submission_and_matches_the_cpu_path() {
    use char_transformer::{sample as tf_sample, CharTransformer, TfConfig};
    let text = shakespeare();
    let corpus = Corpus::new(&text).unwrap();
    let cfg = TfConfig {
        embed: 16,
        heads: 2,
        layers: 1,
        seq_len: 8,
        ..TfConfig::default()
    };
    let g = Gpu::new_blocking().expect("the tests need a GPU adapter");
    let dev = Device::Gpu(g.clone());
    let model = CharTransformer::new(&cfg, corpus.vocab.len(), &dev, &mut Rng::new(0)).unwrap();
    // First samples compile, tune and grow the params arena (it doubles each time a batch
    // fills it: 750 dispatches take two rounds).
    for seed in 0..2 {
        tf_sample(
            &model,
            &corpus,
            &cfg,
            "ROMEO:",
            0.8,
            30,
            &mut Rng::new(seed),
        )
        .unwrap();
    }
    let before = g.stats();
    let on_gpu = tf_sample(&model, &corpus, &cfg, "ROMEO:", 0.8, 30, &mut Rng::new(3)).unwrap();
    let s = g.stats().since(&before);
    assert_eq!((s.submissions, s.blocking_waits), (1, 1), "{s:?}");
    assert!(on_gpu.starts_with("ROMEO:") && on_gpu.chars().count() == 36);
    let cpu_model =
        CharTransformer::new(&cfg, corpus.vocab.len(), &Device::Cpu, &mut Rng::new(0)).unwrap();
    let on_cpu = tf_sample(
        &cpu_model,
        &corpus,
        &cfg,
        "ROMEO:",
        0.8,
        30,
        &mut Rng::new(3),
    )
    .unwrap();
    assert_eq!(on_gpu, on_cpu);
}

#[test]
fn a_short_char_transformer_run_on_the_real_text_learns() {
    use char_transformer::{train, CharTransformer, TfConfig};
    let text = shakespeare();
    let corpus = Corpus::new(&text).unwrap();
    let cfg = TfConfig {
        embed: 48,
        heads: 4,
        layers: 1,
        batch: 16,
        seq_len: 32,
        steps: 200,
        lr: 5e-3,
        eval_every: 200,
        quiet: true,
        ..TfConfig::default()
    };
    let dev = gpu();
    let model = CharTransformer::new(&cfg, corpus.vocab.len(), &dev, &mut Rng::new(0)).unwrap();
    let curve = train(&model, &corpus, &cfg).unwrap();
    let (_, train_loss, _) = curve[curve.len() - 1];
    assert!(
        train_loss < 2.5,
        "training loss after {} steps: {train_loss}",
        cfg.steps
    );
}

/// A checkpoint written before the library kept the optimizer's state (the same tensors and
/// step counts, without `optimizer_algorithm` and `optimizer_state_format`) still resumes.
#[test]
fn a_checkpoint_without_the_optimizer_state_format_still_resumes() {
    let text = shakespeare();
    let dev = Device::Cpu;
    let mut first = Trainer::new(small(3), &text, &dev).unwrap();
    for _ in 0..3 {
        first.train_step().unwrap();
    }
    let dir = std::env::temp_dir().join(format!("timeloom-old-ck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    first.save(&path).unwrap();
    let mut old = timeloom::io::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(old.tensors.contains_key("optim.rnn.weight_hh_l0.s1"));
    for key in ["optimizer_algorithm", "optimizer_state_format"] {
        assert!(old.metadata.remove(key).is_some(), "{key} is written");
    }
    let mut resumed = Trainer::new(small(3), &text, &dev).unwrap();
    resumed.restore(&old).unwrap();
    assert_eq!((resumed.step, resumed.opt.steps()), (3, 3));
}

/// `log.csv` grows row by row as `train` goes, and a run resumed from a checkpoint keeps the
/// rows up to the checkpoint's step (a killed run's rows past it are replayed), then appends:
/// steps 1..=N once each, in order. On the CPU path (fast, and the log is the same there).
#[test]
fn the_log_is_appended_and_a_resumed_run_continues_it() {
    let text = shakespeare();
    let dev = Device::Cpu;
    let dir = std::env::temp_dir().join(format!("timeloom-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = Config {
        checkpoint_every: 3,
        eval_every: 4,
        ..small(7)
    };
    // Seven steps: checkpoints at 3, 6 and 7.
    let mut first = Trainer::new(cfg.clone(), &text, &dev).unwrap();
    let history = train(&mut first, &dir).unwrap();
    assert_eq!(history.len(), 7);
    let steps = |dir: &std::path::Path| -> Vec<usize> {
        let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
        assert!(log.starts_with("step,train_loss,val_loss\n"), "{log}");
        log.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(steps(&dir), (1..=7).collect::<Vec<_>>());
    // As if killed after step 7 with the checkpoint of step 3: resume from it to step 9.
    let mut early = Trainer::new(cfg.clone(), &text, &dev).unwrap();
    for _ in 0..3 {
        early.train_step().unwrap();
    }
    early.save(&dir.join("step3.safetensors")).unwrap();
    let mut resumed = Trainer::new(Config { steps: 9, ..cfg }, &text, &dev).unwrap();
    resumed
        .restore(&timeloom::io::load(dir.join("step3.safetensors")).unwrap())
        .unwrap();
    let history = train(&mut resumed, &dir).unwrap();
    assert_eq!(steps(&dir), (1..=9).collect::<Vec<_>>());
    // The history (and so the plot) holds the earlier rows too; this run took six steps.
    assert_eq!(history.len(), 9);
    assert_eq!(history.iter().filter(|h| h.0 > 3).count(), 6);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--schedule plateau` with a new rule (NAdam): a run that reports validation losses, saved
/// and resumed, continues with the same lowered rate and plateau counters, bit for bit the
/// same weights as the run that did not stop; a checkpoint resumed with another schedule is
/// refused.
#[test]
fn a_plateau_run_resumes_exactly_and_a_changed_schedule_is_refused() {
    let text = shakespeare();
    let dev = Device::Cpu;
    let cfg = Config {
        optimizer: "nadam".into(),
        schedule: "plateau".into(),
        ..small(8)
    };
    // Losses that never improve after the first: the rate halves at reports 3 and 6 (more
    // than `patience` 2 without improvement).
    let reports = [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0];
    let run = |stop_at: Option<usize>| {
        let mut t = Trainer::new(cfg.clone(), &text, &dev).unwrap();
        for (k, &v) in reports.iter().enumerate() {
            if stop_at == Some(k) {
                let dir = std::env::temp_dir()
                    .join(format!("timeloom-plateau-{}-{k}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("ck.safetensors");
                t.save(&path).unwrap();
                let saved = timeloom::io::load(&path).unwrap();
                std::fs::remove_dir_all(&dir).ok();
                let wrong = Config {
                    schedule: "cosine".into(),
                    ..cfg.clone()
                };
                let e = Trainer::new(wrong, &text, &dev)
                    .unwrap()
                    .restore(&saved)
                    .unwrap_err();
                assert!(e.to_string().contains("--schedule plateau"), "{e}");
                t = Trainer::new(cfg.clone(), &text, &dev).unwrap();
                t.restore(&saved).unwrap();
            }
            t.train_step().unwrap();
            t.report_validation(v);
        }
        let w = t.model.named_parameters()[0].1.read_blocking().unwrap();
        (t.opt.lr(), w)
    };
    let (lr, w) = run(None);
    assert_eq!(lr, 1e-2 * 0.25, "two reductions in eight reports");
    // Stopped before report 6, which lowers the rate only with the two bad reports before it
    // restored (a fresh rule would count it as an improvement).
    let (lr_resumed, w_resumed) = run(Some(6));
    assert_eq!(lr_resumed, lr);
    assert_eq!(w_resumed, w);
}

/// The transformer's default optimizer is AdamW with two groups: weight decay 0.1 on the
/// matrices, none on every bias and LayerNorm parameter (all of rank 1).
#[test]
fn the_transformer_decays_matrices_only() {
    use char_transformer::{make_optimizer, CharTransformer, TfConfig};
    let cfg = TfConfig {
        embed: 16,
        heads: 2,
        layers: 2,
        seq_len: 8,
        ..TfConfig::default()
    };
    let model = CharTransformer::new(&cfg, 11, &Device::Cpu, &mut Rng::new(0)).unwrap();
    let opt = make_optimizer(&model, &cfg, 100);
    assert_eq!(opt.group_count(), 2);
    let params = model.parameters();
    let vectors = params.iter().filter(|p| p.rank() < 2).count();
    assert!(vectors >= 2 * 2 * 2 + 2, "biases and norms: {vectors}");
    // Group 1 holds exactly the rank-1 tensors, at the end of the optimizer's list.
    let listed = opt.params();
    assert_eq!(listed.len(), params.len());
    assert!(listed[..params.len() - vectors]
        .iter()
        .all(|p| p.rank() >= 2));
    assert!(listed[params.len() - vectors..]
        .iter()
        .all(|p| p.rank() < 2));
}
