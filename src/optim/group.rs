//! Parameter groups (torch.optim's `param_groups`): parameters that share settings different
//! from the optimizer's own, such as no weight decay on biases and norm gains, or a lower rate
//! for a pretrained encoder. A group's settings are values of the update kernel's `Params`, so
//! groups add no pipeline.

use super::Schedule;
use crate::tensor::Tensor;

/// Parameters with their own rate, weight decay, L1 penalty or schedule; each setting left
/// unset follows the optimizer's (as PyTorch fills a group's missing keys from the
/// optimizer's defaults). Add one with [`Optimizer::group`](super::Optimizer::group) or
/// [`Optimizer::add_param_group`](super::Optimizer::add_param_group).
///
/// PyTorch's
/// `AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-4)`
/// is:
///
/// ```
/// use timeloom::nn::{LayerNorm, Linear, Module};
/// use timeloom::optim::{split_decay, ParamGroup};
/// use timeloom::{Device, Optimizer, Rng};
/// let dev = Device::Cpu;
/// let (lin, norm) = (Linear::new(&dev, 4, 4, &mut Rng::new(0))?, LayerNorm::new(&dev, 4)?);
/// let mut params = lin.parameters();
/// params.extend(norm.parameters());
/// let (decay, no_decay) = split_decay(params); // the matrix; the bias and the norm's gain and shift
/// assert_eq!((decay.len(), no_decay.len()), (1, 3));
/// let opt = Optimizer::adamw(decay, 3e-4)
///     .weight_decay(0.1)
///     .group(ParamGroup::new(no_decay).weight_decay(0.0));
/// assert_eq!(opt.group_count(), 2);
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ParamGroup {
    pub(crate) params: Vec<Tensor>,
    pub(crate) settings: GroupSettings,
}

/// A group's own settings; `None` follows the optimizer's.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupSettings {
    pub lr: Option<f32>,
    pub weight_decay: Option<f32>,
    pub l1: Option<f32>,
    pub schedule: Option<Schedule>,
}

impl ParamGroup {
    /// A group of `params` that follows every setting of the optimizer until told otherwise.
    pub fn new(params: Vec<Tensor>) -> ParamGroup {
        ParamGroup {
            params,
            settings: GroupSettings::default(),
        }
    }
    /// The group's base rate (what its schedule's factor multiplies).
    pub fn lr(mut self, lr: f32) -> Self {
        self.settings.lr = Some(lr);
        self
    }
    /// The group's weight decay λ (L2, or decoupled where the rule decouples it).
    pub fn weight_decay(mut self, lambda: f32) -> Self {
        self.settings.weight_decay = Some(lambda);
        self
    }
    /// The group's L1 penalty.
    pub fn l1(mut self, l1: f32) -> Self {
        self.settings.l1 = Some(l1);
        self
    }
    /// The group's schedule (PyTorch's `LambdaLR` takes one function per group).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.settings.schedule = Some(schedule);
        self
    }
}

/// Splits parameters into those weight decay is for (matrices and kernels: rank 2 and up) and
/// those it is not (biases, norm gains and shifts: rank 0 and 1), in their order, as PyTorch
/// recipes do (nanoGPT's `configure_optimizers`, timm's `param_groups_weight_decay`).
/// Embedding tables are matrices and are decayed, as there.
pub fn split_decay(params: Vec<Tensor>) -> (Vec<Tensor>, Vec<Tensor>) {
    params.into_iter().partition(|p| p.rank() >= 2)
}
