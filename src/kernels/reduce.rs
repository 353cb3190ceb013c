//! `reduce`: params, bindings and pass planning of a reduction over one axis of a contiguous
//! tensor viewed as [outer, len, inner]. A long axis with few outputs runs in two passes (chunk
//! partials, then their reduction), so a whole-tensor sum still fills the device; the order is
//! fixed, so results are deterministic.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{fold_grid, on, params, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("reduce", "grid", "float");

/// `reduce` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "reduce",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

/// ⊕ and f of the reduction. Codes are the shader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ReduceOp {
    Sum = 0,
    SumSquares = 1,
    Max = 2,
    Min = 3,
    /// Σ|x| (the L1 gradient norm's partials; no autodiff op uses it).
    SumAbs = 4,
    /// max |x| (the L∞ gradient norm's partials; no autodiff op uses it).
    MaxAbs = 5,
}

impl ReduceOp {
    #[cfg(test)]
    pub const ALL: [ReduceOp; 6] = [
        ReduceOp::Sum,
        ReduceOp::SumSquares,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::SumAbs,
        ReduceOp::MaxAbs,
    ];

    /// The code of the op that combines partial results of the op with code `code`.
    fn merge_code(code: u32) -> u32 {
        if code == ReduceOp::SumSquares as u32 || code == ReduceOp::SumAbs as u32 {
            ReduceOp::Sum as u32
        } else if code == ReduceOp::MaxAbs as u32 {
            ReduceOp::Max as u32
        } else {
            code
        }
    }
}

params! {
    /// Mirrors `struct Params` in shaders/reduce.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub outer: u32,
        pub len: u32,
        pub inner: u32,
        pub chunk: u32,
        pub chunks: u32,
        pub op: u32,
        /// 0: an invocation per output; 1: a workgroup per output (inner = 1 only); 2: 16
        /// invocations per output, 16 outputs of one row of `inner` per workgroup (GPUs).
        pub mode: u32,
        pub x_off: u32,
        pub y_off: u32,
        pub scale: f32,
        pub _pad0: u32,
        pub _pad1: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

const WORKGROUP: u64 = 256;
/// Past this length with fewer than `FEW_OUTPUTS` outputs, reduce in two passes.
const LONG_AXIS: u32 = 4096;
const FEW_OUTPUTS: u32 = 256;
const CHUNK: u32 = 1024;

/// Outputs per workgroup in mode 2, each summed by 16 invocations.
const COLUMNS: u64 = 16;
/// A device whose tuning map holds this key takes mode 2 where a GPU would (the tests force it
/// on lavapipe).
pub(crate) const COLUMNS_KEY: (&str, u64) = ("reduce", 2);

/// Whether a pass should take mode 2 on a GPU: long sums over a contiguous inner axis with too
/// few outputs to fill the device an invocation each (a bias gradient: 1,024 sums of 2,048 rows
/// ran at 170-220 µs on the H200, 1,024 invocations walking 2,048 rows each). A CPU-backed
/// adapter keeps mode 0, whose one invocation per output is what its few lanes want.
fn columns_mode(p: &Params, outputs: u64) -> bool {
    p.inner >= COLUMNS as u32 && p.chunk >= 256 && outputs < 1 << 16
}

/// One pass over [outer, len, inner] in chunks of `chunk`.
fn record_pass(gpu: &GpuInner, p: &mut Params, x: &RawBuffer, y: &RawBuffer) -> Result<()> {
    p.chunks = p.len.div_ceil(p.chunk);
    let outputs = u64::from(p.outer) * u64::from(p.chunks) * u64::from(p.inner);
    // A CPU-backed adapter pays microseconds per workgroup and has few lanes: a workgroup per
    // output only for a handful of outputs (lavapipe spent 39 ms on each of an attention step's
    // 8,192 row sums of 64 that way, 17% of the step).
    let software = gpu.info.device_type == wgpu::DeviceType::Cpu;
    p.mode = u32::from(p.inner == 1 && p.chunk >= 64 && (!software || outputs <= 64));
    let gpu_like = !software || crate::gpu::lock(&gpu.tuning).contains_key(&COLUMNS_KEY);
    if p.mode == 0 && gpu_like && columns_mode(p, outputs) {
        p.mode = 2;
    }
    let groups = match p.mode {
        1 => outputs,
        2 => outputs.div_ceil(COLUMNS),
        _ => outputs.div_ceil(WORKGROUP),
    };
    let workgroups = fold_grid(
        "reduce",
        groups,
        gpu.limits.max_compute_workgroups_per_dimension,
    )?;
    gpu.record(&Dispatch {
        kernel: Kernel::Reduce.desc(),
        overrides: &[],
        params: bytemuck::bytes_of(p),
        buffers: &[x, y],
        workgroups,
    })
}

/// The tensors of one `reduce` launch.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// y[o, i] = scale · ⊕_r f(x[o, r, i]) where `b.y` lives. `p` gives outer, len, inner, op, scale
/// and the offsets; the launch sets the chunking (on a GPU a long axis with few outputs is
/// reduced in two passes, the host reduces in one).
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    let p = Params {
        chunk: p.len,
        chunks: 1,
        mode: 0,
        ..*p
    };
    match on(b.y) {
        On::Gpu(gpu) => record(gpu, p, b.x.gpu_raw(), b.y.gpu_raw()),
        On::Cpu => {
            if b.x.shares_storage(b.y) {
                // A norm written into a slot of its own buffer: a read lock and a write lock on
                // one storage cannot coexist, so read from a copy.
                let x: Vec<f32> = host_read(b.x).clone();
                cpu::reduce::reduce(&p, &x, &mut host_write(b.y));
            } else {
                cpu::reduce::reduce(&p, &host_read(b.x), &mut host_write(b.y));
            }
            Ok(())
        }
    }
}

