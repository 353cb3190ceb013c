//! `binary`: params, bindings and geometry of y = f(a, b) with broadcasting through strides.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, with_host_reads, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("binary", "grid", "strided");

/// `binary` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "binary",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

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
    /// 1 where a == b, else 0 (not differentiable: a mask).
    Eq = 6,
}

impl BinaryOp {
    #[cfg(test)]
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Eq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
            BinaryOp::Eq => "eq",
        }
    }
}

params! {
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
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `binary` launch, in binding order.
pub(crate) struct Bindings<'a> {
    pub a: &'a Tensor,
    pub b: &'a Tensor,
    pub y: &'a Tensor,
}

/// Runs `binary` where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_strided(
            gpu,
            Kernel::Binary,
            bytemuck::bytes_of(p),
            &[b.a.gpu_raw(), b.b.gpu_raw(), b.y.gpu_raw()],
            u64::from(p.numel),
        ),
        On::Cpu => {
            // `a + a` reads one storage twice; the output is fresh.
            with_host_reads(&[b.a, b.b], |x| {
                cpu::binary::binary(p, x[0], x[1], &mut host_write(b.y));
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BinaryOp;
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{Device, Error, Tensor};

    #[test]
    fn every_op_matches_cpu_with_row_and_column_broadcasting() {
        let (gpu, cpu) = (Device::Gpu(gpu()), Device::Cpu);
        let cases: [(&[usize], &[usize]); 7] = [
            (&[1], &[1]),
            (&[17, 33], &[17, 33]),
            (&[17, 33], &[33]),
            (&[17, 33], &[17, 1]),
            (&[1, 33], &[17, 1]),
            (&[3, 7, 5], &[7, 5]),
            (&[127, 1, 9], &[1, 13, 1]),
        ];
        for (i, op) in BinaryOp::ALL.into_iter().enumerate() {
            for (j, (sa, sb)) in cases.iter().enumerate() {
                let seed = (i * 10 + j) as u64;
                let a = randn(seed, sa.iter().product());
                // Keep divisors away from zero.
                let b: Vec<f32> = randn(seed + 99, sb.iter().product())
                    .iter()
                    .map(|v| v.signum() * (v.abs() + 0.5))
                    .collect();
                let mut out = Vec::new();
                for dev in [&gpu, &cpu] {
                    let ta = Tensor::from_slice(dev, &a, sa).unwrap();
                    let tb = Tensor::from_slice(dev, &b, sb).unwrap();
                    let y = ta.binary_op(&tb, op).unwrap();
                    out.push((y.shape().to_vec(), y.read_blocking().unwrap()));
                }
                assert_eq!(out[0].0, out[1].0);
                assert_close(
                    &format!("{op:?} {sa:?} {sb:?}"),
                    &out[0].1,
                    &out[1].1,
                    Tol {
                        abs: 1e-6,
                        rel: 1e-6,
                    },
                );
            }
        }
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let dev = Device::Cpu;
        let a = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let row = Tensor::from_slice(&dev, &[10.0, 20.0, 30.0], &[3]).unwrap();
        let col = Tensor::from_slice(&dev, &[100.0, 200.0], &[2, 1]).unwrap();
        assert_eq!(
            a.add(&row).unwrap().read_blocking().unwrap(),
            [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
        );
        assert_eq!(
            a.add(&col).unwrap().read_blocking().unwrap(),
            [101.0, 102.0, 103.0, 204.0, 205.0, 206.0]
        );
        let bad = Tensor::from_slice(&dev, &[1.0, 2.0], &[2]).unwrap();
        assert!(matches!(
            a.add(&bad),
            Err(Error::ShapeMismatch { op: "add", .. })
        ));
    }
}
