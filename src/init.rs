//! Weight initialisation: LeCun, Xavier/Glorot and He/Kaiming (normal and uniform, with
//! PyTorch's fan-in/fan-out), orthogonal (for recurrent matrices), zeros and constants. Every
//! draw comes from a seeded [`Rng`], so a seed fixes the weights on every platform.

use crate::device::Device;
use crate::error::{shape_str, Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// How to fill a new weight tensor.
///
/// ```
/// use timeloom::{init::Init, Device, Rng};
/// let mut rng = Rng::new(0);
/// let w = Init::XavierUniform.tensor(&Device::Cpu, &[64, 32], &mut rng)?;
/// let bound = (6.0f32 / (64.0 + 32.0)).sqrt();
/// assert!(w.read_blocking()?.iter().all(|v| v.abs() <= bound));
/// # Ok::<(), timeloom::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element the same.
    Constant(f32),
    /// U(lo, hi).
    Uniform(f32, f32),
    /// N(mean, std²).
    Normal(f32, f32),
    /// N(0, 1/fan_in).
    LecunNormal,
    /// U(±√(3/fan_in)).
    LecunUniform,
    /// N(0, 2/(fan_in + fan_out)).
    XavierNormal,
    /// U(±√(6/(fan_in + fan_out))).
    XavierUniform,
    /// N(0, 2/fan_in), for ReLU layers.
    HeNormal,
    /// U(±√(6/fan_in)).
    HeUniform,
    /// A (semi-)orthogonal matrix times `gain`, from the QR of a Gaussian matrix; for recurrent
    /// weights. Higher ranks are flattened to `[shape[0], rest]`.
    Orthogonal(f32),
}

/// (fan_in, fan_out) of a weight of `shape`, as PyTorch computes them: [out, in, k...] has
/// fan_in = in·∏k and fan_out = out·∏k; a vector has both equal to its length.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let r: usize = rest.iter().product();
            (inp * r, out * r)
        }
    }
}

impl Init {
    /// The values of a tensor of `shape`, drawn from `rng`.
    pub fn values(&self, shape: &[usize], rng: &mut Rng) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let (fan_in, fan_out) = fans(shape);
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let uniform = |rng: &mut Rng, b: f64| (0..n).map(|_| rng.range(-b, b) as f32).collect();
        let normal = |rng: &mut Rng, std: f64| {
            (0..n)
                .map(|_| (f64::from(rng.normal()) * std) as f32)
                .collect()
        };
        Ok(match *self {
            Init::Zeros => vec![0.0; n],
            Init::Constant(c) => vec![c; n],
            Init::Uniform(lo, hi) => (0..n)
                .map(|_| rng.range(f64::from(lo), f64::from(hi)) as f32)
                .collect(),
            Init::Normal(mean, std) => (0..n).map(|_| mean + std * rng.normal()).collect(),
            Init::LecunNormal => normal(rng, (1.0 / fi).sqrt()),
            Init::LecunUniform => uniform(rng, (3.0 / fi).sqrt()),
            Init::XavierNormal => normal(rng, (2.0 / (fi + fo)).sqrt()),
            Init::XavierUniform => uniform(rng, (6.0 / (fi + fo)).sqrt()),
            Init::HeNormal => normal(rng, (2.0 / fi).sqrt()),
            Init::HeUniform => uniform(rng, (6.0 / fi).sqrt()),
            Init::Orthogonal(gain) => {
                if shape.len() < 2 {
                    return Err(Error::ShapeMismatch {
                        op: "Init::Orthogonal",
                        arg: "shape",
                        expected: "at least 2 dimensions".into(),
                        got: shape_str(shape),
                    });
                }
                orthogonal(shape[0], n / shape[0], gain, rng)
            }
        })
    }

    /// A new tensor of `shape` on `device`.
    pub fn tensor(&self, device: &Device, shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        Tensor::from_slice(device, &self.values(shape, rng)?, shape)
    }
}

/// Rows × cols with orthonormal rows (rows ≤ cols) or columns (rows > cols): modified
/// Gram–Schmidt in f64 over the longer side, signs fixed as in a QR with positive diagonal.
fn orthogonal(rows: usize, cols: usize, gain: f32, rng: &mut Rng) -> Vec<f32> {
    let (k, len) = (rows.min(cols), rows.max(cols));
    // k orthonormal vectors of length `len`.
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(k);
    while q.len() < k {
        let mut v: Vec<f64> = (0..len).map(|_| f64::from(rng.normal())).collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            for (vi, ui) in v.iter_mut().zip(u) {
                *vi -= d * ui;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if rows <= cols { q[r][c] } else { q[c][r] };
            out[r * cols + c] = (v * f64::from(gain)) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var)
    }

    #[test]
    fn variances_follow_the_fan_formulas() {
        let shape = [300, 200];
        let (fi, fo): (f64, f64) = (200.0, 300.0);
        let cases = [
            (Init::LecunNormal, 1.0 / fi),
            (Init::LecunUniform, 1.0 / fi),
            (Init::XavierNormal, 2.0 / (fi + fo)),
            (Init::XavierUniform, 2.0 / (fi + fo)),
            (Init::HeNormal, 2.0 / fi),
            (Init::HeUniform, 2.0 / fi),
        ];
        for (init, want) in cases {
            let v = init.values(&shape, &mut Rng::new(1)).unwrap();
            let (mean, var) = moments(&v);
            assert!(mean.abs() < 0.1 * want.sqrt(), "{init:?} mean {mean}");
            assert!(
                (var / want - 1.0).abs() < 0.03,
                "{init:?}: variance {var}, want {want}"
            );
        }
        assert_eq!(fans(&[8, 3, 5, 5]), (75, 200));
    }

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        for (r, c) in [(16, 16), (8, 20), (20, 8)] {
            let w = Init::Orthogonal(1.0)
                .values(&[r, c], &mut Rng::new(3))
                .unwrap();
            let k = r.min(c);
            for i in 0..k {
                for j in 0..k {
                    let d: f64 = if r <= c {
                        (0..c)
                            .map(|t| f64::from(w[i * c + t]) * f64::from(w[j * c + t]))
                            .sum()
                    } else {
                        (0..r)
                            .map(|t| f64::from(w[t * c + i]) * f64::from(w[t * c + j]))
                            .sum()
                    };
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((d - want).abs() < 1e-5, "[{r}, {c}] ({i}, {j}): {d}");
                }
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let a = Init::HeNormal.values(&[5, 7], &mut Rng::new(9)).unwrap();
        let b = Init::HeNormal.values(&[5, 7], &mut Rng::new(9)).unwrap();
        assert_eq!(a, b);
    }
}
