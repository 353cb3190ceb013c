//! Tests of the scheduler: parity with the CPU path and finite differences for every cell,
//! padding, dispatch and submission counts, truncated BPTT, the persistent path, lengths.

mod cells {
    use crate::nn::{Module, Recurrent};
    use crate::recurrent::CellKind;
    use crate::testing::{assert_close, gpu, Tol};
    use crate::{no_grad, Device, Rng, Tensor};

    const CELLS: [CellKind; 5] = [
        CellKind::RnnTanh,
        CellKind::RnnRelu,
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::GruResetBefore,
    ];

    fn stack(
        cell: CellKind,
        i: usize,
        h: usize,
        layers: usize,
        bi: bool,
        dev: &Device,
    ) -> Recurrent {
        stack_with(cell, i, h, layers, bi, dev, None)
    }

    fn stack_with(
        cell: CellKind,
        i: usize,
        h: usize,
        layers: usize,
        bi: bool,
        dev: &Device,
        persistent: Option<bool>,
    ) -> Recurrent {
        let b = match cell {
            CellKind::Lstm => Recurrent::lstm(i, h),
            CellKind::Gru => Recurrent::gru(i, h),
            CellKind::RnnTanh => Recurrent::rnn(i, h),
            CellKind::RnnRelu => Recurrent::rnn_relu(i, h),
            CellKind::GruResetBefore => Recurrent::gru_reset_before(i, h),
        };
        let b = b.layers(layers).bidirectional(bi);
        let b = match persistent {
            Some(on) => b.persistent(on),
            None => b,
        };
        b.build(dev, &mut Rng::new(11)).unwrap()
    }

    /// Everything a run produces: outputs, final states and the gradient of every input.
    fn run(
        cell: CellKind,
        dev: &Device,
        (t, b, i, h): (usize, usize, usize, usize),
        layers: usize,
        bi: bool,
        lengths: Option<&[f32]>,
        persistent: bool,
    ) -> Vec<(String, Vec<f32>)> {
        let model = stack_with(cell, i, h, layers, bi, dev, Some(persistent));
        let dirs = if bi { 2 } else { 1 };
        let mut rng = Rng::new(5);
        let x = Tensor::from_slice(dev, &rng.normals(t * b * i), &[t, b, i])
            .unwrap()
            .requires_grad();
        let h0 = Tensor::from_slice(
            dev,
            &rng.normals(layers * dirs * b * h),
            &[layers * dirs, b, h],
        )
        .unwrap()
        .requires_grad();
        let c0 = Tensor::from_slice(
            dev,
            &rng.normals(layers * dirs * b * h),
            &[layers * dirs, b, h],
        )
        .unwrap()
        .requires_grad();
        let lengths = lengths.map(|l| Tensor::from_slice(dev, l, &[b]).unwrap());
        let lstm = cell == CellKind::Lstm;
        let out = model
            .forward_with(
                &x,
                Some((&h0, if lstm { Some(&c0) } else { None })),
                lengths.as_ref(),
            )
            .unwrap();
        // A loss that weighs every output and final state differently.
        let wy =
            Tensor::from_slice(dev, &rng.normals(out.output.numel()), out.output.shape()).unwrap();
        let wh = Tensor::from_slice(dev, &rng.normals(out.h_n.numel()), out.h_n.shape()).unwrap();
        let mut loss = out
            .output
            .mul(&wy)
            .unwrap()
            .sum_all()
            .unwrap()
            .add(&out.h_n.mul(&wh).unwrap().sum_all().unwrap())
            .unwrap();
        if let Some(c_n) = &out.c_n {
            loss = loss.add(&c_n.square().unwrap().sum_all().unwrap()).unwrap();
        }
        loss.backward().unwrap();
        let mut v = vec![
            ("output".to_string(), out.output.read_blocking().unwrap()),
            ("h_n".to_string(), out.h_n.read_blocking().unwrap()),
            (
                "d x".to_string(),
                x.grad().unwrap().read_blocking().unwrap(),
            ),
            (
                "d h0".to_string(),
                h0.grad().unwrap().read_blocking().unwrap(),
            ),
        ];
        if lstm {
            v.push((
                "d c0".to_string(),
                c0.grad().unwrap().read_blocking().unwrap(),
            ));
        }
        for (name, p) in model.named_parameters() {
            v.push((
                format!("d {name}"),
                p.grad().unwrap().read_blocking().unwrap(),
            ));
        }
        v
    }

