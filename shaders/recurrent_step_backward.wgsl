// recurrent_step_backward: one timestep of backprop through time for one layer direction, fused:
// dh = dy_t + (direct carry into this state) + dG_h[slot + 1]·W_hh (the recurrent term, from the
// previous dispatch of the sweep), then the cell's backward math, giving the pre-activation gate
// gradients for the input side (dG_x, by time, for W_ih, b_ih and dX) and the recurrent side
// (dG_h, by slot, for W_hh, b_hh and the next step), and the carries into the previous state.
// A padded step passes dh and dc through untouched and gets no gate gradient.
// An invocation owns BT batch rows of its hidden unit, so each W_hh element serves BT rows.
// Grid: x = ceil(H / WG), y = ceil(B / BT). Needs: common/recurrent.wgsl, common/cells.wgsl.

// CELL, WG, BT and Params: common/recurrent.wgsl.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // [T, B, dirs·H]
@group(0) @binding(2) var<storage, read> w_hh: array<f32>;        // [G·H, H]
@group(0) @binding(3) var<storage, read> gates: array<f32>;       // [T, B, S·H] by slot
@group(0) @binding(4) var<storage, read> state: array<f32>;       // [2, T + 1, B, H]
@group(0) @binding(5) var<storage, read> lengths: array<f32>;     // [B]
@group(0) @binding(6) var<storage, read_write> dg: array<f32>;    // [2, T, B, G·H]: dG_x by time, dG_h by slot
@group(0) @binding(7) var<storage, read_write> carry: array<f32>; // [2, T + 1, B, H]: dh, dc

@compute @workgroup_size(WG, KS)
fn recurrent_step_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let j = wid.x * WG + lid.x;
    if KS == 1u {
        if j < p.hidden {
            step_rows(j, wid.y * BT, p.t, p.slot, p.phase);
        }
        return;
    }
    // Each unit's dG_h·W_hh split over the KS lanes, as the forward splits W_hh·h.
    let b0 = wid.y * BT;
    let unit = min(j, p.hidden - 1u);
    let part = recurrent_term(unit, b0, p.slot, lid.y, KS);
    let lo = k_reduce(part[0], lid.x, lid.y);
    var hi = vec4<f32>();
    if p.batch - b0 > 4u {
        hi = k_reduce(part[1], lid.x, lid.y);
    }
    if lid.y == 0u && j < p.hidden {
        finish_rows(j, b0, p.t, p.slot, array<vec4<f32>, 2>(lo, hi));
    }
}

// The persistent path: the whole sequence in one workgroup, walking the state slots down
// (common/recurrent.wgsl). Grid: 1 × 1.
@compute @workgroup_size(WG)
fn recurrent_sequence_backward(@builtin(local_invocation_id) lid: vec3<u32>) {
    sweep_sequence(lid.x, true);
}

// The step for hidden unit j and batch rows b0 .. b0 + BT, at time t and state slot `slot`;
// the sweep of common/recurrent.wgsl calls it by this name.
fn step_rows(j: u32, b0: u32, t: u32, slot: u32, phase: u32) {
    if CELL == 4u && phase == 1u {
        cho_reset_rows(j, b0, t, slot);
        return;
    }
    finish_rows(j, b0, t, slot, recurrent_term(j, b0, slot, 0u, 1u));
}

// The recurrent term dG_h[slot + 1]·W_hh of unit j for rows b0 .. b0 + BT (rows 0-3, then 4-7,
// as two vec4s), over the gate rows q = q0, q0 + stride, ...: every invocation reads the same
// dG_h element (a broadcast), and each W_hh element it loads serves all BT rows. Zero at the last
// slot. Named vec4 sums, not an array indexed in the loop (see recurrent_partial, forward).
fn recurrent_term(j: u32, b0: u32, slot: u32, q0: u32, stride: u32) -> array<vec4<f32>, 2> {
    let h = p.hidden;
    let gh = cell_gates(CELL) * h;
    let rows = min(BT, p.batch - b0);
    let plane = p.steps * p.batch * gh;             // dG_h plane of dg
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    if slot + 1u < p.steps {
        // Row r's dG_h; rows past the batch read row 0 again (in bounds) and are never stored.
        let o0 = plane + ((slot + 1u) * p.batch + b0) * gh;
        let o1 = o0 + select(0u, 1u, 1u < rows) * gh;
        let o2 = o0 + select(0u, 2u, 2u < rows) * gh;
        let o3 = o0 + select(0u, 3u, 3u < rows) * gh;
        let o4 = o0 + select(0u, 4u, 4u < rows) * gh;
        let o5 = o0 + select(0u, 5u, 5u < rows) * gh;
        let o6 = o0 + select(0u, 6u, 6u < rows) * gh;
        let o7 = o0 + select(0u, 7u, 7u < rows) * gh;
        // Reset-before GRU's n rows reach h through r ⊙ h: their part comes as a carry instead.
        let rec_rows = select(gh, 2u * h, CELL == 4u);
        for (var q = q0; q < rec_rows; q += stride) {
            let w = vec4<f32>(w_hh[q * h + j]);
            lo = fma(vec4<f32>(dg[o0 + q], dg[o1 + q], dg[o2 + q], dg[o3 + q]), w, lo);
            hi = fma(vec4<f32>(dg[o4 + q], dg[o5 + q], dg[o6 + q], dg[o7 + q]), w, hi);
        }
    }
    return array<vec4<f32>, 2>(lo, hi);
}

