//! CPU twin of shaders/unary.wgsl: y = α·f(x) + β with x read through strides.

use super::activations::activate;
use super::{strided_offset, Float};
use crate::kernels::unary::{Params, UnaryOp};

/// y = α·f(x) + β over `p`'s elements for one `f`, in chunks on the pool.
fn map<F: Float>(p: &Params, x: &[F], y: &mut [F], f: impl Fn(F) -> F + Sync) {
    let rank = p.rank as usize;
    let (alpha, beta) = (
        F::from_f64(f64::from(p.alpha)),
        F::from_f64(f64::from(p.beta)),
    );
    let x = &x[p.x_off as usize..];
    let y = &mut y[p.y_off as usize..][..p.numel as usize];
    let (shape, strides) = (&p.shape[..rank], &p.x_strides[..rank]);
    let contiguous = p.contiguous == 1;
    if !contiguous && rank == 2 && strides[0] == 1 && shape[0] > 1 {
        // A transposed matrix (a weight gradient dYᵀ·X made contiguous): walking each output
        // row reads x a column at a time, a cache line per element. Instead TILE output rows
        // at once, reading TILE consecutive floats of x per column (a cache line) and writing
        // the TILE rows side by side.
        const TILE: usize = 16;
        let (cols, step) = (shape[1] as usize, strides[1] as usize);
        return super::for_each_chunk(y, TILE * cols, |blk, out| {
            let (r0, rows) = (blk * TILE, out.len() / cols);
            for c in 0..cols {
                let src = &x[c * step + r0..][..rows];
                for (k, &v) in src.iter().enumerate() {
                    out[k * cols + c] = alpha * f(v) + beta;
                }
            }
        });
    }
    super::for_chunks(y, |start, out| {
        if contiguous {
            for (o, &v) in out.iter_mut().zip(&x[start..]) {
                *o = alpha * f(v) + beta;
            }
        } else if rank == 0 {
            out[0] = alpha * f(x[0]) + beta;
        } else {
            // Runs along the innermost dimension: one offset computation per run, then a
            // constant stride (a transposed copy walks its columns this way).
            let (inner, step) = (shape[rank - 1] as usize, strides[rank - 1] as usize);
            let mut done = 0;
            while done < out.len() {
                let i = start + done;
                let run = (inner - i % inner).min(out.len() - done);
                let base = strided_offset(i, shape, strides);
                for (k, o) in out[done..done + run].iter_mut().enumerate() {
                    *o = alpha * f(x[base + k * step]) + beta;
                }
                done += run;
            }
        }
    });
}

pub(crate) fn unary<F: Float>(p: &Params, x: &[F], y: &mut [F]) {
    let slope = F::from_f64(f64::from(p.slope));
    // One loop per op, the op chosen once (not per element).
    match p.op {
        op if op == UnaryOp::Fill as u32 => {
            // y = α·0 + β; x is not read (the device binds a placeholder).
            let v = F::from_f64(f64::from(p.alpha)) * F::ZERO + F::from_f64(f64::from(p.beta));
            let y = &mut y[p.y_off as usize..][..p.numel as usize];
            super::for_chunks(y, |_, out| out.fill(v));
        }
        13 => map(p, x, y, |v| if v >= F::ZERO { v } else { slope * v }),
        5 => map(p, x, y, |v| -v),
        6 => map(p, x, y, F::abs),
        7 => map(p, x, y, F::exp),
        8 => map(p, x, y, F::ln),
        9 => map(p, x, y, F::sqrt),
        10 => map(p, x, y, |v| v * v),
        11 => map(p, x, y, |v| F::ONE / v),
        1 => map(p, x, y, |v| v.max(F::ZERO)),
        3 => map(p, x, y, F::tanh),
        code => map(p, x, y, |v| activate(v, code)),
    }
}
