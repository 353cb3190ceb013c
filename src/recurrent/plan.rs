//! SequencePlan: what the forward and the backward of one recurrent layer call share, worked
//! out once: the sizes, the layout of the packed result, whether one dispatch runs the whole
//! sequence, the order of the launches and the `Params` of each.

use super::{CellKind, DirectionWeights};
use crate::error::{shape_str, Error, Result};
use crate::ops::recurrent::{cell_gates, cell_saved, persistent, phases, StepParams};
use crate::ops::u32_of;

/// One layer (all its directions) over one sequence batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SequencePlan {
    pub cell: CellKind,
    /// T
    pub steps: usize,
    /// B
    pub batch: usize,
    /// I
    pub input: usize,
    /// H
    pub hidden: usize,
    /// 1, or 2 for a bidirectional layer.
    pub dirs: usize,
    /// One launch walks the whole sequence (the persistent path) instead of one per step.
    pub whole_sequence: bool,
}

impl SequencePlan {
    /// The plan for x [T, B, I] through `dirs`; `persistent` forces or forbids the one-launch
    /// path (by default it is taken on the host, and on a GPU when the state is small: see
    /// `persistent`).
    pub fn new(
        cell: CellKind,
        x_shape: &[usize],
        dirs: &[DirectionWeights],
        persistent_override: Option<bool>,
    ) -> Result<SequencePlan> {
        let [steps, batch, input] = *x_shape else {
            return Err(Error::ShapeMismatch {
                op: "recurrent",
                arg: "input",
                expected: "[T, B, I]".into(),
                got: shape_str(x_shape),
            });
        };
        let hidden = dirs[0].w_hh.shape()[1];
        let whole_sequence = persistent_override
            .unwrap_or_else(|| persistent(&dirs[0].w_hh, u32_of(batch), u32_of(hidden)));
        Ok(SequencePlan {
            cell,
            steps,
            batch,
            input,
            hidden,
            dirs: dirs.len(),
            whole_sequence,
        })
    }

    /// The cell's code in the kernels.
    pub fn code(&self) -> u32 {
        self.cell.code()
    }

    /// G, the gates per hidden unit.
    pub fn gates(&self) -> usize {
        cell_gates(self.code())
    }

    /// Values per hidden unit each step saves for the backward.
    pub fn saved_per_unit(&self) -> usize {
        cell_saved(self.code())
    }

    /// Whether the cell carries c as well as h.
    pub fn lstm(&self) -> bool {
        self.cell == CellKind::Lstm
    }

    /// B·H: one state slot of one direction.
    pub fn slot_len(&self) -> usize {
        self.batch * self.hidden
    }

    /// (T + 1)·B·H: the h (or the c) plane of a direction's state buffer.
    pub fn plane(&self) -> usize {
        (self.steps + 1) * self.slot_len()
    }

    /// T·B·dirs·H: the outputs at the front of the packed result.
    pub fn y_len(&self) -> usize {
        self.steps * self.batch * self.dirs * self.hidden
    }

    /// dirs·B·H: h_n (and c_n) after the outputs.
    pub fn s_len(&self) -> usize {
        self.dirs * self.slot_len()
    }

    /// The packed result [y ‖ h_n ‖ c_n]: one tensor, so the layer is one node on the tape.
    pub fn packed_len(&self) -> usize {
        self.y_len() + self.s_len() * if self.lstm() { 2 } else { 1 }
    }

    /// The `Params` of direction `d` at step slot `s`, phase `phase`.
    pub fn params(&self, d: usize, s: usize, phase: u32) -> StepParams {
        let reverse = d == 1;
        StepParams {
            batch: u32_of(self.batch),
            hidden: u32_of(self.hidden),
            steps: u32_of(self.steps),
            t: u32_of(if reverse { self.steps - 1 - s } else { s }),
            slot: u32_of(s),
            y_stride: u32_of(self.dirs * self.hidden),
            y_off: u32_of(d * self.hidden),
            reverse: u32::from(reverse),
            phase,
            _pad: [0; 3],
        }
    }

    /// The launches of direction `d`, in order: one for the whole sequence, or one per step and
    /// phase (slots up for the forward, down for the backward).
    pub fn launches(&self, d: usize, backward: bool) -> Vec<StepParams> {
        if self.whole_sequence {
            return vec![self.params(d, 0, 0)];
        }
        let slots: Vec<usize> = if backward {
            (0..self.steps).rev().collect()
        } else {
            (0..self.steps).collect()
        };
        let phases = phases(self.code());
        slots
            .into_iter()
            .flat_map(|s| (0..phases).map(move |ph| (s, ph)))
            .map(|(s, ph)| self.params(d, s, ph))
            .collect()
    }
}