    /// On the host a whole-sequence launch (the default there) splits the batch rows over the
    /// pool once and walks the steps per task: in both directions, with padding and the
    /// two-phase GRU, it must equal a launch per step exactly, on a batch small enough to run on
    /// one task, one the per-step path splits differently (37 rows: 19 + 18 per step against
    /// the same per sequence, 13 rows: one task per step against 7 + 6), and one row.
    #[test]
    fn the_host_walks_a_whole_sequence_as_the_per_step_path_does() {
        let shapes = [(4, 3, 5, 6), (6, 13, 5, 67), (3, 37, 4, 67), (5, 1, 3, 40)];
        for cell in CELLS {
            for shape in shapes {
                let lengths: Vec<f32> = (0..shape.1)
                    .map(|b| (shape.0 - b % shape.0) as f32)
                    .collect();
                let [per_step, walked] = [false, true]
                    .map(|on| run(cell, &Device::Cpu, shape, 2, true, Some(&lengths), on));
                for ((name, a), (_, b)) in per_step.iter().zip(&walked) {
                    let differ: Vec<usize> = (0..a.len().max(b.len()))
                        .filter(|&k| a.get(k).map(|v| v.to_bits()) != b.get(k).map(|v| v.to_bits()))
                        .collect();
                    assert!(
                        differ.is_empty(),
                        "{cell:?} {shape:?} {name}: the whole-sequence walk differs at {} of {} \
                         elements, first at {} (per step {:?}, walked {:?})",
                        differ.len(),
                        a.len(),
                        differ[0],
                        a.get(differ[0]),
                        b.get(differ[0]),
                    );
                }
            }
        }
    }

    #[test]
    fn every_cell_matches_cpu_forward_and_every_gradient() {
        let g = Device::Gpu(gpu());
        let shapes = [
            (1, 1, 1, 1),
            (5, 3, 7, 17),
            (4, 7, 9, 67),
            (200, 2, 3, 5),
            (3, 19, 4, 9),
        ];
        for cell in CELLS {
            for (k, &shape) in shapes.iter().enumerate() {
                let bi = k % 2 == 1;
                let layers = if k == 1 { 2 } else { 1 };
                let lengths: Option<Vec<f32>> = (shape.1 > 1).then(|| {
                    (0..shape.1)
                        .map(|b| (shape.0 - b % shape.0) as f32)
                        .collect()
                });
                let cpu_run = run(
                    cell,
                    &Device::Cpu,
                    shape,
                    layers,
                    bi,
                    lengths.as_deref(),
                    false,
                );
                // Both GPU paths: a dispatch per step, and the whole sequence in one dispatch.
                for persistent in [false, true] {
                    let gpu_run = run(cell, &g, shape, layers, bi, lengths.as_deref(), persistent);
                    for ((name, a), (_, b)) in gpu_run.iter().zip(&cpu_run) {
                        let what = format!("{cell:?} {shape:?} layers={layers} bi={bi} persistent={persistent}: {name}");
                        assert_close(
                            &what,
                            a,
                            b,
                            Tol {
                                abs: 1e-4,
                                rel: 1e-3,
                            },
                        );
                    }
                }
            }
        }
    }

