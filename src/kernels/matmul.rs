//! `matmul`: params, bindings and dispatch geometry of the register-tiled batched GEMM, and the
//! choice of tile shape per adapter: a small autotune at the first matmul of each shape class on
//! a device timeloom owns, heuristic defaults on a host application's device.

use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{fold_grid, on, params, wgsl, with_host_reads, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::lock;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::dtype::unpack;
use crate::tensor::{host_write, DType, Tensor};

pub(crate) const SOURCE: &str = wgsl!("matmul", "activations", "grid", "half", "row_sums");

/// `matmul` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "matmul",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/matmul.wgsl field for field. Offsets and strides are in
    /// elements; `_rs`/`_cs`/`_bs` are row, column and batch strides of op(A) [M, K], op(B) [K, N]
    /// and C [M, N].
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub m: u32,
        pub n: u32,
        pub k: u32,
        pub batch: u32,
        pub a_off: u32,
        pub a_rs: u32,
        pub a_cs: u32,
        pub a_bs: u32,
        pub b_off: u32,
        pub b_rs: u32,
        pub b_cs: u32,
        pub b_bs: u32,
        pub c_off: u32,
        pub c_rs: u32,
        pub c_cs: u32,
        pub c_bs: u32,
        pub bias_off: u32,
        /// 0: no bias; 1: bias [N] added to every row; 2: bias [M] added to every column.
        pub bias_mode: u32,
        /// An `Activation` code (shaders/common/activations.wgsl).
        pub activation: u32,
        pub tiles_n: u32,
        pub tiles_m: u32,
        pub alpha: f32,
        pub beta: f32,
        pub _pad: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

impl Params {
    /// One contiguous row-major M×K by K×N product, α = 1, β = 0, no bias.
    fn row_major(m: u32, n: u32, k: u32) -> Params {
        Params {
            m,
            n,
            k,
            batch: 1,
            a_rs: k,
            a_cs: 1,
            b_rs: n,
            b_cs: 1,
            c_rs: n,
            c_cs: 1,
            alpha: 1.0,
            ..Params::default()
        }
    }
}

/// A workgroup tile: WG_M × WG_N invocations, each computing TM × TN outputs, stepping K by BK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TileConfig {
    /// Invocations along M.
    pub wg_m: u32,
    /// Invocations along N.
    pub wg_n: u32,
    /// K step through workgroup memory.
    pub bk: u32,
    /// 0 for the workgroup-memory kernel; else the direct kernel with this many rows per
    /// workgroup, K split over `wg_m` invocations (1: not split).
    pub direct_rows: u32,
    /// Rows of C per invocation: 4 or 8 (4 in the direct kernel).
    pub tm: u32,
    /// Columns of C per invocation: 4 or 8 (4 in the direct kernel).
    pub tn: u32,
}

/// Floats per workgroup tile array (`TILE_VECS` vec4s in the shader).
const TILE_CAPACITY: u32 = 1024;
/// Rows the direct kernel holds (`RowSums` in shaders/common/row_sums.wgsl).
const DIRECT_MAX_ROWS: u32 = 16;

