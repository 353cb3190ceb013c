//! CPU twin of shaders/batch_norm_backward.wgsl: the channel sums in parallel over channels, dx
//! in parallel over (image, channel) runs.

use rayon::prelude::*;

use super::Float;
use crate::kernels::batch_norm_backward::Params;

/// The kernel's read-only bindings, in their order (γ absent without an affine map).
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a, F> {
    pub x: &'a [F],
    pub gamma: Option<&'a [F]>,
    pub stats: &'a [F],
    pub dy: &'a [F],
}

/// Writes dx, dγ and dβ. Takes the kernel's bindings in their order.
pub(crate) fn batch_norm_backward<F: Float>(
    p: &Params,
    inputs: Inputs<'_, F>,
    dx: &mut [F],
    dgamma: &mut [F],
    dbeta: &mut [F],
) {
    let Inputs {
        x,
        gamma,
        stats,
        dy,
    } = inputs;
    let (n, c, s) = (p.n as usize, p.c as usize, p.s as usize);
    let count = n * s;
    let m = F::from_f64(count as f64);
    // Channel ch of image i is the run [(i·C + ch)·S ..][..S]; the sums walk the runs in image
    // order (as the element order e = i·S + j), channels in parallel.
    let sums = |ch: usize| {
        let (mean, rstd) = (stats[ch], stats[c + ch]);
        let (mut sdy, mut sdyx) = (F::ZERO, F::ZERO);
        for i in 0..n {
            let at = (i * c + ch) * s;
            for (&g, &v) in dy[at..][..s].iter().zip(&x[at..][..s]) {
                sdy += g;
                sdyx += g * (v - mean) * rstd;
            }
        }
        (sdy, sdyx)
    };
    let sums: Vec<(F, F)> = if super::worth_parallel(count * c) {
        (0..c).into_par_iter().map(sums).collect()
    } else {
        (0..c).map(sums).collect()
    };
    for (ch, &(sdy, sdyx)) in sums.iter().enumerate() {
        dgamma[ch] = sdyx;
        dbeta[ch] = sdy;
    }
    if s == 0 {
        return;
    }
    super::for_each_chunk(&mut dx[..n * c * s], s, |r, out| {
        let ch = r % c;
        let (mean, rstd) = (stats[ch], stats[c + ch]);
        let (sdy, sdyx) = sums[ch];
        let k = gamma.map_or(F::ONE, |g| g[ch]) * rstd;
        for (o, (&g, &v)) in out
            .iter_mut()
            .zip(dy[r * s..][..s].iter().zip(&x[r * s..][..s]))
        {
            *o = if p.training == 1 {
                let xhat = (v - mean) * rstd;
                k * (g - (sdy + xhat * sdyx) / m)
            } else {
                k * g
            };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::batch_norm_forward;
    use crate::kernels::cpu::batch_norm_forward::batch_norm_forward;
    use crate::testing::{assert_gradient, randn64};

    #[test]
    fn matches_finite_differences_in_training_and_evaluation() {
        let (n, c, s) = (3usize, 2usize, 5usize);
        let numel = n * c * s;
        for training in [1u32, 0] {
            let fp = batch_norm_forward::Params {
                n: n as u32,
                c: c as u32,
                s: s as u32,
                training,
                momentum: 0.1,
                eps: 1e-5,
                affine: 1,
                track: 0,
            };
            let x = randn64(1, numel);
            let (gv, up) = (randn64(2, c), randn64(4, numel));
            let bv = randn64(3, c);
            let running = || (vec![0.3, -0.2], vec![0.7, 1.4]);
            let forward = |x: &[f64], g: &[f64], b: &[f64]| {
                let (mut rm, mut rv) = running();
                let (mut y, mut st) = (vec![0.0; numel], vec![0.0; 2 * c]);
                batch_norm_forward(&fp, x, Some((g, b)), (&mut rm, &mut rv), &mut y, &mut st);
                (y, st)
            };
            let loss = |y: Vec<f64>| y.iter().zip(&up).map(|(a, b)| a * b).sum::<f64>();
            let (_, stats) = forward(&x, &gv, &bv);
            let bp = Params {
                n: n as u32,
                c: c as u32,
                s: s as u32,
                training,
                affine: 1,
                _pad: [0; 3],
            };
            let (mut dx, mut dg, mut db) = (vec![0.0; numel], vec![0.0; c], vec![0.0; c]);
            batch_norm_backward(
                &bp,
                super::Inputs {
                    x: &x,
                    gamma: Some(&gv),
                    stats: &stats,
                    dy: &up,
                },
                &mut dx,
                &mut dg,
                &mut db,
            );
            let what = format!("batch_norm training={training}");
            assert_gradient(
                &format!("{what} dx"),
                |x| loss(forward(x, &gv, &bv).0),
                &x,
                &dx,
                1e-5,
            );
            assert_gradient(
                &format!("{what} dγ"),
                |g| loss(forward(&x, g, &bv).0),
                &gv,
                &dg,
                1e-5,
            );
            assert_gradient(
                &format!("{what} dβ"),
                |b| loss(forward(&x, &gv, b).0),
                &bv,
                &db,
                1e-5,
            );
        }
    }
}
