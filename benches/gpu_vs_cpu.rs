//! GPU path vs CPU path for every op, measured in the same run on the same machine.
//!
//! ```text
//! cargo bench --bench gpu_vs_cpu                          # everything
//! cargo bench --bench gpu_vs_cpu -- matmul --sizes 256,1024
//! cargo bench --bench gpu_vs_cpu -- fma_peak matmul_cold_start
//! cargo bench --bench gpu_vs_cpu -- conv
//! ```
//! Positional arguments keep the rows whose op starts with one of them; `--sizes` keeps the
//! matmul rows whose N is listed; `--reps R` sets the timed calls per row (default: adaptive, at
//! least 3). Prints a table and writes `target/bench/gpu_vs_cpu.json`, one object per row, each
//! with the adapter and backend it ran on.
//!
//! Timing: pipelines compile in an untimed warm-up call; a GPU call is timed from recording to the
//! end of the device's work (submit + wait), so a number includes submission overhead, as a user's
//! step would. The first row measured is the cold start, with Mesa's on-disk shader cache off, so
//! it counts the compiles a user's first run pays.

use std::fmt::Write as _;
use std::time::Instant;

use timeloom::{diagnostics, Device, Gpu, Stats, Tensor};

/// Square matmuls: M = N = K.
const MATMUL_SQUARE: [usize; 5] = [128, 256, 512, 1024, 2048];
/// Skinny matmuls, as an RNN's recurrent step: M = batch rows against K = N.
const MATMUL_SKINNY_M: [usize; 3] = [1, 16, 64];
const MATMUL_SKINNY_KN: [usize; 2] = [256, 1024];

struct Args {
    ops: Vec<String>,
    sizes: Option<Vec<usize>>,
    reps: Option<usize>,
    /// `--shape T=64,B=32,I=128,H=256`: one recurrent shape instead of the sweep.
    shape: Option<Vec<(String, usize)>>,
}

fn parse_args() -> Args {
    let mut args = Args {
        ops: Vec::new(),
        sizes: None,
        reps: None,
        shape: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--sizes" => {
                let v = it.next().unwrap_or_default();
                args.sizes = Some(v.split(',').filter_map(|s| s.trim().parse().ok()).collect());
            }
            "--reps" => args.reps = it.next().and_then(|s| s.parse().ok()),
            "--shape" => {
                let v = it.next().unwrap_or_default();
                let pair = |kv: &str| -> Option<(String, usize)> {
                    let (k, n) = kv.split_once('=')?;
                    Some((k.trim().to_string(), n.trim().parse().ok()?))
                };
                args.shape = Some(v.split(',').filter_map(pair).collect());
            }
            other if other.starts_with("--") => eprintln!("ignoring unknown flag {other}"),
            op => args.ops.push(op.to_string()),
        }
    }
    args
}

impl Args {
    fn wants(&self, op: &str) -> bool {
        self.ops.is_empty() || self.ops.iter().any(|o| op.starts_with(o.as_str()))
    }
    fn wants_size(&self, n: usize) -> bool {
        self.sizes.as_ref().is_none_or(|s| s.contains(&n))
    }
}

