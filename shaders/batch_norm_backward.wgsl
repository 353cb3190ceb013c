// batch_norm_backward: dx, dγ and dβ for batch_norm_forward, one workgroup of 256 per channel,
// deterministic (fixed-order workgroup sums, no atomics). With x̂ = (x − μ)·r:
//   dβ = Σ dy,  dγ = Σ dy·x̂,
//   training:   dx = γ·r·(dy − dβ/M − x̂·dγ/M)   (μ and σ² depend on x; M = N·S)
//   evaluation: dx = γ·r·dy                      (running statistics are constants)
// Grid: C workgroups, folded. Needs: common/channels.wgsl, common/grid.wgsl,
// common/rows.wgsl.

struct Params { n: u32, c: u32, s: u32, training: u32, affine: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [N, C, S]
@group(0) @binding(2) var<storage, read> gamma: array<f32>;          // [C] (if affine)
@group(0) @binding(3) var<storage, read> stats: array<f32>;          // [2, C] from the forward
@group(0) @binding(4) var<storage, read> dy: array<f32>;             // [N, C, S]
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;       // [N, C, S]
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;   // [C]
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;    // [C]

@compute @workgroup_size(256)
fn batch_norm_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let ch = linear_workgroup(wid, nwg);
    if ch >= p.c {
        return;
    }
    let count = p.n * p.s;
    let mean = stats[ch];
    let rstd = stats[p.c + ch];
    var sdy = 0.0;
    var sdyx = 0.0;
    for (var e = lindex; e < count; e += 256u) {
        let at = channel_at(ch, e, p.c, p.s);
        sdy += dy[at];
        sdyx += dy[at] * (x[at] - mean) * rstd;
    }
    let sum_dy = row_sum(sdy, lindex);
    let sum_dyx = row_sum(sdyx, lindex);
    var g = 1.0;
    if p.affine == 1u {
        g = gamma[ch];
    }
    let k = g * rstd;
    for (var e = lindex; e < count; e += 256u) {
        let at = channel_at(ch, e, p.c, p.s);
        if p.training == 1u {
            let xhat = (x[at] - mean) * rstd;
            dx[at] = k * (dy[at] - (sum_dy + xhat * sum_dyx) / f32(count));
        } else {
            dx[at] = k * dy[at];
        }
    }
    if lindex == 0u {
        dgamma[ch] = sum_dyx;
        dbeta[ch] = sum_dy;
    }
}
