//! `embedding_forward`: params and bindings of the row gather of an embedding table.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_flat_with, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::dtype::unpack;
use crate::tensor::{host_read, host_write, DType, Tensor};

pub(crate) const SOURCE: &str = wgsl!("embedding_forward", "grid", "half");

/// `embedding_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "embedding_forward",
    source: SOURCE,
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/embedding_forward.wgsl (and the backward's).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub tokens: u32,
        pub dim: u32,
        pub vocab: u32,
        pub ids_off: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `embedding_forward` launch.
pub(crate) struct Bindings<'a> {
    /// [V, D], read from its view offset on the host (an owned tensor on the device); f32, or
    /// f16 (a whole table, offset 0) widened on load.
    pub weight: &'a Tensor,
    pub ids: &'a Tensor,
    pub y: &'a Tensor,
}

/// Gathers rows where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    let half = b.weight.dtype() == DType::F16;
    match on(b.y) {
        // Only an f16 table adds a constant: the f32 pipeline keeps its cache key.
        On::Gpu(gpu) => record_flat_with(
            gpu,
            Kernel::EmbeddingForward,
            if half { &[("W_HALF", 1.0)] } else { &[] },
            bytemuck::bytes_of(p),
            &[b.weight.gpu_raw(), b.ids.gpu_raw(), b.y.gpu_raw()],
            u64::from(p.tokens) * u64::from(p.dim),
        ),
        On::Cpu => {
            let words = host_read(b.weight);
            // The twin of the shader's widening loads: the whole table widened (exact).
            let widened;
            let table: &[f32] = if half {
                widened = unpack(&words, 0, (p.vocab * p.dim) as usize);
                &widened
            } else {
                &words[b.weight.offset..]
            };
            cpu::embedding_forward::embedding_forward(
                p,
                table,
                &host_read(b.ids),
                &mut host_write(b.y),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{embedding, Device, Tensor};

    #[test]
    fn lookup_and_gradient_match_cpu_and_repeat_exactly() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        let (vocab, dim) = (11, 7);
        let w = randn(1, vocab * dim);
        let ids: Vec<f32> = [3, 0, 3, 10, 3, 5, 0].iter().map(|&v| v as f32).collect();
        let dy = randn(2, ids.len() * dim);
        let mut out = Vec::new();
        for dev in [&g, &c, &g] {
            let wt = Tensor::from_slice(dev, &w, &[vocab, dim])
                .unwrap()
                .requires_grad();
            let it = Tensor::from_slice(dev, &ids, &[7]).unwrap();
            let y = embedding(&wt, &it).unwrap();
            assert_eq!(y.shape(), [7, dim]);
            y.backward_with(&Tensor::from_slice(dev, &dy, &[7, dim]).unwrap())
                .unwrap();
            out.push((
                y.read_blocking().unwrap(),
                wt.grad().unwrap().read_blocking().unwrap(),
            ));
        }
        assert_eq!(out[0].0[..dim], w[3 * dim..4 * dim]);
        assert_close(
            "embedding forward",
            &out[0].0,
            &out[1].0,
            Tol { abs: 0.0, rel: 0.0 },
        );
        assert_close(
            "embedding gradient",
            &out[0].1,
            &out[1].1,
            Tol {
                abs: 1e-6,
                rel: 1e-6,
            },
        );
        assert_eq!(
            out[0].1, out[2].1,
            "the same gradient bit for bit on every run"
        );
        // Row 3 got three contributions, row 1 none.
        for k in 0..dim {
            let want = dy[k] + dy[2 * dim + k] + dy[4 * dim + k];
            assert!((out[1].1[3 * dim + k] - want).abs() < 1e-6);
            assert_eq!(out[1].1[dim + k], 0.0);
        }
    }

    /// An f16 table gives, on both devices, exactly the f32 lookup of its values: odd widths so
    /// that rows start mid-word, an id past the table as NaN; a table that trains or a view of
    /// one is refused with what to do.
    #[test]
    fn an_f16_table_gives_its_values_exactly_and_refuses_training() {
        use crate::{no_grad, DType, Error};
        for (vocab, dim) in [(1, 1), (11, 7), (5, 33)] {
            let w = randn(dim as u64, vocab * dim);
            let ids: Vec<f32> = (0..9).map(|k| ((k * 7) % (vocab + 1)) as f32).collect();
            for dev in [Device::Gpu(gpu()), Device::Cpu] {
                let table = Tensor::from_slice(&dev, &w, &[vocab, dim]).unwrap();
                let half = table.to_dtype(DType::F16).unwrap();
                let it = Tensor::from_slice(&dev, &ids, &[3, 3]).unwrap();
                let want = embedding(&half.to_dtype(DType::F32).unwrap(), &it)
                    .unwrap()
                    .read_blocking()
                    .unwrap();
                let got = embedding(&half, &it).unwrap();
                assert_eq!(got.shape(), [3, 3, dim]);
                let got = got.read_blocking().unwrap();
                // Bitwise, NaN rows (id = vocab) included.
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "[{vocab}, {dim}] on {dev:?}");
                assert!(
                    got.iter().any(|v| v.is_nan()),
                    "an id past the table is NaN"
                );
                let trained = half.clone().requires_grad();
                let e = embedding(&trained, &it).unwrap_err();
                assert!(matches!(e, Error::Unsupported { .. }), "{e}");
                assert!(no_grad(|| embedding(&trained, &it)).is_ok());
                if vocab > 1 {
                    let view = half.narrow(0, 1, vocab - 1).unwrap();
                    let e = embedding(&view, &it).unwrap_err();
                    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
                }
            }
        }
    }
}
