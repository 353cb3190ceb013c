//! GPU path vs CPU path for every kernel, measured in the same run on the same machine.
//!
//! ```text
//! cargo bench --bench gpu_vs_cpu                          # every case, modest sizes (minutes)
//! cargo bench --bench gpu_vs_cpu -- --help                # the flags
//! cargo bench --bench gpu_vs_cpu -- --list                # the cases and the kernels each runs
//! cargo bench --bench gpu_vs_cpu -- matmul --sizes 256,1024
//! cargo bench --bench gpu_vs_cpu -- fma_peak matmul_cold_start
//! cargo bench --bench gpu_vs_cpu -- conv
//! cargo bench --bench gpu_vs_cpu -- lstm --shape T=64,B=32,I=128,H=256
//! cargo bench --bench gpu_vs_cpu -- --large               # the large sizes too (an hour on lavapipe)
//! cargo bench --bench gpu_vs_cpu -- lstm --paths cpu --torch target/bench/torch_cpu.json
//! ```
//! The last compares the CPU path with PyTorch's: `python3 tools/torch_bench.py` (same cases,
//! shapes and flags) writes `target/bench/torch_cpu.json` first.
//! Positional arguments keep the cases whose op starts with one of them. Every row names its op,
//! its shape in named sizes, its path (`gpu`, `cpu`, `gpu_reference`), the adapter and backend,
//! the median time, and GFLOP/s or GB/s from the formula written beside the case. Prints a table
//! and writes `target/bench/gpu_vs_cpu.json`, one object per row.
//!
//! Timing: one untimed call per row first compiles the pipelines (and finds a size a path
//! refuses), then untimed calls for 0.3 s bring a GPU's clocks up; a GPU call is timed from recording to the end of the device's work (submit + wait),
//! so a number includes submission overhead, as a user's step would. The first row measured is
//! the cold start, with the drivers' on-disk shader caches and timeloom's tuning cache off, so it
//! counts the compiles and the tuning a user's first run pays.
//!
//! Environment: TIMELOOM_PERSISTENT=0|1 forces the recurrent rows onto the per-step or the
//! one-dispatch path; TIMELOOM_RECURRENT_KSPLIT=1|2|4|8|16 forces the per-step forward's k-split
//! (default: 16 on a GPU, 1 on a CPU-backed adapter); TIMELOOM_GRU_RESET_BEFORE=1 measures the
//! reset-before GRU in the gru rows.

// The generation row includes the char_rnn example, which brings its own copy of
// examples/common/cli.rs.
#![allow(clippy::duplicate_mod)]

use std::collections::BTreeSet;
use std::time::Instant;

use clap::Parser;
use timeloom::{diagnostics, Device, Error, Gpu, Stats};

// The examples' parsing: an unknown flag is an error that lists the valid ones.
/// The bench's progress over its (case, shape) rows: a bar with an ETA on a terminal, hidden
/// elsewhere (the rows themselves are the progress in a log). Every line goes through `out!`,
/// which steps the bar aside.
static BAR: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

fn bar() -> &'static indicatif::ProgressBar {
    BAR.get_or_init(indicatif::ProgressBar::hidden)
}

/// `println!` with the progress bar stepped aside.
macro_rules! out {
    ($($t:tt)*) => {
        crate::bar().suspend(|| println!($($t)*))
    };
}

#[path = "../examples/common/cli.rs"]
mod cli;
#[path = "gpu_vs_cpu/gpu_only.rs"]
mod gpu_only;
#[path = "gpu_vs_cpu/report.rs"]
mod report;
#[path = "gpu_vs_cpu/workload.rs"]
mod workload;
// The generation row samples through the example's own code (char_transformer includes char_rnn).
#[path = "../examples/char_transformer.rs"]
#[allow(dead_code)]
mod char_transformer;

use gpu_only::{cold_start, fma_peak, lstm_cold_start, matmul_tiles};
use report::{print_row, read_reference, shape_str, write_json, Reference, Row};
use workload::workload;

