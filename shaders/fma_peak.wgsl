// fma_peak: the adapter's fused multiply-add ceiling, for the bench. Each invocation runs 8
// independent FMA chains (enough to hide FMA latency) for `iters` steps and stores their sum so
// the compiler cannot drop them. FLOP = invocations · iters · 8 chains · 2.
// Grid: x = ceil(invocations / 256), folded. Needs: common/grid.wgsl.

struct Params { iters: u32, invocations: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // [invocations]

@compute @workgroup_size(256)
fn fma_peak(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let i = linear_workgroup(wid, nwg) * 256u + lindex;
    if i >= p.invocations {
        return;
    }
    let seed = f32(i) * 1e-7;
    var a0 = seed;
    var a1 = seed + 0.1;
    var a2 = seed + 0.2;
    var a3 = seed + 0.3;
    var a4 = seed + 0.4;
    var a5 = seed + 0.5;
    var a6 = seed + 0.6;
    var a7 = seed + 0.7;
    let m = 0.999999;
    let k = 1e-6;
    for (var it = 0u; it < p.iters; it += 1u) {
        a0 = fma(a0, m, k);
        a1 = fma(a1, m, k);
        a2 = fma(a2, m, k);
        a3 = fma(a3, m, k);
        a4 = fma(a4, m, k);
        a5 = fma(a5, m, k);
        a6 = fma(a6, m, k);
        a7 = fma(a7, m, k);
    }
    out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
