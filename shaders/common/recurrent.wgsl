// What recurrent_step_forward and recurrent_step_backward share: their overrides, their Params
// (mirrored by `kernels::recurrent_step_forward::Params`) and the whole-sequence sweep of the
// persistent path.
// Unlike the other snippets this one holds `override`s (module-scope like consts, set per
// pipeline: both kernels must agree on CELL and WG, so they are declared once, as
// common/conv2d.wgsl declares CONV_TM) and its sweep calls back into the kernel: it reads the
// kernel's `var<uniform> p: Params` and calls the kernel's
//   fn step_rows(j: u32, b0: u32, t: u32, slot: u32, phase: u32)
// (hidden unit j, batch rows b0 .. b0 + BT, time t, state slot `slot`, GRU phase). WGSL has no
// function values, so this is the one way to write the loop once.

// The cell: 0 RNN tanh, 1 RNN ReLU, 2 LSTM, 3 GRU reset-after, 4 GRU reset-before
// (common/cells.wgsl).
override CELL: u32 = 2u;
override WG: u32 = 64u;
// The per-step kernels' k-slices per hidden unit (a workgroup of WG × KS: each unit's recurrent
// sum, W_hh·h_prev forward and dG_h·W_hh backward, split over KS lanes); 1 sums whole rows per
// invocation.
override KS: u32 = 1u;
// Batch rows per invocation: each W_hh element an invocation loads serves BT rows.
const BT: u32 = 8u;

// The k-split's meeting point: invocation (lane, ks) of a WG × KS workgroup passes its partial
// `v` (four sums: a row's gates forward, four rows backward); lane ks = 0 gets the sums over the
// KS partials, added in a fixed tree order (the others get partial sums). Contains barriers:
// call from uniform control flow.
var<workgroup> k_partial: array<vec4<f32>, 256>;  // [KS][WG], WG·KS ≤ 256

fn k_reduce(v: vec4<f32>, lane: u32, ks: u32) -> vec4<f32> {
    k_partial[ks * WG + lane] = v;
    workgroupBarrier();
    for (var s = KS / 2u; s > 0u; s >>= 1u) {
        if ks < s {
            k_partial[ks * WG + lane] += k_partial[(ks + s) * WG + lane];
        }
        workgroupBarrier();
    }
    let r = k_partial[lane];
    workgroupBarrier();
    return r;
}

struct Params {
    batch: u32, hidden: u32, steps: u32, t: u32,
    slot: u32, y_stride: u32, y_off: u32, reverse: u32,
    phase: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

// The persistent path: the whole sequence in one workgroup, looping over the steps in the
// shader, with a storage barrier between steps (the next step reads what every invocation
// wrote). Only for layers whose state one workgroup can hold; there is no barrier across
// workgroups in WGSL. Grid: 1 × 1. `lane` is the local invocation index; the forward walks
// the state slots up (`descending` false), the backward walks them down. Contains barriers:
// call from uniform control flow.
fn sweep_sequence(lane: u32, descending: bool) {
    for (var i = 0u; i < p.steps; i += 1u) {
        let slot = select(i, p.steps - 1u - i, descending);
        // A reverse direction reads time down.
        let t = select(slot, p.steps - 1u - slot, p.reverse == 1u);
        for (var j = lane; j < p.hidden; j += WG) {
            for (var b0 = 0u; b0 < p.batch; b0 += BT) {
                step_rows(j, b0, t, slot, 0u);
            }
        }
        storageBarrier();
        if CELL == 4u {
            // Reset-before GRU: the second phase needs the first's results for every unit.
            for (var j = lane; j < p.hidden; j += WG) {
                for (var b0 = 0u; b0 < p.batch; b0 += BT) {
                    step_rows(j, b0, t, slot, 1u);
                }
            }
            storageBarrier();
        }
    }
}