impl TileConfig {
    /// 128×128 tiles of 256 invocations, 8×8 outputs each: large products on GPUs that hide
    /// latency with registers (64 multiply-adds per 4 vec4 reads of workgroup memory).
    pub const R128X128: TileConfig = TileConfig {
        wg_m: 16,
        wg_n: 16,
        bk: 8,
        direct_rows: 0,
        tm: 8,
        tn: 8,
    };
    /// 128×64 tiles of 128 invocations, 8×8 outputs each.
    pub const R128X64: TileConfig = TileConfig {
        wg_m: 16,
        wg_n: 8,
        bk: 8,
        direct_rows: 0,
        tm: 8,
        tn: 8,
    };
    /// 64×64 tiles of 64 invocations, 8×8 outputs each: more workgroups for mid-size products.
    pub const R64X64: TileConfig = TileConfig {
        wg_m: 8,
        wg_n: 8,
        bk: 16,
        direct_rows: 0,
        tm: 8,
        tn: 8,
    };
    /// 64×64 tiles of 256 invocations: large square products.
    pub const T64X64: TileConfig = TileConfig {
        wg_m: 16,
        wg_n: 16,
        bk: 16,
        direct_rows: 0,
        tm: 4,
        tn: 4,
    };
    /// 32×64 tiles of 128 invocations.
    pub const T32X64: TileConfig = TileConfig {
        wg_m: 8,
        wg_n: 16,
        bk: 16,
        direct_rows: 0,
        tm: 4,
        tn: 4,
    };
    /// 32×32 tiles of 64 invocations: mid-size products, small devices.
    pub const T32X32: TileConfig = TileConfig {
        wg_m: 8,
        wg_n: 8,
        bk: 32,
        direct_rows: 0,
        tm: 4,
        tn: 4,
    };
    /// 8×128 tiles: a few rows (an RNN's batch) against a wide matrix.
    pub const T8X128: TileConfig = TileConfig {
        wg_m: 2,
        wg_n: 32,
        bk: 8,
        direct_rows: 0,
        tm: 4,
        tn: 4,
    };
    /// 4×256 tiles: one to four rows, matrix-vector like.
    pub const T4X256: TileConfig = TileConfig {
        wg_m: 1,
        wg_n: 64,
        bk: 4,
        direct_rows: 0,
        tm: 4,
        tn: 4,
    };
    /// Direct kernel, 8×256 tiles.
    pub const D8X256: TileConfig = TileConfig {
        wg_m: 1,
        wg_n: 64,
        bk: 0,
        direct_rows: 8,
        tm: 4,
        tn: 4,
    };
    /// Direct kernel, 16×128 tiles.
    pub const D16X128: TileConfig = TileConfig {
        wg_m: 1,
        wg_n: 32,
        bk: 0,
        direct_rows: 16,
        tm: 4,
        tn: 4,
    };
    /// Direct kernel, 4×256 tiles: matrix-vector like.
    pub const D4X256: TileConfig = TileConfig {
        wg_m: 1,
        wg_n: 64,
        bk: 0,
        direct_rows: 4,
        tm: 4,
        tn: 4,
    };
    /// Direct kernel, one row by 64 columns, K split 16 ways: a row vector on a GPU.
    pub const DK1X64: TileConfig = TileConfig::split_direct(1, 16, 16);
    /// Direct kernel, 16 rows by 128 columns, K split 8 ways.
    pub const DK16X128: TileConfig = TileConfig::split_direct(16, 32, 8);
    /// Direct kernel, 16 rows by 16 columns, K split 64 ways: many workgroups for few outputs.
    pub const DK16X16: TileConfig = TileConfig::split_direct(16, 4, 64);

    /// The direct kernel on `rows` rows and `wg_n`·4 columns, K split `wg_m` ways.
    pub const fn split_direct(rows: u32, wg_n: u32, wg_m: u32) -> TileConfig {
        TileConfig {
            wg_m,
            wg_n,
            bk: 0,
            direct_rows: rows,
            tm: 4,
            tn: 4,
        }
    }

    /// 128×8 tiles: many rows, few columns.
    pub const T128X8: TileConfig = TileConfig {
        wg_m: 32,
        wg_n: 2,
        bk: 8,
        direct_rows: 0,
        tm: 4,
        tn: 4,
    };

    /// Rows of C per workgroup.
    pub fn bm(self) -> u32 {
        if self.direct_rows > 0 {
            self.direct_rows
        } else {
            self.wg_m * self.tm
        }
    }

    /// Columns of C per workgroup.
    pub fn bn(self) -> u32 {
        self.wg_n * self.tn
    }

