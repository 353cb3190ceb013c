//! `unary`: params, bindings and geometry of y = α·f(x) + β over a strided x; with f the identity
//! it is the strided copy that makes views contiguous, with `Fill` it fills.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_strided, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("unary", "activations", "grid", "strided");

/// `unary` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "unary",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

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
    /// x for x ≥ 0, slope·x below.
    LeakyRelu = 13,
}

impl UnaryOp {
    #[cfg(test)]
    pub const ALL: [UnaryOp; 14] = [
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
        UnaryOp::LeakyRelu,
    ];
}

params! {
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
        /// The negative slope of `LeakyRelu`.
        pub slope: f32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `unary` launch, in binding order.
pub(crate) struct Bindings<'a> {
    /// Not read by `Fill` (the device binds a placeholder).
    pub x: Option<&'a Tensor>,
    pub y: &'a Tensor,
}

/// Runs `unary` where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_strided(
            gpu,
            Kernel::Unary,
            bytemuck::bytes_of(p),
            &[b.x.map_or(&gpu.dummy, Tensor::gpu_raw), b.y.gpu_raw()],
            u64::from(p.numel),
        ),
        On::Cpu => {
            let x = b.x.map(host_read);
            let x: &[f32] = x.as_deref().map_or(&[], |v| v.as_slice());
            cpu::unary::unary(p, x, &mut host_write(b.y));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UnaryOp;
    use crate::testing::{assert_close, gpu, randn, Tol, AWKWARD};
    use crate::{Device, Tensor};

    /// Inputs inside each op's domain, with large magnitudes where stability matters.
    fn input(op: UnaryOp, n: usize, seed: u64) -> Vec<f32> {
        let x = randn(seed, n);
        match op {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => {
                x.iter().map(|v| v.abs() + 0.1).collect()
            }
            UnaryOp::Sigmoid | UnaryOp::Tanh => x
                .iter()
                .enumerate()
                .map(|(i, v)| if i % 7 == 0 { v * 1e4 } else { v * 3.0 })
                .collect(),
            _ => x.iter().map(|v| v * 3.0).collect(),
        }
    }

    #[test]
    fn every_op_matches_cpu_on_strided_awkward_shapes() {
        let (gpu, cpu) = (Device::Gpu(gpu()), Device::Cpu);
        for (i, op) in UnaryOp::ALL.into_iter().enumerate() {
            for &r in &AWKWARD[..5] {
                let c = AWKWARD[(i + 2) % AWKWARD.len()];
                let x = input(op, r * c, i as u64);
                let mut out = Vec::new();
                for dev in [&gpu, &cpu] {
                    // A transposed view: the strided path of the kernel.
                    let t = Tensor::from_slice(dev, &x, &[c, r]).unwrap().t().unwrap();
                    out.push(
                        t.unary_op_sloped(op, 0.75, -0.25, 0.1)
                            .unwrap()
                            .read_blocking()
                            .unwrap(),
                    );
                }
                for v in &out[0] {
                    assert!(v.is_finite(), "{op:?} produced {v}");
                }
                assert_close(
                    &format!("{op:?} [{r}, {c}]"),
                    &out[0],
                    &out[1],
                    Tol {
                        abs: 1e-6,
                        rel: 2e-6,
                    },
                );
            }
        }
    }

    #[test]
    fn contiguous_copies_a_permuted_view_exactly() {
        let x: Vec<f32> = (0..2 * 3 * 5 * 7).map(|v| v as f32).collect();
        let want = {
            let t = Tensor::from_slice(&Device::Cpu, &x, &[2, 3, 5, 7]).unwrap();
            t.permute(&[3, 1, 0, 2])
                .unwrap()
                .contiguous()
                .unwrap()
                .read_blocking()
                .unwrap()
        };
        // The host twin by hand: y[d, b, a, c] = x[a, b, c, d].
        let mut by_hand = Vec::new();
        for d in 0..7 {
            for b in 0..3 {
                for a in 0..2 {
                    for c in 0..5 {
                        by_hand.push(x[((a * 3 + b) * 5 + c) * 7 + d]);
                    }
                }
            }
        }
        assert_eq!(want, by_hand);
        let t = Tensor::from_slice(&Device::Gpu(gpu()), &x, &[2, 3, 5, 7]).unwrap();
        let got = t.permute(&[3, 1, 0, 2]).unwrap().contiguous().unwrap();
        assert!(got.is_contiguous());
        assert_eq!(got.read_blocking().unwrap(), by_hand);
    }

    /// The host's transposed copy (tiles of output rows, on the pool when large): exactly the
    /// transpose, at a size that splits over tasks and whose rows do not fill the last tile.
    #[test]
    fn a_large_transposed_copy_on_the_host_is_the_transpose() {
        let (r, c) = (517, 131);
        let x: Vec<f32> = (0..r * c).map(|v| v as f32).collect();
        let t = Tensor::from_slice(&Device::Cpu, &x, &[c, r]).unwrap();
        let got = t
            .t()
            .unwrap()
            .contiguous()
            .unwrap()
            .read_blocking()
            .unwrap();
        let want: Vec<f32> = (0..r)
            .flat_map(|i| (0..c).map(move |j| (j * r + i) as f32))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn fill_writes_every_element_of_a_large_tensor() {
        // 70,000 workgroups: past the 65,535 limit of one dimension, so the grid is folded.
        let n = 70_000 * 256 + 3;
        let t = Tensor::full(&Device::Gpu(gpu()), &[n], 2.5).unwrap();
        let v = t.read_blocking().unwrap();
        assert!(
            v.iter().all(|&x| x == 2.5),
            "first wrong at {:?}",
            v.iter().position(|&x| x != 2.5)
        );
    }
}
