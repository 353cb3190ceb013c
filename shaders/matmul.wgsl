// matmul: C = act(α·op(A)·op(B) + β·C + bias), batched, register-tiled.
// op(A) [M, K] and op(B) [K, N] are read through (row, column, batch) strides, so transposed
// operands (the NT and TN products backward needs) are never materialised.
// A workgroup computes a BM×BN tile of C (BM = WG_M·TM, BN = WG_N·TN); each invocation owns a
// TM×TN block of it, strided by WG_M rows and WG_N columns so that neighbours write neighbours.
// K is walked in steps of BK through workgroup memory.
// Grid: linear workgroup = (tile_n, tile_m, batch), n fastest, folded into x and y.
// Needs: common/activations.wgsl, common/grid.wgsl.

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
// Each tile holds at most 1,024 floats (8 KiB for both): within WebGPU's 16 KiB guarantee.
const TILE_CAPACITY: u32 = 1024u;

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
    c_off: u32, c_rs: u32, c_cs: u32, c_bs: u32,
    bias_off: u32, bias_mode: u32, activation: u32, tiles_n: u32,
    tiles_m: u32, alpha: f32, beta: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;        // op(A): [batch, M, K] via strides
@group(0) @binding(2) var<storage, read> b: array<f32>;        // op(B): [batch, K, N] via strides
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [N] (mode 1) or [M] (mode 2)
@group(0) @binding(4) var<storage, read_write> c: array<f32>;  // [batch, M, N] via strides

var<workgroup> a_tile: array<f32, TILE_CAPACITY>;  // [BK][BM]
var<workgroup> b_tile: array<f32, TILE_CAPACITY>;  // [BK][BN]

@compute @workgroup_size(WG_N, WG_M, 1)
fn matmul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let bm = WG_M * TM;
    let bn = WG_N * TN;
    let threads = WG_M * WG_N;
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles_m * p.tiles_n * p.batch {
        return;
    }
    let tile_n = tile % p.tiles_n;
    let tile_m = (tile / p.tiles_n) % p.tiles_m;
    let bi = tile / (p.tiles_n * p.tiles_m);
    let row0 = tile_m * bm;
    let col0 = tile_n * bn;
    let a_base = p.a_off + bi * p.a_bs;
    let b_base = p.b_off + bi * p.b_bs;
    // Load tiles along the operand's contiguous axis, so neighbouring invocations read
    // neighbouring addresses whether or not the operand is transposed.
    let a_k_fast = p.a_cs == 1u;
    let b_n_fast = p.b_cs == 1u;

    var acc: array<f32, 16>;  // [TM][TN]
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var i = lindex; i < bm * BK; i += threads) {
            var r = i % bm;
            var kk = i / bm;
            if a_k_fast {
                kk = i % BK;
                r = i / BK;
            }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if gr < p.m && gk < p.k {
                v = a[a_base + gr * p.a_rs + gk * p.a_cs];
            }
            a_tile[kk * bm + r] = v;
        }
        for (var i = lindex; i < BK * bn; i += threads) {
            var kk = i % BK;
            var cc = i / BK;
            if b_n_fast {
                cc = i % bn;
                kk = i / bn;
            }
            let gc = col0 + cc;
            let gk = k0 + kk;
            var v = 0.0;
            if gc < p.n && gk < p.k {
                v = b[b_base + gk * p.b_rs + gc * p.b_cs];
            }
            b_tile[kk * bn + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += 1u) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < TM; i += 1u) {
                ar[i] = a_tile[kk * bm + lid.y + i * WG_M];
            }
            for (var j = 0u; j < TN; j += 1u) {
                br[j] = b_tile[kk * bn + lid.x + j * WG_N];
            }
            for (var i = 0u; i < TM; i += 1u) {
                for (var j = 0u; j < TN; j += 1u) {
                    acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
                }
            }
        }
        // The next iteration overwrites the tiles that slower invocations may still read.
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i += 1u) {
        let row = row0 + lid.y + i * WG_M;
        if row >= p.m {
            continue;
        }
        for (var j = 0u; j < TN; j += 1u) {
            let col = col0 + lid.x + j * WG_N;
            if col >= p.n {
                continue;
            }
            let ci = p.c_off + bi * p.c_bs + row * p.c_rs + col * p.c_cs;
            var v = p.alpha * acc[i * TN + j];
            // β = 0 must not read C: a fresh output holds whatever the pool left in it.
            if p.beta != 0.0 {
                v += p.beta * c[ci];
            }
            if p.bias_mode == 1u {
                v += bias[p.bias_off + col];
            } else if p.bias_mode == 2u {
                v += bias[p.bias_off + row];
            }
            c[ci] = activate(v, p.activation);
        }
    }
}
