//! 2-D pooling over [N, C, H, W]: max (the backward routes each gradient to the saved argmax) and
//! average (count_include_pad, PyTorch's default), deterministic in both directions.

use crate::error::{shape_str, Error, Result};
use crate::kernels::{pool2d_backward, pool2d_forward};
use crate::ops::u32_of;
use crate::tensor::autodiff::record;
use crate::tensor::Tensor;

/// The largest pooling window side: the backward finds a max window's winner by its offset
/// ky·kw + kx, saved as f32, which is exact below 2^24 = 4096².
pub const MAX_POOL_KERNEL: usize = 4096;

impl Tensor {
    fn pool2d(&self, max: bool, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
        let op = if max { "max_pool2d" } else { "avg_pool2d" };
        let [n, c, h, w] = *self.shape() else {
            return Err(Error::ShapeMismatch {
                op,
                arg: "input",
                expected: "[N, C, H, W]".into(),
                got: shape_str(self.shape()),
            });
        };
        let invalid = |message: String| Error::InvalidArgument { op, message };
        if h == 0 || w == 0 {
            return Err(invalid(format!(
                "input {} has an empty plane: pooling needs H and W of at least 1",
                shape_str(self.shape())
            )));
        }
        if kernel == 0 || stride == 0 || kernel > MAX_POOL_KERNEL {
            return Err(invalid(format!(
                "kernel {kernel} and stride {stride}: both must be at least 1 and the kernel at most {MAX_POOL_KERNEL} (for a whole-plane window use global_avg_pool2d)"
            )));
        }
        // The kernels index with signed 32-bit arithmetic; pad ≤ kernel / 2 keeps 2·pad from
        // overflowing and guarantees every window overlaps the input.
        let limit = i32::MAX as usize;
        if pad > kernel / 2 || stride > limit || h + 2 * pad > limit || w + 2 * pad > limit {
            return Err(invalid(format!(
                "padding {pad} with kernel {kernel} and stride {stride}: padding must be at most half the kernel and the padded input and stride below 2^31"
            )));
        }
        if h + 2 * pad < kernel || w + 2 * pad < kernel {
            return Err(invalid(format!(
                "kernel {kernel} with padding {pad} does not fit the input's [{h}, {w}] plane: pad more or use a smaller kernel"
            )));
        }
        let (oh, ow) = (
            (h + 2 * pad - kernel) / stride + 1,
            (w + 2 * pad - kernel) / stride + 1,
        );
        let x = self.owned()?;
        let y = x.output_like(&[n, c, oh, ow], op)?;
        let argmax = x.output_like(&[n, c, oh, ow], op)?;
        let p = pool2d_forward::Params {
            planes: u32_of(n * c),
            h: u32_of(h),
            w: u32_of(w),
            oh: u32_of(oh),
            ow: u32_of(ow),
            kh: u32_of(kernel),
            kw: u32_of(kernel),
            stride: u32_of(stride),
            pad: u32_of(pad),
            max: u32::from(max),
            x_off: 0,
            _pad: 0,
        };
        pool2d_forward::launch(
            &p,
            &pool2d_forward::Bindings {
                x: &x,
                y: &y,
                argmax: &argmax,
            },
        )?;
        Ok(record(y, op, &[self], move |g, dy| {
            let dy = dy.owned()?;
            let dx = x.output_like(x.shape(), op)?;
            pool2d_backward::launch(
                &p,
                &pool2d_backward::Bindings {
                    dy: &dy,
                    argmax: &argmax,
                    dx: &dx,
                },
            )?;
            g.add(0, dx)
        }))
    }

    /// Max pooling with a square `kernel`, `stride` and zero `padding` (PyTorch's
    /// `F.max_pool2d`). # Shapes: [N, C, H, W] → [N, C, (H + 2p − k)/s + 1, (W + 2p − k)/s + 1].
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        self.pool2d(true, kernel, stride, padding)
    }

    /// Average pooling counting the padding (PyTorch's `F.avg_pool2d` defaults).
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        self.pool2d(false, kernel, stride, padding)
    }

    /// Global average pooling (PyTorch's `nn.AdaptiveAvgPool2d(1)`): the mean of each plane.
    /// Two dispatches (a row mean over H·W), differentiable. # Shapes: [N, C, H, W] → [N, C, 1, 1].
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        let [n, c, h, w] = *self.shape() else {
            return Err(Error::ShapeMismatch {
                op: "global_avg_pool2d",
                arg: "input",
                expected: "[N, C, H, W]".into(),
                got: shape_str(self.shape()),
            });
        };
        self.reshape(&[n, c, h * w])?
            .mean(2)?
            .reshape(&[n, c, 1, 1])
    }
}
