//! Softmax and log-softmax over the last axis, forward and backward kernels.

use crate::error::{Error, Result};
use crate::kernels::{softmax_backward, softmax_forward};
use crate::ops::u32_of;
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

impl Tensor {
    fn softmax_impl(&self, log: bool, name: &'static str) -> Result<Tensor> {
        let cols = *self.shape.last().ok_or_else(|| Error::InvalidArgument {
            op: name,
            message: "a rank-0 tensor has no last axis; reshape to [1] first".into(),
        })?;
        if cols == 0 {
            return Err(Error::InvalidArgument {
                op: name,
                message: "the last axis is empty".into(),
            });
        }
        let x = self.contiguous()?.detach();
        let rows = x.numel() / cols;
        let y = x.output_like(&self.shape, name)?;
        let p = softmax_forward::Params {
            rows: u32_of(rows),
            cols: u32_of(cols),
            log: u32::from(log),
            x_off: u32_of(x.offset),
            y_off: 0,
            _pad: [0; 3],
        };
        if rows > 0 {
            softmax_forward::launch(&p, &softmax_forward::Bindings { x: &x, y: &y })?;
        }
        let saved = y.detach();
        Ok(record(y, name, &[self], move |g, dy| {
            let dy = dy.contiguous()?;
            let dx = saved.output_like(saved.shape(), "softmax_backward")?;
            let p = softmax_backward::Params {
                rows: u32_of(rows),
                cols: u32_of(cols),
                log: u32::from(log),
                y_off: 0,
                dy_off: u32_of(dy.offset),
                dx_off: 0,
                _pad: [0; 2],
            };
            softmax_backward::launch(
                &p,
                &softmax_backward::Bindings {
                    y: &saved,
                    dy: &dy,
                    dx: &dx,
                },
            )?;
            g.add(0, dx)
        }))
    }

    /// Softmax over the last axis, max-subtracted (stable for logits of ±1e4).
    pub fn softmax(&self) -> Result<Tensor> {
        self.softmax_impl(false, "softmax")
    }

    /// Log-softmax over the last axis, max-subtracted.
    pub fn log_softmax(&self) -> Result<Tensor> {
        self.softmax_impl(true, "log_softmax")
    }
}