    /// The per-step forward and backward with each unit's recurrent sum split over KS lanes
    /// (what a GPU runs; forced here through the device's tuning entry, since lavapipe would
    /// choose 1) match the CPU path, outputs and every gradient, on shapes that leave lanes past
    /// H and rows past B, for every split the kernels take.
    #[test]
    fn the_k_split_step_matches_cpu_for_every_split() {
        use crate::kernels::recurrent_step_forward::K_SPLIT_KEY;
        let shapes = [(3, 1, 2, 1), (4, 13, 5, 67), (2, 37, 3, 33), (2, 2, 4, 257)];
        for ks in [2u32, 4, 8, 16] {
            let private = crate::Gpu::new_blocking().unwrap();
            crate::gpu::lock(&private.inner.tuning)
                .insert(K_SPLIT_KEY, vec![("KS", f64::from(ks))]);
            let g = Device::Gpu(private);
            for cell in CELLS {
                for (k, &shape) in shapes.iter().enumerate() {
                    let bi = k % 2 == 1;
                    let lengths: Option<Vec<f32>> = (shape.1 > 1).then(|| {
                        (0..shape.1)
                            .map(|b| (shape.0 - b % shape.0) as f32)
                            .collect()
                    });
                    let want = run(cell, &Device::Cpu, shape, 1, bi, lengths.as_deref(), false);
                    let got = run(cell, &g, shape, 1, bi, lengths.as_deref(), false);
                    for ((name, a), (_, b)) in got.iter().zip(&want) {
                        let what = format!("KS={ks} {cell:?} {shape:?} bi={bi}: {name}");
                        assert_close(
                            &what,
                            a,
                            b,
                            Tol {
                                abs: 1e-4,
                                rel: 1e-3,
                            },
                        );
                    }
                }
            }
        }
    }

    /// A stack converted to f16 runs forward (under no_grad) as the f32 stack holding the same
    /// f16-rounded weights does, on both devices, for every cell, on the persistent, per-step
    /// and k-split paths, stacked and bidirectional, with lengths; the converted parameters
    /// are f16. With the tape recording and an input that tracks gradients it is refused.
    #[test]
    fn f16_weights_run_forward_as_their_f32_widening() {
        use crate::kernels::recurrent_step_forward::K_SPLIT_KEY;
        use crate::testing::randn;
        use crate::DType;
        let split = crate::Gpu::new_blocking().unwrap();
        crate::gpu::lock(&split.inner.tuning).insert(K_SPLIT_KEY, vec![("KS", 4.0)]);
        let devices = [
            (Device::Gpu(gpu()), None),
            (Device::Gpu(gpu()), Some(false)),
            (Device::Gpu(split), Some(false)),
            (Device::Cpu, None),
        ];
        let shapes = [
            (3usize, 1usize, 2usize, 1usize),
            (4, 13, 5, 67),
            (2, 3, 7, 129),
        ];
        for cell in CELLS {
            for (k, &(t, b, i, h)) in shapes.iter().enumerate() {
                let bi = k != 1;
                for (dev, persistent) in &devices {
                    let m = stack_with(cell, i, h, 2, bi, dev, *persistent);
                    let half = m.to_dtype(DType::F16).unwrap();
                    assert!(half
                        .parameters()
                        .iter()
                        .all(|p| p.dtype() == DType::F16 && !p.tracks_grad()));
                    let widened = half.to_dtype(DType::F32).unwrap();
                    let x = Tensor::from_slice(dev, &randn(5, t * b * i), &[t, b, i]).unwrap();
                    let lens: Vec<f32> = (0..b).map(|r| (t - r % t) as f32).collect();
                    let lengths = Tensor::from_slice(dev, &lens, &[b]).unwrap();
                    let got = no_grad(|| half.forward_with(&x, None, Some(&lengths))).unwrap();
                    let want = no_grad(|| widened.forward_with(&x, None, Some(&lengths))).unwrap();
                    let what = format!("{cell:?} {:?} bi={bi} {dev} {persistent:?}", (t, b, i, h));
                    for (name, a, w) in [
                        ("output", &got.output, &want.output),
                        ("h_n", &got.h_n, &want.h_n),
                    ] {
                        assert_eq!(a.dtype(), DType::F32, "{what}: {name}");
                        assert_close(
                            &format!("{what}: {name}"),
                            &a.read_blocking().unwrap(),
                            &w.read_blocking().unwrap(),
                            Tol {
                                abs: 1e-5,
                                rel: 1e-4,
                            },
                        );
                    }
                }
            }
        }
        let dev = Device::Cpu;
        let half = stack(CellKind::Lstm, 2, 3, 1, false, &dev)
            .to_dtype(DType::F16)
            .unwrap();
        let x = Tensor::full(&dev, &[2, 1, 2], 1.0).unwrap().requires_grad();
        let e = half.forward_with(&x, None, None).unwrap_err();
        assert!(
            matches!(e, crate::Error::Unsupported { .. }) && e.to_string().contains("no_grad"),
            "{e}"
        );
    }

