//! `attention_backward_kv`: params and bindings of dK and dV of fused attention.

use bytemuck::{Pod, Zeroable};

use super::attention_forward::tiling;
use super::cpu;
use super::{fold_rows, max_grid, on, params, wgsl, with_host_reads, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::GpuInner;
use crate::tensor::{host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("attention_backward_kv", "attention", "grid");

/// `attention_backward_kv` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "attention_backward_kv",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
    ],
};

params! {
    /// Mirrors `struct Params` in shaders/attention_backward_kv.wgsl (and `attention_backward_q`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub len: u32,
        pub heads: u32,
        pub causal: u32,
        pub scale: f32,
        /// BH, the rows of Q: where the second plane of `stats` (and of `dkv`) starts.
        pub bh: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of the backward, in binding order; on a GPU the two kernels bind the same inputs
/// and write `dkv` (this kernel) or `dq` (`attention_backward_q`).
pub(crate) struct Bindings<'a> {
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    pub d_o: &'a Tensor,
    /// [2, BH·L]: the forward's log-sum-exp, then rowsum(dO ⊙ O).
    pub stats: &'a Tensor,
    pub lengths: &'a Tensor,
    pub dq: &'a Tensor,
    /// [2·BH, L, D]: dK, then dV.
    pub dkv: &'a Tensor,
}

/// dQ, dK and dV where `b.dq` lives: on a GPU this kernel (dK, dV by key blocks) then
/// `attention_backward_q` (dQ by query blocks); the CPU twin computes all three in one pass.
pub(crate) fn launch(p: &Params, head_dim: u32, b: &Bindings<'_>) -> Result<()> {
    match on(b.dq) {
        On::Gpu(gpu) => {
            let inputs = [
                b.q.gpu_raw(),
                b.k.gpu_raw(),
                b.v.gpu_raw(),
                b.d_o.gpu_raw(),
                b.stats.gpu_raw(),
                b.lengths.gpu_raw(),
            ];
            record(
                gpu,
                Kernel::AttentionBackwardKv,
                p,
                head_dim,
                &inputs,
                b.dkv.gpu_raw(),
            )?;
            record(
                gpu,
                Kernel::AttentionBackwardQ,
                p,
                head_dim,
                &inputs,
                b.dq.gpu_raw(),
            )
        }
        On::Cpu => {
            // Self-attention may pass one storage as Q, K and V.
            let reads = [b.q, b.k, b.v, b.d_o, b.stats, b.lengths];
            with_host_reads(&reads, |x| {
                let inputs = cpu::attention_backward_kv::Inputs {
                    q: x[0],
                    k: x[1],
                    v: x[2],
                    d_o: x[3],
                    stats: x[4],
                    lengths: x[5],
                };
                cpu::attention_backward_kv::attention_backward(
                    p,
                    head_dim as usize,
                    inputs,
                    &mut host_write(b.dq),
                    &mut host_write(b.dkv),
                );
            });
            Ok(())
        }
    }
}

/// Records one of the two backward kernels over `inputs` (binding order) writing `out`.
fn record(
    gpu: &GpuInner,
    kernel: Kernel,
    p: &Params,
    head_dim: u32,
    inputs: &[&RawBuffer; 6],
    out: &RawBuffer,
) -> Result<()> {
    let [q, k, v, d_o, stats, lengths] = *inputs;
    // `attention` refused head dimensions past MAX_DIM on both devices before recording.
    let (rows, overrides) = tiling(head_dim, true);
    gpu.record(&Dispatch {
        kernel: kernel.desc(),
        overrides: &overrides,
        params: bytemuck::bytes_of(p),
        buffers: &[q, k, v, d_o, stats, lengths, out],
        workgroups: fold_rows("attention", p.len.div_ceil(rows), p.bh, max_grid(gpu))?,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, randn, Tol};
    use crate::{attention, attention_reference, AttentionOptions, Device, Gpu, Tensor};

    /// dQ, dK, dV of the fused kernels against the tape's gradients of the reference path, on
    /// both devices, with both masks and several heads.
    #[test]
    fn fused_gradients_match_the_reference() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for (len, dim) in [
            (1usize, 16usize),
            (7, 16),
            (17, 3),
            (33, 72),
            (64, 64),
            (129, 128),
            (512, 64),
        ] {
            for causal in [false, true] {
                let (batch, heads) = (2usize, 2usize);
                let bh = batch * heads;
                let n = bh * len * dim;
                let (qv, kv, vv, dov) = (randn(1, n), randn(2, n), randn(3, n), randn(4, n));
                let lens = [len, (len / 2).max(1)];
                let lens_f: Vec<f32> = lens.iter().map(|&l| l as f32).collect();
                let mut out = Vec::new();
                for (dev, fused) in [(&g, true), (&g, false), (&c, true), (&c, false)] {
                    let t = |v: &[f32]| {
                        Tensor::from_slice(dev, v, &[bh, len, dim])
                            .unwrap()
                            .requires_grad()
                    };
                    let (q, k, v) = (t(&qv), t(&kv), t(&vv));
                    let l = Tensor::from_slice(dev, &lens_f, &[batch]).unwrap();
                    let o = if fused {
                        attention(
                            &q,
                            &k,
                            &v,
                            AttentionOptions {
                                causal,
                                lengths: Some(&l),
                                heads,
                                scale: None,
                            },
                        )
                        .unwrap()
                    } else {
                        attention_reference(&q, &k, &v, causal, Some(&lens), heads).unwrap()
                    };
                    o.backward_with(&Tensor::from_slice(dev, &dov, &[bh, len, dim]).unwrap())
                        .unwrap();
                    out.push([q, k, v].map(|t| t.grad().unwrap().read_blocking().unwrap()));
                }
                for (name, idx) in [("dQ", 0), ("dK", 1), ("dV", 2)] {
                    let want = &out[3][idx];
                    for (which, got) in [
                        ("fused GPU", &out[0][idx]),
                        ("reference GPU", &out[1][idx]),
                        ("fused CPU", &out[2][idx]),
                    ] {
                        let what = format!("attention L={len} d={dim} causal={causal}: {name} {which} vs reference CPU");
                        assert_close(
                            &what,
                            got,
                            want,
                            Tol {
                                abs: 1e-4,
                                rel: 1e-3,
                            },
                        );
                    }
                }
            }
        }
    }

    /// The fused path at L = 1024 never allocates a buffer of L×L elements (4 MiB); the
    /// reference path does.
    #[test]
    fn fused_attention_never_allocates_the_score_matrix() {
        let gpu = Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(gpu.clone());
        let (len, dim) = (1024usize, 64usize);
        let t = |seed| {
            Tensor::from_slice(&dev, &randn(seed, len * dim), &[1, len, dim])
                .unwrap()
                .requires_grad()
        };
        let (q, k, v) = (t(1), t(2), t(3));
        let o = attention(
            &q,
            &k,
            &v,
            AttentionOptions {
                causal: true,
                ..AttentionOptions::default()
            },
        )
        .unwrap();
        o.sum_all().unwrap().backward().unwrap();
        q.grad().unwrap().read_blocking().unwrap();
        let largest = gpu.stats().largest_buffer;
        assert!(
            largest < (len * len * 4) as u64,
            "largest buffer {largest} bytes"
        );
        let r = attention_reference(&q.detach(), &k.detach(), &v.detach(), true, None, 1).unwrap();
        r.read_blocking().unwrap();
        assert!(
            gpu.stats().largest_buffer >= (len * len * 4) as u64,
            "the reference materialises L×L"
        );
    }
}