/// Named sizes: `[("M", 256), ("N", 256), ("K", 256)]`.
type Shape = &'static [(&'static str, usize)];

/// One op, measured on each of its shapes on each of its paths.
struct Case {
    /// The row's `op`: a kernel's name when a call is that kernel alone, else what a call does
    /// (`<op>_fwd_bwd`: forward and backward; `_train_step`: forward, backward and update).
    op: &'static str,
    /// The kernels a call runs (a `_fwd_bwd` call also accumulates into the leaf's gradient with
    /// `axpy`). Every `shaders/*.wgsl` must be in some case's list: the bench checks.
    kernels: &'static [&'static str],
    /// The default run's shapes.
    shapes: &'static [Shape],
    /// Further shapes that only `--large` runs.
    large: &'static [Shape],
    /// The size `--sizes` selects, for the cases it applies to.
    sized_by: Option<&'static str>,
    /// The paths, in order (`gpu_reference`: the materialised GPU path, where one exists).
    paths: &'static [&'static str],
    /// Each GPU path on a device of its own, so `peak_bytes` is that row's high-water mark.
    own_device: bool,
}

const GPU_CPU: &[&str] = &["gpu", "cpu"];
const ELEMENTS: &[Shape] = &[&[("N", 1 << 20)]];
const ROWS: &[Shape] = &[&[("R", 1024), ("C", 1024)]];
const IMAGES: &[Shape] = &[&[("N", 32), ("C", 32), ("HW", 32)]];
const CONV: &[Shape] = &[
    &[("N", 32), ("C_in", 3), ("C_out", 32), ("HW", 32), ("k", 3)],
    &[("N", 32), ("C_in", 32), ("C_out", 64), ("HW", 16), ("k", 3)],
];
const ATTENTION: &[Shape] = &[
    &[("B", 4), ("H", 8), ("L", 128), ("d", 64)],
    &[("B", 4), ("H", 8), ("L", 256), ("d", 64)],
];
const ATTENTION_LARGE: &[Shape] = &[
    &[("B", 4), ("H", 8), ("L", 512), ("d", 64)],
    &[("B", 4), ("H", 8), ("L", 1024), ("d", 64)],
    &[("B", 4), ("H", 8), ("L", 2048), ("d", 64)],
];
/// The per-step path (B·H > 1024) and the persistent one-dispatch path (H ≤ 128, B·H ≤ 1024).
const RECURRENT: &[Shape] = &[
    &[("T", 32), ("B", 16), ("I", 128), ("H", 256)],
    &[("T", 64), ("B", 8), ("I", 64), ("H", 64)],
];
/// T ∈ {16, 64, 256}, B ∈ {1, 16, 64}, H = I ∈ {64, 256, 512}.
const RECURRENT_LARGE: &[Shape] = &[
    &[("T", 16), ("B", 1), ("I", 64), ("H", 64)],
    &[("T", 16), ("B", 1), ("I", 256), ("H", 256)],
    &[("T", 16), ("B", 1), ("I", 512), ("H", 512)],
    &[("T", 16), ("B", 16), ("I", 64), ("H", 64)],
    &[("T", 16), ("B", 16), ("I", 256), ("H", 256)],
    &[("T", 16), ("B", 16), ("I", 512), ("H", 512)],
    &[("T", 16), ("B", 64), ("I", 64), ("H", 64)],
    &[("T", 16), ("B", 64), ("I", 256), ("H", 256)],
    &[("T", 16), ("B", 64), ("I", 512), ("H", 512)],
    &[("T", 64), ("B", 1), ("I", 64), ("H", 64)],
    &[("T", 64), ("B", 1), ("I", 256), ("H", 256)],
    &[("T", 64), ("B", 1), ("I", 512), ("H", 512)],
    &[("T", 64), ("B", 16), ("I", 64), ("H", 64)],
    &[("T", 64), ("B", 16), ("I", 256), ("H", 256)],
    &[("T", 64), ("B", 16), ("I", 512), ("H", 512)],
    &[("T", 64), ("B", 64), ("I", 64), ("H", 64)],
    &[("T", 64), ("B", 64), ("I", 256), ("H", 256)],
    &[("T", 64), ("B", 64), ("I", 512), ("H", 512)],
    &[("T", 256), ("B", 1), ("I", 64), ("H", 64)],
    &[("T", 256), ("B", 1), ("I", 256), ("H", 256)],
    &[("T", 256), ("B", 1), ("I", 512), ("H", 512)],
    &[("T", 256), ("B", 16), ("I", 64), ("H", 64)],
    &[("T", 256), ("B", 16), ("I", 256), ("H", 256)],
    &[("T", 256), ("B", 16), ("I", 512), ("H", 512)],
    &[("T", 256), ("B", 64), ("I", 64), ("H", 64)],
    &[("T", 256), ("B", 64), ("I", 256), ("H", 256)],
    &[("T", 256), ("B", 64), ("I", 512), ("H", 512)],
];
const RECURRENT_FORWARD: &[&str] = &[
    "matmul",
    "recurrent_step_forward",
    "recurrent_sequence_forward",
];
/// The f16 layer's forward: W_hhᵀ copied as f16 and b_hh widened by `convert`.
const RECURRENT_FORWARD_F16: &[&str] = &[
    "matmul",
    "convert",
    "recurrent_step_forward",
    "recurrent_sequence_forward",
];
const RECURRENT_TRAIN: &[&str] = &[
    "matmul",
    "recurrent_step_forward",
    "recurrent_step_backward",
    "recurrent_sequence_forward",
    "recurrent_sequence_backward",
    "reduce",
    "optimizer_step",
    // The loss Σy² and the gradient accumulation.
    "unary",
    "unary_backward",
    "axpy",
];

