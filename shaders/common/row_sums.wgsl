// RowSums: up to 16 rows of four sums each, the per-invocation accumulator of the kernels that
// keep a block of R rows × 4 columns (the convolutions' CONV_TM rows, the direct matmul's
// DIRECT_ROWS rows), with the multiply-add that fills it and the read that picks a row.
// Named members, never an array indexed in a loop: a driver that does not unroll naga's loops
// (NVIDIA's) keeps such an array in local memory, a load and a store around every
// multiply-add, and the H200 ran these kernels 4-10× slower for it.
// The kernel defines
//   fn row_operand(at: u32) -> f32
// reading its row operand (a weight, dY, or an element of A).

struct RowSums {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
    r8: vec4<f32>, r9: vec4<f32>, r10: vec4<f32>, r11: vec4<f32>,
    r12: vec4<f32>, r13: vec4<f32>, r14: vec4<f32>, r15: vec4<f32>,
}

// r_i += row_operand(base + i·stride) · cols for i < min(cap, live). Pass the kernel's row count
// (an override) as `cap`, so the compiler drops the rows past it; `live` (the rows inside the
// output) should be uniform over the workgroup, so the early returns cost no divergence.
fn row_sums_fma(acc: ptr<function, RowSums>, cap: u32, live: u32, base: u32, stride: u32, cols: vec4<f32>) {
    let n = min(cap, live);
    (*acc).r0 = fma(vec4<f32>(row_operand(base)), cols, (*acc).r0);
    if n < 2u { return; }
    (*acc).r1 = fma(vec4<f32>(row_operand(base + stride)), cols, (*acc).r1);
    if n < 3u { return; }
    (*acc).r2 = fma(vec4<f32>(row_operand(base + 2u * stride)), cols, (*acc).r2);
    if n < 4u { return; }
    (*acc).r3 = fma(vec4<f32>(row_operand(base + 3u * stride)), cols, (*acc).r3);
    if n < 5u { return; }
    (*acc).r4 = fma(vec4<f32>(row_operand(base + 4u * stride)), cols, (*acc).r4);
    if n < 6u { return; }
    (*acc).r5 = fma(vec4<f32>(row_operand(base + 5u * stride)), cols, (*acc).r5);
    if n < 7u { return; }
    (*acc).r6 = fma(vec4<f32>(row_operand(base + 6u * stride)), cols, (*acc).r6);
    if n < 8u { return; }
    (*acc).r7 = fma(vec4<f32>(row_operand(base + 7u * stride)), cols, (*acc).r7);
    if n < 9u { return; }
    (*acc).r8 = fma(vec4<f32>(row_operand(base + 8u * stride)), cols, (*acc).r8);
    if n < 10u { return; }
    (*acc).r9 = fma(vec4<f32>(row_operand(base + 9u * stride)), cols, (*acc).r9);
    if n < 11u { return; }
    (*acc).r10 = fma(vec4<f32>(row_operand(base + 10u * stride)), cols, (*acc).r10);
    if n < 12u { return; }
    (*acc).r11 = fma(vec4<f32>(row_operand(base + 11u * stride)), cols, (*acc).r11);
    if n < 13u { return; }
    (*acc).r12 = fma(vec4<f32>(row_operand(base + 12u * stride)), cols, (*acc).r12);
    if n < 14u { return; }
    (*acc).r13 = fma(vec4<f32>(row_operand(base + 13u * stride)), cols, (*acc).r13);
    if n < 15u { return; }
    (*acc).r14 = fma(vec4<f32>(row_operand(base + 14u * stride)), cols, (*acc).r14);
    if n < 16u { return; }
    (*acc).r15 = fma(vec4<f32>(row_operand(base + 15u * stride)), cols, (*acc).r15);
}

// Row i of the sums, by selects (no indexed memory): for the epilogues' loops.
fn row_sums_get(acc: RowSums, i: u32) -> vec4<f32> {
    var v = select(acc.r0, acc.r1, i == 1u);
    v = select(v, acc.r2, i == 2u);
    v = select(v, acc.r3, i == 3u);
    v = select(v, acc.r4, i == 4u);
    v = select(v, acc.r5, i == 5u);
    v = select(v, acc.r6, i == 6u);
    v = select(v, acc.r7, i == 7u);
    v = select(v, acc.r8, i == 8u);
    v = select(v, acc.r9, i == 9u);
    v = select(v, acc.r10, i == 10u);
    v = select(v, acc.r11, i == 11u);
    v = select(v, acc.r12, i == 12u);
    v = select(v, acc.r13, i == 13u);
    v = select(v, acc.r14, i == 14u);
    return select(v, acc.r15, i == 15u);
}
