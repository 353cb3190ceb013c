//! The matmul owner's tests: parity with the CPU twin on awkward, batched, transposed and
//! random shapes, every tile shape, and the tuning cache.

use crate::tensor::dtype::{f16_to_f32, f32_to_f16};
use crate::testing::{assert_close, gpu, randn, Tol, AWKWARD};
use crate::{Activation, DType, Device, Matmul, Rng, Tensor};

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

/// Every tile shape, on a small shape and on one that spans several of the largest tiles with
/// ragged edges, with A plain and transposed (the loader's two paths), and with f16 operands.
#[test]
fn every_tile_shape_computes_the_same_product() {
    let g = gpu();
    let dev = Device::Gpu(g.clone());
    for (si, &(m, n, k)) in [(37u32, 71u32, 45u32), (263, 141, 29)].iter().enumerate() {
        let a = randn(5 + si as u64, (m * k) as usize);
        let b = randn(6 + si as u64, (k * n) as usize);
        let want = {
            let dev = Device::Cpu;
            let at = Tensor::from_slice(&dev, &a, &[m as usize, k as usize]).unwrap();
            let bt = Tensor::from_slice(&dev, &b, &[k as usize, n as usize]).unwrap();
            at.matmul(&bt).unwrap().read_blocking().unwrap()
        };
        let at = Tensor::from_slice(&dev, &a, &[m as usize, k as usize]).unwrap();
        // The same A stored transposed, [K, M], read through strides.
        let a_kt = at.t().unwrap().contiguous().unwrap();
        let bt = Tensor::from_slice(&dev, &b, &[k as usize, n as usize]).unwrap();
        for tile in super::ALL_TILES {
            // The sweep and the autotune skip a tile that does not fit: every one must here.
            assert!(tile.fits(&g.inner.limits), "tile {tile} does not fit");
            let c = Tensor::from_slice(
                &dev,
                &vec![f32::NAN; (m * n) as usize],
                &[m as usize, n as usize],
            )
            .unwrap();
            for transposed in [false, true] {
                let mut p = super::Params::row_major(m, n, k);
                let a_buf = if transposed {
                    (p.a_rs, p.a_cs) = (1, m);
                    a_kt.raw().unwrap()
                } else {
                    at.raw().unwrap()
                };
                let bufs = super::RawBindings {
                    a: a_buf,
                    b: bt.raw().unwrap(),
                    bias: None,
                    c: c.raw().unwrap(),
                    halves: [false; 3],
                };
                super::record(&g.inner, &mut p, &bufs, tile).unwrap();
                assert_close(
                    &format!("tile {tile}, {m}x{n}x{k}, A transposed {transposed}"),
                    &c.read_blocking().unwrap(),
                    &want,
                    Tol {
                        abs: 1e-4,
                        rel: 1e-4,
                    },
                );
            }
            if si > 0 {
                continue;
            }
            // The same tile with f16 A and B: the product of the widened values.
            let (ah, bh) = (
                at.to_dtype(DType::F16).unwrap(),
                bt.to_dtype(DType::F16).unwrap(),
            );
            let want_half = ah
                .to_dtype(DType::F32)
                .unwrap()
                .to_device(&Device::Cpu)
                .unwrap()
                .matmul(
                    &bh.to_dtype(DType::F32)
                        .unwrap()
                        .to_device(&Device::Cpu)
                        .unwrap(),
                )
                .unwrap()
                .read_blocking()
                .unwrap();
            let mut p = super::Params::row_major(m, n, k);
            let bufs = super::RawBindings {
                a: ah.raw().unwrap(),
                b: bh.raw().unwrap(),
                bias: None,
                c: c.raw().unwrap(),
                halves: [true, true, false],
            };
            super::record(&g.inner, &mut p, &bufs, tile).unwrap();
            assert_close(
                &format!("tile {tile}, f16 operands"),
                &c.read_blocking().unwrap(),
                &want_half,
                Tol {
                    abs: 1e-4,
                    rel: 1e-4,
                },
            );
        }
    }
}

