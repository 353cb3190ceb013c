// recurrent_step_forward: one timestep of one layer direction, fused: each invocation owns one
// hidden unit j of one batch row b for all gates, computes its slice of W_hh·h_prev, adds the
// precomputed input projection (x·W_ihᵀ + b_ih, one GEMM for all steps) and b_hh, applies the
// gate nonlinearities and writes h_t (and c_t), the layer output and what backward needs.
// A step at or past a sequence's length keeps the state and outputs 0 (packed-sequence rules).
// State slots: slot s holds the state before the s-th step of this direction (slot 0 = h0); the
// step at slot s reads time `t` (t = s forward, T − 1 − s reverse).
// An invocation owns BT batch rows of its hidden unit, so each W_hh element it loads serves BT
// rows (weights are the traffic that matters; h_prev reads are broadcasts).
// Grid: x = ceil(H / WG), y = ceil(B / BT). Saves: gates[slot] (see cell_saved), state[slot + 1].
// W_hhᵀ may be f16 (W_HALF, for f16 inference: its elements widened as they are loaded, sums
// f32); its binding holds u32 words either way, f32 ones bitcast.
// Needs: common/recurrent.wgsl, common/activations.wgsl, common/cells.wgsl, common/half.wgsl.

// CELL, WG, BT and Params: common/recurrent.wgsl.
override W_HALF: bool = false;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xg: array<f32>;          // [T, B, G·H]: x·W_ihᵀ + b_ih
@group(0) @binding(2) var<storage, read> w_t: array<u32>;         // [H, G·H]: W_hhᵀ, f32 or f16
@group(0) @binding(3) var<storage, read> b_hh: array<f32>;        // [G·H]
@group(0) @binding(4) var<storage, read> lengths: array<f32>;     // [B]
@group(0) @binding(5) var<storage, read_write> state: array<f32>; // [2, T + 1, B, H]: h, then c
@group(0) @binding(6) var<storage, read_write> gates: array<f32>; // [T, B, S·H] by slot
@group(0) @binding(7) var<storage, read_write> y: array<f32>;     // [T, B, dirs·H]

@compute @workgroup_size(WG, KS)
fn recurrent_step_forward(
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
    step_rows_split(j, wid.y * BT, lid.x, lid.y);
}

// The persistent path: the whole sequence in one workgroup, walking the state slots up
// (common/recurrent.wgsl). Grid: 1 × 1.
@compute @workgroup_size(WG)
fn recurrent_sequence_forward(@builtin(local_invocation_id) lid: vec3<u32>) {
    sweep_sequence(lid.x, false);
}

// The step for hidden unit j and batch rows b0 .. b0 + BT, at time t and state slot `slot`;
// the sweep of common/recurrent.wgsl calls it by this name.
fn step_rows(j: u32, b0: u32, t: u32, slot: u32, phase: u32) {
    if CELL == 4u && phase == 1u {
        cho_candidate_rows(j, b0, t, slot);
        return;
    }
    finish_rows(j, b0, t, slot, recurrent_partial(j, b0, slot, 0u, 1u, true));
}