    /// The inverse of [`TileConfig::overrides`].
    fn from_overrides(overrides: &[(&'static str, f64)]) -> TileConfig {
        let get = |name: &str, default: u32| {
            overrides
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(default, |&(_, v)| v as u32)
        };
        let direct_rows = get("DIRECT_ROWS", 0);
        TileConfig {
            wg_m: get("WG_M", 0),
            wg_n: get("WG_N", 0),
            // `overrides` raises the direct kernel's unused BK of 0 to 1.
            bk: if direct_rows > 0 { 0 } else { get("BK", 0) },
            direct_rows,
            tm: get("TM", 4),
            tn: get("TN", 4),
        }
    }

    fn overrides(self) -> [(&'static str, f64); 6] {
        [
            ("WG_M", f64::from(self.wg_m)),
            ("WG_N", f64::from(self.wg_n)),
            ("BK", f64::from(self.bk.max(1))),
            ("TM", f64::from(self.tm)),
            ("TN", f64::from(self.tn)),
            ("DIRECT_ROWS", f64::from(self.direct_rows)),
        ]
    }

    /// Whether the tiles fit the shader's arrays and the device's workgroup limits.
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        // The direct kernel's K split adds its partials in a_tile: WG_M·WG_N vec4s.
        let direct_ok = self.direct_rows == 0
            || (self.wg_m.is_power_of_two()
                && self.wg_m * self.wg_n <= TILE_CAPACITY / 4
                && self.direct_rows <= DIRECT_MAX_ROWS
                && self.tm == 4
                && self.tn == 4);
        let block_ok = [self.tm, self.tn].iter().all(|t| *t == 4 || *t == 8);
        direct_ok
            && block_ok
            && self.bm() * self.bk <= TILE_CAPACITY
            && self.bk * self.bn() <= TILE_CAPACITY
            && self.wg_m * self.wg_n <= limits.max_compute_invocations_per_workgroup
            && self.wg_n <= limits.max_compute_workgroup_size_x
            && self.wg_m <= limits.max_compute_workgroup_size_y
    }
}

impl std::fmt::Display for ShapeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeClass::Square => write!(f, "square"),
            ShapeClass::FewRows(rows) => write!(f, "{rows} rows"),
            ShapeClass::FewColumns => write!(f, "few columns"),
        }
    }
}

impl std::fmt::Display for TileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.direct_rows > 0 && self.wg_m > 1 {
            write!(
                f,
                "{}x{} direct, k split {}",
                self.bm(),
                self.bn(),
                self.wg_m
            )
        } else if self.direct_rows > 0 {
            write!(f, "{}x{} direct", self.bm(), self.bn())
        } else if (self.tm, self.tn) == (4, 4) {
            write!(f, "{}x{} (bk {})", self.bm(), self.bn(), self.bk)
        } else {
            write!(
                f,
                "{}x{} (bk {}, {}x{} per invocation)",
                self.bm(),
                self.bn(),
                self.bk,
                self.tm,
                self.tn
            )
        }
    }
}

/// Shapes that want different tiles: square-ish, few rows (an RNN's batch), few columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ShapeClass {
    /// M > 16 and N > 16.
    Square,
    /// M <= 16, rounded up to 1, 2, 4, 8 or 16: a batch of a few rows against a weight matrix.
    FewRows(u32),
    /// N <= 16 < M.
    FewColumns,
}

impl ShapeClass {
    /// The class of an [M, K]·[K, N] product.
    pub fn of(m: u32, n: u32) -> ShapeClass {
        if m <= 16 {
            ShapeClass::FewRows(m.next_power_of_two())
        } else if n <= 16 {
            ShapeClass::FewColumns
        } else {
            ShapeClass::Square
        }
    }

    /// The key of this class in the device's tuning cache.
    fn code(self) -> u64 {
        match self {
            ShapeClass::Square => 0,
            ShapeClass::FewColumns => 1,
            ShapeClass::FewRows(rows) => 1 + u64::from(rows),
        }
    }

    /// The inverse of [`ShapeClass::code`].
    fn from_code(code: u64) -> Option<ShapeClass> {
        match code {
            0 => Some(ShapeClass::Square),
            1 => Some(ShapeClass::FewColumns),
            c => u32::try_from(c - 1).ok().map(ShapeClass::FewRows),
        }
    }

