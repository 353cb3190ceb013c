//! `sample_categorical`: params and bindings of one categorical draw per row of logits
//! (temperature, top-k, counter-based uniforms), one workgroup per row; the ids stay on the
//! device, so generation can feed each token to the next step without a readback.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{on, params, record_rows, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::tensor::{host_read, host_write, Tensor};

pub(crate) const SOURCE: &str = wgsl!("sample_categorical", "grid", "rows", "hash");

/// `sample_categorical` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "sample_categorical",
    source: SOURCE,
    bindings: &[Access::Read, Access::ReadWrite],
};

params! {
    /// Mirrors `struct Params` in shaders/sample_categorical.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub rows: u32,
        pub cols: u32,
        /// Keep the logits ≥ the top_k-th largest; 0 (or ≥ cols) keeps all.
        pub top_k: u32,
        /// 1: the argmax (lowest index among equal maxima) instead of a draw.
        pub greedy: u32,
        /// 1 / temperature.
        pub inv_temp: f32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        /// Which draw of the stream (a generation step): row r uses uniform r of the stream
        /// (seed_lo ^ hash(counter), seed_hi).
        pub counter: u32,
        pub x_off: u32,
        pub out_off: u32,
        pub _pad: [u32; 2],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one `sample_categorical` launch.
pub(crate) struct Bindings<'a> {
    pub x: &'a Tensor,
    pub out: &'a Tensor,
}

/// One index per row of `b.x` into `b.out`, where `b.out` lives.
pub(crate) fn launch(p: &Params, b: &Bindings<'_>) -> Result<()> {
    match on(b.out) {
        On::Gpu(gpu) => record_rows(
            gpu,
            Kernel::SampleCategorical,
            bytemuck::bytes_of(p),
            &[b.x.gpu_raw(), b.out.gpu_raw()],
            u64::from(p.rows),
        ),
        On::Cpu => {
            cpu::sample_categorical::sample_categorical(p, &host_read(b.x), &mut host_write(b.out));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gpu, randn};
    use crate::{DType, Device, Error, SampleOptions, Tensor};

    fn draw(dev: &Device, x: &[f32], shape: &[usize], o: SampleOptions) -> Vec<f32> {
        Tensor::from_slice(dev, x, shape)
            .unwrap()
            .sample_categorical(&o)
            .unwrap()
            .read_blocking()
            .unwrap()
    }

    /// The GPU draws the CPU twin's indices on awkward shapes, with ties (logits rounded to
    /// halves), every temperature regime and top-k at 0, 1, a few, all and past all.
    #[test]
    fn gpu_draws_the_cpu_twins_indices() {
        let g = Device::Gpu(gpu());
        for (rows, cols) in [(1, 1), (7, 2), (3, 17), (257, 33), (5, 257), (2, 1000)] {
            let x: Vec<f32> = randn(cols as u64 + 3, rows * cols)
                .iter()
                .map(|v| (v * 4.0).round() / 2.0)
                .collect();
            for temperature in [0.0, 0.7, 1.5] {
                for top_k in [0, 1, 5, cols, cols + 3] {
                    let o = SampleOptions {
                        temperature,
                        top_k,
                        seed: 0x1234_5678_9abc,
                        counter: 11,
                    };
                    let want = draw(&Device::Cpu, &x, &[rows, cols], o);
                    assert_eq!(
                        draw(&g, &x, &[rows, cols], o),
                        want,
                        "[{rows}, {cols}] T {temperature} top-k {top_k}"
                    );
                    assert!(want.iter().all(|&i| i >= 0.0 && (i as usize) < cols));
                }
            }
        }
    }

    /// χ² against the softmax's probabilities on 20,000 rows of one fixed distribution, on both
    /// devices: plain, at temperature 0.5 (p ∝ p_i²) and restricted to the top 3.
    #[test]
    fn draws_follow_the_distribution() {
        let probs = [0.05f64, 0.1, 0.15, 0.2, 0.25, 0.15, 0.1];
        let v = probs.len();
        let n = 20_000;
        let logits: Vec<f32> = (0..n)
            .flat_map(|_| probs.iter().map(|p| p.ln() as f32))
            .collect();
        let cases: [(f32, usize, Vec<f64>); 3] = [
            (1.0, 0, probs.to_vec()),
            (0.5, 0, probs.iter().map(|p| p * p).collect()),
            // Top 3: 0.25, 0.2 and both 0.15s (a tie at the boundary is kept).
            (
                1.0,
                3,
                probs
                    .iter()
                    .map(|&p| if p >= 0.15 { p } else { 0.0 })
                    .collect(),
            ),
        ];
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            for (temperature, top_k, weights) in &cases {
                let total: f64 = weights.iter().sum();
                let o = SampleOptions {
                    temperature: *temperature,
                    top_k: *top_k,
                    seed: 42,
                    counter: 0,
                };
                let mut counts = vec![0usize; v];
                for i in draw(&dev, &logits, &[n, v], o) {
                    counts[i as usize] += 1;
                }
                let mut chi2 = 0.0;
                let mut cells = 0;
                for (c, w) in counts.iter().zip(weights) {
                    let expected = n as f64 * w / total;
                    if expected == 0.0 {
                        assert_eq!(*c, 0, "T {temperature} top-k {top_k}: drew a cut class");
                        continue;
                    }
                    chi2 += (*c as f64 - expected).powi(2) / expected;
                    cells += 1;
                }
                // The 0.999 quantiles of χ² with cells − 1 degrees of freedom (3 and 6).
                let limit = if cells == 4 { 16.27 } else { 22.46 };
                assert!(
                    chi2 < limit,
                    "{dev:?} T {temperature} top-k {top_k}: χ² = {chi2:.2} ≥ {limit} ({counts:?})"
                );
            }
        }
    }

    #[test]
    fn greedy_takes_the_first_maximum_and_counters_draw_anew() {
        let x = [1.0, 3.0, 3.0, -2.0];
        for dev in [Device::Gpu(gpu()), Device::Cpu] {
            let greedy = SampleOptions {
                temperature: 1e-7,
                ..SampleOptions::default()
            };
            assert_eq!(draw(&dev, &x, &[4], greedy), vec![1.0]);
            // 64 rows of a flat distribution: the same counter repeats, another differs.
            let flat = vec![0.0; 64 * 50];
            let at = |counter| {
                draw(
                    &dev,
                    &flat,
                    &[64, 50],
                    SampleOptions {
                        counter,
                        seed: 5,
                        ..SampleOptions::default()
                    },
                )
            };
            assert_eq!(at(3), at(3));
            assert_ne!(at(3), at(4));
        }
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let dev = Device::Cpu;
        let x = Tensor::from_slice(&dev, &[0.0, 1.0], &[2]).unwrap();
        for temperature in [-1.0, f32::NAN, f32::INFINITY] {
            let e = x
                .sample_categorical(&SampleOptions {
                    temperature,
                    ..SampleOptions::default()
                })
                .unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        }
        let empty = Tensor::zeros(&dev, &[3, 0]).unwrap_or_else(|_| x.clone());
        if empty.shape() == [3, 0] {
            let e = empty
                .sample_categorical(&SampleOptions::default())
                .unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        }
        let half = x.to_dtype(DType::F16).unwrap();
        let e = half
            .sample_categorical(&SampleOptions::default())
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    }
}
