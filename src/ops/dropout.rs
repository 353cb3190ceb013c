//! Dropout: inverted, with a counter-based mask that the backward regenerates.

use crate::error::{Error, Result};
use crate::kernels::dropout;
use crate::ops::u32_of;
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

fn apply(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    let x = x.contiguous()?;
    let y = x.output_like(x.shape(), "dropout")?;
    let params = dropout::Params {
        numel: u32_of(x.numel()),
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        x_off: u32_of(x.offset),
        y_off: 0,
        p,
        scale: 1.0 / (1.0 - p),
        _pad: 0,
    };
    if params.numel > 0 {
        dropout::launch(&params, &dropout::Bindings { x: &x, y: &y })?;
    }
    Ok(y)
}

impl Tensor {
    /// Zeroes each element with probability `p` and scales the rest by 1 / (1 − p); the mask is
    /// a function of (`seed`, element index), so the same seed gives the same mask on every
    /// device. Pass a new seed each step. For evaluation, do not call it (it is the identity).
    pub fn dropout(&self, p: f32, seed: u64) -> Result<Tensor> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::InvalidArgument {
                op: "dropout",
                message: format!("p = {p} is outside [0, 1)"),
            });
        }
        if p == 0.0 {
            return Ok(self.clone());
        }
        let y = apply(&self.detach(), p, seed)?;
        Ok(record(y, "dropout", &[self], move |g, dy| {
            g.add(0, apply(dy, p, seed)?)
        }))
    }
}
