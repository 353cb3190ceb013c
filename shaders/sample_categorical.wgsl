// sample_categorical: one draw per row of logits x [R, V] from softmax(x · inv_temp), restricted to
// the logits ≥ the top_k-th largest when 0 < top_k < V (ties at the boundary kept), by inverse CDF
// with u = uniform_at(seed ^ hash(counter), row): each (seed, counter, row) its own draw. greedy = 1
// takes the argmax instead (the lowest index among equal maxima). Writes the index as f32 to
// out[out_off + row]. One workgroup of 256 per row: the maximum and the top-k threshold (a
// bisection on the logits' ordered bits, counting) in parallel, which are exact whatever the
// order; the weights' sum and the CDF walk by invocation 0 in index order, as the CPU twin sums,
// so both draw the same index from the same weights.
// Grid: R workgroups, folded. Needs: common/grid.wgsl, common/rows.wgsl, common/hash.wgsl.

struct Params {
    rows: u32, cols: u32, top_k: u32, greedy: u32,
    inv_temp: f32, seed_lo: u32, seed_hi: u32, counter: u32,
    x_off: u32, out_off: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, V]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [R]: the drawn indices

// f32 bits mapped to u32 so that unsigned order is the floats' order (-inf < ... < -0 < +0 < ...).
fn ordered_bits(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

@compute @workgroup_size(256)
fn sample_categorical(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let row = linear_workgroup(wid, nwg);
    if row >= p.rows {
        return;
    }
    let xb = p.x_off + row * p.cols;
    var local_max = -3.40282347e38;
    for (var c = lindex; c < p.cols; c += 256u) {
        local_max = max(local_max, x[xb + c]);
    }
    let m = row_max(local_max, lindex);
    // The top_k-th largest key: the largest t with at least top_k keys ≥ t, bit by bit.
    var threshold = 0u;
    if p.top_k > 0u && p.top_k < p.cols {
        for (var bit = 31i; bit >= 0i; bit -= 1i) {
            let candidate = threshold | (1u << u32(bit));
            var n = 0u;
            for (var c = lindex; c < p.cols; c += 256u) {
                n += u32(ordered_bits(x[xb + c]) >= candidate);
            }
            if row_count(n, lindex) >= p.top_k {
                threshold = candidate;
            }
        }
    }
    if lindex != 0u {
        return;
    }
    var pick = p.cols - 1u;
    if p.greedy == 1u {
        for (var c = 0u; c < p.cols; c += 1u) {
            if x[xb + c] == m {
                pick = c;
                break;
            }
        }
    } else {
        var total = 0.0;
        for (var c = 0u; c < p.cols; c += 1u) {
            let v = x[xb + c];
            if ordered_bits(v) >= threshold {
                total += exp((v - m) * p.inv_temp);
            }
        }
        let goal = uniform_at(p.seed_lo ^ pcg_hash(p.counter), p.seed_hi, row) * total;
        var acc = 0.0;
        for (var c = 0u; c < p.cols; c += 1u) {
            let v = x[xb + c];
            if ordered_bits(v) >= threshold {
                acc += exp((v - m) * p.inv_temp);
                pick = c;
                if goal < acc {
                    break;
                }
            }
        }
    }
    out[p.out_off + row] = f32(pick);
}
