//! `binary`: params, bindings and geometry of y = f(a, b) with broadcasting through strides.

use bytemuck::{Pod, Zeroable};

use super::{fold_grid, Kernel};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;

pub(crate) const SOURCE: &str = concat!(
    include_str!("../../shaders/binary.wgsl"),
    "\n",
    include_str!("../../shaders/common/grid.wgsl"),
    "\n",
    include_str!("../../shaders/common/strided.wgsl"),
);

/// f in y = f(a, b). Codes are the shader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum BinaryOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Max = 4,
    Min = 5,
}

impl BinaryOp {
    #[cfg(test)]
    pub const ALL: [BinaryOp; 6] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
        }
    }
}

/// Mirrors `struct Params` in shaders/binary.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub numel: u32,
    pub rank: u32,
    pub op: u32,
    /// 1 when a and b are both contiguous with the output's shape.
    pub contiguous: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub y_off: u32,
    pub _pad: u32,
    pub shape: [u32; 8],
    pub a_strides: [u32; 8],
    pub b_strides: [u32; 8],
}
const _: () = assert!(std::mem::size_of::<Params>() % 16 == 0);

const WORKGROUP: u64 = 256;

pub(crate) fn record(gpu: &GpuInner, p: &Params, a: &RawBuffer, b: &RawBuffer, y: &RawBuffer) -> Result<()> {
    let groups = u64::from(p.numel).div_ceil(WORKGROUP);
    let workgroups = fold_grid("binary", groups, gpu.limits.max_compute_workgroups_per_dimension)?;
    gpu.record(&Dispatch {
        kernel: Kernel::Binary,
        overrides: &[],
        params: bytemuck::bytes_of(p),
        buffers: &[a, b, y],
        workgroups,
    })
}
