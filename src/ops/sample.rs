//! Sampling: one categorical draw per row of logits, on the device that holds them, so a
//! generation loop feeds each token to its next step without reading anything back.

use crate::error::{Error, Result};
use crate::kernels::sample_categorical;
use crate::ops::u32_of;
use crate::tensor::Tensor;

/// How [`Tensor::sample_categorical`] draws.
#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    /// Softmax temperature: logits are divided by it. At or below 1e-6 the draw is the argmax
    /// (the lowest index among equal maxima).
    pub temperature: f32,
    /// Draw among the logits ≥ the `top_k`-th largest (ties at the boundary kept); 0 draws
    /// among all.
    pub top_k: usize,
    /// The random stream: the same (seed, counter) gives the same indices on every device.
    pub seed: u64,
    /// Which draw of the stream: a generation loop passes its step, so each step draws anew.
    pub counter: u32,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            temperature: 1.0,
            top_k: 0,
            seed: 0,
            counter: 0,
        }
    }
}

impl Tensor {
    /// One index per row of logits `[..., V]`, drawn from softmax(logits / temperature)
    /// (optionally among the top k), as f32 values of shape `[...]` (the form [`crate::embedding`]
    /// and the losses take ids in). The draw uses a counter-based uniform of
    /// (seed, counter, row), inverse CDF over the weights summed in index order: the CPU path
    /// and the GPU path draw the same indices from the same logits, up to the last bits of
    /// `exp` on the adapter. Not differentiable.
    ///
    /// ```
    /// use timeloom::{Device, SampleOptions, Tensor};
    /// let logits = Tensor::from_slice(&Device::Cpu, &[0.0, 5.0, 1.0, 9.0, 2.0, 0.5], &[2, 3])?;
    /// let greedy = SampleOptions { temperature: 0.0, ..SampleOptions::default() };
    /// assert_eq!(logits.sample_categorical(&greedy)?.read_blocking()?, vec![1.0, 0.0]);
    /// // Top-1 is the argmax whatever the temperature.
    /// let top1 = SampleOptions { top_k: 1, seed: 7, ..SampleOptions::default() };
    /// assert_eq!(logits.sample_categorical(&top1)?.read_blocking()?, vec![1.0, 0.0]);
    /// # Ok::<(), timeloom::Error>(())
    /// ```
    pub fn sample_categorical(&self, options: &SampleOptions) -> Result<Tensor> {
        let op = "sample_categorical";
        self.expect_f32(op)?;
        let t = options.temperature;
        if !t.is_finite() || t < 0.0 {
            return Err(Error::InvalidArgument {
                op,
                message: format!("temperature = {t}: pass a finite value ≥ 0 (≤ 1e-6 is greedy)"),
            });
        }
        let Some((&cols, batch)) = self.shape().split_last() else {
            return Err(Error::InvalidArgument {
                op,
                message: "the logits need an axis of classes (shape [..., V])".into(),
            });
        };
        if cols == 0 {
            return Err(Error::InvalidArgument {
                op,
                message: "no classes to draw from (V = 0)".into(),
            });
        }
        if cols > 1 << 24 {
            return Err(Error::InvalidArgument {
                op,
                message: format!("V = {cols}: indices past 2^24 are not exact in f32"),
            });
        }
        let x = self.detach().contiguous()?;
        let out = x.output_like(batch, op)?;
        let rows: usize = batch.iter().product();
        let p = sample_categorical::Params {
            rows: u32_of(rows),
            cols: u32_of(cols),
            top_k: u32::try_from(options.top_k).unwrap_or(u32::MAX),
            greedy: u32::from(t <= 1e-6),
            inv_temp: if t <= 1e-6 { 0.0 } else { 1.0 / t },
            seed_lo: options.seed as u32,
            seed_hi: (options.seed >> 32) as u32,
            counter: options.counter,
            x_off: u32_of(x.offset),
            out_off: 0,
            _pad: [0; 2],
        };
        if rows > 0 {
            sample_categorical::launch(&p, &sample_categorical::Bindings { x: &x, out: &out })?;
        }
        Ok(out)
    }
}