/// Records `p` in one pass or two.
fn record(gpu: &GpuInner, mut p: Params, x: &RawBuffer, y: &RawBuffer) -> Result<()> {
    let Params {
        outer,
        len,
        inner,
        op,
        y_off,
        scale,
        ..
    } = p;
    if len <= LONG_AXIS || outer.saturating_mul(inner) >= FEW_OUTPUTS {
        return record_pass(gpu, &mut p, x, y);
    }
    let chunks = len.div_ceil(CHUNK);
    let partial_bytes = u64::from(outer) * u64::from(chunks) * u64::from(inner) * 4;
    let partial = gpu.acquire_output(partial_bytes, "reduce", "chunk partials")?;
    p.chunk = CHUNK;
    p.scale = 1.0;
    p.y_off = 0;
    record_pass(gpu, &mut p, x, &partial)?;
    let mut p2 = Params {
        outer,
        len: chunks,
        inner,
        chunk: chunks,
        op: ReduceOp::merge_code(op),
        x_off: 0,
        y_off,
        scale,
        ..Params::default()
    };
    let result = record_pass(gpu, &mut p2, &partial, y);
    gpu.retire(partial);
    result
}

#[cfg(test)]
mod tests {
    use super::ReduceOp;
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{Device, Tensor};

    fn both(shape: &[usize], axis: usize, op: ReduceOp, seed: u64) -> (Vec<f32>, Vec<f32>) {
        both_on(&gpu(), shape, axis, op, seed)
    }

    fn both_on(
        g: &crate::Gpu,
        shape: &[usize],
        axis: usize,
        op: ReduceOp,
        seed: u64,
    ) -> (Vec<f32>, Vec<f32>) {
        let x = randn(seed, shape.iter().product());
        let mut out = Vec::new();
        for dev in [Device::Gpu(g.clone()), Device::Cpu] {
            let t = Tensor::from_slice(&dev, &x, shape).unwrap();
            out.push(
                t.reduce_op(axis, op, false, "test")
                    .unwrap()
                    .read_blocking()
                    .unwrap(),
            );
        }
        (out.remove(0), out.remove(0))
    }

    /// Mode 2 (16 invocations per output, what a GPU takes for few long sums; forced here, as
    /// lavapipe would take mode 0) matches the CPU for every op, on column counts that leave a
    /// partial workgroup, in one pass and as the first of two.
    #[test]
    fn the_column_mode_matches_cpu_for_every_op() {
        let private = crate::Gpu::new_blocking().unwrap();
        crate::gpu::lock(&private.inner.tuning).insert(super::COLUMNS_KEY, vec![]);
        for (i, op) in ReduceOp::ALL.into_iter().enumerate() {
            for (shape, axis) in [
                ([1usize, 300, 17], 1),
                ([3, 257, 40], 1),
                ([5000, 16, 1], 0),
            ] {
                let before = private.stats().dispatches;
                let (g, c) = both_on(&private, &shape, axis, op, 50 + i as u64);
                assert!(private.stats().dispatches > before);
                assert_close(
                    &format!("mode 2 {op:?} {shape:?} axis {axis}"),
                    &g,
                    &c,
                    Tol {
                        abs: 1e-4,
                        rel: 1e-5,
                    },
                );
            }
        }
    }

    #[test]
    fn every_op_matches_cpu_over_every_axis() {
        for (i, op) in ReduceOp::ALL.into_iter().enumerate() {
            for shape in [
                [1usize, 1, 1],
                [7, 17, 3],
                [2, 129, 1],
                [33, 1, 65],
                [3, 300, 5],
                // One row of outputs over a long axis: the twin splits the columns over tasks.
                [1, 613, 1031],
            ] {
                for axis in 0..3 {
                    let (g, c) = both(&shape, axis, op, i as u64 * 7 + axis as u64);
                    // The kernel sums in f32: over 613 unit normals the partial sums reach
                    // about 25, each add rounding by up to 2⁻²⁴ of that, so a small total is
                    // off from the f64 oracle by a few 1e-5 (1.5e-5 seen).
                    let abs = if shape[axis] > 300 { 1e-4 } else { 1e-5 };
                    assert_close(
                        &format!("{op:?} {shape:?} axis {axis}"),
                        &g,
                        &c,
                        Tol { abs, rel: 1e-5 },
                    );
                }
            }
        }
    }

    #[test]
    fn long_axes_reduce_in_two_passes_to_the_same_value() {
        // 1e6 elements into one output: the chunked two-pass plan.
        for op in ReduceOp::ALL {
            let (g, c) = both(&[1_000_003], 0, op, 9);
            assert_close(
                &format!("{op:?} over 1e6"),
                &g,
                &c,
                Tol {
                    abs: 1e-3,
                    rel: 1e-4,
                },
            );
        }
        // A long axis with a few inner columns (bias gradients over many rows).
        let (g, c) = both(&[50_001, 3], 0, ReduceOp::Sum, 10);
        assert_close(
            "column sums",
            &g,
            &c,
            Tol {
                abs: 1e-3,
                rel: 1e-4,
            },
        );
    }

    #[test]
    fn mean_and_sum_all_have_the_documented_shapes() {
        let dev = Device::Gpu(gpu());
        let t = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let m = t.mean(1).unwrap();
        assert_eq!(m.shape(), [2]);
        assert_eq!(m.read_blocking().unwrap(), [2.0, 5.0]);
        let s = t.sum_all().unwrap();
        assert_eq!(s.shape(), [] as [usize; 0]);
        assert_eq!(s.read_blocking().unwrap(), [21.0]);
        assert_eq!(
            t.sum_squares_all().unwrap().read_blocking().unwrap(),
            [91.0]
        );
    }
}
