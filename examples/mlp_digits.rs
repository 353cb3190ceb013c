//! An MLP learns the real 8×8 digits (1,797 images, 10 classes; data/digits.csv.gz): a fixed-seed
//! train/test split, mini-batches, Adam, loss and test accuracy per epoch.
//!
//! ```text
//! cargo run --release --example mlp_digits                  # on the GPU
//! cargo run --release --example mlp_digits -- --device cpu  # on the CPU twins
//! cargo run --release --example mlp_digits -- --epochs 40 --hidden 256 --lr 0.002 --seed 3
//! ```

use std::time::Instant;

use clap::Parser;
use timeloom::data::{read_csv, shuffle, Labelled};
use timeloom::nn::{Activation, Linear, Module, Sequential};
use timeloom::{no_grad, CrossEntropy, Device, Optimizer, Rng, Tensor};

#[path = "common/cli.rs"]
mod cli;

/// What a run does; `Default` is the example's default run.
#[derive(Clone, Debug)]
pub struct Config {
    pub device: Device,
    pub epochs: usize,
    pub batch: usize,
    pub hidden: usize,
    pub lr: f32,
    pub seed: u64,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device: Device::Cpu,
            epochs: 20,
            batch: 32,
            hidden: 128,
            lr: 3e-3,
            seed: 0,
            quiet: false,
        }
    }
}

/// Per epoch: (mean training loss, test accuracy).
pub fn run(cfg: &Config) -> Result<Vec<(f32, f32)>, timeloom::Error> {
    let table = read_csv(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"))?;
    let all = Labelled::from_table(&table, 1.0 / 16.0)?; // pixels are 0..16
    let (train, test) = all.split(360, 42);
    let dev = &cfg.device;
    let mut rng = Rng::new(cfg.seed);
    let model = Sequential::new()
        .add(Linear::new(dev, all.dim, cfg.hidden, &mut rng)?)
        .add(Activation::Relu)
        .add(Linear::new(dev, cfg.hidden, 10, &mut rng)?);
    let mut opt = Optimizer::adam(model.parameters(), cfg.lr);
    let loss_fn = CrossEntropy::new();
    let (tx, ty) = test.batch(&(0..test.len()).collect::<Vec<_>>());
    let test_x = Tensor::from_slice(dev, &tx, &[test.len(), test.dim])?;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        shuffle(&mut order, &mut rng);
        let mut total = Tensor::zeros(dev, &[])?;
        let batches = order.chunks(cfg.batch);
        let n_batches = batches.len();
        for idx in batches {
            let (x, y) = train.batch(idx);
            let x = Tensor::from_slice(dev, &x, &[idx.len(), train.dim])?;
            let y = Tensor::from_slice(dev, &y, &[idx.len()])?;
            opt.zero_grad();
            let loss = loss_fn.compute(&model.forward(&x)?, &y)?;
            loss.backward()?;
            opt.step()?;
            total = no_grad(|| total.add(&loss))?; // summed on the device: no readback per step
        }
        let mean_loss = total.read_blocking()?[0] / n_batches as f32;
        let logits = no_grad(|| model.forward(&test_x))?.read_blocking()?;
        let correct = logits
            .chunks(10)
            .zip(&ty)
            .filter(|(row, &label)| {
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                best as f32 == label
            })
            .count();
        let acc = correct as f32 / test.len() as f32;
        if !cfg.quiet {
            println!(
                "epoch {epoch:>3}  loss {mean_loss:.4}  test accuracy {:.2}%  ({:.2} s)",
                acc * 100.0,
                start.elapsed().as_secs_f64()
            );
        }
        history.push((mean_loss, acc));
    }
    Ok(history)
}

/// An MLP learns the real 8×8 digits: loss and test accuracy per epoch.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    device: cli::DeviceArgs,
    /// Passes over the training set.
    #[arg(long, default_value_t = Config::default().epochs)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = Config::default().batch, value_parser = cli::count)]
    batch: usize,
    /// Width of the hidden layer.
    #[arg(long, default_value_t = Config::default().hidden, value_parser = cli::count)]
    hidden: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = Config::default().lr)]
    lr: f32,
    /// Seed of the initialisation and the batch order (the split is fixed).
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
}

#[allow(dead_code)]
fn main() {
    cli::main(try_main)
}

fn try_main() -> Result<(), timeloom::Error> {
    let args = cli::parse::<Cli>();
    let cfg = Config {
        device: args.device.open()?,
        epochs: args.epochs,
        batch: args.batch,
        hidden: args.hidden,
        lr: args.lr,
        seed: args.seed,
        ..Config::default()
    };
    let start = Instant::now();
    let history = run(&cfg)?;
    let (_, acc) = history.last().copied().unwrap_or_default();
    println!(
        "final test accuracy {:.2}% after {} epochs in {:.1} s",
        acc * 100.0,
        cfg.epochs,
        start.elapsed().as_secs_f64()
    );
    if let Device::Gpu(g) = &cfg.device {
        println!("{:?}", g.stats());
    }
    Ok(())
}