struct Row {
    op: &'static str,
    shape: Vec<(&'static str, usize)>,
    path: &'static str,
    adapter: String,
    backend: String,
    median_ms: f64,
    gflops: Option<f64>,
    dispatches: f64,
    submissions: f64,
    /// Sequences per second, for the recurrent rows.
    seq_per_s: Option<f64>,
    /// The largest buffer allocated, for the attention rows.
    peak_bytes: Option<u64>,
}

impl Row {
    /// A timed row of `op` on `shape`: the adapter of `gpu`, or the host CPU when `None`.
    #[allow(clippy::too_many_arguments)]
    fn timed(
        op: &'static str,
        shape: Vec<(&'static str, usize)>,
        path: &'static str,
        gpu: Option<&Gpu>,
        ms: f64,
        flop: f64,
        per_call: &Stats,
    ) -> Row {
        let (adapter, backend) = gpu.map_or((cpu_name(), "cpu".to_string()), |g| {
            (g.adapter().name, g.adapter().backend)
        });
        Row {
            op,
            shape,
            path,
            adapter,
            backend,
            median_ms: ms,
            gflops: Some(flop / ms / 1e6),
            dispatches: per_call.dispatches as f64,
            submissions: per_call.submissions as f64,
            seq_per_s: None,
            peak_bytes: None,
        }
    }
}

/// Times `call` `reps` times (adaptive when `None`: until 2 s or 10 calls, at least 3) after one
/// untimed warm-up; returns the median in ms and the counters of one call.
fn time_calls(gpu: Option<&Gpu>, reps: Option<usize>, mut call: impl FnMut()) -> (f64, Stats) {
    call();
    let before = gpu.map(Gpu::stats).unwrap_or_default();
    let mut times = Vec::new();
    let start = Instant::now();
    loop {
        let t = Instant::now();
        call();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let enough = match reps {
            Some(r) => times.len() >= r,
            None => times.len() >= 3 && (start.elapsed().as_secs_f64() > 2.0 || times.len() >= 10),
        };
        if enough {
            break;
        }
    }
    let after = gpu.map(Gpu::stats).unwrap_or_default();
    let mut per_call = after.since(&before);
    let n = times.len() as u64;
    per_call.dispatches /= n;
    per_call.submissions /= n;
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], per_call)
}

fn matmul_rows(gpu: &Gpu, args: &Args, rows: &mut Vec<Row>) {
    let mut shapes: Vec<(usize, usize, usize)> = MATMUL_SQUARE.iter().map(|&n| (n, n, n)).collect();
    for &m in &MATMUL_SKINNY_M {
        for &kn in &MATMUL_SKINNY_KN {
            shapes.push((m, kn, kn));
        }
    }
    for (m, n, k) in shapes {
        if !args.wants_size(n) {
            continue;
        }
        // 2·M·N·K FLOP: one multiply and one add per term.
        let flop = 2.0 * (m * n * k) as f64;
        let a = seq(m * k);
        let b = seq(k * n);
        let mut pair = Vec::new();
        for (path, dev) in [("gpu", Device::Gpu(gpu.clone())), ("cpu", Device::Cpu)] {
            let ta = Tensor::from_slice(&dev, &a, &[m, k]).expect("upload");
            let tb = Tensor::from_slice(&dev, &b, &[k, n]).expect("upload");
            let g = dev.as_gpu();
            let (ms, s) = time_calls(g, args.reps, || {
                let c = ta.matmul(&tb).expect("matmul");
                if let Some(g) = g {
                    g.synchronize().expect("sync");
                }
                drop(c);
            });
            pair.push(ms);
            rows.push(Row::timed(
                "matmul",
                vec![("M", m), ("N", n), ("K", k)],
                path,
                g,
                ms,
                flop,
                &s,
            ));
            print_row(rows.last().expect("pushed"), None);
        }
        println!("{:>60} gpu/cpu time ratio {:.2}", "", pair[0] / pair[1]);
    }
}

/// One MLP training step (Linear-ReLU-Linear, cross-entropy, backward, Adam) per call.
fn mlp_rows(gpu: &Gpu, args: &Args, rows: &mut Vec<Row>) {
    use timeloom::nn::{Activation, Linear, Module, Sequential};
    use timeloom::{CrossEntropy, Optimizer};
    for (b, i, h, o) in [(32, 64, 128, 10), (256, 784, 256, 10)] {
        // Forward 2·B·(I·H + H·O); backward 2·B·I·H for the first weight (the input needs no
        // gradient, so no backward-data there) and 4·B·H·O for the second layer's two:
        // 4·B·I·H + 6·B·H·O FLOP, Adam aside.
        let flop = (4 * b * i * h + 6 * b * h * o) as f64;
        let mut pair = Vec::new();
        for (path, dev) in [("gpu", Device::Gpu(gpu.clone())), ("cpu", Device::Cpu)] {
            let mut rng = timeloom::Rng::new(1);
            let model = Sequential::new()
                .add(Linear::new(&dev, i, h, &mut rng).expect("layer"))
                .add(Activation::Relu)
                .add(Linear::new(&dev, h, o, &mut rng).expect("layer"));
            let mut opt = Optimizer::adam(model.parameters(), 1e-3);
            let x = Tensor::from_slice(&dev, &seq(b * i), &[b, i]).expect("upload");
            let labels: Vec<f32> = (0..b).map(|k| (k % o) as f32).collect();
            let t = Tensor::from_slice(&dev, &labels, &[b]).expect("upload");
            let g = dev.as_gpu();
            let (ms, s) = time_calls(g, args.reps, || {
                opt.zero_grad();
                let loss = CrossEntropy::new()
                    .compute(&model.forward(&x).expect("forward"), &t)
                    .expect("loss");
                loss.backward().expect("backward");
                opt.step().expect("step");
                if let Some(g) = g {
                    g.synchronize().expect("sync");
                }
            });
            pair.push(ms);
            rows.push(Row::timed(
                "mlp_train_step",
                vec![("B", b), ("I", i), ("H", h), ("O", o)],
                path,
                g,
                ms,
                flop,
                &s,
            ));
            print_row(rows.last().expect("pushed"), None);
        }
        println!("{:>60} gpu/cpu time ratio {:.2}", "", pair[0] / pair[1]);
    }
}