    /// What the autotune tries, best guess for a discrete GPU first (the choice without
    /// autotune): the workgroup-memory kernel, then direct ones. A CPU-backed adapter
    /// (`software`: lavapipe, SwiftShader, WARP) skips the 8×8-per-invocation tiles: lavapipe
    /// compiles each in about 1.6 s (the first 1024³ product went from 1.4 to 6.2 s with them)
    /// and runs them at 6–7 GFLOP/s against the direct kernel's 8–9.
    fn candidates(self, software: bool) -> Vec<TileConfig> {
        match self {
            ShapeClass::Square if software => vec![
                TileConfig::T64X64,
                TileConfig::T32X64,
                TileConfig::D8X256,
                TileConfig::D16X128,
            ],
            ShapeClass::Square => vec![
                TileConfig::R64X64,
                TileConfig::R128X64,
                TileConfig::R128X128,
                TileConfig::T64X64,
                TileConfig::T32X64,
                TileConfig::D8X256,
                TileConfig::D16X128,
            ],
            ShapeClass::FewRows(rows) if !software => vec![
                TileConfig::split_direct(rows, 16, 16),
                TileConfig::split_direct(rows, 32, 8),
                TileConfig::split_direct(rows, 8, 32),
                TileConfig::split_direct(rows, 4, 64),
                if rows <= 4 {
                    TileConfig::T4X256
                } else {
                    TileConfig::T8X128
                },
                TileConfig::split_direct(rows, 64, 1),
            ],
            ShapeClass::FewRows(rows) => vec![
                if rows <= 4 {
                    TileConfig::T4X256
                } else {
                    TileConfig::T8X128
                },
                TileConfig {
                    wg_m: 1,
                    wg_n: 64,
                    bk: 0,
                    direct_rows: rows,
                    tm: 4,
                    tn: 4,
                },
            ],
            ShapeClass::FewColumns => {
                vec![TileConfig::T128X8, TileConfig::T32X32, TileConfig::D16X128]
            }
        }
    }
}

/// The tensors of one matmul, in binding order.
pub(crate) struct Bindings<'a> {
    pub a: &'a Tensor,
    pub b: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    pub c: &'a Tensor,
}

/// C = act(α·op(A)·op(B) + β·C + bias) where `b.c` lives; on a GPU with the tile chosen for this
/// shape class (which fills in the tile counts of `p`).
pub(crate) fn launch(p: &mut Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.c) {
        On::Gpu(gpu) => {
            let tile = choose_tile(gpu, p.m, p.n, p.k)?;
            let half = |t: &Tensor| t.dtype() == DType::F16;
            let buffers = RawBindings {
                a: b.a.gpu_raw(),
                b: b.b.gpu_raw(),
                bias: b.bias.map(Tensor::gpu_raw),
                c: b.c.gpu_raw(),
                halves: [half(b.a), half(b.b), b.bias.is_some_and(half)],
            };
            record(gpu, p, &buffers, tile)
        }
        On::Cpu => {
            // `a·aᵀ` reads one storage twice; `c` shares none with the inputs (checked).
            let mut inputs = vec![b.a, b.b];
            inputs.extend(b.bias);
            with_host_reads(&inputs, |x| {
                // f16 operands widened whole (exact), so the offsets and strides still hold:
                // the twin of the shader's widening loads.
                let widened: Vec<std::borrow::Cow<'_, [f32]>> = inputs
                    .iter()
                    .zip(x)
                    .map(|(t, words)| match t.dtype() {
                        DType::F32 => std::borrow::Cow::Borrowed(*words),
                        DType::F16 => unpack(words, 0, words.len() * 2).into(),
                    })
                    .collect();
                let bias = widened.get(2).map_or(&[][..], |v| &v[..]);
                cpu::matmul::matmul(p, &widened[0], &widened[1], bias, &mut host_write(b.c));
            });
            Ok(())
        }
    }
}

