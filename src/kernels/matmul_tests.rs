//! The matmul owner's tests: parity with the CPU twin on awkward, batched, transposed and
//! random shapes, every tile shape, and the tuning cache.

use crate::testing::{assert_close, gpu, randn, Tol, AWKWARD};
use crate::{Activation, Device, Matmul, Rng, Tensor};

/// One product: sizes, an optional batch, which operands are transposed views, α, β, a bias,
/// the activation and the seed of the data.
#[derive(Clone, Copy)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    batch: Option<usize>,
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
    bias: bool,
    act: Activation,
    seed: u64,
}

impl Default for Case {
    fn default() -> Case {
        Case {
            m: 1,
            n: 1,
            k: 1,
            batch: None,
            ta: false,
            tb: false,
            alpha: 1.0,
            beta: 0.0,
            bias: false,
            act: Activation::None,
            seed: 0,
        }
    }
}

/// One product on both devices: op(A) [batch?, M, K], op(B) [batch?, K, N], transposed
/// operands made as views of their transposes. C starts as NaN on the GPU so an element never
/// written, or C read at β = 0, fails.
fn check(case: Case) {
    let Case {
        m,
        n,
        k,
        batch,
        ta,
        tb,
        alpha,
        beta,
        bias,
        act,
        seed,
    } = case;
    let (gpu, cpu) = (Device::Gpu(gpu()), Device::Cpu);
    let bs = batch.unwrap_or(1);
    let lead = |r: usize, c: usize| match batch {
        Some(b) => vec![b, r, c],
        None => vec![r, c],
    };
    let operand = |dev: &Device, data: &[f32], r: usize, c: usize, trans: bool| -> Tensor {
        if trans {
            let t = Tensor::from_slice(dev, data, &lead(c, r)).unwrap();
            let rank = t.rank();
            t.transpose(rank - 2, rank - 1).unwrap()
        } else {
            Tensor::from_slice(dev, data, &lead(r, c)).unwrap()
        }
    };
    let a = randn(seed, bs * m * k);
    let b = randn(seed + 1, bs * k * n);
    let c0 = randn(seed + 2, bs * m * n);
    let bias_v = randn(seed + 3, n);
    let mut results = Vec::new();
    for dev in [&gpu, &cpu] {
        let (ta_t, tb_t) = (operand(dev, &a, m, k, ta), operand(dev, &b, k, n, tb));
        let bias_t = Tensor::from_slice(dev, &bias_v, &[n]).unwrap();
        let init = if beta == 0.0 && matches!(dev, Device::Gpu(_)) {
            vec![f32::NAN; c0.len()]
        } else {
            c0.clone()
        };
        let c = Tensor::from_slice(dev, &init, &lead(m, n)).unwrap();
        let mut mm = Matmul::new(&ta_t, &tb_t).alpha(alpha).activation(act);
        if bias {
            mm = mm.bias(&bias_t);
        }
        mm.accumulate_into(&c, beta).unwrap();
        results.push(c.read_blocking().unwrap());
    }
    // f32 sums of K products of unit normals: error grows like sqrt(K)·ε·|terms|.
    let tol = Tol {
        abs: 2e-5 * (k as f64).sqrt(),
        rel: 1e-4,
    };
    let what = format!("matmul m={m} n={n} k={k} batch={batch:?} ta={ta} tb={tb} α={alpha} β={beta} bias={bias} {act:?}");
    assert_close(&what, &results[0], &results[1], tol);
}

#[test]
fn matches_cpu_for_every_transpose_on_the_named_shapes() {
    let shapes = [
        (1, 1, 1),
        (1, 64, 1),
        (17, 33, 65),
        (127, 129, 255),
        (1000, 1, 1000),
        (1, 1000, 1000),
    ];
    let mut seed = 10;
    for &(m, n, k) in &shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            seed += 4;
            check(Case {
                m,
                n,
                k,
                batch: None,
                ta,
                tb,
                alpha: 1.0,
                beta: 0.0,
                bias: false,
                act: Activation::None,
                seed,
            });
        }
    }
}