/// Convolution on typical layers (3×3, padding 1): the forward alone, and a training step's
/// convolution work (forward, backward-data and backward-weight, bias included), each also
/// with one backward alone, so a slow kernel shows itself.
fn conv_rows(gpu: &Gpu, args: &Args, rows: &mut Vec<Row>) {
    use timeloom::ConvOptions;
    for (n, ci, co, hw) in [(32, 3, 32, 32), (32, 32, 64, 16)] {
        // One convolution: 2·N·C_out·OH·OW·C_in·9 FLOP; each backward the same again.
        let one = 2.0 * (n * co * hw * hw * ci * 9) as f64;
        let shape = vec![("N", n), ("C_in", ci), ("C_out", co), ("HW", hw), ("k", 3)];
        // (op, x needs a gradient, w needs a gradient, convolutions per call)
        for (op, dx, dw, convs) in [
            ("conv2d_forward", false, false, 1.0),
            ("conv2d_fwd_bwd_data", true, false, 2.0),
            ("conv2d_fwd_bwd_weight", false, true, 2.0),
            ("conv2d_train_step", true, true, 3.0),
        ] {
            if !args.wants(op) {
                continue;
            }
            let mut pair = Vec::new();
            for (path, dev) in [("gpu", Device::Gpu(gpu.clone())), ("cpu", Device::Cpu)] {
                let mk = |len: usize, shape: &[usize], grad: bool| {
                    let t = Tensor::from_slice(&dev, &seq(len), shape).expect("upload");
                    if grad {
                        t.requires_grad()
                    } else {
                        t
                    }
                };
                let x = mk(n * ci * hw * hw, &[n, ci, hw, hw], dx);
                let w = mk(co * ci * 9, &[co, ci, 3, 3], dw);
                let b = mk(co, &[co], dw);
                let o = ConvOptions::default().padding(1);
                // The upstream gradient exists before the clock starts: the rows time the
                // convolution's own kernels, not a loss.
                let dy = mk(n * co * hw * hw, &[n, co, hw, hw], false);
                let g = dev.as_gpu();
                let (ms, s) = time_calls(g, args.reps, || {
                    let y = x.conv2d(&w, Some(&b), &o).expect("conv2d");
                    if dx || dw {
                        y.backward_with(&dy).expect("backward");
                    }
                    match g {
                        Some(g) => g.synchronize().expect("sync"),
                        None => drop(y),
                    }
                });
                pair.push(ms);
                rows.push(Row::timed(op, shape.clone(), path, g, ms, one * convs, &s));
                print_row(rows.last().expect("pushed"), None);
            }
            println!("{:>60} gpu/cpu time ratio {:.2}", "", pair[0] / pair[1]);
        }
    }
}