    #[test]
    fn every_cell_matches_finite_differences_on_the_cpu() {
        let dev = Device::Cpu;
        let (t, b, i, h) = (3, 2, 2, 3);
        for cell in CELLS {
            let model = stack(cell, i, h, 1, true, &dev);
            let mut rng = Rng::new(21);
            let x = Tensor::from_slice(&dev, &rng.normals(t * b * i), &[t, b, i])
                .unwrap()
                .requires_grad();
            let h0 = Tensor::from_slice(&dev, &rng.normals(2 * b * h), &[2, b, h])
                .unwrap()
                .requires_grad();
            let c0 = Tensor::from_slice(&dev, &rng.normals(2 * b * h), &[2, b, h])
                .unwrap()
                .requires_grad();
            let wy = Tensor::from_slice(&dev, &rng.normals(t * b * 2 * h), &[t, b, 2 * h]).unwrap();
            let lengths = Tensor::from_slice(&dev, &[3.0, 2.0], &[b]).unwrap();
            let lstm = cell == CellKind::Lstm;
            let loss = || {
                let out = model
                    .forward_with(
                        &x,
                        Some((&h0, if lstm { Some(&c0) } else { None })),
                        Some(&lengths),
                    )
                    .unwrap();
                let mut l = out
                    .output
                    .mul(&wy)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .add(&out.h_n.sum_all().unwrap())
                    .unwrap();
                if let Some(c) = out.c_n {
                    l = l.add(&c.sum_all().unwrap()).unwrap();
                }
                l
            };
            let mut params: Vec<(String, Tensor)> = model.named_parameters();
            params.push(("x".into(), x.clone()));
            params.push(("h0".into(), h0.clone()));
            if lstm {
                params.push(("c0".into(), c0.clone()));
            }
            for (_, p) in &params {
                p.zero_grad();
            }
            loss().backward().unwrap();
            for (name, p) in &params {
                let analytic = p.grad().unwrap().read_blocking().unwrap();
                let base = p.read_blocking().unwrap();
                for k in 0..base.len() {
                    let eval = |d: f32| {
                        let mut v = base.clone();
                        v[k] += d;
                        p.write(&v).unwrap();
                        f64::from(no_grad(loss).read_blocking().unwrap()[0])
                    };
                    let hstep = 1e-2;
                    let numeric = (eval(hstep) - eval(-hstep)) / (2.0 * f64::from(hstep));
                    p.write(&base).unwrap();
                    let err = (numeric - f64::from(analytic[k])).abs();
                    assert!(
                        err <= 3e-3 * (1.0 + numeric.abs()),
                        "{cell:?} {name}[{k}]: tape {} vs numeric {numeric}",
                        analytic[k]
                    );
                }
            }
        }
    }

