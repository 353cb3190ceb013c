// The log-sum-exp of a row of logits, shared by the kernels that give one workgroup of 256
// invocations to each row and normalise by it (softmax_forward, cross_entropy_forward).
// It reads its kernel's `x: array<f32>` binding (WGSL has no buffer parameters) and needs
// common/rows.wgsl. Contains barriers: call from uniform control flow.

// log Σ_c exp x_c = max_x + log(sum_exp), in its two parts: softmax divides by sum_exp.
struct RowLogSumExp {
    max_x: f32,    // the row's maximum (−inf for an empty row)
    sum_exp: f32,  // Σ_c exp(x_c − max_x): max-subtracted, so logits of ±1e4 stay finite
}

// The log-sum-exp of x[xb .. xb + cols]; every invocation of the workgroup gets it.
fn row_logsumexp(xb: u32, cols: u32, lindex: u32) -> RowLogSumExp {
    var m = bitcast<f32>(0xff800000u);  // −inf
    for (var c = lindex; c < cols; c += 256u) {
        m = max(m, x[xb + c]);
    }
    m = row_max(m, lindex);
    var s = 0.0;
    for (var c = lindex; c < cols; c += 256u) {
        s += exp(x[xb + c] - m);
    }
    s = row_sum(s, lindex);
    return RowLogSumExp(m, s);
}