/// Seconds from creating a `Gpu` to the first finished 1024³ matmul: adapter, device, every
/// pipeline compile and the autotune included.
fn cold_start(rows: &mut Vec<Row>) -> Gpu {
    let n = 1024;
    let (a, b) = (seq(n * n), seq(n * n));
    let start = Instant::now();
    let gpu = Gpu::new_blocking().expect("no GPU adapter; install mesa-vulkan-drivers");
    let dev = Device::Gpu(gpu.clone());
    let ta = Tensor::from_slice(&dev, &a, &[n, n]).expect("upload");
    let tb = Tensor::from_slice(&dev, &b, &[n, n]).expect("upload");
    let c = ta.matmul(&tb).expect("matmul");
    c.read_blocking().expect("read");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let s = gpu.stats();
    let adapter = gpu.adapter();
    rows.push(Row {
        op: "matmul_cold_start",
        shape: vec![("M", n), ("N", n), ("K", n)],
        path: "gpu",
        adapter: adapter.name,
        backend: adapter.backend,
        median_ms: ms,
        gflops: None,
        dispatches: s.dispatches as f64,
        submissions: s.submissions as f64,
        seq_per_s: None,
        peak_bytes: None,
    });
    print_row(
        rows.last().expect("pushed"),
        Some(&format!("{} pipeline compiles", s.pipeline_compiles)),
    );
    gpu
}

fn seq(n: usize) -> Vec<f32> {
    let mut rng = timeloom::Rng::new(n as u64);
    rng.normals(n)
}

fn cpu_name() -> String {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("host CPU ({threads} threads, matrixmultiply)")
}

