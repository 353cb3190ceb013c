//! A small convolutional network learns real MNIST digits (5,000 28×28 images, 500 per class;
//! data/mnist_5k.csv.gz): a fixed-seed 4,000 / 1,000 split, two conv–BatchNorm–ReLU–max-pool
//! blocks and a linear classifier, Adam, a progress bar, test accuracy after every epoch, and
//! a PNG grid of the misclassified test digits, each with its predicted label (red, left) and
//! its true label (green, right).
//!
//! ```text
//! cargo run --release --example mnist_cnn                   # on the GPU
//! cargo run --release --example mnist_cnn -- --device cpu   # on the CPU path
//! cargo run --release --example mnist_cnn -- --epochs 4 --batch 64 --lr 0.002 --out runs/mnist
//! ```

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use timeloom::data::{read_csv, shuffle, Labelled};
use timeloom::nn::{
    Activation, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, Sequential,
};
use timeloom::{no_grad, CrossEntropy, Device, Optimizer, Rng, Tensor};

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
    pub epochs: usize,
    pub batch: usize,
    /// Channels of the first and second conv block.
    pub channels: [usize; 2],
    pub lr: f32,
    pub seed: u64,
    /// Where misclassified.png goes (nothing is written when None).
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device: Device::Cpu,
            epochs: 6,
            batch: 50,
            channels: [16, 32],
            lr: 2e-3,
            seed: 0,
            out: Some(PathBuf::from("runs/mnist_cnn")),
            quiet: false,
        }
    }
}

/// One epoch's numbers.
#[derive(Clone, Copy, Debug)]
pub struct Epoch {
    pub loss: f32,
    pub accuracy: f32,
    pub seconds: f64,
}

/// conv(1→c0, 3×3, pad 1)–BN–ReLU–pool 2, conv(c0→c1)–BN–ReLU–pool 2, flatten, linear → 10.
pub fn model(dev: &Device, [c0, c1]: [usize; 2], rng: &mut Rng) -> timeloom::Result<Sequential> {
    Ok(Sequential::new()
        .add(Conv2d::builder(1, c0, 3).padding(1).build(dev, rng)?)
        .add(BatchNorm2d::new(dev, c0)?)
        .add(Activation::Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::builder(c0, c1, 3).padding(1).build(dev, rng)?)
        .add(BatchNorm2d::new(dev, c1)?)
        .add(Activation::Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten)
        .add(Linear::new(dev, c1 * 7 * 7, 10, rng)?))
}

/// The predicted class of every row of `logits` [n, 10].
fn argmax_rows(logits: &[f32]) -> Vec<u32> {
    logits
        .chunks(10)
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i as u32)
        })
        .collect()
}

/// Trains, evaluates after every epoch, writes the misclassified grid after the last.
pub fn run(cfg: &Config) -> timeloom::Result<Vec<Epoch>> {
    let table = read_csv(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist_5k.csv.gz"))?;
    let all = Labelled::from_table(&table, 1.0 / 255.0)?;
    let (train, test) = all.split(1000, 42);
    let dev = &cfg.device;
    let mut rng = Rng::new(cfg.seed);
    let mut net = model(dev, cfg.channels, &mut rng)?;
    let mut opt = Optimizer::adam(net.parameters(), cfg.lr);
    let loss_fn = CrossEntropy::new();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        net.set_training(true);
        shuffle(&mut order, &mut rng);
        let mut total = Tensor::zeros(dev, &[])?;
        let batches: Vec<&[usize]> = order.chunks(cfg.batch).collect();
        let progress =
            (!cfg.quiet).then(|| progress::Progress::new(0, batches.len() as u64, "batches"));
        for (b, idx) in batches.iter().enumerate() {
            let (x, y) = train.batch(idx);
            let x = Tensor::from_slice(dev, &x, &[idx.len(), 1, 28, 28])?;
            let y = Tensor::from_slice(dev, &y, &[idx.len()])?;
            opt.zero_grad();
            let loss = loss_fn.compute(&net.forward(&x)?, &y)?;
            loss.backward()?;
            opt.step()?;
            total = no_grad(|| total.add(&loss))?; // summed on the device: no readback per step
            if let Some(p) = &progress {
                p.set(b as u64 + 1, format!("epoch {epoch}/{}", cfg.epochs));
            }
        }
        if let Some(p) = &progress {
            p.finish();
        }
        let loss = total.read_blocking()?[0] / batches.len() as f32;
        let seconds = start.elapsed().as_secs_f64();
        net.set_training(false);
        let predicted = predict(&net, &test, dev)?;
        let correct = predicted
            .iter()
            .zip(&test.labels)
            .filter(|(p, l)| p == l)
            .count();
        let accuracy = correct as f32 / test.len() as f32;
        if !cfg.quiet {
            println!(
                "epoch {epoch:>2}/{}  loss {loss:.4}  test accuracy {:.2}%  ({seconds:.2} s training)",
                cfg.epochs,
                accuracy * 100.0
            );
        }
        history.push(Epoch {
            loss,
            accuracy,
            seconds,
        });
        if epoch == cfg.epochs {
            if let Some(dir) = &cfg.out {
                let path = dir.join("misclassified.png");
                plot::save(
                    dir,
                    "misclassified.png",
                    plot::titled(
                        &misclassified_grid(&test, &predicted),
                        "mnist_cnn: the held-out digits it got wrong",
                        "under each digit: the prediction (red) and the true label (green)",
                    ),
                )?;
                if !cfg.quiet {
                    println!("wrote {}", path.display());
                }
            }
        }
    }
    Ok(history)
}

