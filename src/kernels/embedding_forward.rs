//! `embedding_forward`: params and bindings of the row gather of an embedding table.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_flat, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("embedding_forward", "grid");

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
    /// [V, D], read from its view offset on the host (an owned tensor on the device).
    pub weight: &'a Tensor,
    pub ids: &'a Tensor,
    pub y: &'a Tensor,
}

/// Gathers rows where `b.y` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.y) {
        On::Gpu(gpu) => record_flat(
            gpu,
            Kernel::EmbeddingForward,
            bytemuck::bytes_of(p),
            &[b.weight.gpu_raw(), b.ids.gpu_raw(), b.y.gpu_raw()],
            u64::from(p.tokens) * u64::from(p.dim),
        ),
        On::Cpu => {
            cpu::embedding_forward::embedding_forward(
                p,
                &host_read(b.weight)[b.weight.offset..],
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
}