fn shape_str(shape: &[(&str, usize)]) -> String {
    shape
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn print_row(r: &Row, note: Option<&str>) {
    println!(
        "{:<18} {:<22} {:<4} {:>10.3} ms {:>9} GFLOP/s {:>5} disp {:>3} subm  {} [{}]{}",
        r.op,
        shape_str(&r.shape),
        r.path,
        r.median_ms,
        r.gflops.map_or("-".into(), |g| format!("{g:.2}")),
        r.dispatches,
        r.submissions,
        r.adapter,
        r.backend,
        note.map_or(String::new(), |n| format!("  ({n})")),
    );
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn write_json(rows: &[Row]) -> std::io::Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let shape = r
            .shape
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_str(k)))
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(
            out,
            "  {{\"op\":{},\"shape\":{{{shape}}},\"path\":{},\"adapter\":{},\"backend\":{},\"median_ms\":{:.4},\"gflops\":{},\"dispatches\":{},\"submissions\":{},\"sequences_per_s\":{},\"peak_bytes\":{}}}{}",
            json_str(r.op),
            json_str(r.path),
            json_str(&r.adapter),
            json_str(&r.backend),
            r.median_ms,
            r.gflops.map_or("null".into(), |g| format!("{g:.4}")),
            r.dispatches,
            r.submissions,
            r.seq_per_s.map_or("null".into(), |v| format!("{v:.3}")),
            r.peak_bytes.map_or("null".into(), |v| v.to_string()),
            if i + 1 < rows.len() { "," } else { "" },
        );
    }
    out.push_str("]\n");
    let path = dir.join("gpu_vs_cpu.json");
    // Written whole to a temporary file, then renamed: a reader never sees half a file.
    let tmp = dir.join("gpu_vs_cpu.json.tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The recurrent shapes of the sweep: T ∈ {16, 64, 256}, B ∈ {1, 16, 64}, H ∈ {64, 256, 512},
/// I = H; or the one `--shape` names.
fn rnn_shapes(args: &Args) -> Vec<[usize; 4]> {
    if let Some(kv) = &args.shape {
        let get = |k: &str, d: usize| kv.iter().find(|(n, _)| n == k).map_or(d, |(_, v)| *v);
        let h = get("H", 256);
        return vec![[get("T", 64), get("B", 32), get("I", h), h]];
    }
    let mut v = Vec::new();
    for t in [16, 64, 256] {
        for b in [1, 16, 64] {
            for h in [64, 256, 512] {
                v.push([t, b, h, h]);
            }
        }
    }
    v
}

/// LSTM and GRU rows: forward only (no tape) and a full training step of one layer (forward,
/// backward through time, Adam), GPU path and CPU path.
fn rnn_rows(gpu: &Gpu, args: &Args, rows: &mut Vec<Row>) {
    use timeloom::nn::{Module, Recurrent};
    use timeloom::{no_grad, Optimizer};
    for (cell, gates) in [("lstm", 4usize), ("gru", 3)] {
        for [t, b, i, h] in rnn_shapes(args) {
            for train in [false, true] {
                let op: &'static str = match (cell, train) {
                    ("lstm", false) => "lstm_forward",
                    ("lstm", true) => "lstm_train_step",
                    ("gru", false) => "gru_forward",
                    _ => "gru_train_step",
                };
                if !args.wants(op) {
                    continue;
                }
                // Forward: 2·T·B·(I + H)·G·H FLOP. The backward adds the same for dW_ih and
                // dW_hh and the recurrent sweep's 2·T·B·H·G·H, but no dX (the input needs no
                // gradient): a training step is 2·T·B·G·H·(2·I + 3·H).
                let flop = if train {
                    2.0 * (t * b * gates * h * (2 * i + 3 * h)) as f64
                } else {
                    2.0 * (t * b * (i + h) * gates * h) as f64
                };
                let mut pair = Vec::new();
                for (path, dev) in [("gpu", Device::Gpu(gpu.clone())), ("cpu", Device::Cpu)] {
                    let mut rng = timeloom::Rng::new(2);
                    let builder = if cell == "lstm" {
                        Recurrent::lstm(i, h)
                    } else {
                        Recurrent::gru(i, h)
                    };
                    // TIMELOOM_GRU_RESET_BEFORE=1 measures the reset-before GRU in the gru rows.
                    let builder = if cell == "gru"
                        && std::env::var_os("TIMELOOM_GRU_RESET_BEFORE").is_some()
                    {
                        Recurrent::gru_reset_before(i, h)
                    } else {
                        builder
                    };
                    // TIMELOOM_PERSISTENT=0|1 forces the per-step or the one-dispatch path.
                    let builder = match std::env::var("TIMELOOM_PERSISTENT").as_deref() {
                        Ok("0") => builder.persistent(false),
                        Ok("1") => builder.persistent(true),
                        _ => builder,
                    };
                    let model = builder.build(&dev, &mut rng).expect("model");
                    let mut opt = Optimizer::adam(model.parameters(), 1e-3);
                    let x = Tensor::from_slice(&dev, &seq(t * b * i), &[t, b, i]).expect("upload");
                    let g = dev.as_gpu();
                    let (ms, s) = time_calls(g, args.reps, || {
                        if train {
                            opt.zero_grad();
                            let y = model.forward(&x).expect("forward");
                            y.square()
                                .expect("loss")
                                .sum_all()
                                .expect("loss")
                                .backward()
                                .expect("backward");
                            opt.step().expect("step");
                        } else {
                            no_grad(|| model.forward(&x)).expect("forward");
                        }
                        if let Some(g) = g {
                            g.synchronize().expect("sync");
                        }
                    });
                    pair.push(ms);
                    let seq_per_s = b as f64 / (ms / 1e3);
                    let shape = vec![("T", t), ("B", b), ("I", i), ("H", h)];
                    rows.push(Row {
                        seq_per_s: Some(seq_per_s),
                        ..Row::timed(op, shape, path, g, ms, flop, &s)
                    });
                    print_row(
                        rows.last().expect("pushed"),
                        Some(&format!("{seq_per_s:.1} seq/s")),
                    );
                }
                println!("{:>60} gpu/cpu time ratio {:.2}", "", pair[0] / pair[1]);
            }
        }
    }
}

