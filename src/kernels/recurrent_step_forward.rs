//! `recurrent_step_forward`: params, bindings and geometry of one fused RNN/LSTM/GRU timestep of
//! one layer direction. The cell is an `override` (`CELL`), so each cell type is one pipeline.

use bytemuck::{Pod, Zeroable};

use super::cpu;
use super::{fold_grid, on, params, wgsl, Kernel, On};
use crate::error::Result;
use crate::gpu::encoder::Dispatch;
use crate::gpu::pipelines::{Access, KernelDesc};
use crate::gpu::pool::RawBuffer;
use crate::gpu::{lock, GpuInner};
use crate::tensor::dtype::unpack;
use crate::tensor::{host_read, host_write, DType, Tensor};

/// Gates per hidden unit and saved values per hidden unit of each cell code.
pub(crate) use crate::kernels::cpu::recurrent_step_forward::{cell_gates, cell_saved};

pub(crate) const SOURCE: &str = wgsl!(
    "recurrent_step_forward",
    "recurrent",
    "activations",
    "cells",
    "half"
);

/// `recurrent_sequence_forward` as the device layer sees it.
pub(crate) const SEQUENCE_KERNEL: KernelDesc = KernelDesc {
    name: "recurrent_sequence_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// `recurrent_step_forward` as the device layer sees it.
pub(crate) const KERNEL: KernelDesc = KernelDesc {
    name: "recurrent_step_forward",
    source: SOURCE,
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// Invocations per workgroup: hidden units per workgroup.
pub(crate) const WG: u32 = 64;

params! {
    /// Mirrors `struct Params` in shaders/common/recurrent.wgsl (both recurrent kernels).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
    pub struct Params {
        pub batch: u32,
        pub hidden: u32,
        /// T, the steps of the sequence.
        pub steps: u32,
        /// The time index this step reads and writes.
        pub t: u32,
        /// The state slot this step reads (it writes slot + 1).
        pub slot: u32,
        /// Row stride of the output: dirs·H.
        pub y_stride: u32,
        /// Column offset of this direction in the output: d·H.
        pub y_off: u32,
        /// 1 for the reverse direction (read where a launch walks the times itself: the persistent
        /// path, and `sequence_steps` on the host).
        pub reverse: u32,
        /// 0, or 1 for the second phase of a reset-before GRU step.
        pub phase: u32,
        pub _pad: [u32; 3],
    }
}
const _: () = assert!(std::mem::size_of::<Params>().is_multiple_of(16));

/// The tensors of one launch, in binding order.
pub(crate) struct Bindings<'a> {
    /// [T, B, G·H]: x·W_ihᵀ + b_ih for every step.
    pub xg: &'a Tensor,
    /// [H, G·H]: W_hhᵀ, contiguous; f32, or f16 for inference (widened as it is read).
    pub w_t: &'a Tensor,
    /// [G·H]
    pub b_hh: &'a Tensor,
    /// [B]: the valid steps of each sequence, read from element 0.
    pub lengths: &'a Tensor,
    /// [2, T + 1, B, H]: h (and c) before and after every step; slot 0 holds h0 (and c0).
    pub state: &'a Tensor,
    /// [T, B, saved·H]: what the backward needs of each step.
    pub gates: &'a Tensor,
    /// The layer's packed output: row stride `y_stride`, this direction at column `y_off`.
    pub y: &'a Tensor,
}

/// Batch rows per invocation (`BT` in the shaders).
pub(crate) const BT: u32 = 8;

/// The tuning key under which a device may hold the per-step forward's k-split (`KS`).
pub(crate) const K_SPLIT_KEY: (&str, u64) = ("recurrent_step_forward", 0);

/// The per-step kernels' k-slices per hidden unit on this device: 16 on a GPU (a unit's recurrent
/// sum, H products forward and G·H backward, split over 16 lanes, WG = 16: sixteen times the
/// invocations, a sixteenth of the serial chain, which is what a latency-bound step wants; on
/// the H200 an LSTM training step at T=64 B=32 H=256 took 8.2, 6.2 and 4.7 ms at KS = 4, 8,
/// 16 in one run), 1 on
/// a CPU-backed adapter (lavapipe runs invocations as loop iterations: the split would only add
/// barriers) and for the reset-before GRU (its two phases keep the whole-row sums). A device's
/// tuning entry under [`K_SPLIT_KEY`] overrides the choice (the tests force each value), and so does `TIMELOOM_RECURRENT_KSPLIT`
/// = 1, 2, 4, 8 or 16 (the bench compares them on one machine).
pub(crate) fn k_split(gpu: &GpuInner, cell: u32) -> u32 {
    if cell == 4 {
        return 1;
    }
    // Only the splits the kernels take (k_reduce halves KS, and WG·KS must be 256).
    let allowed = |k: &u32| [1, 2, 4, 8, 16].contains(k);
    if let Some(v) = lock(&gpu.tuning).get(&K_SPLIT_KEY) {
        return v
            .first()
            .map(|&(_, k)| k as u32)
            .filter(allowed)
            .unwrap_or(1);
    }
    static ASKED: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let asked = ASKED.get_or_init(|| {
        std::env::var("TIMELOOM_RECURRENT_KSPLIT")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(allowed)
    });
    if let Some(k) = *asked {
        return k;
    }
    match gpu.info.device_type {
        wgpu::DeviceType::Cpu => 1,
        _ => 16,
    }
}

/// Invocations per workgroup row for a k-split: WG · KS stays 64 unsplit, 256 split.
fn wg_for(k_split: u32) -> u32 {
    if k_split > 1 {
        256 / k_split
    } else {
        WG
    }
}

/// Grid of a step: ceil(H / wg) × ceil(B / BT).
fn workgroups(gpu: &GpuInner, p: &Params, wg: u32) -> Result<[u32; 3]> {
    let max = gpu.limits.max_compute_workgroups_per_dimension;
    let (x, y) = (p.hidden.div_ceil(wg), p.batch.div_ceil(BT));
    if x > max || y > max {
        // 65,535 × 64 hidden units or × 8 batch rows: far past any layer that fits in memory.
        return fold_grid("recurrent_step", u64::from(max) + 1, 1).map(|_| [x, y, 1]);
    }
    Ok([x, y, 1])
}

/// Whether one launch runs the whole sequence for a layer whose weights are `w`: on the host
/// always (the twin splits the batch rows over the pool once and each task walks every step
/// for its rows, where a launch per step would fork per step); on a GPU, where one workgroup
/// then runs it (`recurrent_sequence_forward`/`_backward`), when the state is small enough
/// that one workgroup of WG invocations, looping over hidden units and batch tiles, beats T
/// dispatches of its own: H ≤ 128 and B·H ≤ 1024.
pub(crate) fn persistent(w: &Tensor, batch: u32, hidden: u32) -> bool {
    match on(w) {
        On::Cpu => true,
        On::Gpu(_) => hidden <= 128 && u64::from(batch) * u64::from(hidden) <= 1024,
    }
}

/// Dispatches (phases) per step of `cell`: a reset-before GRU step is two, because r must be
/// whole before W_hn·(r ⊙ h).
pub(crate) fn phases(cell: u32) -> u32 {
    if cell == 4 {
        2
    } else {
        1
    }
}

/// The per-step `Params` one launch covers: `p` itself, or with `whole_sequence` every (step,
/// phase) of the sequence in the order the persistent shaders walk them (steps reversed for the
/// backward), as the host runs them.
pub(crate) fn sequence_steps(
    cell: u32,
    p: &Params,
    whole_sequence: bool,
    backward: bool,
) -> impl Iterator<Item = Params> {
    let p = *p;
    // One step: just `p`; else every slot, up or down, each in its phases. No allocation: the
    // host runs this once per launch, and the per-step path launches once per step.
    let slots = if whole_sequence { p.steps } else { 1 };
    (0..slots)
        .map(move |i| match (whole_sequence, backward) {
            (false, _) => p.slot,
            (true, false) => i,
            (true, true) => p.steps - 1 - i,
        })
        .flat_map(move |slot| {
            let phases = if whole_sequence {
                0..phases(cell)
            } else {
                p.phase..p.phase + 1
            };
            phases.map(move |phase| {
                if !whole_sequence {
                    return p;
                }
                Params {
                    t: if p.reverse == 1 {
                        p.steps - 1 - slot
                    } else {
                        slot
                    },
                    slot,
                    phase,
                    ..p
                }
            })
        })
}

/// Records one step with `kernels[0]`, or the whole sequence in one workgroup with `kernels[1]`
/// (grid 1 × 1): the forward's and the backward's GPU half. `half_w`: the forward reads an f16
/// W_hhᵀ (`W_HALF`; the override is left out otherwise, so f32 pipelines keep their keys).
pub(crate) fn record_step(
    gpu: &GpuInner,
    kernels: [Kernel; 2],
    cell: u32,
    p: &Params,
    whole_sequence: bool,
    half_w: bool,
    buffers: &[&RawBuffer; 7],
) -> Result<()> {
    // Both per-step kernels split their recurrent sums; the persistent sweeps do not.
    let ks = if whole_sequence {
        1
    } else {
        k_split(gpu, cell)
    };
    let wg = wg_for(ks);
    let (kernel, workgroups) = if whole_sequence {
        (kernels[1], [1, 1, 1])
    } else {
        (kernels[0], workgroups(gpu, p, wg)?)
    };
    let mut overrides = vec![("CELL", f64::from(cell)), ("WG", f64::from(wg))];
    if ks > 1 {
        overrides.push(("KS", f64::from(ks)));
    }
    if half_w {
        overrides.push(("W_HALF", 1.0));
    }
    gpu.record(&Dispatch {
        kernel: kernel.desc(),
        overrides: &overrides,
        params: bytemuck::bytes_of(p),
        buffers,
        workgroups,
    })
}

/// One step of `cell` for `p` where `b.state` lives, or with `whole_sequence` every step (`p.t`,
/// `p.slot` and `p.phase` then unused): on a GPU one workgroup loops over them
/// (`recurrent_sequence_forward`, grid 1 × 1), on the host the twin walks them.
pub(crate) fn launch(cell: u32, p: &Params, whole_sequence: bool, b: &Bindings<'_>) -> Result<()> {
    match on(b.state) {
        On::Gpu(gpu) => {
            let buffers = [
                b.xg.gpu_raw(),
                b.w_t.gpu_raw(),
                b.b_hh.gpu_raw(),
                b.lengths.gpu_raw(),
                b.state.gpu_raw(),
                b.gates.gpu_raw(),
                b.y.gpu_raw(),
            ];
            let kernels = [
                Kernel::RecurrentStepForward,
                Kernel::RecurrentSequenceForward,
            ];
            let half_w = b.w_t.dtype() == DType::F16;
            record_step(gpu, kernels, cell, p, whole_sequence, half_w, &buffers)
        }
        On::Cpu => {
            let (xg, w_t) = (host_read(b.xg), host_read(b.w_t));
            // An f16 W_hhᵀ widened once per launch (on the host a launch is the whole sequence
            // unless the layer forces the per-step path).
            let widened;
            let w_t: &[f32] = if b.w_t.dtype() == DType::F16 {
                widened = unpack(&w_t, b.w_t.offset, b.w_t.numel());
                &widened
            } else {
                &w_t[b.w_t.offset..]
            };
            let (b_hh, lengths) = (host_read(b.b_hh), host_read(b.lengths));
            let mut state = host_write(b.state);
            let mut gates = host_write(b.gates);
            let mut y = host_write(b.y);
            let inputs = cpu::recurrent_step_forward::Inputs {
                xg: &xg,
                w_t,
                b_hh: &b_hh[b.b_hh.offset..],
                lengths: &lengths[b.lengths.offset..],
            };
            cpu::recurrent_step_forward::recurrent_step_forward(
                cell,
                p,
                whole_sequence,
                inputs,
                &mut state,
                &mut gates,
                &mut y,
            );
            Ok(())
        }
    }
}