// The cell's backward for unit j and rows b0 .. b0 + BT, given the recurrent term `rec` (rows
// 0-3, then 4-7).
fn finish_rows(j: u32, b0: u32, t: u32, slot: u32, rec: array<vec4<f32>, 2>) {
    let h = p.hidden;
    let g_count = cell_gates(CELL);
    let gh = g_count * h;
    let rows = min(BT, p.batch - b0);
    let plane = p.steps * p.batch * gh;             // dG_h plane of dg
    let c_plane = (p.steps + 1u) * p.batch * h;     // c plane of state and carry
    for (var r = 0u; r < rows; r += 1u) {
        let b = b0 + r;
        let prev = (slot * p.batch + b) * h;
        let next = ((slot + 1u) * p.batch + b) * h;
        let valid = f32(t) < lengths[b];
        var dh = carry[next + j] + rec[r / 4u][r % 4u];
        if valid {
            dh += dy[(t * p.batch + b) * p.y_stride + p.y_off + j];
        }
        let gx = (t * p.batch + b) * gh + j;
        let gr = plane + (slot * p.batch + b) * gh + j;
        let saved = ((slot * p.batch + b) * cell_saved(CELL)) * h + j;
        if !valid {
            for (var g = 0u; g < g_count; g += 1u) {
                dg[gx + g * h] = 0.0;
                dg[gr + g * h] = 0.0;
            }
            carry[prev + j] = dh;
            if CELL == 2u {
                carry[c_plane + prev + j] = carry[c_plane + next + j];
            }
            continue;
        }
        switch CELL {
            case 2u: {
                let ig = gates[saved];
                let fg = gates[saved + h];
                let gg = gates[saved + 2u * h];
                let og = gates[saved + 3u * h];
                let tc = tanh(clamp(state[c_plane + next + j], -15.0, 15.0));  // as tanh_stable forward
                let dc = carry[c_plane + next + j] + dh * og * (1.0 - tc * tc);
                let d_i = dc * gg * ig * (1.0 - ig);
                let d_f = dc * state[c_plane + prev + j] * fg * (1.0 - fg);
                let d_g = dc * ig * (1.0 - gg * gg);
                let d_o = dh * tc * og * (1.0 - og);
                dg[gx] = d_i;
                dg[gx + h] = d_f;
                dg[gx + 2u * h] = d_g;
                dg[gx + 3u * h] = d_o;
                dg[gr] = d_i;
                dg[gr + h] = d_f;
                dg[gr + 2u * h] = d_g;
                dg[gr + 3u * h] = d_o;
                carry[prev + j] = 0.0;
                carry[c_plane + prev + j] = dc * fg;
            }
            case 3u: {
                let rg = gates[saved];
                let z = gates[saved + h];
                let n = gates[saved + 2u * h];
                let hn = gates[saved + 3u * h];
                let h_prev = state[prev + j];
                let dn = dh * (1.0 - z) * (1.0 - n * n);
                let dz = dh * (h_prev - n) * z * (1.0 - z);
                let dr = dn * hn * rg * (1.0 - rg);
                dg[gx] = dr;
                dg[gx + h] = dz;
                dg[gx + 2u * h] = dn;
                dg[gr] = dr;
                dg[gr + h] = dz;
                // The recurrent n path is r ⊙ (W_hn h + b_hn): its gradient carries the factor r.
                dg[gr + 2u * h] = dn * rg;
                carry[prev + j] = dh * z;
            }
            case 4u: {
                // Phase 0 of reset-before: z and n; r waits for W_hnᵀ·dn in phase 1.
                let z = gates[saved + h];
                let n = gates[saved + 2u * h];
                let dn = dh * (1.0 - z) * (1.0 - n * n);
                let dz = dh * (state[prev + j] - n) * z * (1.0 - z);
                dg[gx + h] = dz;
                dg[gx + 2u * h] = dn;
                dg[gr + h] = dz;
                dg[gr + 2u * h] = dn;
                carry[prev + j] = dh * z;
            }
            default: {
                let hv = gates[saved];
                var d = dh * (1.0 - hv * hv);
                if CELL == 1u {
                    d = select(0.0, dh, hv > 0.0);
                }
                dg[gx] = d;
                dg[gr] = d;
                carry[prev + j] = 0.0;
            }
        }
    }
}

// Phase 1 of the reset-before GRU's backward: d(r ⊙ h) = W_hnᵀ·dn from every unit's phase-0 dn,
// then dr and the carry d(r ⊙ h) ⊙ r into the previous state.
fn cho_reset_rows(j: u32, b0: u32, t: u32, slot: u32) {
    let h = p.hidden;
    let gh = 3u * h;
    let rows = min(BT, p.batch - b0);
    let plane = p.steps * p.batch * gh;
    var drh: array<f32, 8>;
    for (var m = 0u; m < h; m += 1u) {
        let w = w_hh[(2u * h + m) * h + j];
        for (var r = 0u; r < BT; r += 1u) {
            let b = b0 + select(0u, r, r < rows);
            drh[r] = fma(dg[plane + (slot * p.batch + b) * gh + 2u * h + m], w, drh[r]);
        }
    }
    for (var r = 0u; r < rows; r += 1u) {
        let b = b0 + r;
        let prev = (slot * p.batch + b) * h;
        let saved = ((slot * p.batch + b) * 4u) * h + j;
        let rg = gates[saved];
        let dr = drh[r] * state[prev + j] * rg * (1.0 - rg);
        dg[(t * p.batch + b) * gh + j] = dr;
        dg[plane + (slot * p.batch + b) * gh + j] = dr;
        carry[prev + j] += drh[r] * rg;
    }
}