/// Seconds from creating a `Gpu` to the end of its first LSTM training step of (T, B, I, H) =
/// (64, 32, 128, 256): device, every compile and autotune included.
fn lstm_cold_start(rows: &mut Vec<Row>) {
    use timeloom::nn::{Module, Recurrent};
    let (t, b, i, h) = (64, 32, 128, 256);
    let x = seq(t * b * i);
    let start = Instant::now();
    let gpu = Gpu::new_blocking().expect("no GPU adapter");
    let dev = Device::Gpu(gpu.clone());
    let model = Recurrent::lstm(i, h)
        .build(&dev, &mut timeloom::Rng::new(0))
        .expect("model");
    let mut opt = timeloom::Optimizer::adam(model.parameters(), 1e-3);
    let xt = Tensor::from_slice(&dev, &x, &[t, b, i]).expect("upload");
    let y = model.forward(&xt).expect("forward");
    y.square()
        .expect("loss")
        .sum_all()
        .expect("loss")
        .backward()
        .expect("backward");
    opt.step().expect("step");
    gpu.synchronize().expect("sync");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let s = gpu.stats();
    let a = gpu.adapter();
    rows.push(Row {
        op: "lstm_cold_start",
        shape: vec![("T", t), ("B", b), ("I", i), ("H", h)],
        path: "gpu",
        adapter: a.name,
        backend: a.backend,
        median_ms: ms,
        gflops: None,
        dispatches: s.dispatches as f64,
        submissions: s.submissions as f64,
        seq_per_s: None,
        peak_bytes: None,
    });
    print_row(
        rows.last().expect("pushed"),
        Some(&format!("{} pipeline compiles", s.pipeline_compiles)),
    );
}

/// Attention rows: forward, and forward + backward, of the fused kernels, the materialised
/// reference path (GPU) and the fused CPU twin; d = 64, 8 heads, batch 4, causal. A fresh `Gpu`
/// per row makes `peak_bytes` that row's own high-water mark.
fn attention_rows(args: &Args, rows: &mut Vec<Row>) {
    use timeloom::{attention, attention_reference, AttentionOptions};
    let (heads, batch, dim) = (8usize, 4usize, 64usize);
    let bh = heads * batch;
    let lens = args
        .sizes
        .clone()
        .unwrap_or(vec![128, 256, 512, 1024, 2048]);
    for len in lens {
        for train in [false, true] {
            let op: &'static str = if train {
                "attention_train_step"
            } else {
                "attention_forward"
            };
            if !args.wants(op) {
                continue;
            }
            // Causal attention: about half of 4·BH·L²·d FLOP forward, 2.5× that for forward + backward.
            let flop = 2.0 * (bh * len * len * dim) as f64 * if train { 3.5 } else { 1.0 };
            for (path, on_gpu, fused) in [
                ("gpu", true, true),
                ("gpu_reference", true, false),
                ("cpu", false, true),
            ] {
                let gpu = if on_gpu {
                    Some(Gpu::new_blocking().expect("adapter"))
                } else {
                    None
                };
                let dev = gpu.as_ref().map_or(Device::Cpu, |g| Device::Gpu(g.clone()));
                let t = |seed: usize| {
                    Tensor::from_slice(&dev, &seq(bh * len * dim + seed), &[bh * len * dim + seed])
                        .and_then(|x| x.narrow(0, 0, bh * len * dim))
                        .and_then(|x| x.reshape(&[bh, len, dim]))
                        .expect("upload")
                };
                let (q, k, v) = (
                    t(0).requires_grad(),
                    t(1).requires_grad(),
                    t(2).requires_grad(),
                );
                let run = || -> Result<(), timeloom::Error> {
                    let o = if fused {
                        attention(
                            &q,
                            &k,
                            &v,
                            AttentionOptions {
                                causal: true,
                                heads,
                                ..AttentionOptions::default()
                            },
                        )?
                    } else {
                        attention_reference(&q, &k, &v, true, None, heads)?
                    };
                    if train {
                        o.sum_all()?.backward()?;
                    }
                    match &gpu {
                        Some(g) => g.synchronize(),
                        None => Ok(()),
                    }
                };
                if let Err(e) = run() {
                    println!("{op:<18} L={len:<5} {path:<14} skipped: {e}");
                    continue;
                }
                let (ms, s) = time_calls(gpu.as_ref(), Some(args.reps.unwrap_or(2)), || {
                    run().expect("attention")
                });
                let shape = vec![("B", batch), ("H", heads), ("L", len), ("d", dim)];
                let peak_bytes = gpu.as_ref().map(|g| g.stats().largest_buffer);
                rows.push(Row {
                    peak_bytes,
                    ..Row::timed(op, shape, path, gpu.as_ref(), ms, flop, &s)
                });
                let note = gpu
                    .as_ref()
                    .map(|g| format!("largest buffer {} KiB", g.stats().largest_buffer / 1024));
                print_row(rows.last().expect("pushed"), note.as_deref());
            }
        }
    }
}

