// matmul: C = act(α·op(A)·op(B) + β·C + bias), batched, register-tiled.
// op(A) [M, K] and op(B) [K, N] are read through (row, column, batch) strides, so transposed
// operands (the NT and TN products backward needs) are never materialised.
// A workgroup computes a BM×BN tile of C (BM = WG_M·TM, BN = WG_N·TN); each invocation owns a
// TM×TN block of it as TM/4 × TN/4 blocks of 4×4, the blocks strided by WG_M·4 rows and WG_N·4
// columns, so that neighbours read neighbouring vec4s of the tiles and write neighbouring
// columns. K is walked in steps of BK through workgroup memory; each step of k reads TM/4 + TN/4
// vec4s and issues TM·TN multiply-adds (8×8: 4 loads for 64; the 4×4 tile: 2 for 16).
// A, B and the bias may each hold f16 (A_HALF, B_HALF, BIAS_HALF = 1: binary16 packed two to a
// word, widened on load by common/half.wgsl); the products and sums are f32 and C is f32. The
// f32 pipelines leave the flags at 0, so their loads are the plain ones.
// Grid: linear workgroup = (tile_n, tile_m, batch), n fastest, folded into x and y.
// Needs: common/activations.wgsl, common/grid.wgsl, common/half.wgsl, common/row_sums.wgsl.

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override BK: u32 = 16u;
// Rows and columns of C per invocation: 4 or 8 (the direct kernel: 4 columns, DIRECT_ROWS rows).
override TM: u32 = 4u;
override TN: u32 = 4u;
// 0: the workgroup-memory kernel above. R > 0: the direct kernel below, R rows per workgroup.
override DIRECT_ROWS: u32 = 0u;
override A_HALF: u32 = 0u;
override B_HALF: u32 = 0u;
override BIAS_HALF: u32 = 0u;
// Each tile holds at most 1,024 floats as 256 vec4s (8 KiB for both): within WebGPU's 16 KiB
// guarantee, and the downlevel limit's 16,352 bytes.
const TILE_VECS: u32 = 256u;

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
    c_off: u32, c_rs: u32, c_cs: u32, c_bs: u32,
    bias_off: u32, bias_mode: u32, activation: u32, tiles_n: u32,
    tiles_m: u32, alpha: f32, beta: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;        // op(A): [batch, M, K] via strides
@group(0) @binding(2) var<storage, read> b: array<u32>;        // op(B): [batch, K, N] via strides
@group(0) @binding(3) var<storage, read> bias: array<u32>;     // [N] (mode 1) or [M] (mode 2)
@group(0) @binding(4) var<storage, read_write> c: array<f32>;  // [batch, M, N] via strides

// Element i of A, B or the bias (f32 bits, or binary16 pairs).
fn a_at(i: u32) -> f32 {
    if A_HALF == 1u {
        return half_at(a[i >> 1u], i);
    }
    return bitcast<f32>(a[i]);
}

fn b_at(i: u32) -> f32 {
    if B_HALF == 1u {
        return half_at(b[i >> 1u], i);
    }
    return bitcast<f32>(b[i]);
}

fn bias_at(i: u32) -> f32 {
    if BIAS_HALF == 1u {
        return half_at(bias[i >> 1u], i);
    }
    return bitcast<f32>(bias[i]);
}

var<workgroup> a_tile: array<vec4<f32>, TILE_VECS>;  // [BK][BM / 4]: rows 4v .. 4v + 3 in vec4 v
var<workgroup> b_tile: array<vec4<f32>, TILE_VECS>;  // [BK][BN / 4]: columns likewise