// Recurrent pre-activations W_hh·h_prev of unit j for rows b0 .. b0 + BT, one vec4 per row over
// the gates (i, f, g, o; unused lanes 0), summed over k = k0, k0 + stride, ... < H, starting from
// b_hh (`with_bias`) or from 0. Reset-before GRU's first phase does r and z only; its candidate
// waits for r ⊙ h. The sums live in eight named vec4s, never in an array indexed in the loop: a
// driver that does not unroll naga's loops (NVIDIA's) would keep such an array in local memory,
// a load and a store around every multiply-add.
fn recurrent_partial(j: u32, b0: u32, slot: u32, k0: u32, stride: u32, with_bias: bool) -> array<vec4<f32>, 8> {
    let h = p.hidden;
    let gh = cell_gates(CELL) * h;
    let acc_gates = select(cell_gates(CELL), 2u, CELL == 4u);
    let rows = min(BT, p.batch - b0);
    var bias = vec4<f32>();
    if with_bias {
        bias = gate_vec_b(j, h, acc_gates);
    }
    // Row r's h_prev; rows past the batch read row 0 again (in bounds) and are never stored.
    let o0 = (slot * p.batch + b0) * h;
    let o1 = o0 + select(0u, 1u, 1u < rows) * h;
    let o2 = o0 + select(0u, 2u, 2u < rows) * h;
    let o3 = o0 + select(0u, 3u, 3u < rows) * h;
    let o4 = o0 + select(0u, 4u, 4u < rows) * h;
    let o5 = o0 + select(0u, 5u, 5u < rows) * h;
    let o6 = o0 + select(0u, 6u, 6u < rows) * h;
    let o7 = o0 + select(0u, 7u, 7u < rows) * h;
    var a0 = bias; var a1 = bias; var a2 = bias; var a3 = bias;
    var a4 = bias; var a5 = bias; var a6 = bias; var a7 = bias;
    for (var k = k0; k < h; k += stride) {
        let w = gate_vec_w(k * gh + j, h, acc_gates);
        a0 = fma(vec4<f32>(state[o0 + k]), w, a0);
        a1 = fma(vec4<f32>(state[o1 + k]), w, a1);
        a2 = fma(vec4<f32>(state[o2 + k]), w, a2);
        a3 = fma(vec4<f32>(state[o3 + k]), w, a3);
        a4 = fma(vec4<f32>(state[o4 + k]), w, a4);
        a5 = fma(vec4<f32>(state[o5 + k]), w, a5);
        a6 = fma(vec4<f32>(state[o6 + k]), w, a6);
        a7 = fma(vec4<f32>(state[o7 + k]), w, a7);
    }
    return array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
}

// The per-step path with each unit's sum split across the workgroup's KS rows of invocations (a
// GPU hides memory latency with many short sums, not WG long ones): lane `ks` sums k = ks,
// ks + KS, ...; the partials meet in k_reduce (common/recurrent.wgsl) and lane 0 finishes the
// cell. Lanes past H sum a copy of the last unit and store nothing. Contains barriers: call
// from uniform control flow.
fn step_rows_split(j: u32, b0: u32, lane: u32, ks: u32) {
    let h = p.hidden;
    let unit = min(j, h - 1u);
    let rows = min(BT, p.batch - b0);
    let part = recurrent_partial(unit, b0, p.slot, ks, KS, false);
    let bias = gate_vec_b(unit, h, cell_gates(CELL));
    var acc: array<vec4<f32>, 8>;
    for (var r = 0u; r < rows; r += 1u) {
        acc[r] = bias + k_reduce(part[r], lane, ks);
    }
    if ks == 0u && j < h {
        finish_rows(j, b0, p.t, p.slot, acc);
    }
}

// Gates 0 .. n of unit j from a [G·H]-strided row starting at `at` (gate g at at + g·h), as a
// vec4 with 0 past n. One function per buffer: WGSL passes no pointers to storage.
fn gate_vec_w(at: u32, h: u32, n: u32) -> vec4<f32> {
    var v = vec4<f32>(weight(at), 0.0, 0.0, 0.0);
    if n > 1u {
        v.y = weight(at + h);
    }
    if n > 2u {
        v.z = weight(at + 2u * h);
    }
    if n > 3u {
        v.w = weight(at + 3u * h);
    }
    return v;
}

// Element i of W_hhᵀ as f32.
fn weight(i: u32) -> f32 {
    if W_HALF {
        return half_at(w_t[i >> 1u], i);
    }
    return bitcast<f32>(w_t[i]);
}

fn gate_vec_b(at: u32, h: u32, n: u32) -> vec4<f32> {
    var v = vec4<f32>(b_hh[at], 0.0, 0.0, 0.0);
    if n > 1u {
        v.y = b_hh[at + h];
    }
    if n > 2u {
        v.z = b_hh[at + 2u * h];
    }
    if n > 3u {
        v.w = b_hh[at + 3u * h];
    }
    return v;
}