    #[test]
    fn a_padded_sequence_gives_what_it_gives_alone() {
        let dev = Device::Gpu(gpu());
        for cell in [CellKind::Lstm, CellKind::Gru] {
            let model = stack(cell, 4, 6, 2, true, &dev);
            let (t, b) = (5, 3);
            let xs = Rng::new(2).normals(t * b * 4);
            let x = Tensor::from_slice(&dev, &xs, &[t, b, 4]).unwrap();
            let lengths = Tensor::from_slice(&dev, &[5.0, 2.0, 4.0], &[b]).unwrap();
            let batched = model.forward_with(&x, None, Some(&lengths)).unwrap();
            let (ys, hs) = (
                batched.output.read_blocking().unwrap(),
                batched.h_n.read_blocking().unwrap(),
            );
            for (bi, len) in [(1usize, 2usize), (2, 4)] {
                let alone: Vec<f32> = (0..len)
                    .flat_map(|ti| xs[(ti * b + bi) * 4..(ti * b + bi) * 4 + 4].to_vec())
                    .collect();
                let xa = Tensor::from_slice(&dev, &alone, &[len, 1, 4]).unwrap();
                let out = model.forward_with(&xa, None, None).unwrap();
                let ya = out.output.read_blocking().unwrap();
                for ti in 0..t {
                    let got = &ys[(ti * b + bi) * 12..(ti * b + bi) * 12 + 12];
                    let want: Vec<f32> = if ti < len {
                        ya[ti * 12..ti * 12 + 12].to_vec()
                    } else {
                        vec![0.0; 12]
                    };
                    assert_close(
                        &format!("{cell:?} seq {bi} step {ti}"),
                        got,
                        &want,
                        Tol {
                            abs: 1e-5,
                            rel: 1e-5,
                        },
                    );
                }
                let ha = out.h_n.read_blocking().unwrap();
                for s in 0..4 {
                    assert_close(
                        &format!("{cell:?} seq {bi} h_n[{s}]"),
                        &hs[(s * b + bi) * 6..(s * b + bi) * 6 + 6],
                        &ha[s * 6..s * 6 + 6],
                        Tol {
                            abs: 1e-5,
                            rel: 1e-5,
                        },
                    );
                }
            }
        }
    }

    #[test]
    fn dispatches_grow_with_steps_and_a_training_step_is_one_submission() {
        let g = crate::Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(g.clone());
        let (layers, b, i, h) = (2, 4, 8, 16);
        let model = stack_with(CellKind::Lstm, i, h, layers, false, &dev, Some(false));
        let mut opt = crate::Optimizer::adam(model.parameters(), 1e-3);
        let mut counts = Vec::new();
        for t in [10usize, 40] {
            let x = Tensor::from_slice(&dev, &Rng::new(1).normals(t * b * i), &[t, b, i]).unwrap();
            let step = |opt: &mut crate::Optimizer| -> (u64, u64) {
                let before = g.stats();
                opt.zero_grad();
                let y = model.forward(&x).unwrap();
                let fwd = g.stats().since(&before).dispatches;
                y.square().unwrap().sum_all().unwrap().backward().unwrap();
                opt.step().unwrap();
                let all = g.stats().since(&before);
                (fwd, all.dispatches - fwd)
            };
            step(&mut opt); // the first step of a shape may autotune matmul tiles (waits)
            g.flush().unwrap();
            let before = g.stats();
            let (fwd, rest) = step(&mut opt);
            assert_eq!(
                g.stats().since(&before).submissions,
                0,
                "nothing is submitted while recording"
            );
            g.flush().unwrap();
            assert_eq!(
                g.stats().since(&before).submissions,
                1,
                "forward + backward + update = one submission"
            );
            // At most L·(T + c) each way: the steps plus a constant per layer.
            assert!(
                fwd <= (layers * (t + 10)) as u64,
                "T={t}: {fwd} forward dispatches"
            );
            assert!(
                rest <= (layers * (t + 24)) as u64 + 8,
                "T={t}: {rest} backward and update dispatches"
            );
            counts.push((fwd, rest));
        }
        // Linear in T: 30 more steps cost exactly L·30 more dispatches each way.
        assert_eq!(counts[1].0 - counts[0].0, (layers * 30) as u64);
        assert_eq!(counts[1].1 - counts[0].1, (layers * 30) as u64);
    }
}