const fn case(
    op: &'static str,
    kernels: &'static [&'static str],
    shapes: &'static [Shape],
) -> Case {
    Case {
        op,
        kernels,
        shapes,
        large: &[],
        sized_by: None,
        paths: GPU_CPU,
        own_device: false,
    }
}

/// Every timed case of the bench, in the order they run.
const CASES: &[Case] = &[
    Case {
        large: &[&[("M", 2048), ("N", 2048), ("K", 2048)]],
        sized_by: Some("N"),
        ..case(
            "matmul",
            &["matmul"],
            &[
                &[("M", 128), ("N", 128), ("K", 128)],
                &[("M", 256), ("N", 256), ("K", 256)],
                &[("M", 512), ("N", 512), ("K", 512)],
                &[("M", 1024), ("N", 1024), ("K", 1024)],
                // Skinny, as an RNN's recurrent step: M = batch rows against K = N.
                &[("M", 1), ("N", 256), ("K", 256)],
                &[("M", 16), ("N", 256), ("K", 256)],
                &[("M", 64), ("N", 256), ("K", 256)],
                &[("M", 1), ("N", 1024), ("K", 1024)],
                &[("M", 16), ("N", 1024), ("K", 1024)],
                &[("M", 64), ("N", 1024), ("K", 1024)],
            ],
        )
    },
    // The same products with B (the weight) in f16: half the bytes of B read; f32 sums.
    case(
        "matmul_f16",
        &["matmul"],
        &[
            &[("M", 1), ("N", 1024), ("K", 1024)],
            &[("M", 64), ("N", 1024), ("K", 1024)],
            &[("M", 1024), ("N", 1024), ("K", 1024)],
        ],
    ),
    case("unary", &["unary"], ELEMENTS),
    case(
        "unary_fwd_bwd",
        &["unary", "unary_backward", "axpy"],
        ELEMENTS,
    ),
    case("binary", &["binary"], ELEMENTS),
    case("axpy", &["axpy"], ELEMENTS),
    case("dropout", &["dropout"], ELEMENTS),
    case("reduce", &["reduce"], ROWS),
    case("softmax_forward", &["softmax_forward"], ROWS),
    case(
        "softmax_fwd_bwd",
        &["softmax_forward", "softmax_backward", "axpy"],
        ROWS,
    ),
    case(
        "cross_entropy_forward",
        &["cross_entropy_forward", "reduce", "binary"],
        ROWS,
    ),
    case(
        "cross_entropy_fwd_bwd",
        &[
            "cross_entropy_forward",
            "reduce",
            "binary",
            "cross_entropy_backward",
            "axpy",
        ],
        ROWS,
    ),
    case("layer_norm_forward", &["layer_norm_forward"], ROWS),
    case(
        "layer_norm_fwd_bwd",
        // dγ and dβ: x̂ again by elementwise ops, then column sums.
        &[
            "layer_norm_forward",
            "layer_norm_backward",
            "binary",
            "reduce",
            "axpy",
        ],
        ROWS,
    ),
    case(
        "embedding_forward",
        &["embedding_forward"],
        &[&[("V", 256), ("N", 2048), ("D", 128)]],
    ),
    case(
        "embedding_fwd_bwd",
        &["embedding_forward", "embedding_backward", "axpy"],
        &[&[("V", 256), ("N", 2048), ("D", 128)]],
    ),
    case("optimizer_step", &["optimizer_step"], ELEMENTS),
    case(
        "optimizer_step_clipped",
        &["reduce", "clip_scale", "optimizer_step"],
        &[&[("P", 8), ("N", 1 << 17)]],
    ),
    case("pool2d_forward", &["pool2d_forward"], IMAGES),
    case(
        "pool2d_fwd_bwd",
        &["pool2d_forward", "pool2d_backward", "axpy"],
        IMAGES,
    ),
    case("batch_norm_forward", &["batch_norm_forward"], IMAGES),
    case(
        "batch_norm_fwd_bwd",
        &["batch_norm_forward", "batch_norm_backward", "axpy"],
        IMAGES,
    ),
    case("conv2d_forward", &["conv2d_forward"], CONV),
    case(
        "conv2d_fwd_bwd_data",
        &["conv2d_forward", "conv2d_backward_data", "axpy"],
        CONV,
    ),
    case(
        "conv2d_fwd_bwd_weight",
        // The bias gradient and the split-K partials of the weight gradient are reductions.
        &["conv2d_forward", "conv2d_backward_weight", "reduce", "axpy"],
        CONV,
    ),
    case(
        "conv2d_train_step",
        &[
            "conv2d_forward",
            "conv2d_backward_data",
            "conv2d_backward_weight",
            "reduce",
            "axpy",
        ],
        CONV,
    ),
    Case {
        large: ATTENTION_LARGE,
        sized_by: Some("L"),
        paths: &["gpu", "gpu_reference", "cpu"],
        own_device: true,
        ..case("attention_forward", &["attention_forward"], ATTENTION)
    },
    Case {
        large: ATTENTION_LARGE,
        sized_by: Some("L"),
        paths: &["gpu", "gpu_reference", "cpu"],
        own_device: true,
        ..case(
            "attention_train_step",
            &[
                "attention_forward",
                "attention_backward_kv",
                "attention_backward_q",
                // The loss, D = rowsum(dO ⊙ O), and the leaves' gradients.
                "reduce",
                "binary",
                "axpy",
            ],
            ATTENTION,
        )
    },
    case(
        "mlp_train_step",
        &[
            "matmul",
            "unary",
            "cross_entropy_forward",
            "cross_entropy_backward",
            "unary_backward",
            "optimizer_step",
            "reduce",
            "binary",
            "axpy",
        ],
        &[
            &[("B", 32), ("I", 64), ("H", 128), ("O", 10)],
            &[("B", 256), ("I", 784), ("H", 256), ("O", 10)],
        ],
    ),
    Case {
        large: RECURRENT_LARGE,
        own_device: true,
        ..case("lstm_forward", RECURRENT_FORWARD, RECURRENT)
    },
    // Inference with the layer converted to f16 (`Recurrent::to_dtype`): W_ih, W_hh and the
    // biases f16, states and outputs f32; beside the f32 row, with each one's resident bytes.
    Case {
        large: RECURRENT_LARGE,
        own_device: true,
        ..case("lstm_forward_f16", RECURRENT_FORWARD_F16, RECURRENT)
    },
    Case {
        large: RECURRENT_LARGE,
        ..case("lstm_train_step", RECURRENT_TRAIN, RECURRENT)
    },
    Case {
        large: RECURRENT_LARGE,
        own_device: true,
        ..case("gru_forward", RECURRENT_FORWARD, RECURRENT)
    },
    Case {
        large: RECURRENT_LARGE,
        own_device: true,
        ..case("gru_forward_f16", RECURRENT_FORWARD_F16, RECURRENT)
    },
    Case {
        large: RECURRENT_LARGE,
        ..case("gru_train_step", RECURRENT_TRAIN, RECURRENT)
    },
    // Text generation at batch 1 as `char_rnn` samples: per token one LSTM step, the decoder,
    // a draw on the device and the one-hot of the drawn id for the next step; one readback per
    // call (V = tinyshakespeare's vocabulary).
    Case {
        paths: GPU_CPU,
        ..case(
            "char_rnn_generate",
            &[
                "matmul",
                "recurrent_step_forward",
                "recurrent_sequence_forward",
                "sample_categorical",
                "embedding_forward",
            ],
            &[&[("V", 65), ("H", 256), ("N", 64)]],
        )
    },
];

