//! CPU twin of shaders/sample_categorical.wgsl: the same maximum, the same top-k threshold (the
//! k-th largest of the logits' ordered bits), the weights summed and walked in index order in
//! f32, and the same counter-based uniform, so it draws the index the kernel draws from the same
//! weights. Rows in chunks on the pool.

use super::dropout::{pcg_hash, uniform_at};
use crate::kernels::sample_categorical::Params;

/// f32 bits mapped to u32 so that unsigned order is the floats' order.
fn ordered_bits(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The largest t with at least k keys ≥ t: the k-th largest key (0 when k is 0 or ≥ the row).
fn threshold(row: &[f32], k: u32) -> u32 {
    if k == 0 || k as usize >= row.len() {
        return 0;
    }
    let mut t = 0u32;
    for bit in (0..32).rev() {
        let candidate = t | (1 << bit);
        let n = row
            .iter()
            .filter(|&&v| ordered_bits(v) >= candidate)
            .count();
        if n >= k as usize {
            t = candidate;
        }
    }
    t
}

fn draw(p: &Params, row: &[f32], r: u32) -> u32 {
    let m = row.iter().fold(-f32::MAX, |a, &v| a.max(v));
    let last = row.len() as u32 - 1;
    if p.greedy == 1 {
        return row.iter().position(|&v| v == m).map_or(last, |c| c as u32);
    }
    let t = threshold(row, p.top_k);
    let weight = |v: f32| ((v - m) * p.inv_temp).exp();
    let mut total = 0.0f32;
    for &v in row.iter().filter(|&&v| ordered_bits(v) >= t) {
        total += weight(v);
    }
    let goal = uniform_at(p.seed_lo ^ pcg_hash(p.counter), p.seed_hi, r) * total;
    let (mut acc, mut pick) = (0.0f32, last);
    for (c, &v) in row.iter().enumerate() {
        if ordered_bits(v) >= t {
            acc += weight(v);
            pick = c as u32;
            if goal < acc {
                break;
            }
        }
    }
    pick
}

pub(crate) fn sample_categorical(p: &Params, x: &[f32], out: &mut [f32]) {
    let cols = p.cols as usize;
    let x = &x[p.x_off as usize..];
    super::for_chunks(
        &mut out[p.out_off as usize..][..p.rows as usize],
        |start, out| {
            for (k, o) in out.iter_mut().enumerate() {
                let r = start + k;
                *o = draw(p, &x[r * cols..][..cols], r as u32) as f32;
            }
        },
    );
}
