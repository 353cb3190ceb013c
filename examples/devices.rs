//! Lists every adapter wgpu can open here, on every backend (Vulkan, GL, Metal, DX12 where
//! present), and runs a smoke test on each against the CPU path: a matmul, an LSTM training
//! step's loss and gradients, causal attention forward and backward, and a conv–batch-norm–
//! max-pool block's output and gradients. Prints a pass/fail table with the adapter line.
//!
//! ```text
//! cargo run --release --example devices
//! ```

use clap::Parser;
use timeloom::nn::{Module, Recurrent};
use timeloom::wgpu;
use timeloom::{Device, Gpu, GpuOptions, Rng, Tensor};

#[path = "common/cli.rs"]
mod cli;

/// Largest |a − b| relative to 1 + |b| over two equal-length slices.
fn worst(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f32::max)
}

fn matmul_check(dev: &Device) -> Result<f32, timeloom::Error> {
    let mut rng = Rng::new(1);
    let (a, b) = (rng.normals(37 * 53), rng.normals(53 * 29));
    let run = |d: &Device| -> Result<Vec<f32>, timeloom::Error> {
        let ta = Tensor::from_slice(d, &a, &[37, 53])?;
        let tb = Tensor::from_slice(d, &b, &[53, 29])?;
        ta.matmul(&tb)?.read_blocking()
    };
    Ok(worst(&run(dev)?, &run(&Device::Cpu)?))
}

fn lstm_check(dev: &Device) -> Result<f32, timeloom::Error> {
    let run = |d: &Device| -> Result<Vec<f32>, timeloom::Error> {
        let lstm = Recurrent::lstm(4, 9)
            .layers(2)
            .bidirectional(true)
            .build(d, &mut Rng::new(2))?;
        let x = Tensor::from_slice(d, &Rng::new(3).normals(6 * 3 * 4), &[6, 3, 4])?;
        let loss = lstm.forward(&x)?.square()?.sum_all()?;
        loss.backward()?;
        let mut v = loss.read_blocking()?;
        for p in lstm.parameters() {
            v.extend(p.grad().map_or(Ok(vec![f32::NAN]), |g| g.read_blocking())?);
        }
        Ok(v)
    };
    Ok(worst(&run(dev)?, &run(&Device::Cpu)?))
}

fn attention_check(dev: &Device) -> Result<f32, timeloom::Error> {
    let run = |d: &Device| -> Result<Vec<f32>, timeloom::Error> {
        let t = |seed| {
            Tensor::from_slice(d, &Rng::new(seed).normals(4 * 37 * 32), &[4, 37, 32])
                .map(|t| t.requires_grad())
        };
        let (q, k, v) = (t(4)?, t(5)?, t(6)?);
        let o = timeloom::attention(
            &q,
            &k,
            &v,
            timeloom::AttentionOptions {
                causal: true,
                heads: 2,
                ..Default::default()
            },
        )?;
        o.square()?.sum_all()?.backward()?;
        let mut out = o.read_blocking()?;
        for t in [&q, &k, &v] {
            out.extend(t.grad().map_or(Ok(vec![f32::NAN]), |g| g.read_blocking())?);
        }
        Ok(out)
    };
    Ok(worst(&run(dev)?, &run(&Device::Cpu)?))
}

fn cnn_check(dev: &Device) -> Result<f32, timeloom::Error> {
    use timeloom::nn::{BatchNorm2d, Conv2d, MaxPool2d, Sequential};
    let run = |d: &Device| -> Result<Vec<f32>, timeloom::Error> {
        let rng = &mut Rng::new(7);
        // 20 output channels: the 16-row and 4-row conv tiles; a 3-channel input for the
        // backward-data path; stride 2 and a depthwise layer.
        let net = Sequential::new()
            .add(
                Conv2d::builder(3, 20, 3)
                    .padding(1)
                    .stride(2)
                    .build(d, rng)?,
            )
            .add(BatchNorm2d::new(d, 20)?)
            .add(
                Conv2d::builder(20, 20, 3)
                    .padding(1)
                    .groups(20)
                    .build(d, rng)?,
            )
            .add(MaxPool2d::new(2));
        let x = Tensor::from_slice(d, &Rng::new(8).normals(2 * 3 * 17 * 15), &[2, 3, 17, 15])?
            .requires_grad();
        let y = net.forward(&x)?;
        y.square()?.sum_all()?.backward()?;
        let mut v = y.read_blocking()?;
        v.extend(x.grad().map_or(Ok(vec![f32::NAN]), |g| g.read_blocking())?);
        for p in net.parameters() {
            v.extend(p.grad().map_or(Ok(vec![f32::NAN]), |g| g.read_blocking())?);
        }
        Ok(v)
    };
    Ok(worst(&run(dev)?, &run(&Device::Cpu)?))
}

/// Lists every adapter wgpu can open here, on every backend, and smoke-tests each against the
/// CPU path (matmul, an LSTM step, attention, a conv block). No options.
#[derive(Parser, Debug)]
struct Cli {}

fn main() {
    cli::parse::<Cli>();
    let backends = [
        ("Vulkan", wgpu::Backends::VULKAN),
        ("GL", wgpu::Backends::GL),
        ("Metal", wgpu::Backends::METAL),
        ("DX12", wgpu::Backends::DX12),
    ];
    println!(
        "{:<8} {:<48} {:<10} {:<10} {:<10} {:<10}",
        "backend", "adapter", "matmul", "lstm step", "attention", "cnn"
    );
    let mut failures = 0;
    for (name, backend) in backends {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backend;
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(backend));
        if adapters.is_empty() {
            println!("{name:<8} {:<48}", "(no adapter)");
            continue;
        }
        for adapter in adapters {
            let info = adapter.get_info();
            let options = GpuOptions {
                backends: Some(backend),
                adapter: Some(info.name.clone()),
                ..GpuOptions::default()
            };
            let line = format!("{} ({})", info.name, info.driver_info);
            let gpu = match pollster::block_on(Gpu::with_options(options)) {
                Ok(g) => g,
                Err(e) => {
                    println!("{name:<8} {line:<48} could not open: {e}");
                    failures += 1;
                    continue;
                }
            };
            let dev = Device::Gpu(gpu);
            let verdict = |r: Result<f32, timeloom::Error>, tol: f32, failures: &mut i32| match r {
                Ok(err) if err <= tol => format!("pass {err:.0e}"),
                Ok(err) => {
                    *failures += 1;
                    format!("FAIL {err:.1e}")
                }
                Err(e) => {
                    *failures += 1;
                    format!("error: {e}")
                }
            };
            let m = verdict(matmul_check(&dev), 1e-4, &mut failures);
            let l = verdict(lstm_check(&dev), 1e-3, &mut failures);
            let a = verdict(attention_check(&dev), 1e-4, &mut failures);
            let c = verdict(cnn_check(&dev), 1e-3, &mut failures);
            println!("{name:<8} {line:<48} {m:<10} {l:<10} {a:<10} {c:<10}");
        }
    }
    if failures > 0 {
        eprintln!("{failures} check(s) failed");
        std::process::exit(1);
    }
}