/// f16 A, B and bias (each alone and all together), as views at odd element offsets and as
/// transposed views, on both devices: the f32 product of the widened values, on shapes of every
/// class (one row, square, few columns, primes).
#[test]
fn f16_operands_give_the_product_of_their_widened_values() {
    let shapes = [
        (1, 1, 1),
        (1, 67, 129),
        (37, 53, 31),
        (131, 5, 17),
        (64, 64, 64),
    ];
    let mut seed = 500;
    for &(m, n, k) in &shapes {
        for halves in [
            [true, false, false],
            [false, true, true],
            [true, true, true],
        ] {
            for (ta, tb) in [(false, true), (true, false)] {
                seed += 3;
                let a = randn(seed, m * k);
                let b = randn(seed + 1, k * n);
                let bias = randn(seed + 2, n);
                let mut out = Vec::new();
                for dev in [Device::Gpu(gpu()), Device::Cpu] {
                    // A matrix (maybe f16, at an odd offset into a longer tensor), as the
                    // [r, c] operand or the transposed view of a [c, r] one.
                    let operand = |data: &[f32], r: usize, c: usize, trans: bool, half: bool| {
                        let mut padded = vec![9.0];
                        padded.extend_from_slice(data);
                        let mut t = Tensor::from_slice(&dev, &padded, &[padded.len()]).unwrap();
                        if half {
                            t = t.to_dtype(DType::F16).unwrap();
                        }
                        let t = t.narrow(0, 1, data.len()).unwrap();
                        if trans {
                            t.reshape(&[c, r]).unwrap().t().unwrap()
                        } else {
                            t.reshape(&[r, c]).unwrap()
                        }
                    };
                    let at = operand(&a, m, k, ta, halves[0]);
                    let bt = operand(&b, k, n, tb, halves[1]);
                    let biast = operand(&bias, 1, n, false, halves[2])
                        .reshape(&[n])
                        .unwrap();
                    // The same operands in f32, holding the values f16 rounded them to.
                    let rounded = |v: &[f32], half: bool| -> Vec<f32> {
                        v.iter()
                            .map(|&x| if half { f16_to_f32(f32_to_f16(x)) } else { x })
                            .collect()
                    };
                    let wa = operand(&rounded(&a, halves[0]), m, k, ta, false);
                    let wb = operand(&rounded(&b, halves[1]), k, n, tb, false);
                    let wbias = operand(&rounded(&bias, halves[2]), 1, n, false, false)
                        .reshape(&[n])
                        .unwrap();
                    let got = Matmul::new(&at, &bt).bias(&biast).compute().unwrap();
                    let want = Matmul::new(&wa, &wb).bias(&wbias).compute().unwrap();
                    out.push((got.read_blocking().unwrap(), want.read_blocking().unwrap()));
                }
                for (got, want) in &out {
                    let what = format!("f16 {halves:?} m={m} n={n} k={k} ta={ta} tb={tb}");
                    let tol = Tol {
                        abs: 2e-5 * (k as f64).sqrt(),
                        rel: 1e-4,
                    };
                    assert_close(&what, got, want, tol);
                }
            }
        }
    }
}

/// Gradients flow to an f32 input through an f16 weight (dX = dY·W reads W as f16), equal to
/// those through the widened weight; an f16 operand that tracks gradients is refused, except
/// under no_grad.
#[test]
fn gradients_reach_an_f32_input_through_an_f16_weight() {
    for dev in [Device::Gpu(gpu()), Device::Cpu] {
        let (m, k, n) = (3, 7, 5);
        let xv = randn(71, m * k);
        let wv = randn(72, n * k);
        let w32 = Tensor::from_slice(&dev, &wv, &[n, k]).unwrap();
        let w16 = w32.to_dtype(DType::F16).unwrap();
        let widened = w16.to_dtype(DType::F32).unwrap();
        let mut grads = Vec::new();
        for w in [&w16, &widened] {
            let x = Tensor::from_slice(&dev, &xv, &[m, k])
                .unwrap()
                .requires_grad();
            let y = x.matmul(&w.t().unwrap()).unwrap();
            y.square().unwrap().sum_all().unwrap().backward().unwrap();
            grads.push(x.grad().unwrap().read_blocking().unwrap());
        }
        let tol = Tol {
            abs: 1e-5,
            rel: 1e-5,
        };
        assert_close(&format!("{dev}: dX"), &grads[0], &grads[1], tol);
        let x = Tensor::from_slice(&dev, &xv, &[m, k]).unwrap();
        let e = x.matmul(&w16.requires_grad().t().unwrap()).unwrap_err();
        assert!(matches!(e, crate::Error::Unsupported { .. }), "{dev}: {e}");
        // Under no_grad nothing is recorded: an f16 parameter is only read (inference).
        let tracked = w16.requires_grad();
        assert!(crate::no_grad(|| x.matmul(&tracked.t()?)).is_ok(), "{dev}");
    }
}