fn main() {
    let args = parse_args();
    if std::env::var_os("MESA_SHADER_CACHE_DISABLE").is_none() {
        // Before any Vulkan instance exists: the cold start must pay the real compiles.
        std::env::set_var("MESA_SHADER_CACHE_DISABLE", "true");
    }
    let mut rows = Vec::new();
    let gpu = if args.wants("matmul_cold_start") {
        cold_start(&mut rows)
    } else {
        Gpu::new_blocking().expect("no GPU adapter; install mesa-vulkan-drivers")
    };
    println!("adapter: {}", gpu.adapter());
    if args.wants("fma_peak") {
        let peak = diagnostics::fma_peak_gflops(&gpu).expect("fma_peak");
        let a = gpu.adapter();
        rows.push(Row {
            op: "fma_peak",
            shape: vec![("invocations", 65536), ("iters", 4096)],
            path: "gpu",
            adapter: a.name,
            backend: a.backend,
            median_ms: f64::NAN,
            gflops: Some(peak),
            dispatches: 1.0,
            submissions: 1.0,
            seq_per_s: None,
            peak_bytes: None,
        });
        println!("fma_peak: {peak:.2} GFLOP/s (independent FMA chains: the adapter's ceiling)");
    }
    if args.ops.iter().any(|o| o == "matmul") || args.ops.is_empty() {
        matmul_rows(&gpu, &args, &mut rows);
        for (class, tile) in diagnostics::matmul_tiles(&gpu) {
            println!("matmul tile for {class:?}: {tile}");
        }
    }
    if args.wants("lstm_cold_start") {
        lstm_cold_start(&mut rows);
    }
    rnn_rows(&gpu, &args, &mut rows);
    if args.ops.iter().any(|o| o.starts_with("attention")) {
        attention_rows(&args, &mut rows);
    }
    if args.wants("mlp_train_step") {
        mlp_rows(&gpu, &args, &mut rows);
    }
    if args.ops.iter().any(|o| o.starts_with("conv")) || args.ops.is_empty() {
        conv_rows(&gpu, &args, &mut rows);
    }
    if args.ops.iter().any(|o| o == "matmul_tiles") {
        let sizes = args.sizes.clone().unwrap_or(vec![256, 1024]);
        for n in sizes {
            for (tile, gflops) in
                diagnostics::matmul_tile_sweep(&gpu, n as u32, n as u32, n as u32).expect("sweep")
            {
                println!(
                    "matmul_tiles N={n:<5} {:<18} {gflops:>7.2} GFLOP/s",
                    tile.to_string()
                );
            }
            // TIMELOOM_SWEEP_DIRECT="rows:wg_n,..." times extra direct-kernel shapes.
            if let Ok(list) = std::env::var("TIMELOOM_SWEEP_DIRECT") {
                let parse = |s: &str| -> Option<(u32, u32)> {
                    let (r, w) = s.split_once(':')?;
                    Some((r.parse().ok()?, w.parse().ok()?))
                };
                for (rows, wg_n) in list.split(',').filter_map(parse) {
                    {
                        let tile = timeloom::TileConfig {
                            wg_m: 1,
                            wg_n,
                            bk: 0,
                            direct_rows: rows,
                        };
                        let n32 = n as u32;
                        match diagnostics::matmul_tile_gflops(&gpu, tile, n32, n32, n32) {
                            Ok(g) => println!(
                                "matmul_tiles N={n:<5} {:<18} {g:>7.2} GFLOP/s",
                                tile.to_string()
                            ),
                            Err(e) => println!("{tile}: {e}"),
                        }
                    }
                }
            }
        }
    }
    for r in rows.iter_mut().filter(|r| r.median_ms.is_nan()) {
        r.median_ms = 0.0;
    }
    match write_json(&rows) {
        Ok(p) => println!("wrote {}", p.display()),
        Err(e) => eprintln!("could not write the JSON: {e}"),
    }
}