// The cell of unit j for rows b0 .. b0 + BT from its pre-activations `acc` [row] (a vec4 over
// the gates): the gate nonlinearities, h_t (and c_t), the layer output and what backward needs.
fn finish_rows(j: u32, b0: u32, t: u32, slot: u32, acc: array<vec4<f32>, 8>) {
    let h = p.hidden;
    let g_count = cell_gates(CELL);
    let gh = g_count * h;
    let rows = min(BT, p.batch - b0);
    let c_plane = (p.steps + 1u) * p.batch * h;
    for (var r = 0u; r < rows; r += 1u) {
        let b = b0 + r;
        let prev = (slot * p.batch + b) * h;
        let next = ((slot + 1u) * p.batch + b) * h;
        let xb = (t * p.batch + b) * gh + j;
        let valid = f32(t) < lengths[b];
        let h_prev = state[prev + j];
        let saved = ((slot * p.batch + b) * cell_saved(CELL)) * h + j;
        let a = acc[r];
        var h_new = h_prev;
        var store = true;
        switch CELL {
            case 2u: {
                let ig = sigmoid_stable(xg[xb] + a.x);
                let fg = sigmoid_stable(xg[xb + h] + a.y);
                let gg = tanh_stable(xg[xb + 2u * h] + a.z);
                let og = sigmoid_stable(xg[xb + 3u * h] + a.w);
                let c_prev = state[c_plane + prev + j];
                var c_new = c_prev;
                if valid {
                    c_new = fg * c_prev + ig * gg;
                    h_new = og * tanh_stable(c_new);
                }
                state[c_plane + next + j] = c_new;
                gates[saved] = ig;
                gates[saved + h] = fg;
                gates[saved + 2u * h] = gg;
                gates[saved + 3u * h] = og;
            }
            case 3u: {
                let rg = sigmoid_stable(xg[xb] + a.x);
                let z = sigmoid_stable(xg[xb + h] + a.y);
                // reset-after: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
                let n = tanh_stable(xg[xb + 2u * h] + rg * a.z);
                if valid {
                    h_new = (1.0 - z) * n + z * h_prev;
                }
                gates[saved] = rg;
                gates[saved + h] = z;
                gates[saved + 2u * h] = n;
                gates[saved + 3u * h] = a.z;
            }
            case 4u: {
                // Phase 0 of reset-before: r, z and r ⊙ h_prev for the candidate phase.
                let rg = sigmoid_stable(xg[xb] + a.x);
                gates[saved] = rg;
                gates[saved + h] = sigmoid_stable(xg[xb + h] + a.y);
                gates[saved + 3u * h] = rg * h_prev;
                store = false;
            }
            default: {
                let pre = xg[xb] + a.x;
                if valid {
                    h_new = select(tanh_stable(pre), max(pre, 0.0), CELL == 1u);
                }
                gates[saved] = h_new;
            }
        }
        if store {
            state[next + j] = h_new;
            y[(t * p.batch + b) * p.y_stride + p.y_off + j] = select(0.0, h_new, valid);
        }
    }
}

// Phase 1 of the reset-before GRU: n = tanh(W_in x + b_in + W_hn·(r ⊙ h) + b_hn) from the r ⊙ h
// every unit wrote in phase 0, then h' = (1 − z)·n + z·h.
fn cho_candidate_rows(j: u32, b0: u32, t: u32, slot: u32) {
    let h = p.hidden;
    let gh = 3u * h;
    let rows = min(BT, p.batch - b0);
    var acc: array<f32, 8>;
    let bias = b_hh[2u * h + j];
    for (var r = 0u; r < BT; r += 1u) {
        acc[r] = bias;
    }
    for (var k = 0u; k < h; k += 1u) {
        let w = weight(k * gh + 2u * h + j);
        for (var r = 0u; r < BT; r += 1u) {
            let b = b0 + select(0u, r, r < rows);
            acc[r] = fma(gates[((slot * p.batch + b) * 4u + 3u) * h + k], w, acc[r]);
        }
    }
    for (var r = 0u; r < rows; r += 1u) {
        let b = b0 + r;
        let prev = (slot * p.batch + b) * h;
        let next = ((slot + 1u) * p.batch + b) * h;
        let saved = ((slot * p.batch + b) * 4u) * h + j;
        let valid = f32(t) < lengths[b];
        let h_prev = state[prev + j];
        let z = gates[saved + h];
        let n = tanh_stable(xg[(t * p.batch + b) * gh + 2u * h + j] + acc[r]);
        gates[saved + 2u * h] = n;
        var h_new = h_prev;
        if valid {
            h_new = (1.0 - z) * n + z * h_prev;
        }
        state[next + j] = h_new;
        y[(t * p.batch + b) * p.y_stride + p.y_off + j] = select(0.0, h_new, valid);
    }
}