/// Predictions for every example of `set`, in evaluation batches of 250.
fn predict(net: &Sequential, set: &Labelled, dev: &Device) -> timeloom::Result<Vec<u32>> {
    let mut out = Vec::with_capacity(set.len());
    let all: Vec<usize> = (0..set.len()).collect();
    for idx in all.chunks(250) {
        let (x, _) = set.batch(idx);
        let x = Tensor::from_slice(dev, &x, &[idx.len(), 1, 28, 28])?;
        out.extend(argmax_rows(&no_grad(|| net.forward(&x))?.read_blocking()?));
    }
    Ok(out)
}

/// Up to 60 misclassified digits, 10 per row, each 56×56 with its labels underneath.
fn misclassified_grid(test: &Labelled, predicted: &[u32]) -> plot::Canvas {
    let wrong: Vec<usize> = (0..test.len())
        .filter(|&i| predicted[i] != test.labels[i])
        .take(60)
        .collect();
    let (cell_w, cell_h) = (64i64, 80i64);
    let rows = wrong.len().div_ceil(10).max(1) as i64;
    let mut c = plot::Canvas::new(10 * cell_w as usize, (rows * cell_h) as usize);
    for (k, &i) in wrong.iter().enumerate() {
        let (x, y) = ((k % 10) as i64 * cell_w + 4, (k / 10) as i64 * cell_h + 4);
        c.image(x, y, &test.features[i * 784..(i + 1) * 784], 28, 2);
        c.digit(x + 14, y + 60, predicted[i], 2, [200, 30, 30]);
        c.digit(x + 34, y + 60, test.labels[i], 2, [30, 150, 30]);
    }
    c
}

/// A small CNN learns 5,000 real MNIST digits; writes the misclassified test digits as a PNG.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    device: cli::DeviceArgs,
    /// Passes over the 4,000 training images.
    #[arg(long, default_value_t = Config::default().epochs)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = Config::default().batch, value_parser = cli::count)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = Config::default().lr)]
    lr: f32,
    /// Seed of the initialisation and the batch order (the split is fixed).
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
    /// Folder for misclassified.png.
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
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        out: Some(args.out),
        ..Config::default()
    };
    let start = Instant::now();
    let history = run(&cfg)?;
    let last = history.last().map_or(0.0, |e| e.accuracy);
    let per_epoch = history.iter().map(|e| e.seconds).sum::<f64>() / history.len().max(1) as f64;
    println!(
        "final test accuracy {:.2}% on 1,000 held-out digits after {} epochs; {per_epoch:.2} s per training epoch; {:.1} s in all",
        last * 100.0,
        cfg.epochs,
        start.elapsed().as_secs_f64()
    );
    if let Device::Gpu(g) = &cfg.device {
        println!("{:?}", g.stats());
    }
    Ok(())
}
