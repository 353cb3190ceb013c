// recurrent_step_forward: one timestep of one layer direction, fused: each invocation owns one
// hidden unit j of one batch row b for all gates, computes its slice of W_hh·h_prev, adds the
// precomputed input projection (x·W_ihᵀ + b_ih, one GEMM for all steps) and b_hh, applies the
// gate nonlinearities and writes h_t (and c_t), the layer output and what backward needs.
// A step at or past a sequence's length keeps the state and outputs 0 (packed-sequence rules).
// State slots: slot s holds the state before the s-th step of this direction (slot 0 = h0); the
// step at slot s reads time `t` (t = s forward, T − 1 − s reverse).
// Grid: x = ceil(H / WG), y = B. Saves: gates[slot] (see cell_saved), state[slot + 1].
// Needs: common/activations.wgsl, common/cells.wgsl.

override CELL: u32 = 2u;
override WG: u32 = 64u;

struct Params {
    batch: u32, hidden: u32, steps: u32, t: u32,
    slot: u32, y_stride: u32, y_off: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xg: array<f32>;          // [T, B, G·H]: x·W_ihᵀ + b_ih
@group(0) @binding(2) var<storage, read> w_t: array<f32>;         // [H, G·H]: W_hhᵀ
@group(0) @binding(3) var<storage, read> b_hh: array<f32>;        // [G·H]
@group(0) @binding(4) var<storage, read> lengths: array<f32>;     // [B]
@group(0) @binding(5) var<storage, read_write> state: array<f32>; // [2, T + 1, B, H]: h, then c
@group(0) @binding(6) var<storage, read_write> gates: array<f32>; // [T, B, S·H] by slot
@group(0) @binding(7) var<storage, read_write> y: array<f32>;     // [T, B, dirs·H]

@compute @workgroup_size(WG)
fn recurrent_step_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let h = p.hidden;
    let j = wid.x * WG + lid.x;
    let b = wid.y;
    if j >= h || b >= p.batch {
        return;
    }
    let g_count = cell_gates(CELL);
    let gh = g_count * h;
    let prev = (p.slot * p.batch + b) * h;          // state slot s, row b
    let next = ((p.slot + 1u) * p.batch + b) * h;   // state slot s + 1
    let c_plane = (p.steps + 1u) * p.batch * h;
    // Recurrent pre-activations W_hh·h_prev + b_hh, one per gate. Every invocation of the
    // workgroup reads the same h_prev element (a broadcast); W_hhᵀ rows are read along j.
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var g = 0u; g < g_count; g += 1u) {
        acc[g] = b_hh[g * h + j];
    }
    for (var k = 0u; k < h; k += 1u) {
        let hk = state[prev + k];
        let row = k * gh + j;
        for (var g = 0u; g < g_count; g += 1u) {
            acc[g] = fma(hk, w_t[row + g * h], acc[g]);
        }
    }
    let xb = (p.t * p.batch + b) * gh + j;
    let valid = f32(p.t) < lengths[b];
    let h_prev = state[prev + j];
    let saved = ((p.slot * p.batch + b) * cell_saved(CELL)) * h + j;
    var h_new = h_prev;
    switch CELL {
        case 2u: {
            let ig = sigmoid_stable(xg[xb] + acc[0]);
            let fg = sigmoid_stable(xg[xb + h] + acc[1]);
            let gg = tanh_stable(xg[xb + 2u * h] + acc[2]);
            let og = sigmoid_stable(xg[xb + 3u * h] + acc[3]);
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
            let r = sigmoid_stable(xg[xb] + acc[0]);
            let z = sigmoid_stable(xg[xb + h] + acc[1]);
            // reset-after: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
            let n = tanh_stable(xg[xb + 2u * h] + r * acc[2]);
            if valid {
                h_new = (1.0 - z) * n + z * h_prev;
            }
            gates[saved] = r;
            gates[saved + h] = z;
            gates[saved + 2u * h] = n;
            gates[saved + 3u * h] = acc[2];
        }
        default: {
            let pre = xg[xb] + acc[0];
            if valid {
                h_new = select(tanh_stable(pre), max(pre, 0.0), CELL == 1u);
            }
            gates[saved] = h_new;
        }
    }
    state[next + j] = h_new;
    y[(p.t * p.batch + b) * p.y_stride + p.y_off + j] = select(0.0, h_new, valid);
}
