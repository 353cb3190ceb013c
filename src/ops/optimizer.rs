//! The optimizer's device work: the fused in-place parameter update, the per-parameter partials
//! of the global gradient norm and the clip factor. `crate::optim` chooses the settings; these
//! check devices and launch the kernels.

use crate::error::Result;
use crate::kernels::reduce::ReduceOp;
use crate::kernels::{clip_scale, optimizer_step};
use crate::ops::{same_device, u32_of};
use crate::tensor::Tensor;

pub(crate) use crate::kernels::optimizer_step::{
    Params as StepParams, AMSGRAD, CENTERED, CLIP_SCALE, CLIP_VALUE, DECOUPLED, MAXIMIZE, NESTEROV,
};

/// The state tensors of one parameter's update: `s3` only for the rules that keep a third.
pub(crate) struct StepState<'a> {
    pub s1: &'a Tensor,
    pub s2: &'a Tensor,
    pub s3: Option<&'a Tensor>,
}

/// Updates `param` and its state in place from `grad`; `clip` is the [norm, scale] pair of
/// [`clip_scale`] when `p.flags` has `CLIP_SCALE`.
pub(crate) fn optimizer_step(
    p: &StepParams,
    param: &Tensor,
    grad: &Tensor,
    state: StepState<'_>,
    clip: Option<&Tensor>,
) -> Result<()> {
    for (arg, t) in [("grad", grad), ("s1", state.s1), ("s2", state.s2)] {
        same_device("optimizer_step", arg, param, t)?;
    }
    for (arg, t) in [("s3", state.s3), ("clip", clip)] {
        if let Some(t) = t {
            same_device("optimizer_step", arg, param, t)?;
        }
    }
    let b = optimizer_step::Bindings {
        param,
        grad,
        s1: state.s1,
        s2: state.s2,
        s3: state.s3,
        clip,
    };
    optimizer_step::launch(p, &b)
}

/// Which gradient norm clipping measures (the codes of clip_scale's `norm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Norm {
    L2 = 0,
    L1 = 1,
    Inf = 2,
}

/// Writes parameter `slot`'s partial of the global norm into `partial[slot]`: Σ g² (L2),
/// Σ |g| (L1) or max |g| (L∞).
pub(crate) fn norm_partial(grad: &Tensor, norm: Norm, partial: &Tensor, slot: usize) -> Result<()> {
    let op = match norm {
        Norm::L2 => ReduceOp::SumSquares,
        Norm::L1 => ReduceOp::SumAbs,
        Norm::Inf => ReduceOp::MaxAbs,
    };
    grad.reduce_all_into(partial, slot, op)
}

/// Writes the global norm of the partials and the clip factor min(1, max_norm / (norm + 1e-6))
/// into `out` [2], on the device: no readback between the norm and the update.
pub(crate) fn clip_scale(max_norm: f32, norm: Norm, partial: &Tensor, out: &Tensor) -> Result<()> {
    same_device("clip_scale", "out", partial, out)?;
    let p = clip_scale::Params {
        count: u32_of(partial.numel()),
        norm: norm as u32,
        _pad0: 0,
        max_norm,
    };
    clip_scale::launch(&p, &clip_scale::Bindings { partial, out })
}