mod truncation_tests {
    use crate::nn::{Module, Recurrent};
    use crate::testing::{assert_close, gpu, Tol};
    use crate::{Device, Rng, Tensor};

    /// Truncated BPTT: carrying the final state, detached, into the next window gives the same
    /// outputs as one long run, and no gradient crosses the window boundary.
    #[test]
    fn carried_detached_state_continues_the_sequence() {
        let dev = Device::Gpu(gpu());
        let lstm = Recurrent::lstm(3, 5)
            .layers(2)
            .build(&dev, &mut Rng::new(4))
            .unwrap();
        let xs = Rng::new(6).normals(6 * 2 * 3);
        let whole = Tensor::from_slice(&dev, &xs, &[6, 2, 3]).unwrap();
        let long = lstm
            .forward_with(&whole, None, None)
            .unwrap()
            .output
            .read_blocking()
            .unwrap();
        let first = Tensor::from_slice(&dev, &xs[..18], &[3, 2, 3])
            .unwrap()
            .requires_grad();
        let second = Tensor::from_slice(&dev, &xs[18..], &[3, 2, 3])
            .unwrap()
            .requires_grad();
        let a = lstm.forward_with(&first, None, None).unwrap();
        let (h, c) = (a.h_n.detach(), a.c_n.unwrap().detach());
        assert!(!h.tracks_grad() && !c.tracks_grad());
        let b = lstm
            .forward_with(&second, Some((&h, Some(&c))), None)
            .unwrap();
        let mut joined = a.output.read_blocking().unwrap();
        joined.extend(b.output.read_blocking().unwrap());
        assert_close(
            "two windows vs one run",
            &joined,
            &long,
            Tol {
                abs: 1e-5,
                rel: 1e-5,
            },
        );
        b.output.sum_all().unwrap().backward().unwrap();
        assert!(second.grad().is_some());
        assert!(
            first.grad().is_none(),
            "no gradient crosses the window boundary"
        );
        // The parameters' gradients are those of a run that starts from the same state given
        // as plain constants.
        let grads = |lstm: &Recurrent| -> Vec<f32> {
            lstm.parameters()
                .iter()
                .flat_map(|p| p.grad().unwrap().read_blocking().unwrap())
                .collect()
        };
        let carried = grads(&lstm);
        lstm.parameters().iter().for_each(Tensor::zero_grad);
        let (hv, cv) = (h.read_blocking().unwrap(), c.read_blocking().unwrap());
        let h_const = Tensor::from_slice(&dev, &hv, h.shape()).unwrap();
        let c_const = Tensor::from_slice(&dev, &cv, c.shape()).unwrap();
        let again = lstm
            .forward_with(&second, Some((&h_const, Some(&c_const))), None)
            .unwrap();
        again.output.sum_all().unwrap().backward().unwrap();
        assert_close(
            "parameter gradients of the second window",
            &grads(&lstm),
            &carried,
            Tol {
                abs: 1e-6,
                rel: 1e-6,
            },
        );
    }
}

mod persistent_tests {
    use crate::nn::{Module, Recurrent};
    use crate::{Device, Rng, Tensor};

    /// On the persistent path a layer's dispatch count does not grow with T: O(L) each way.
    #[test]
    fn the_persistent_path_is_a_constant_number_of_dispatches() {
        let g = crate::Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(g.clone());
        let model = Recurrent::gru(5, 12)
            .layers(2)
            .build(&dev, &mut Rng::new(1))
            .unwrap();
        // Small states take the persistent path by default (the builder does not force it).
        let mut counts = Vec::new();
        for t in [5usize, 60] {
            let x = Tensor::from_slice(&dev, &Rng::new(2).normals(t * 3 * 5), &[t, 3, 5]).unwrap();
            let run = || {
                let before = g.stats();
                let y = model.forward(&x).unwrap();
                y.sum_all().unwrap().backward().unwrap();
                g.stats().since(&before).dispatches
            };
            run();
            counts.push(run());
        }
        assert_eq!(
            counts[0], counts[1],
            "dispatches for T = 5 and T = 60: {counts:?}"
        );
    }
}

