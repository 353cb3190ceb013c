// Row reductions over workgroup memory, shared by the kernels that give one workgroup of 256
// invocations to each row (softmax, cross-entropy, sample_categorical). Each invocation passes
// its partial value; every invocation gets the row's result. Contains barriers: call from
// uniform control flow.

var<workgroup> row_scratch: array<f32, 256>;

fn row_max(v: f32, lindex: u32) -> f32 {
    row_scratch[lindex] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lindex < s {
            row_scratch[lindex] = max(row_scratch[lindex], row_scratch[lindex + s]);
        }
        workgroupBarrier();
    }
    let r = row_scratch[0];
    // Nobody may overwrite the scratch before everyone has read the result.
    workgroupBarrier();
    return r;
}

fn row_sum(v: f32, lindex: u32) -> f32 {
    row_scratch[lindex] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lindex < s {
            row_scratch[lindex] = row_scratch[lindex] + row_scratch[lindex + s];
        }
        workgroupBarrier();
    }
    let r = row_scratch[0];
    workgroupBarrier();
    return r;
}

var<workgroup> row_counts: array<u32, 256>;

// The row's total of every invocation's count `v` (integers: exact in any order).
fn row_count(v: u32, lindex: u32) -> u32 {
    row_counts[lindex] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lindex < s {
            row_counts[lindex] = row_counts[lindex] + row_counts[lindex + s];
        }
        workgroupBarrier();
    }
    let r = row_counts[0];
    workgroupBarrier();
    return r;
}
