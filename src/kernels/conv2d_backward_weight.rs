//! `conv2d_backward_weight`: the split-K choice and dispatch of the weight-gradient implicit
//! GEMM. Its K (N·OH·OW) is long and its output ([C_out, C_in/G·kh·kw]) small, so K is cut
//! into `splits` ranges of whole output rows, each written to its own partial; the caller sums
//! the partials with the reduce kernel (deterministic: no atomics).

use super::conv2d_forward::{record_gemm, Params, TILE_COLS, TILE_ROWS};
use super::{wgsl, Kernel};
use crate::error::Result;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = wgsl!("conv2d_backward_weight", "conv2d", "grid");

/// Workgroups the split aims for: enough to fill a large GPU several times over.
const TARGET_WORKGROUPS: u64 = 1024;
/// Output rows (each OW pixels long) a split sums at least, so partials stay few.
const MIN_ROWS_PER_SPLIT: u64 = 4;

/// `p` with `splits` and `rows_per_split` chosen for this shape.
pub(crate) fn with_splits(p: &Params) -> Params {
    let mut p = *p;
    let cols = (p.cg() * p.taps()) as u64;
    let base = cols.div_ceil(u64::from(TILE_COLS))
        * (p.mg() as u64).div_ceil(u64::from(TILE_ROWS))
        * u64::from(p.groups);
    let rows = u64::from(p.n) * u64::from(p.oh);
    let most = (rows / MIN_ROWS_PER_SPLIT).max(1);
    let want = TARGET_WORKGROUPS.div_ceil(base).clamp(1, most);
    let per = rows.div_ceil(want);
    p.rows_per_split = per as u32;
    p.splits = rows.div_ceil(per) as u32;
    p
}

/// Records the partials `part` [splits, C_out, C_in/G·kh·kw] for `p` from [`with_splits`].
pub(crate) fn record(
    gpu: &GpuInner,
    p: &Params,
    dy: &RawBuffer,
    x: &RawBuffer,
    part: &RawBuffer,
) -> Result<()> {
    let cols = p.cg() * p.taps();
    record_gemm(
        gpu,
        Kernel::Conv2dBackwardWeight,
        p,
        p.mg(),
        cols,
        &[dy, x, part],
    )
}