@compute @workgroup_size(WG_N, WG_M, 1)
fn matmul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lindex: u32,
) {
    let tile = linear_workgroup(wid, nwg);
    if tile >= p.tiles_m * p.tiles_n * p.batch {
        return;
    }
    if DIRECT_ROWS > 0u {
        matmul_direct(tile, lid.x, lid.y);
        return;
    }
    let bm = WG_M * TM;
    let bn = WG_N * TN;
    let bm4 = bm / 4u;
    let bn4 = bn / 4u;
    let threads = WG_M * WG_N;
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

    // The TM×TN block as vec4s of four columns: row i's first four columns in ri_a, the next
    // four (TN = 8) in ri_b. Named variables, never an array indexed in a loop: a driver that
    // does not unroll the loop (NVIDIA's, from naga's SPIR-V) would keep such an array in local
    // memory and pay a load and a store around every multiply-add.
    var r0a = vec4<f32>(); var r0b = vec4<f32>(); var r1a = vec4<f32>(); var r1b = vec4<f32>();
    var r2a = vec4<f32>(); var r2b = vec4<f32>(); var r3a = vec4<f32>(); var r3b = vec4<f32>();
    var r4a = vec4<f32>(); var r4b = vec4<f32>(); var r5a = vec4<f32>(); var r5b = vec4<f32>();
    var r6a = vec4<f32>(); var r6b = vec4<f32>(); var r7a = vec4<f32>(); var r7b = vec4<f32>();
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
                v = a_at(a_base + gr * p.a_rs + gk * p.a_cs);
            }
            a_tile[kk * bm4 + r / 4u][r % 4u] = v;
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
                v = b_at(b_base + gk * p.b_rs + gc * p.b_cs);
            }
            b_tile[kk * bn4 + cc / 4u][cc % 4u] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += 1u) {
            let a0 = a_tile[kk * bm4 + lid.y];
            let b0 = b_tile[kk * bn4 + lid.x];
            var b1 = vec4<f32>();
            if TN == 8u {
                b1 = b_tile[kk * bn4 + lid.x + WG_N];
            }
            rank1(a0.x, b0, b1, &r0a, &r0b);
            rank1(a0.y, b0, b1, &r1a, &r1b);
            rank1(a0.z, b0, b1, &r2a, &r2b);
            rank1(a0.w, b0, b1, &r3a, &r3b);
            if TM == 8u {
                let a1 = a_tile[kk * bm4 + lid.y + WG_M];
                rank1(a1.x, b0, b1, &r4a, &r4b);
                rank1(a1.y, b0, b1, &r5a, &r5b);
                rank1(a1.z, b0, b1, &r6a, &r6b);
                rank1(a1.w, b0, b1, &r7a, &r7b);
            }
        }
        // The next iteration overwrites the tiles that slower invocations may still read.
        workgroupBarrier();
    }

    // Rows 4·lid.y .. + 3 (and 4·(lid.y + WG_M) .. + 3), columns 4·lid.x .. + 3 (and
    // 4·(lid.x + WG_N) .. + 3) of the tile. One store_c in a loop, the block's vec4s picked by
    // selects: the epilogue is large, and lavapipe compiles every copy of it.
    let ra = row0 + lid.y * 4u;
    let rb = row0 + (lid.y + WG_M) * 4u - 4u;
    let ca = col0 + lid.x * 4u;
    let cb = col0 + (lid.x + WG_N) * 4u - 4u;
    for (var i = 0u; i < TM; i += 1u) {
        let row = select(ra, rb, i >= 4u) + i;
        if row >= p.m {
            continue;
        }
        let x = pick(i, r0a, r1a, r2a, r3a, r4a, r5a, r6a, r7a);
        let y = pick(i, r0b, r1b, r2b, r3b, r4b, r5b, r6b, r7b);
        for (var j = 0u; j < TN; j += 1u) {
            let col = select(ca, cb, j >= 4u) + j;
            if col < p.n {
                store_c(bi, row, col, select(x, y, j >= 4u)[j % 4u]);
            }
        }
    }
}

// One row of the block, one k: x += a·b0, and y += a·b1 when TN = 8.
fn rank1(a: f32, b0: vec4<f32>, b1: vec4<f32>, x: ptr<function, vec4<f32>>, y: ptr<function, vec4<f32>>) {
    let av = vec4<f32>(a);
    *x = fma(av, b0, *x);
    if TN == 8u {
        *y = fma(av, b1, *y);
    }
}

// v_i, by selects (no indexed memory).
fn pick(i: u32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>) -> vec4<f32> {
    var v = select(v0, v1, i == 1u);
    v = select(v, v2, i == 2u);
    v = select(v, v3, i == 3u);
    v = select(v, v4, i == 4u);
    v = select(v, v5, i == 5u);
    v = select(v, v6, i == 6u);
    return select(v, v7, i == 7u);
}