/// The buffers of one matmul on a GPU, in binding order, and which of A, B and the bias hold
/// f16.
struct RawBindings<'a> {
    a: &'a RawBuffer,
    b: &'a RawBuffer,
    bias: Option<&'a RawBuffer>,
    c: &'a RawBuffer,
    halves: [bool; 3],
}

/// Records one batched matmul with `tile`; fills in the tile counts of `p`.
fn record(gpu: &GpuInner, p: &mut Params, bufs: &RawBindings<'_>, tile: TileConfig) -> Result<()> {
    p.tiles_m = p.m.div_ceil(tile.bm());
    p.tiles_n = p.n.div_ceil(tile.bn());
    let groups = u64::from(p.tiles_m) * u64::from(p.tiles_n) * u64::from(p.batch);
    let workgroups = fold_grid(
        "matmul",
        groups,
        gpu.limits.max_compute_workgroups_per_dimension,
    )?;
    let mut overrides = tile.overrides().to_vec();
    // Only an f16 operand adds a constant: the f32 pipelines keep their cache keys.
    for (name, half) in ["A_HALF", "B_HALF", "BIAS_HALF"]
        .into_iter()
        .zip(bufs.halves)
    {
        if half {
            overrides.push((name, 1.0));
        }
    }
    gpu.record(&Dispatch {
        kernel: Kernel::Matmul.desc(),
        overrides: &overrides,
        params: bytemuck::bytes_of(p),
        buffers: &[bufs.a, bufs.b, bufs.bias.unwrap_or(&gpu.dummy), bufs.c],
        workgroups,
    })
}

/// The tile for a matmul of this shape on this device: cached per shape class in the device's
/// tuning cache, as the tile's `override` values.
pub(crate) fn choose_tile(gpu: &GpuInner, m: u32, n: u32, k: u32) -> Result<TileConfig> {
    let class = ShapeClass::of(m, n);
    // Held across the autotune: two threads with one new shape class tune it once.
    let mut tuning = lock(&gpu.tuning);
    if let Some(t) = tuning.get(&(KERNEL.name, class.code())) {
        return Ok(TileConfig::from_overrides(t));
    }
    let software = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let candidates: Vec<TileConfig> = class
        .candidates(software)
        .into_iter()
        .filter(|t| t.fits(&gpu.limits))
        .collect();
    // A choice remembered on disk by an earlier process on this adapter, used only when it is
    // one of this class's candidates that fit here, named override for override.
    let remembered = gpu
        .tuning_cache
        .read
        .get(&(KERNEL.name.to_string(), class.code()))
        .and_then(|pairs| {
            candidates.iter().copied().find(|t| {
                t.overrides().len() == pairs.len()
                    && t.overrides()
                        .iter()
                        .zip(pairs)
                        .all(|(&(n, v), (m, w))| n == m && v == *w)
            })
        });
    let tile = match remembered {
        Some(tile) => tile,
        None if gpu.autotune && candidates.len() > 1 => {
            let tile = autotune(gpu, &candidates, m, n, k)?;
            tuning.insert((KERNEL.name, class.code()), tile.overrides().to_vec());
            gpu.persist_tuning(&tuning, KERNEL.name);
            return Ok(tile);
        }
        None => candidates.first().copied().unwrap_or(TileConfig::T32X32),
    };
    tuning.insert((KERNEL.name, class.code()), tile.overrides().to_vec());
    Ok(tile)
}

/// The tile chosen so far for each shape class on this device, as (class, tile) descriptions.
pub(crate) fn chosen_tiles(gpu: &GpuInner) -> Vec<(String, String)> {
    let mut v: Vec<(ShapeClass, TileConfig)> = lock(&gpu.tuning)
        .iter()
        .filter(|((kernel, _), _)| *kernel == KERNEL.name)
        .filter_map(|(&(_, code), o)| {
            Some((ShapeClass::from_code(code)?, TileConfig::from_overrides(o)))
        })
        .collect();
    v.sort_by_key(|(c, _)| *c);
    v.into_iter()
        .map(|(c, t)| (c.to_string(), t.to_string()))
        .collect()
}

