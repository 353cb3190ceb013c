//! Rows: what one measurement reports, printed as a table line and written as JSON (one
//! object per line, the field names existing consumers read).

use serde::{Deserialize, Serialize, Serializer};
use timeloom::{Gpu, Stats};

use crate::workload::Work;

/// One op on one shape on one path. The fields up to `peak_bytes` are those the hand-written
/// JSON had, in its order; `gbytes_per_s` and `kernels` are new.
#[derive(Serialize)]
pub struct Row {
    pub op: &'static str,
    #[serde(serialize_with = "in_order")]
    pub shape: Vec<(&'static str, usize)>,
    pub path: &'static str,
    pub adapter: String,
    pub backend: String,
    pub median_ms: f64,
    pub gflops: Option<f64>,
    pub dispatches: f64,
    pub submissions: f64,
    #[serde(rename = "sequences_per_s")]
    pub seq_per_s: Option<f64>,
    /// Generated tokens per second, for the generation rows.
    pub tokens_per_s: Option<f64>,
    /// The largest buffer allocated, for the rows on a device of their own (attention, the
    /// recurrent forwards).
    pub peak_bytes: Option<u64>,
    pub gbytes_per_s: Option<f64>,
    pub kernels: &'static [&'static str],
    /// The element type of the op's stored operands: "f16" for the `_f16` cases, else "f32".
    pub dtype: &'static str,
    /// Device memory held after the row's calls (its pool included), for the rows on a device
    /// of their own: the model, its activations and what the pool keeps for the next call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
    /// With `--profile`: device milliseconds per call (GPU timestamps, summed over dispatches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_ms: Option<f64>,
    /// With `--profile`: per kernel specialisation, dispatches and device ms per call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<KernelRow>,
}

/// One kernel's share of a profiled row, per call.
#[derive(Serialize)]
pub struct KernelRow {
    pub kernel: String,
    pub dispatches: f64,
    pub ms: f64,
}

/// The shape as a JSON object whose keys keep the table's order (`{"M":128,"N":128,"K":128}`).
pub fn in_order<S: Serializer>(shape: &[(&'static str, usize)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(shape.iter().copied())
}

impl Row {
    /// A row of `op` on `shape` run on `gpu`'s adapter, or on the host CPU when `None`.
    pub fn new(
        op: &'static str,
        kernels: &'static [&'static str],
        shape: Vec<(&'static str, usize)>,
        path: &'static str,
        gpu: Option<&Gpu>,
        median_ms: f64,
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
            median_ms,
            gflops: None,
            dispatches: per_call.dispatches as f64,
            submissions: per_call.submissions as f64,
            seq_per_s: None,
            tokens_per_s: None,
            peak_bytes: None,
            gbytes_per_s: None,
            kernels,
            dtype: if op.ends_with("_f16") { "f16" } else { "f32" },
            resident_bytes: None,
            device_ms: None,
            profile: Vec::new(),
        }
    }

    /// The device-time profile of `calls` calls, per call.
    pub fn with_profile(mut self, p: &timeloom::Profile, calls: usize) -> Row {
        let n = calls.max(1) as f64;
        self.device_ms = Some(p.ms / n);
        self.profile = p
            .kernels
            .iter()
            .map(|k| KernelRow {
                kernel: k.kernel.clone(),
                dispatches: k.dispatches as f64 / n,
                ms: k.ms / n,
            })
            .collect();
        self
    }

    pub fn with_work(mut self, work: Work) -> Row {
        match work {
            Work::Flop(f) => self.gflops = Some(f / self.median_ms / 1e6),
            Work::Bytes(b) => self.gbytes_per_s = Some(b / self.median_ms / 1e6),
        }
        self
    }
}

/// The CPU path's "adapter": its thread pool's size (rayon's default, or RAYON_NUM_THREADS).
pub fn cpu_name() -> String {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    format!(
        "host CPU ({threads} threads, rayon, {} GEMM)",
        timeloom::cpu_gemm()
    )
}

pub fn shape_str(shape: &[(&str, usize)]) -> String {
    let parts: Vec<String> = shape.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

/// The row's rate column: GFLOP/s for compute, GB/s for memory-bound work.
fn rate(gflops: Option<f64>, gbytes_per_s: Option<f64>) -> String {
    match (gflops, gbytes_per_s) {
        (Some(g), _) => format!("{g:.2} GFLOP/s"),
        (_, Some(b)) => format!("{b:.2} GB/s"),
        _ => "-".into(),
    }
}

pub fn print_row(r: &Row, note: &str) {
    let rate = rate(r.gflops, r.gbytes_per_s);
    out!(
        "{:<24} {:<34} {:<13} {:>10.3} ms {:>15} {:>5} disp {:>3} subm  {} [{}]{}",
        r.op,
        shape_str(&r.shape),
        r.path,
        r.median_ms,
        rate,
        r.dispatches,
        r.submissions,
        r.adapter,
        r.backend,
        if note.is_empty() {
            String::new()
        } else {
            format!("  ({note})")
        },
    );
}

/// One row per line inside a JSON array, written whole to a temporary file and renamed, so a
/// reader never sees half a file.
pub fn write_json(rows: &[Row]) -> std::io::Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let lines = rows
        .iter()
        .map(|r| serde_json::to_string(r).map(|s| format!("  {s}")))
        .collect::<Result<Vec<_>, _>>()?;
    let path = dir.join("gpu_vs_cpu.json");
    let tmp = dir.join("gpu_vs_cpu.json.tmp");
    std::fs::write(&tmp, format!("[\n{}\n]\n", lines.join(",\n")))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A row measured elsewhere (tools/torch_bench.py's PyTorch rows), printed beside ours.
#[derive(Deserialize)]
pub struct Reference {
    pub op: String,
    pub shape: serde_json::Map<String, serde_json::Value>,
    pub path: String,
    pub adapter: String,
    pub median_ms: f64,
    pub gflops: Option<f64>,
    pub gbytes_per_s: Option<f64>,
}

impl Reference {
    /// The same op on the same named sizes.
    pub fn matches(&self, op: &str, shape: &[(&str, usize)]) -> bool {
        self.op == op
            && self.shape.len() == shape.len()
            && shape
                .iter()
                .all(|(k, v)| self.shape.get(*k).and_then(|x| x.as_u64()) == Some(*v as u64))
    }

    /// Printed as our rows are, with `shape` (the one it matched) in the table's order.
    pub fn print(&self, shape: &[(&str, usize)]) {
        let rate = rate(self.gflops, self.gbytes_per_s);
        out!(
            "{:<24} {:<34} {:<13} {:>10.3} ms {:>15} {:>20}  {}",
            self.op,
            shape_str(shape),
            self.path,
            self.median_ms,
            rate,
            "",
            self.adapter,
        );
    }
}

/// Reads rows in this bench's JSON format (what tools/torch_bench.py writes).
pub fn read_reference(path: &std::path::Path) -> Result<Vec<Reference>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "--torch {}: {e}; run `python3 tools/torch_bench.py` first (it writes target/bench/torch_cpu.json)",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| format!("--torch {}: not the bench's JSON rows: {e}", path.display()))
}
