//! Test support shared by the unit tests: one device per test binary, the awkward shapes, and
//! `assert_close` that reports the worst element instead of "unequal".

use std::sync::OnceLock;

use crate::{Gpu, Rng};

/// The test binary's one device (lavapipe in CI). Compiling pipelines is the slow part of a test
/// run, so every test shares them.
pub(crate) fn gpu() -> Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        Gpu::new_blocking().expect("the tests need a GPU adapter; install mesa-vulkan-drivers")
    })
    .clone()
}

/// Sizes that break tiled kernels: 1, primes, non-multiples of every tile, one large.
pub(crate) const AWKWARD: [usize; 6] = [1, 7, 17, 33, 127, 257];

/// A bound on |got − want|: abs + rel·|want|.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tol {
    pub abs: f64,
    pub rel: f64,
}

/// Panics with the mismatch count, the worst index, got, want and error, if any element of
/// `got` differs from `want` by more than `tol` (NaN never passes).
pub(crate) fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut bad = 0;
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - f64::from(w)).abs();
        let bound = tol.abs + tol.rel * f64::from(w).abs();
        if err.is_nan() || err > bound {
            bad += 1;
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err / bound
            };
            if excess > worst.1 {
                worst = (i, excess);
            }
        }
    }
    if bad > 0 {
        let i = worst.0;
        panic!(
            "{what}: {bad} of {} elements outside {tol:?}; worst at [{i}]: got {}, want {}, error {}",
            got.len(),
            got[i],
            want[i],
            (got[i] - want[i]).abs()
        );
    }
}

/// `n` seeded standard normals.
pub(crate) fn randn(seed: u64, n: usize) -> Vec<f32> {
    Rng::new(seed).normals(n)
}

/// Checks `analytic` = ∇f(x) by central differences in f64: (f(x + h·e_i) − f(x − h·e_i)) / 2h,
/// with |error| ≤ tol·(1 + |numeric|) for every i.
pub(crate) fn assert_gradient(
    what: &str,
    f: impl Fn(&[f64]) -> f64,
    x: &[f64],
    analytic: &[f64],
    tol: f64,
) {
    let h = 1e-6;
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + h;
        let fp = f(&xp);
        xp[i] = x[i] - h;
        let fm = f(&xp);
        xp[i] = x[i];
        let numeric = (fp - fm) / (2.0 * h);
        let err = (numeric - analytic[i]).abs();
        assert!(
            err <= tol * (1.0 + numeric.abs()),
            "{what}: d/dx[{i}] analytic {} vs numeric {numeric} (error {err:.3e}, bound {tol:.0e})",
            analytic[i]
        );
    }
}

/// `n` seeded normals in f64.
pub(crate) fn randn64(seed: u64, n: usize) -> Vec<f64> {
    randn(seed, n).into_iter().map(f64::from).collect()
}