/// Every tile shape timeloom knows, for sweeps.
pub(crate) const ALL_TILES: [TileConfig; 15] = [
    TileConfig::R128X128,
    TileConfig::R128X64,
    TileConfig::R64X64,
    TileConfig::T64X64,
    TileConfig::T32X64,
    TileConfig::T32X32,
    TileConfig::T8X128,
    TileConfig::T4X256,
    TileConfig::T128X8,
    TileConfig::D8X256,
    TileConfig::D16X128,
    TileConfig::D4X256,
    TileConfig::DK1X64,
    TileConfig::DK16X128,
    TileConfig::DK16X16,
];

/// Seconds per call of an M×K by K×N product with `tile`: best of `reps` submissions of `batch`
/// calls each (so that a fast device's submission latency does not hide the kernel), after a
/// warm-up. Blocks on the device.
pub(crate) fn time_tile(
    gpu: &GpuInner,
    tile: TileConfig,
    (m, n, k): (u32, u32, u32),
    reps: usize,
    batch: usize,
) -> Result<f64> {
    let a = gpu.acquire(u64::from(m * k) * 4, "matmul autotune", "proxy A")?;
    // Whatever was taken goes back before an error does.
    let b = match gpu.acquire(u64::from(k * n) * 4, "matmul autotune", "proxy B") {
        Ok(b) => b,
        Err(e) => {
            gpu.retire(a);
            return Err(e);
        }
    };
    let c = match gpu.acquire(u64::from(m * n) * 4, "matmul autotune", "proxy C") {
        Ok(c) => c,
        Err(e) => {
            gpu.retire(a);
            gpu.retire(b);
            return Err(e);
        }
    };
    let timed = (|| {
        gpu.upload(&a, 0, &vec![0u8; (m * k * 4) as usize], false)?;
        gpu.upload(&b, 0, &vec![0u8; (k * n * 4) as usize], false)?;
        let mut p = Params::row_major(m, n, k);
        let bufs = RawBindings {
            a: &a,
            b: &b,
            bias: None,
            c: &c,
            halves: [false; 3],
        };
        record(gpu, &mut p, &bufs, tile)?; // compiles, and warms up
        gpu.synchronize()?;
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let start = Instant::now();
            for _ in 0..batch {
                record(gpu, &mut p, &bufs, tile)?;
            }
            gpu.synchronize()?;
            best = best.min(start.elapsed().as_secs_f64() / batch as f64);
        }
        Ok(best)
    })();
    // On every path, so that a failed timing neither leaks the proxies nor the counters.
    for buf in [a, b, c] {
        gpu.retire(buf);
    }
    timed
}

/// Times each candidate on a proxy of the problem and returns the fastest. The proxy caps each
/// side at 256 (the whole tune costs well under a second on lavapipe); where even the best
/// candidate finishes that in under a millisecond (a real GPU, where such a product is mostly
/// launch latency and would favour whichever tile launches most workgroups), it times again on
/// sides capped at 1,024, four calls per submission. Blocks on the device: only called on a
/// device timeloom owns.
fn autotune(
    gpu: &GpuInner,
    candidates: &[TileConfig],
    m: u32,
    n: u32,
    k: u32,
) -> Result<TileConfig> {
    let mut best = (f64::INFINITY, candidates[0]);
    for (cap, batch) in [(256, 1), (1024, 4)] {
        let proxy = (m.min(cap), n.min(cap), k.min(cap));
        if cap > 256 && (best.0 >= 1e-3 || proxy == (m.min(256), n.min(256), k.min(256))) {
            break;
        }
        best = (f64::INFINITY, candidates[0]);
        for &tile in candidates {
            let t = time_tile(gpu, tile, proxy, 2, batch)?;
            if t < best.0 {
                best = (t, tile);
            }
        }
    }
    Ok(best.1)
}

#[cfg(test)]
#[path = "matmul_tests.rs"]
mod tests;