#[test]
fn matches_cpu_batched_with_alpha_beta_bias_and_activations() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];
    for (i, act) in acts.into_iter().enumerate() {
        check(Case {
            m: 33,
            n: 17,
            k: 7,
            batch: Some(3),
            ta: i % 2 == 0,
            tb: i % 3 == 0,
            alpha: 0.5,
            beta: 2.0,
            bias: true,
            act,
            seed: 100 + i as u64,
        });
    }
    check(Case {
        m: 5,
        n: 129,
        k: 31,
        batch: Some(2),
        ta: false,
        tb: false,
        alpha: -1.5,
        beta: 0.0,
        bias: true,
        act: Activation::Relu,
        seed: 200,
    });
    // Enough rows for the CPU epilogue (bias, activation) to go to the pool.
    check(Case {
        m: 301,
        n: 263,
        k: 9,
        batch: None,
        ta: false,
        tb: false,
        alpha: 1.0,
        beta: 0.0,
        bias: true,
        act: Activation::Tanh,
        seed: 201,
    });
}

#[test]
fn matches_cpu_on_seeded_random_shapes() {
    let mut rng = Rng::new(42);
    for i in 0..12 {
        let pick = |rng: &mut Rng| {
            if rng.uniform() < 0.5 {
                AWKWARD[rng.int(0, AWKWARD.len() - 1)]
            } else {
                rng.int(1, 300)
            }
        };
        let (m, n, k) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
        let batch = if rng.uniform() < 0.3 {
            Some(rng.int(1, 4))
        } else {
            None
        };
        check(Case {
            m,
            n,
            k,
            batch,
            ta: rng.uniform() < 0.5,
            tb: rng.uniform() < 0.5,
            alpha: 1.0,
            beta: 0.0,
            bias: false,
            act: Activation::None,
            seed: 300 + i,
        });
    }
}

#[test]
fn shares_a_2d_operand_across_the_batch() {
    let (gpu, cpu) = (Device::Gpu(gpu()), Device::Cpu);
    let x = randn(1, 3 * 9 * 5);
    let w = randn(2, 5 * 11);
    let mut out = Vec::new();
    for dev in [&gpu, &cpu] {
        let xt = Tensor::from_slice(dev, &x, &[3, 9, 5]).unwrap();
        let wt = Tensor::from_slice(dev, &w, &[5, 11]).unwrap();
        let y = xt.matmul(&wt).unwrap();
        assert_eq!(y.shape(), [3, 9, 11]);
        out.push(y.read_blocking().unwrap());
    }
    assert_close(
        "batch-shared B",
        &out[0],
        &out[1],
        Tol {
            abs: 1e-5,
            rel: 1e-5,
        },
    );
}

#[test]
fn every_tile_shape_computes_the_same_product() {
    let g = gpu();
    let (m, n, k) = (37u32, 71u32, 45u32);
    let a = randn(5, (m * k) as usize);
    let b = randn(6, (k * n) as usize);
    let want = {
        let dev = Device::Cpu;
        let at = Tensor::from_slice(&dev, &a, &[m as usize, k as usize]).unwrap();
        let bt = Tensor::from_slice(&dev, &b, &[k as usize, n as usize]).unwrap();
        at.matmul(&bt).unwrap().read_blocking().unwrap()
    };
    let dev = Device::Gpu(g.clone());
    let at = Tensor::from_slice(&dev, &a, &[m as usize, k as usize]).unwrap();
    let bt = Tensor::from_slice(&dev, &b, &[k as usize, n as usize]).unwrap();
    for tile in [
        super::TileConfig::T64X64,
        super::TileConfig::T32X64,
        super::TileConfig::T32X32,
        super::TileConfig::T8X128,
        super::TileConfig::T4X256,
        super::TileConfig::T128X8,
        super::TileConfig::D8X256,
        super::TileConfig::D16X128,
        super::TileConfig::D4X256,
    ] {
        let c = Tensor::from_slice(
            &dev,
            &vec![f32::NAN; (m * n) as usize],
            &[m as usize, n as usize],
        )
        .unwrap();
        let mut p = super::Params::row_major(m, n, k);
        let bufs = super::RawBindings {
            a: at.raw().unwrap(),
            b: bt.raw().unwrap(),
            bias: None,
            c: c.raw().unwrap(),
        };
        super::record(&g.inner, &mut p, &bufs, tile).unwrap();
        assert_close(
            &format!("tile {tile}"),
            &c.read_blocking().unwrap(),
            &want,
            Tol {
                abs: 1e-4,
                rel: 1e-4,
            },
        );
    }
}
