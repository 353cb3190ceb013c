//! The rows that run on the GPU alone: the cold starts (device creation and every compile
//! included), the FMA ceiling, and the matmul tile sweep (printed, not a row).

use std::time::Instant;

use timeloom::nn::{Module, Recurrent};
use timeloom::{diagnostics, Device, Error, Gpu, Optimizer, Stats, Tensor};

use crate::report::{print_row, Row};
use crate::workload::normals;
use crate::{Args, GPU_ONLY};

/// Seconds from creating a `Gpu` to the first finished 1024³ matmul: adapter, device, every
/// pipeline compile and the autotune included.
pub fn cold_start(rows: &mut Vec<Row>) -> Gpu {
    let n = 1024;
    let (a, b) = (normals(n * n), normals(n * n));
    let start = Instant::now();
    let gpu = Gpu::new_blocking().expect("no GPU adapter; install mesa-vulkan-drivers");
    let dev = Device::Gpu(gpu.clone());
    let ta = Tensor::from_slice(&dev, &a, &[n, n]).expect("upload");
    let tb = Tensor::from_slice(&dev, &b, &[n, n]).expect("upload");
    let c = ta.matmul(&tb).expect("matmul");
    c.read_blocking().expect("read");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let s = gpu.stats();
    let shape = vec![("M", n), ("N", n), ("K", n)];
    rows.push(Row::new(
        "matmul_cold_start",
        GPU_ONLY[0].1,
        shape,
        "gpu",
        Some(&gpu),
        ms,
        &s,
    ));
    let note = format!("{} pipeline compiles", s.pipeline_compiles);
    print_row(rows.last().expect("pushed"), &note);
    gpu
}

/// Seconds from creating a `Gpu` to the end of its first LSTM training step of (T, B, I, H) =
/// (64, 32, 128, 256): device, every compile and autotune included.
pub fn lstm_cold_start(rows: &mut Vec<Row>) {
    let (t, b, i, h) = (64, 32, 128, 256);
    let x = normals(t * b * i);
    let start = Instant::now();
    let gpu = Gpu::new_blocking().expect("no GPU adapter");
    let dev = Device::Gpu(gpu.clone());
    let step = || -> Result<(), Error> {
        let model = Recurrent::lstm(i, h).build(&dev, &mut timeloom::Rng::new(0))?;
        let mut opt = Optimizer::adam(model.parameters(), 1e-3);
        let xt = Tensor::from_slice(&dev, &x, &[t, b, i])?;
        model.forward(&xt)?.square()?.sum_all()?.backward()?;
        opt.step()?;
        gpu.synchronize()
    };
    step().expect("lstm step");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let s = gpu.stats();
    let shape = vec![("T", t), ("B", b), ("I", i), ("H", h)];
    rows.push(Row::new(
        "lstm_cold_start",
        GPU_ONLY[1].1,
        shape,
        "gpu",
        Some(&gpu),
        ms,
        &s,
    ));
    let note = format!("{} pipeline compiles", s.pipeline_compiles);
    print_row(rows.last().expect("pushed"), &note);
}

/// The adapter's FMA ceiling, from independent chains (`diagnostics::fma_peak_gflops`).
pub fn fma_peak(gpu: &Gpu, rows: &mut Vec<Row>) {
    let peak = diagnostics::fma_peak_gflops(gpu).expect("fma_peak");
    // The dispatch grows until it fills the adapter (diagnostics::fma_peak_gflops).
    let shape = vec![("iters", 4096)];
    let one = Stats {
        dispatches: 1,
        submissions: 1,
        ..Stats::default()
    };
    // Not a timed call: the measurement times itself, so median_ms stays 0.
    let mut row = Row::new(
        "fma_peak",
        GPU_ONLY[2].1,
        shape,
        "gpu",
        Some(gpu),
        0.0,
        &one,
    );
    row.gflops = Some(peak);
    print_row(&row, "independent FMA chains: the adapter's ceiling");
    rows.push(row);
}

/// Every tile shape timed on square products of the `--sizes` (default 256 and 1024).
pub fn matmul_tiles(gpu: &Gpu, args: &Args) {
    for n in args.sizes.clone().unwrap_or(vec![256, 1024]) {
        let n32 = u32::try_from(n).expect("a matmul side fits u32");
        for (tile, gflops) in diagnostics::matmul_tile_sweep(gpu, n32, n32, n32).expect("sweep") {
            out!(
                "matmul_tiles N={n:<5} {:<18} {gflops:>7.2} GFLOP/s",
                format!("{tile}")
            );
        }
    }
}