/// Rows that run on the GPU alone, each with its own code in `gpu_vs_cpu/gpu_only.rs`: (op,
/// kernels).
const GPU_ONLY: &[(&str, &[&str])] = &[
    ("matmul_cold_start", &["matmul"]),
    (
        "lstm_cold_start",
        &[
            "matmul",
            "recurrent_step_forward",
            "recurrent_step_backward",
            "reduce",
            "optimizer_step",
        ],
    ),
    ("fma_peak", &["fma_peak"]),
    // Printed, not a row, and only when named: every tile shape timed on square products.
    ("matmul_tiles", &["matmul"]),
];

/// GPU path vs CPU path for every kernel in one run: prints a table and writes
/// target/bench/gpu_vs_cpu.json (adapter and backend on every row).
#[derive(Parser, Debug)]
#[command(name = "gpu_vs_cpu", bin_name = "cargo bench --bench gpu_vs_cpu --")]
struct Args {
    /// Keep the cases whose op starts with one of these (matmul, conv, lstm, attention, ...;
    /// `--list` shows them). `matmul_tiles` runs only when named.
    ops: Vec<String>,
    /// Keep the matmul rows whose N, and the attention rows whose L, is listed, the large sizes
    /// included (e.g. 256,1024).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    sizes: Option<Vec<usize>>,
    /// Timed calls per row (default: until 2 s or 10 calls have passed, at least 3).
    #[arg(long, value_parser = cli::count)]
    reps: Option<usize>,
    /// Named sizes that replace those of every case whose shapes have all of them, e.g.
    /// T=64,B=32,I=128,H=256 for the recurrent rows.
    #[arg(long, value_parser = parse_shape)]
    shape: Option<Sizes>,
    /// Also run the large shapes (a long run on a software adapter).
    #[arg(long)]
    large: bool,
    /// Keep only these paths, comma-separated (gpu, gpu_reference, cpu): `--paths cpu` times the
    /// CPU path alone (and skips the GPU-only rows).
    #[arg(long, value_delimiter = ',')]
    paths: Option<Vec<String>>,
    /// Rows from tools/torch_bench.py (path `torch-cpu`) to print beside ours, matched by op and
    /// shape, with the CPU path's time as a multiple of PyTorch's.
    #[arg(long, value_name = "JSON")]
    torch: Option<std::path::PathBuf>,
    /// List the cases, their shapes and the kernels each runs, and exit.
    #[arg(long)]
    list: bool,
    /// Time each GPU row's dispatches on the device (GPU timestamps; TIMELOOM_PROFILE=1 does
    /// the same) and print where each row's device time goes, kernel by kernel. The timestamps
    /// make each submission wait: the rows' wall times are then not the plain run's.
    #[arg(long)]
    profile: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// `--shape`: (name, size) pairs.
#[derive(Clone, Debug)]
struct Sizes(Vec<(String, usize)>);

fn parse_shape(s: &str) -> Result<Sizes, String> {
    s.split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}` is not NAME=SIZE"))?;
            let v = v
                .trim()
                .parse()
                .map_err(|_| format!("`{v}` is not a size"))?;
            Ok((k.trim().to_string(), v))
        })
        .collect::<Result<_, _>>()
        .map(Sizes)
}

impl Args {
    fn wants_path(&self, path: &str) -> bool {
        self.paths
            .as_ref()
            .is_none_or(|p| p.iter().any(|q| q == path))
    }

    fn wants(&self, op: &str) -> bool {
        self.ops.is_empty() || self.ops.iter().any(|o| op.starts_with(o.as_str()))
    }

    /// The shapes of `case` this run measures: the default ones (and the large ones with
    /// `--large`); with `--sizes`, those of either list whose size is listed; `--shape`
    /// replacing sizes; no shape twice.
    fn shapes(&self, case: &Case) -> Vec<Vec<(&'static str, usize)>> {
        let all = case.shapes.iter().chain(case.large);
        let picked: Vec<Shape> = match (&self.sizes, case.sized_by) {
            (Some(sizes), Some(key)) => all
                .filter(|s| s.iter().any(|&(k, v)| k == key && sizes.contains(&v)))
                .copied()
                .collect(),
            _ if self.large => all.copied().collect(),
            _ => case.shapes.to_vec(),
        };
        let mut out: Vec<Vec<(&'static str, usize)>> = Vec::new();
        for s in picked {
            let mut s = s.to_vec();
            if let Some(Sizes(over)) = &self.shape {
                if over
                    .iter()
                    .all(|(k, _)| s.iter().any(|e| e.0 == k.as_str()))
                {
                    for (k, v) in over {
                        s.iter_mut()
                            .filter(|e| e.0 == k.as_str())
                            .for_each(|e| e.1 = *v);
                    }
                }
            }
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

/// Untimed calls before a row's timed ones, until this long has passed: a real GPU idles its
/// clocks while the CPU rows run, and ten 1 ms calls end before they ramp up again (the H200's
/// conv and LSTM rows read 2-3× slow after a CPU row, and right in a GPU-only run).
const WARM_UP_S: f64 = 0.3;

/// Times `call` `reps` times (adaptive when `None`: until 2 s or 10 calls, at least 3), after
/// untimed calls for [`WARM_UP_S`]; returns the median in ms, the counters of one call and the
/// number of calls. The caller has made one untimed call.
fn time_calls(
    gpu: Option<&Gpu>,
    reps: Option<usize>,
    mut call: impl FnMut(),
) -> (f64, Stats, usize) {
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < WARM_UP_S {
        call();
    }
    // The untimed calls' device time is not the row's.
    if let Some(g) = gpu.filter(|g| g.profiling()) {
        g.take_profile().expect("a profiling device");
    }
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
    (times[times.len() / 2], per_call, times.len())
}

/// Waits for the device's work (a no-op on the CPU, whose ops finish when they return).
fn sync(gpu: Option<&Gpu>) -> Result<(), Error> {
    gpu.map_or(Ok(()), Gpu::synchronize)
}

/// Measures `case` on `shape` on each of its paths (the one generic path of every timed row):
/// inputs made untimed, one untimed call (pipelines compile, the pool fills, a size a path
/// refuses shows), then timed calls each ending when the device's work has completed.
fn measure(
    args: &Args,
    gpu: &Gpu,
    case: &Case,
    shape: Vec<(&'static str, usize)>,
    torch: &[Reference],
    rows: &mut Vec<Row>,
) {
    let size = |k: &str| -> usize {
        shape
            .iter()
            .find(|(n, _)| *n == k)
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("{}: the shape has no `{k}`", case.op))
    };
    let w = workload(case.op, &size);
    let mut times: Vec<(&str, f64)> = Vec::new();
    for &path in case.paths.iter().filter(|p| args.wants_path(p)) {
        let row_gpu = match (path, case.own_device) {
            ("cpu", _) => None,
            (_, true) => Some(Gpu::new_blocking().expect("no GPU adapter")),
            (_, false) => Some(gpu.clone()),
        };
        let g = row_gpu.as_ref();
        let dev = g.map_or(Device::Cpu, |g| Device::Gpu(g.clone()));
        let first = (w.prepare)(path, &dev).and_then(|mut call| {
            call()?;
            sync(g)?;
            Ok(call)
        });
        let mut call = match first {
            Ok(call) => call,
            Err(e) => {
                out!(
                    "{:<24} {:<34} {path:<13} skipped: {e}",
                    case.op,
                    shape_str(&shape)
                );
                continue;
            }
        };
        let profiling = g.is_some_and(Gpu::profiling);
        let (ms, stats, calls) = time_calls(g, args.reps, || {
            call().unwrap_or_else(|e| panic!("{}: {e}", case.op));
            sync(g).expect("sync");
        });
        let mut row =
            Row::new(case.op, case.kernels, shape.clone(), path, g, ms, &stats).with_work(w.work);
        let profile = match (profiling, g) {
            (true, Some(g)) => g.take_profile().ok(),
            _ => None,
        };
        if let Some(p) = &profile {
            row = row.with_profile(p, calls);
        }
        let mut notes = Vec::new();
        if let Some(b) = w.sequences {
            let per_s = b as f64 / (ms / 1e3);
            row.seq_per_s = Some(per_s);
            notes.push(format!("{per_s:.1} seq/s"));
        }
        if let Some(n) = w.tokens {
            let per_s = n as f64 / (ms / 1e3);
            row.tokens_per_s = Some(per_s);
            notes.push(format!("{per_s:.1} tokens/s"));
        }
        if let (true, Some(g)) = (case.own_device, g) {
            let stats = g.stats();
            row.peak_bytes = Some(stats.largest_buffer);
            row.resident_bytes = Some(stats.bytes_resident);
            notes.push(format!(
                "largest buffer {} KiB, resident {} KiB",
                stats.largest_buffer / 1024,
                stats.bytes_resident / 1024
            ));
        }
        print_row(&row, &notes.join(", "));
        if let Some(p) = &profile {
            // Per call: the calls all ran the same dispatches.
            let n = calls as u64;
            let per_call = timeloom::Profile {
                kernels: p
                    .kernels
                    .iter()
                    .map(|k| timeloom::KernelTime {
                        kernel: k.kernel.clone(),
                        dispatches: k.dispatches / n,
                        ms: k.ms / n as f64,
                    })
                    .collect(),
                ms: p.ms / n as f64,
                dispatches: p.dispatches / n,
            };
            out!(
                "    device time per call {:.3} ms of {ms:.3} ms (median wall), mean of {calls} calls:",
                per_call.ms
            );
            for line in per_call.table(8).lines() {
                out!("    {line}");
            }
        }
        times.push((path, ms));
        rows.push(row);
    }
    let time = |p: &str| times.iter().find(|(q, _)| *q == p).map(|&(_, ms)| ms);
    if let (Some(g), Some(c)) = (time("gpu"), time("cpu")) {
        out!("{:>72} gpu/cpu time ratio {:.2}", "", g / c);
    }
    for t in torch.iter().filter(|t| t.matches(case.op, &shape)) {
        t.print(&shape);
        if let Some(c) = time("cpu") {
            out!("{:>72} cpu/torch time ratio {:.2}", "", c / t.median_ms);
        }
    }
}

/// The kernels (`shaders/*.wgsl`) that no case or GPU-only row runs.
fn kernels_without_a_row() -> Vec<String> {
    let covered: BTreeSet<&str> = CASES
        .iter()
        .flat_map(|c| c.kernels.iter())
        .chain(GPU_ONLY.iter().flat_map(|(_, k)| k.iter()))
        .copied()
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut missing: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".wgsl").map(str::to_string)
        })
        .filter(|k| !covered.contains(k.as_str()))
        .collect();
    missing.sort();
    missing
}

fn list(args: &Args) {
    for case in CASES {
        out!("{}: kernels {}", case.op, case.kernels.join(", "));
        for s in args.shapes(case) {
            out!("    {} on {}", shape_str(&s), case.paths.join(", "));
        }
        if !case.large.is_empty() && !args.large {
            out!("    and {} large shapes (--large)", case.large.len());
        }
    }
    for (op, kernels) in GPU_ONLY {
        out!("{op}: kernels {} (GPU only)", kernels.join(", "));
    }
    match kernels_without_a_row() {
        m if m.is_empty() => out!("every kernel in shaders/ has a row"),
        m => out!("kernels without a row: {}", m.join(", ")),
    }
}

fn main() {
    let args = cli::parse::<Args>();
    if args.list {
        list(&args);
        return;
    }
    let missing = kernels_without_a_row();
    if !missing.is_empty() {
        eprintln!(
            "kernels without a bench row: {}; add a case to CASES",
            missing.join(", ")
        );
    }
    if args.profile {
        // Before any device exists: every device the bench makes then profiles.
        std::env::set_var("TIMELOOM_PROFILE", "1");
    }
    if std::env::var_os("MESA_SHADER_CACHE_DISABLE").is_none() {
        // Before any Vulkan instance exists: the cold start must pay the real compiles.
        std::env::set_var("MESA_SHADER_CACHE_DISABLE", "true");
    }
    if std::env::var_os("TIMELOOM_TUNING_CACHE").is_none() {
        // Nor may matmul tiles tuned by an earlier run: the cold starts count their tuning.
        std::env::set_var("TIMELOOM_TUNING_CACHE", "off");
    }
    if std::env::var_os("__GL_SHADER_DISK_CACHE").is_none() {
        // NVIDIA's driver keeps its own on-disk cache.
        std::env::set_var("__GL_SHADER_DISK_CACHE", "0");
    }
    let torch = match args.torch.as_deref().map(read_reference).transpose() {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut rows = Vec::new();
    let gpu_rows = args.wants_path("gpu");
    let gpu = if gpu_rows && args.wants("matmul_cold_start") {
        cold_start(&mut rows)
    } else {
        Gpu::new_blocking().expect("no GPU adapter; install mesa-vulkan-drivers")
    };
    out!("adapter: {}", gpu.adapter());
    if gpu_rows && args.wants("lstm_cold_start") {
        lstm_cold_start(&mut rows);
    }
    if gpu_rows && args.wants("fma_peak") {
        fma_peak(&gpu, &mut rows);
    }
    let total: usize = CASES
        .iter()
        .filter(|c| args.wants(c.op))
        .map(|c| args.shapes(c).len())
        .sum();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(total as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rows  ETA {eta}  {msg}")
                .expect("a valid template"),
        );
        let _ = BAR.set(b);
    }
    for case in CASES.iter().filter(|c| args.wants(c.op)) {
        for shape in args.shapes(case) {
            bar().set_message(case.op);
            measure(&args, &gpu, case, shape, &torch, &mut rows);
            bar().inc(1);
        }
        if gpu_rows && case.op == "matmul" {
            for (class, tile) in diagnostics::matmul_tiles(&gpu) {
                out!("matmul tile for {class}: {tile}");
            }
        }
    }
    if gpu_rows && args.ops.iter().any(|o| o == "matmul_tiles") {
        matmul_tiles(&gpu, &args);
    }
    bar().finish_and_clear();
    match write_json(&rows) {
        Ok(p) => out!(
            "wrote {} ({} rows in {:.0} s)",
            p.display(),
            rows.len(),
            start.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("could not write the JSON: {e}"),
    }
    if !missing.is_empty() && args.ops.is_empty() {
        eprintln!(
            "kernels without a bench row: {}; add a case to CASES",
            missing.join(", ")
        );
        std::process::exit(1);
    }
}
