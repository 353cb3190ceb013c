//! CPU twin of shaders/matmul.wgsl: C = act(α·op(A)·op(B) + β·C + bias) per batch, through the
//! CPU GEMM (`Float::gemm`, which takes arbitrary strides, so transposes cost nothing here either).

use super::activations::activate;
use super::Float;
use crate::kernels::matmul::Params;

/// Largest element index a (rows × cols) strided matrix at `off` addresses in batch `last`.
fn extent(off: u32, rows: u32, rs: u32, cols: u32, cs: u32, last: u32, bs: u32) -> usize {
    off as usize
        + (rows as usize - 1) * rs as usize
        + (cols as usize - 1) * cs as usize
        + last as usize * bs as usize
}

/// Same params and buffers as the kernel; `bias` is read when `p.bias_mode != 0`.
pub(crate) fn matmul<F: Float>(p: &Params, a: &[F], b: &[F], bias: &[F], c: &mut [F]) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    if m == 0 || n == 0 || p.batch == 0 {
        return;
    }
    let last = p.batch - 1;
    // The ops layer checked these; the asserts make the unsafe GEMM below sound regardless.
    assert!(k == 0 || extent(p.a_off, p.m, p.a_rs, p.k, p.a_cs, last, p.a_bs) < a.len());
    assert!(k == 0 || extent(p.b_off, p.k, p.b_rs, p.n, p.b_cs, last, p.b_bs) < b.len());
    assert!(extent(p.c_off, p.m, p.c_rs, p.n, p.c_cs, last, p.c_bs) < c.len());
    let alpha = F::from_f64(f64::from(p.alpha));
    let beta = F::from_f64(f64::from(p.beta));
    for bi in 0..p.batch as usize {
        let c_base = p.c_off as usize + bi * p.c_bs as usize;
        if k == 0 {
            // An empty sum: C = β·C.
            for i in 0..m {
                for j in 0..n {
                    let ci = c_base + i * p.c_rs as usize + j * p.c_cs as usize;
                    c[ci] = if p.beta == 0.0 { F::ZERO } else { beta * c[ci] };
                }
            }
        } else {
            let a_base = p.a_off as usize + bi * p.a_bs as usize;
            let b_base = p.b_off as usize + bi * p.b_bs as usize;
            // SAFETY: the asserts above bound every index the GEMM touches.
            unsafe {
                F::gemm(
                    [m, k, n],
                    alpha,
                    (a.as_ptr().add(a_base), p.a_rs as isize, p.a_cs as isize),
                    (b.as_ptr().add(b_base), p.b_rs as isize, p.b_cs as isize),
                    beta,
                    (c.as_mut_ptr().add(c_base), p.c_rs as isize, p.c_cs as isize),
                );
            }
        }
        if p.bias_mode == 0 && p.activation == 0 {
            continue;
        }
        epilogue(p, bias, &mut c[c_base..]);
    }
}

/// C = act(C + bias) over one batch's C (starting at `c`): a row at a time with the bias mode and
/// the activation chosen outside the loop, so contiguous rows vectorise; rows on the pool when
/// there are many.
fn epilogue<F: Float>(p: &Params, bias: &[F], c: &mut [F]) {
    let (m, n) = (p.m as usize, p.n as usize);
    let (rs, cs) = (p.c_rs as usize, p.c_cs as usize);
    let bias = &bias[p.bias_off as usize..];
    let row = |i: usize, r: &mut [F]| {
        let (mode, act) = (p.bias_mode, p.activation);
        // bias [N]: one per column; bias [M]: one per row.
        let add = |v: F, j: usize| match mode {
            1 => v + bias[j],
            2 => v + bias[i],
            _ => v,
        };
        if cs == 1 {
            let r = &mut r[..n];
            match (mode, act) {
                (1, 0) => r.iter_mut().zip(&bias[..n]).for_each(|(v, &b)| *v += b),
                (1, _) => r
                    .iter_mut()
                    .zip(&bias[..n])
                    .for_each(|(v, &b)| *v = activate(*v + b, act)),
                _ => r.iter_mut().for_each(|v| *v = activate(add(*v, 0), act)),
            }
        } else {
            for j in 0..n {
                let v = &mut r[j * cs];
                *v = activate(add(*v, j), act);
            }
        }
    };
    // Rows rs apart: row i's elements are its own chunk (the last row is shorter).
    let len = (m - 1) * rs + (n - 1) * cs + 1;
    let c = &mut c[..len];
    if rs > (n - 1) * cs && super::worth_parallel(m * n) {
        super::each_chunk(c, rs, Some(super::rows_per_task(n)), row);
    } else {
        for i in 0..m {
            row(i, &mut c[i * rs..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive triple loop the optimised twin is checked against.
    fn naive(p: &Params, a: &[f64], b: &[f64], c: &mut [f64]) {
        for bi in 0..p.batch as usize {
            for i in 0..p.m as usize {
                for j in 0..p.n as usize {
                    let mut s = 0.0;
                    for l in 0..p.k as usize {
                        s += a[p.a_off as usize
                            + bi * p.a_bs as usize
                            + i * p.a_rs as usize
                            + l * p.a_cs as usize]
                            * b[p.b_off as usize
                                + bi * p.b_bs as usize
                                + l * p.b_rs as usize
                                + j * p.b_cs as usize];
                    }
                    let ci = p.c_off as usize
                        + bi * p.c_bs as usize
                        + i * p.c_rs as usize
                        + j * p.c_cs as usize;
                    c[ci] = f64::from(p.alpha) * s + f64::from(p.beta) * c[ci];
                }
            }
        }
    }

    #[test]
    fn matches_naive_triple_loop_with_transposes_and_batches() {
        let mut rng = crate::rng::Rng::new(7);
        for &(m, n, k, batch, ta, tb) in &[
            (1, 1, 1, 1, false, false),
            (17, 33, 65, 2, true, false),
            (5, 3, 7, 3, false, true),
            (9, 4, 2, 1, true, true),
        ] {
            let a: Vec<f64> = (0..batch * m * k).map(|_| rng.normal() as f64).collect();
            let b: Vec<f64> = (0..batch * k * n).map(|_| rng.normal() as f64).collect();
            let c0: Vec<f64> = (0..batch * m * n).map(|_| rng.normal() as f64).collect();
            let (a_rs, a_cs) = if ta { (1, m) } else { (k, 1) };
            let (b_rs, b_cs) = if tb { (1, k) } else { (n, 1) };
            let p = Params {
                m: m as u32,
                n: n as u32,
                k: k as u32,
                batch: batch as u32,
                a_rs: a_rs as u32,
                a_cs: a_cs as u32,
                a_bs: (m * k) as u32,
                b_rs: b_rs as u32,
                b_cs: b_cs as u32,
                b_bs: (k * n) as u32,
                c_rs: n as u32,
                c_cs: 1,
                c_bs: (m * n) as u32,
                alpha: 0.5,
                beta: 2.0,
                ..Params::default()
            };
            let mut got = c0.clone();
            matmul(&p, &a, &b, &[], &mut got);
            let mut want = c0;
            naive(&p, &a, &b, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
}
