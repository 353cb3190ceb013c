//! `attention_forward`: params, bindings and geometry of fused scaled-dot-product attention.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{fold_rows, max_grid, on, params, wgsl, with_host_reads, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("attention_forward", "attention", "grid");

/// `attention_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "attention_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// Largest head dimension the kernels take: shaders/common/attention.wgsl's 16 fold lanes own
/// two vec4 slices each.
pub(crate) const MAX_DIM: u32 = 128;

/// The three fused kernels' tiling for a head dimension (common/attention.wgsl): held rows per
/// workgroup (`ROWS`) and streamed rows per tile (`TILE`), and the overrides that say so. The
/// held rows fill 256 vec4s (16 rows up to 64 dimensions, 8 up to 128); the forward streams as
/// many rows a tile (its tiles hold 256 vec4s each), the backward kernels, which hold two
/// operands, half as many (128). A workgroup is 64 invocations.
pub(crate) fn tiling(head_dim: u32, backward: bool) -> (u32, [(&'static str, f64); 3]) {
    let dv4 = head_dim.div_ceil(4).max(1);
    let rows = if dv4 <= 16 { 16 } else { 8 };
    let tile = if backward { rows / 2 } else { rows };
    (
        rows,
        [
            ("HEAD_DIM", f64::from(head_dim)),
            ("ROWS", f64::from(rows)),
            ("TILE", f64::from(tile)),
        ],
    )
}

params! {
    /// Mirrors `struct Params` in shaders/attention_forward.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        /// L, the sequence length (queries and keys).
        pub len: u32,
        /// Heads per batch entry: `lengths[bh / heads]` masks row bh.
        pub heads: u32,
        pub causal: u32,
        pub scale: f32,
        pub q_off: u32,
        pub k_off: u32,
        pub v_off: u32,
        /// BH, the rows of Q (the folded grid may hold more).
        pub bh: u32,
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one call, in binding order.
pub(crate) struct Bindings<'a> {
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    /// [B]: the valid keys of each batch entry.
    pub lengths: &'a Tensor,
    pub o: &'a Tensor,
    /// [BH, L]: each row's log-sum-exp, for the backward.
    pub lse: &'a Tensor,
}

/// O = softmax(QKᵀ·scale, masked)·V for [BH, L, `head_dim`] Q, K, V where `b.o` lives.
pub(crate) fn launch(p: &Params, head_dim: u32, b: &Bindings<'_>) -> Result<()> {
    match on(b.o) {
        On::Gpu(gpu) => {
            // `attention` refused head dimensions past MAX_DIM on both devices before this.
            let (rows, overrides) = tiling(head_dim, false);
            gpu.record(&Dispatch {
                kernel: Kernel::AttentionForward.desc(),
                overrides: &overrides,
                params: bytemuck::bytes_of(p),
                buffers: &[
                    b.q.gpu_raw(),
                    b.k.gpu_raw(),
                    b.v.gpu_raw(),
                    b.lengths.gpu_raw(),
                    b.o.gpu_raw(),
                    b.lse.gpu_raw(),
                ],
                workgroups: fold_rows("attention", p.len.div_ceil(rows), p.bh, max_grid(gpu))?,
            })
        }
        On::Cpu => {
            // Self-attention may pass one storage as Q, K and V.
            with_host_reads(&[b.q, b.k, b.v, b.lengths], |x| {
                let inputs = cpu::attention_forward::Inputs {
                    q: x[0],
                    k: x[1],
                    v: x[2],
                    lengths: x[3],
                };
                cpu::attention_forward::attention_forward(
                    p,
                    head_dim as usize,
                    p.bh as usize,
                    inputs,
                    &mut host_write(b.o),
                    &mut host_write(b.lse),
                );
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu, randn, Tol};

    /// Every head dimension's tiles fit common/attention.wgsl's arrays (held 256 vec4s; tiles
    /// 256 forward and 128 backward; pairs ROWS·TILE within the same counts) and the fold
    /// phase's rows (4 per invocation, 4 invocation rows) and pair phase's (64 invocations,
    /// TILE dividing 64) cover them: past them the kernels would write outside workgroup
    /// memory or leave rows out.
    #[test]
    fn the_tiling_fits_the_workgroup_arrays_for_every_head_dimension() {
        for d in 1..=super::MAX_DIM {
            for backward in [false, true] {
                let (rows, o) = super::tiling(d, backward);
                let (r, t) = (o[1].1 as u32, o[2].1 as u32);
                let dv4 = d.div_ceil(4);
                let tile_vecs = if backward { 128 } else { 256 };
                assert_eq!(rows, r);
                assert!(r == 8 || r == 16, "d {d}: {r} rows");
                assert!(
                    [4, 8, 16].contains(&t) && r * dv4 <= 256 && t * dv4 <= tile_vecs,
                    "d {d}, backward {backward}: {r} rows, tile {t}"
                );
                assert!(r * t <= tile_vecs, "d {d}: {r} × {t} pairs");
                // The pair phase: rows g + k·64/TILE for k < max(ROWS·TILE/64, 1) reach every
                // held row.
                let per = (r * t / 64).max(1);
                assert!((64 / t) * per >= r, "d {d}: pair rows");
            }
        }
    }
    use crate::{attention, attention_reference, AttentionOptions, Device, Tensor};

    #[test]
    fn fused_matches_the_reference_and_cpu_with_causal_and_padding_masks() {
        let (g, c) = (Device::Gpu(gpu()), Device::Cpu);
        for (len, dim) in [
            (1usize, 16usize),
            (7, 16),
            (17, 3),
            (33, 72),
            (64, 64),
            (129, 16),
            (129, 128),
            (512, 64),
        ] {
            for causal in [false, true] {
                let (batch, heads) = (2usize, 2usize);
                let bh = batch * heads;
                let n = bh * len * dim;
                let (qv, kv, vv) = (randn(1, n), randn(2, n), randn(3, n));
                let lens = [len, (len / 2).max(1)];
                let lens_f: Vec<f32> = lens.iter().map(|&l| l as f32).collect();
                let mut out = Vec::new();
                for dev in [&g, &c] {
                    let t = |v: &[f32]| Tensor::from_slice(dev, v, &[bh, len, dim]).unwrap();
                    let (q, k, v) = (t(&qv), t(&kv), t(&vv));
                    let l = Tensor::from_slice(dev, &lens_f, &[batch]).unwrap();
                    let opts = AttentionOptions {
                        causal,
                        lengths: Some(&l),
                        heads,
                        scale: None,
                    };
                    out.push(
                        attention(&q, &k, &v, opts)
                            .unwrap()
                            .read_blocking()
                            .unwrap(),
                    );
                    out.push(
                        attention_reference(&q, &k, &v, causal, Some(&lens), heads)
                            .unwrap()
                            .read_blocking()
                            .unwrap(),
                    );
                }
                let what = format!("attention L={len} d={dim} causal={causal}");
                let tol = Tol {
                    abs: 1e-5,
                    rel: 1e-4,
                };
                assert_close(
                    &format!("{what}: fused GPU vs reference CPU"),
                    &out[0],
                    &out[3],
                    tol,
                );
                assert_close(
                    &format!("{what}: fused CPU vs reference CPU"),
                    &out[2],
                    &out[3],
                    tol,
                );
                assert_close(
                    &format!("{what}: reference GPU vs CPU"),
                    &out[1],
                    &out[3],
                    tol,
                );
            }
        }
    }

    /// A batch entry of length 0 attends to nothing: zeros out of every path (fused on both
    /// devices, the reference), zero gradients into Q, K and V, and no NaN anywhere; the other
    /// entry is unaffected. Head dimensions past the register limit fail on both devices.
    /// The materialised path uploads only the mask it needs: nothing unmasked, one L×L plane
    /// for a causal mask alone, BH planes with lengths.
    #[test]
    fn the_reference_uploads_no_more_mask_than_it_needs() {
        let g = crate::Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(g.clone());
        let (bh, len, dim, heads) = (4usize, 33usize, 8usize, 2usize);
        let t = |seed| Tensor::from_slice(&dev, &randn(seed, bh * len * dim), &[bh, len, dim]);
        let (q, k, v) = (t(1).unwrap(), t(2).unwrap(), t(3).unwrap());
        let plane = (len * len * 4) as u64;
        let mut uploaded_last = 0;
        for (causal, lengths, want) in [
            (false, None, 0),
            (false, Some(vec![len, len + 5]), 0),
            (true, None, plane),
            (true, Some(vec![len, len]), plane),
            (false, Some(vec![len, 7]), bh as u64 * plane),
        ] {
            // The first call may autotune its products (a GPU with several matmul
            // candidates uploads timing operands); the second is the steady state.
            for _ in 0..2 {
                let before = g.stats().bytes_uploaded;
                let out =
                    attention_reference(&q, &k, &v, causal, lengths.as_deref(), heads).unwrap();
                let uploaded = g.stats().bytes_uploaded - before;
                out.read_blocking().unwrap();
                uploaded_last = uploaded;
            }
            assert_eq!(uploaded_last, want, "causal {causal}, lengths {lengths:?}");
        }
    }

    #[test]
    fn a_zero_length_entry_gives_zeros_and_zero_gradients_on_every_path() {
        let (len, dim, heads) = (20usize, 12usize, 1usize);
        let n = 2 * len * dim;
        let (qv, kv, vv) = (randn(4, n), randn(5, n), randn(6, n));
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let t = |v: &[f32]| {
                Tensor::from_slice(&dev, v, &[2, len, dim])
                    .unwrap()
                    .requires_grad()
            };
            let (q, k, v) = (t(&qv), t(&kv), t(&vv));
            let l = Tensor::from_slice(&dev, &[len as f32, 0.0], &[2]).unwrap();
            for causal in [false, true] {
                let opts = AttentionOptions {
                    causal,
                    lengths: Some(&l),
                    heads,
                    scale: None,
                };
                let o = attention(&q, &k, &v, opts).unwrap();
                let got = o.read_blocking().unwrap();
                let reference = attention_reference(&q, &k, &v, causal, Some(&[len, 0]), heads)
                    .unwrap()
                    .read_blocking()
                    .unwrap();
                assert!(got[len * dim..].iter().all(|&x| x == 0.0), "{dev}: fused");
                assert!(
                    reference[len * dim..].iter().all(|&x| x == 0.0),
                    "{dev}: reference"
                );
                assert_close(
                    &format!("{dev} causal={causal}: fused vs reference"),
                    &got,
                    &reference,
                    Tol {
                        abs: 1e-5,
                        rel: 1e-4,
                    },
                );
                for x in [&q, &k, &v] {
                    x.zero_grad();
                }
                o.square().unwrap().sum_all().unwrap().backward().unwrap();
                for (name, x) in [("q", &q), ("k", &k), ("v", &v)] {
                    let g = x.grad().unwrap().read_blocking().unwrap();
                    assert!(g.iter().all(|v| v.is_finite()), "{dev}: d{name} finite");
                    assert!(
                        g[len * dim..].iter().all(|&v| v == 0.0),
                        "{dev}: d{name} zero"
                    );
                    assert!(
                        g[..len * dim].iter().any(|&v| v != 0.0),
                        "{dev}: d{name} live"
                    );
                }
            }
            let wide = Tensor::zeros(&dev, &[1, 2, 130]).unwrap();
            let e = attention(&wide, &wide, &wide, AttentionOptions::default()).unwrap_err();
            assert!(matches!(e, crate::Error::Unsupported { .. }), "{dev}: {e}");
        }
    }

    /// B·H past the 65,535 workgroups a grid dimension allows: the rows fold into y and z, and
    /// the forward and both backward kernels agree with the CPU path on every row.
    #[test]
    fn more_rows_than_one_grid_dimension_holds() {
        let (bh, len, dim) = (65_537usize, 2usize, 1usize);
        let n = bh * len * dim;
        let (qv, kv, vv) = (randn(7, n), randn(8, n), randn(9, n));
        let mut out = Vec::new();
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let t = |v: &[f32]| {
                Tensor::from_slice(&dev, v, &[bh, len, dim])
                    .unwrap()
                    .requires_grad()
            };
            let (q, k, v) = (t(&qv), t(&kv), t(&vv));
            let opts = AttentionOptions {
                causal: true,
                ..AttentionOptions::default()
            };
            let o = attention(&q, &k, &v, opts).unwrap();
            o.square().unwrap().sum_all().unwrap().backward().unwrap();
            let mut r = o.read_blocking().unwrap();
            for x in [&q, &k, &v] {
                r.extend(x.grad().unwrap().read_blocking().unwrap());
            }
            out.push(r);
        }
        assert_close(
            "attention over 65,537 rows",
            &out[0],
            &out[1],
            Tol {
                abs: 1e-5,
                rel: 1e-4,
            },
        );
    }
}