// The direct kernel: no tiles. A workgroup of WG_N × WG_M invocations owns DIRECT_ROWS rows and
// WG_N·4 columns; invocation (lx, ly) keeps DIRECT_ROWS × 4 sums (RowSums), its columns strided
// by WG_N so neighbours read neighbouring elements of B, over k = ly, ly + WG_M, ... Every
// invocation of a row of the workgroup reads the same A element at each step, a uniform load.
// WG_M = 1 sums all of K in one invocation: best where workgroup memory is no faster than cached
// global memory and lanes are few (CPU-backed adapters such as lavapipe). WG_M > 1 splits K, the
// partials meeting in workgroup memory in a fixed tree order: a GPU hides memory latency with
// many short sums, and a product of a few rows has few outputs to spread. The autotune decides
// per adapter. Contains barriers when WG_M > 1: called from uniform control flow.
fn matmul_direct(tile: u32, lx: u32, ly: u32) {
    let bn = WG_N * 4u;
    let tile_n = tile % p.tiles_n;
    let tile_m = (tile / p.tiles_n) % p.tiles_m;
    let bi = tile / (p.tiles_n * p.tiles_m);
    let row0 = tile_m * DIRECT_ROWS;
    let live = p.m - row0;
    let a_base = p.a_off + bi * p.a_bs + row0 * p.a_rs;
    let b_base = p.b_off + bi * p.b_bs;
    // Out-of-range columns load a clamped (valid) element and are never stored, so the inner
    // loop has no branches; rows past M are skipped (row_sums_fma's `live`).
    let col0 = tile_n * bn + lx;
    let b0 = b_base + min(col0, p.n - 1u) * p.b_cs;
    let b1 = b_base + min(col0 + WG_N, p.n - 1u) * p.b_cs;
    let b2 = b_base + min(col0 + 2u * WG_N, p.n - 1u) * p.b_cs;
    let b3 = b_base + min(col0 + 3u * WG_N, p.n - 1u) * p.b_cs;
    var acc: RowSums;
    for (var k = ly; k < p.k; k += WG_M) {
        let bk = k * p.b_rs;
        let bv = vec4<f32>(b_at(b0 + bk), b_at(b1 + bk), b_at(b2 + bk), b_at(b3 + bk));
        row_sums_fma(&acc, DIRECT_ROWS, live, a_base + k * p.a_cs, p.a_rs, bv);
    }
    for (var i = 0u; i < min(DIRECT_ROWS, live); i += 1u) {
        var sums = row_sums_get(acc, i);
        if WG_M > 1u {
            sums = k_split_sum(sums, lx, ly);
        }
        if ly == 0u {
            for (var j = 0u; j < 4u; j += 1u) {
                let col = col0 + j * WG_N;
                if col < p.n {
                    store_c(bi, row0 + i, col, sums[j]);
                }
            }
        }
    }
}

// The WG_M partials of invocation column lx, added in a fixed tree order through a_tile (idle in
// the direct kernel); ly = 0 gets the sum. Contains barriers.
fn k_split_sum(v: vec4<f32>, lx: u32, ly: u32) -> vec4<f32> {
    a_tile[ly * WG_N + lx] = v;
    workgroupBarrier();
    for (var s = WG_M / 2u; s > 0u; s >>= 1u) {
        if ly < s {
            a_tile[ly * WG_N + lx] += a_tile[(ly + s) * WG_N + lx];
        }
        workgroupBarrier();
    }
    let r = a_tile[lx];
    workgroupBarrier();
    return r;
}

// row_sums_fma's row operand: an element of A.
fn row_operand(at: u32) -> f32 {
    return a_at(at);
}

// The epilogue shared by both kernels: α, β·C, bias, activation.
fn store_c(bi: u32, row: u32, col: u32, sum: f32) {
    let ci = p.c_off + bi * p.c_bs + row * p.c_rs + col * p.c_cs;
    var v = p.alpha * sum;
    // β = 0 must not read C: a fresh output holds whatever the pool left in it.
    if p.beta != 0.0 {
        v += p.beta * c[ci];
    }
    if p.bias_mode == 1u {
        v += bias_at(p.bias_off + col);
    } else if p.bias_mode == 2u {
        v += bias_at(p.bias_off + row);
    }
    c[ci] = activate(v, p.activation);
}