mod lengths_tests {
    use crate::nn::{Module, Recurrent};
    use crate::testing::gpu;
    use crate::{Device, Error, Rng, Tensor};

    /// Lengths given as a view into a larger tensor mean what they say on both devices, and
    /// lengths on another device are a typed error.
    #[test]
    fn lengths_views_and_devices_are_honoured() {
        let g = Device::Gpu(gpu());
        let xs = Rng::new(3).normals(5 * 2 * 3);
        let mut outs = Vec::new();
        for dev in [&g, &Device::Cpu] {
            let lstm = Recurrent::lstm(3, 4).build(dev, &mut Rng::new(1)).unwrap();
            let x = Tensor::from_slice(dev, &xs, &[5, 2, 3]).unwrap();
            let all = Tensor::from_slice(dev, &[9.0, 9.0, 5.0, 2.0], &[4]).unwrap();
            let view = lstm
                .forward_with(&x, None, Some(&all.narrow(0, 2, 2).unwrap()))
                .unwrap();
            let own = Tensor::from_slice(dev, &[5.0, 2.0], &[2]).unwrap();
            let direct = lstm.forward_with(&x, None, Some(&own)).unwrap();
            assert_eq!(
                view.output.read_blocking().unwrap(),
                direct.output.read_blocking().unwrap()
            );
            outs.push(direct.output.read_blocking().unwrap());
            let other = Tensor::from_slice(
                if dev.as_gpu().is_some() {
                    &Device::Cpu
                } else {
                    &g
                },
                &[5.0, 2.0],
                &[2],
            )
            .unwrap();
            assert!(matches!(
                lstm.forward_with(&x, None, Some(&other)),
                Err(Error::DeviceMismatch { .. })
            ));
        }
        for (a, b) in outs[0].iter().zip(&outs[1]) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    /// Dropout acts between layers in training mode only: never after the last layer, and an
    /// evaluating model equals one built without dropout (same seed, same weights).
    #[test]
    fn dropout_acts_between_layers_in_training_only() {
        let dev = Device::Gpu(gpu());
        let x = Tensor::from_slice(&dev, &Rng::new(5).normals(4 * 3 * 6), &[4, 3, 6]).unwrap();
        let run = |m: &Recurrent| m.forward(&x).unwrap().read_blocking().unwrap();
        let build = |layers: usize, p: f32| {
            Recurrent::lstm(6, 8)
                .layers(layers)
                .dropout(p)
                .build(&dev, &mut Rng::new(2))
                .unwrap()
        };
        let plain = run(&build(2, 0.0));
        let mut dropped = build(2, 0.5);
        assert_ne!(run(&dropped), plain, "dropout between the two layers");
        dropped.set_training(false);
        assert_eq!(run(&dropped), plain, "no dropout in evaluation");
        assert_eq!(
            run(&build(1, 0.5)),
            run(&build(1, 0.0)),
            "none after the last layer"
        );
    }

    #[test]
    fn a_cell_state_for_a_cell_without_one_is_refused() {
        let dev = Device::Cpu;
        let gru = Recurrent::gru(3, 4).build(&dev, &mut Rng::new(1)).unwrap();
        let x = Tensor::zeros(&dev, &[2, 1, 3]).unwrap();
        let s = Tensor::zeros(&dev, &[1, 1, 4]).unwrap();
        assert!(matches!(
            gru.forward_with(&x, Some((&s, Some(&s))), None),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(gru.forward_with(&x, Some((&s, None)), None).is_ok());
    }
}
