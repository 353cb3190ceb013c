//! The first program to run: opens the best GPU adapter, runs a Linear layer (a matmul with a
//! bias and ReLU epilogue) and a reduction on it and on the CPU twin, checks they agree, and prints
//! what the engine asked of the device.
//!
//! ```text
//! cargo run --release --example quickstart
//! TIMELOOM_BACKEND=gl cargo run --release --example quickstart   # another backend
//! ```

use std::time::Instant;

use clap::Parser;
use timeloom::{Activation, Device, Gpu, Matmul, Rng, Tensor};

#[path = "common/cli.rs"]
mod cli;

/// The first program to run: a Linear layer and a reduction on the GPU and on the CPU twin,
/// checked against each other, and the engine's counters. No options (TIMELOOM_BACKEND=gl
/// picks another backend).
#[derive(Parser, Debug)]
struct Cli {}

fn main() -> Result<(), timeloom::Error> {
    cli::parse::<Cli>();
    let start = Instant::now();
    let gpu = Gpu::new_blocking()?;
    println!("adapter: {}", gpu.adapter());

    let (batch, inputs, outputs) = (64, 256, 128);
    let mut rng = Rng::new(0);
    let x = rng.normals(batch * inputs);
    let w = rng.normals(outputs * inputs);
    let b = rng.normals(outputs);

    let mut results = Vec::new();
    for dev in [Device::Gpu(gpu.clone()), Device::Cpu] {
        let x = Tensor::from_slice(&dev, &x, &[batch, inputs])?;
        let w = Tensor::from_slice(&dev, &w, &[outputs, inputs])?; // PyTorch layout [out, in]
        let b = Tensor::from_slice(&dev, &b, &[outputs])?;
        // y = relu(x·wᵀ + b): one kernel; wᵀ is a view, never copied.
        let y = Matmul::new(&x, &w.t()?)
            .bias(&b)
            .activation(Activation::Relu)
            .compute()?;
        let per_row = y.mean(1)?;
        results.push(per_row.read_blocking()?);
    }
    let worst = results[0]
        .iter()
        .zip(&results[1])
        .map(|(g, c)| (g - c).abs())
        .fold(0.0f32, f32::max);
    println!(
        "mean activation of the first rows: {:?}",
        &results[0][..4.min(results[0].len())]
    );
    println!("largest GPU-CPU difference: {worst:.2e}");
    let s = gpu.stats();
    println!(
        "GPU work: {} dispatches, {} submissions, {} pipeline compiles, {} buffers ({} KiB) resident",
        s.dispatches,
        s.submissions,
        s.pipeline_compiles,
        s.buffers_resident,
        s.bytes_resident / 1024
    );
    println!("done in {:.2} s", start.elapsed().as_secs_f64());
    if worst > 1e-3 {
        eprintln!("GPU and CPU disagree: please report this with the adapter line above");
        std::process::exit(1);
    }
    Ok(())
}
