//! The optimizer's device work: the fused in-place parameter update and the global-norm clip
//! factor. `crate::optim` chooses the settings; these check devices and launch the kernels.

use crate::error::Result;
use crate::kernels::{clip_scale, optimizer_step};
use crate::ops::{same_device, u32_of};
use crate::tensor::Tensor;

pub(crate) use crate::kernels::optimizer_step::{
    Params as StepParams, CLIP_SCALE, CLIP_VALUE, MAXIMIZE, NESTEROV,
};

/// Updates `param` and its state `s1`, `s2` in place from `grad`; `clip` is the [norm, scale]
/// pair of [`clip_scale`] when `p.flags` has `CLIP_SCALE`.
pub(crate) fn optimizer_step(
    p: &StepParams,
    param: &Tensor,
    grad: &Tensor,
    s1: &Tensor,
    s2: &Tensor,
    clip: Option<&Tensor>,
) -> Result<()> {
    for (arg, t) in [("grad", grad), ("s1", s1), ("s2", s2)] {
        same_device("optimizer_step", arg, param, t)?;
    }
    if let Some(c) = clip {
        same_device("optimizer_step", "clip", param, c)?;
    }
    let b = optimizer_step::Bindings {
        param,
        grad,
        s1,
        s2,
        clip,
    };
    optimizer_step::launch(p, &b)
}

/// Writes the global norm √Σ partial and the clip factor min(1, max_norm / (norm + 1e-6)) into
/// `out` [2], on the device: no readback between the norm and the update.
pub(crate) fn clip_scale(max_norm: f32, partial: &Tensor, out: &Tensor) -> Result<()> {
    same_device("clip_scale", "out", partial, out)?;
    let p = clip_scale::Params {
        count: u32_of(partial.numel()),
        _pad0: 0,
        _pad1: 0,
        max_norm,
    };
    clip_scale::launch(&p, &clip_scale::Bindings { partial, out })
}
