//! `unary`: params, bindings and geometry of y = α·f(x) + β over a strided x; with f the identity
//! it is the strided copy that makes views contiguous, with `Fill` it fills.

use bytemuck::{Pod, Zeroable};

use super::{fold_grid, Kernel};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = concat!(
    include_str!("../../shaders/unary.wgsl"),
    "\n",
    include_str!("../../shaders/common/activations.wgsl"),
    "\n",
    include_str!("../../shaders/common/grid.wgsl"),
    "\n",
    include_str!("../../shaders/common/strided.wgsl"),
);

/// f in y = α·f(x) + β. Codes are the shader's; 0..=4 equal the `Activation` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum UnaryOp {
    Identity = 0,
    Relu = 1,
    Sigmoid = 2,
    Tanh = 3,
    Gelu = 4,
    Neg = 5,
    Abs = 6,
    Exp = 7,
    Log = 8,
    Sqrt = 9,
    Square = 10,
    Recip = 11,
    /// y = β; x is not read.
    Fill = 12,
}

impl UnaryOp {
    #[cfg(test)]
    pub const ALL: [UnaryOp; 13] = [
        UnaryOp::Identity,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Gelu,
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Fill,
    ];
}

/// Mirrors `struct Params` in shaders/unary.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub numel: u32,
    pub rank: u32,
    pub op: u32,
    /// 1 when x is contiguous: the shader then skips the stride walk.
    pub contiguous: u32,
    pub x_off: u32,
    pub y_off: u32,
    pub alpha: f32,
    pub beta: f32,
    pub shape: [u32; 8],
    pub x_strides: [u32; 8],
}
const _: () = assert!(std::mem::size_of::<Params>() % 16 == 0);

/// Elements per workgroup (`@workgroup_size` in the shader).
const WORKGROUP: u64 = 256;

/// Records y = α·f(x) + β. `x` is `None` only for `Fill`, which reads nothing (the device's
/// dummy buffer is bound in its place).
pub(crate) fn record(gpu: &GpuInner, p: &Params, x: Option<&RawBuffer>, y: &RawBuffer) -> Result<()> {
    let groups = u64::from(p.numel).div_ceil(WORKGROUP);
    let workgroups = fold_grid("unary", groups, gpu.limits.max_compute_workgroups_per_dimension)?;
    gpu.record(&Dispatch {
        kernel: Kernel::Unary,
        overrides: &[],
        params: bytemuck::bytes_of(p),
        buffers: &[x.unwrap_or(&gpu.dummy), y],
        workgroups,
    })
}
