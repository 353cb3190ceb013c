//! The workload of every case: the cost formula, with its napkin math, and how to make the
//! inputs and one call on a device. The case table in `gpu_vs_cpu.rs` says which shapes run.

use crate::char_transformer::char_rnn;
use timeloom::nn::{Activation, Linear, Module, Recurrent, Sequential};
use timeloom::{
    attention, attention_reference, embedding, no_grad, AttentionOptions, ConvOptions,
    CrossEntropy, DType, Device, Error, Optimizer, Tensor,
};

/// What one call does, from the formula written beside its case.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Floating-point operations.
    Flop(f64),
    /// Bytes the call must move at least (each tensor read or written once per pass).
    Bytes(f64),
}

/// One call of an op on one path, with its inputs made beforehand.
pub type Call = Box<dyn FnMut() -> Result<(), Error>>;

/// Makes the inputs of a case for a path on a device (untimed) and returns one call of the op.
pub type Prepare = Box<dyn Fn(&str, &Device) -> Result<Call, Error>>;

/// A case on one shape: what a call costs and how to make one.
pub struct Workload {
    pub work: Work,
    /// Sequences per call, for the recurrent rows' sequences/s.
    pub sequences: Option<usize>,
    /// Tokens generated per call, for the generation rows' tokens/s.
    pub tokens: Option<usize>,
    pub prepare: Prepare,
}

/// Seeded normal values, a different stream per length.
pub fn normals(n: usize) -> Vec<f32> {
    timeloom::Rng::new(n as u64).normals(n)
}

pub fn input(dev: &Device, shape: &[usize]) -> Result<Tensor, Error> {
    Tensor::from_slice(dev, &normals(shape.iter().product()), shape)
}

pub fn leaf(dev: &Device, shape: &[usize]) -> Result<Tensor, Error> {
    Ok(input(dev, shape)?.requires_grad())
}

/// Class ids 0, 7, 14, ... modulo `classes`, as the f32 the ops take.
pub fn ids(dev: &Device, n: usize, classes: usize) -> Result<Tensor, Error> {
    let v: Vec<f32> = (0..n).map(|k| ((k * 7) % classes) as f32).collect();
    Tensor::from_slice(dev, &v, &[n])
}

/// Wraps an op returning a tensor as a call that drops it (its buffer goes back to the pool
/// once the device is done with it).
pub fn boxed<T>(mut f: impl FnMut() -> Result<T, Error> + 'static) -> Result<Call, Error> {
    Ok(Box::new(move || f().map(drop)))
}

/// A workload costing `work` per call, made by `prepare`.
pub fn plain(
    work: Work,
    prepare: impl Fn(&str, &Device) -> Result<Call, Error> + 'static,
) -> Workload {
    Workload {
        work,
        sequences: None,
        tokens: None,
        prepare: Box::new(prepare),
    }
}

/// The cost formula and the call of every case; `size` reads the shape's named sizes.
pub fn workload(op: &'static str, size: &dyn Fn(&str) -> usize) -> Workload {
    let bytes = |b: usize| Work::Bytes(b as f64);
    let flop = |f: usize| Work::Flop(f as f64);
    match op {
        "matmul" => {
            let (m, n, k) = (size("M"), size("N"), size("K"));
            // 2·M·N·K: one multiply and one add per term.
            plain(flop(2 * m * n * k), move |_, dev| {
                let (a, b) = (input(dev, &[m, k])?, input(dev, &[k, n])?);
                boxed(move || a.matmul(&b))
            })
        }
        "matmul_f16" => {
            let (m, n, k) = (size("M"), size("N"), size("K"));
            plain(flop(2 * m * n * k), move |_, dev| {
                let a = input(dev, &[m, k])?;
                let b = input(dev, &[k, n])?.to_dtype(DType::F16)?;
                boxed(move || a.matmul(&b))
            })
        }
        "unary" => {
            let n = size("N");
            // Read x, write y: 8·N bytes; memory-bound everywhere.
            plain(bytes(8 * n), move |_, dev| {
                let x = input(dev, &[n])?;
                boxed(move || x.gelu())
            })
        }
        "unary_fwd_bwd" => {
            let n = size("N");
            // Forward 8·N; backward reads x and dy, writes dx: 12·N; the leaf's gradient
            // accumulation reads dx and the gradient and writes it: 12·N. 32·N bytes.
            plain(bytes(32 * n), move |_, dev| {
                let (x, dy) = (leaf(dev, &[n])?, input(dev, &[n])?);
                boxed(move || x.gelu()?.backward_with(&dy))
            })
        }
        "binary" => {
            let n = size("N");
            // Read a and b, write c: 12·N bytes.
            plain(bytes(12 * n), move |_, dev| {
                let (a, b) = (input(dev, &[n])?, input(dev, &[n])?);
                boxed(move || a.add(&b))
            })
        }
        "axpy" => {
            let n = size("N");
            // A leaf's gradient += dy: read dy and the gradient, write it: 12·N bytes.
            plain(bytes(12 * n), move |_, dev| {
                let (x, dy) = (leaf(dev, &[n])?, input(dev, &[n])?);
                boxed(move || x.backward_with(&dy))
            })
        }
        "dropout" => {
            let n = size("N");
            // Read x, write y (the mask is a hash of the index, never stored): 8·N bytes.
            plain(bytes(8 * n), move |_, dev| {
                let x = input(dev, &[n])?;
                boxed(move || x.dropout(0.5, 7))
            })
        }
        "reduce" => {
            let (r, c) = (size("R"), size("C"));
            // Read x, write one sum per row: 4·R·C + 4·R bytes.
            plain(bytes(4 * r * c + 4 * r), move |_, dev| {
                let x = input(dev, &[r, c])?;
                boxed(move || x.sum(1))
            })
        }
        "softmax_forward" => {
            let (r, c) = (size("R"), size("C"));
            // Read x, write y: 8·R·C bytes (a row stays in the workgroup between its passes).
            plain(bytes(8 * r * c), move |_, dev| {
                let x = input(dev, &[r, c])?;
                boxed(move || x.softmax())
            })
        }
        "softmax_fwd_bwd" => {
            let (r, c) = (size("R"), size("C"));
            // Forward 8·R·C; backward reads y and dy, writes dx: 12·R·C; accumulation 12·R·C.
            plain(bytes(32 * r * c), move |_, dev| {
                let (x, dy) = (leaf(dev, &[r, c])?, input(dev, &[r, c])?);
                boxed(move || x.softmax()?.backward_with(&dy))
            })
        }
        "cross_entropy_forward" => {
            let (r, c) = (size("R"), size("C"));
            // Read the logits once: 4·R·C bytes (the per-row results and their mean are O(R)).
            plain(bytes(4 * r * c), move |_, dev| {
                let (x, t) = (input(dev, &[r, c])?, ids(dev, r, c)?);
                boxed(move || CrossEntropy::new().compute(&x, &t))
            })
        }
        "cross_entropy_fwd_bwd" => {
            let (r, c) = (size("R"), size("C"));
            // Forward 4·R·C; backward reads the logits, writes dlogits: 8·R·C; accumulation
            // 12·R·C. 24·R·C bytes.
            plain(bytes(24 * r * c), move |_, dev| {
                let (x, t) = (leaf(dev, &[r, c])?, ids(dev, r, c)?);
                boxed(move || CrossEntropy::new().compute(&x, &t)?.backward())
            })
        }
        "layer_norm_forward" => {
            let (r, c) = (size("R"), size("C"));
            // Read x, write y (γ, β and the saved statistics are O(C + R)): 8·R·C bytes.
            plain(bytes(8 * r * c), move |_, dev| {
                let x = input(dev, &[r, c])?;
                let (g, b) = (input(dev, &[c])?, input(dev, &[c])?);
                boxed(move || x.layer_norm(Some((&g, &b)), 1e-5))
            })
        }
        "layer_norm_fwd_bwd" => {
            let (r, c) = (size("R"), size("C"));
            // Forward 8·R·C; backward reads x and dy, writes dx: 12·R·C; accumulation 12·R·C.
            plain(bytes(32 * r * c), move |_, dev| {
                let (x, dy) = (leaf(dev, &[r, c])?, input(dev, &[r, c])?);
                let (g, b) = (leaf(dev, &[c])?, leaf(dev, &[c])?);
                boxed(move || x.layer_norm(Some((&g, &b)), 1e-5)?.backward_with(&dy))
            })
        }
        "embedding_forward" => {
            let (v, n, d) = (size("V"), size("N"), size("D"));
            // Read N ids and N rows of D, write N·D: 8·N·D + 4·N bytes.
            plain(bytes(8 * n * d + 4 * n), move |_, dev| {
                let (w, t) = (input(dev, &[v, d])?, ids(dev, n, v)?);
                boxed(move || embedding(&w, &t))
            })
        }
        "embedding_fwd_bwd" => {
            let (v, n, d) = (size("V"), size("N"), size("D"));
            // Forward 8·N·D + 4·N; backward reads dy and the ids, writes dW: 4·N·D + 4·N +
            // 4·V·D; accumulation 12·V·D. The GPU kernel walks every token for each of the V·D
            // gradient elements (deterministic without atomics): V·N·D compare-and-adds, so it
            // runs far below this bound; the CPU twin scatters in N·D.
            plain(bytes(12 * n * d + 8 * n + 16 * v * d), move |_, dev| {
                let (w, t) = (leaf(dev, &[v, d])?, ids(dev, n, v)?);
                let dy = input(dev, &[n, d])?;
                boxed(move || embedding(&w, &t)?.backward_with(&dy))
            })
        }
        "optimizer_step" => {
            let n = size("N");
            // Adam reads θ, g, m, v and writes θ, m, v: 28·N bytes.
            plain(bytes(28 * n), move |_, dev| {
                let p = leaf(dev, &[n])?;
                p.backward_with(&input(dev, &[n])?)?; // the gradient every step reuses
                let mut opt = Optimizer::adam(vec![p], 1e-3);
                boxed(move || opt.step())
            })
        }
        "optimizer_step_clipped" => {
            let (count, n) = (size("P"), size("N"));
            // Per parameter: Σg² reads g (4·N), Adam moves 28·N; the clip scale is O(P).
            plain(bytes(32 * count * n), move |_, dev| {
                let mut params = Vec::new();
                for _ in 0..count {
                    let p = leaf(dev, &[n])?;
                    p.backward_with(&input(dev, &[n])?)?;
                    params.push(p);
                }
                let mut opt = Optimizer::adam(params, 1e-3).clip_grad_norm(1.0);
                boxed(move || opt.step())
            })
        }
        "pool2d_forward" | "pool2d_fwd_bwd" => {
            let (n, c, hw) = (size("N"), size("C"), size("HW"));
            let numel = n * c * hw * hw;
            // 2×2 max pool, stride 2. Forward reads x and writes y and the winning taps (a
            // quarter each): 6·NCHW bytes. Backward reads dy and the taps, writes dx: 6·NCHW;
            // accumulation 12·NCHW.
            let train = op == "pool2d_fwd_bwd";
            plain(
                bytes(if train { 24 * numel } else { 6 * numel }),
                move |_, dev| {
                    let x = leaf(dev, &[n, c, hw, hw])?;
                    let dy = input(dev, &[n, c, hw / 2, hw / 2])?;
                    boxed(move || {
                        let y = x.max_pool2d(2, 2, 0)?;
                        if train {
                            y.backward_with(&dy)?;
                        }
                        Ok(y)
                    })
                },
            )
        }
        "batch_norm_forward" | "batch_norm_fwd_bwd" => {
            let (n, c, hw) = (size("N"), size("C"), size("HW"));
            let numel = n * c * hw * hw;
            // Training mode, two-pass statistics: x read three times, y written once:
            // 16·NCHW bytes. Backward reads x and dy twice, writes dx: 20·NCHW; accumulation
            // 12·NCHW.
            let train = op == "batch_norm_fwd_bwd";
            plain(
                bytes(if train { 48 * numel } else { 16 * numel }),
                move |_, dev| {
                    let x = leaf(dev, &[n, c, hw, hw])?;
                    let dy = input(dev, &[n, c, hw, hw])?;
                    let (g, b) = (leaf(dev, &[c])?, leaf(dev, &[c])?);
                    let (mean, var) = (Tensor::zeros(dev, &[c])?, Tensor::full(dev, &[c], 1.0)?);
                    boxed(move || {
                        let y =
                            x.batch_norm(Some((&mean, &var)), Some((&g, &b)), true, 0.1, 1e-5)?;
                        if train {
                            y.backward_with(&dy)?;
                        }
                        Ok(y)
                    })
                },
            )
        }
        "conv2d_forward"
        | "conv2d_fwd_bwd_data"
        | "conv2d_fwd_bwd_weight"
        | "conv2d_train_step" => {
            let (n, ci, co, hw, k) = (
                size("N"),
                size("C_in"),
                size("C_out"),
                size("HW"),
                size("k"),
            );
            // (x needs a gradient, w needs a gradient, convolutions per call)
            let (dx, dw, convs) = match op {
                "conv2d_forward" => (false, false, 1),
                "conv2d_fwd_bwd_data" => (true, false, 2),
                "conv2d_fwd_bwd_weight" => (false, true, 2),
                _ => (true, true, 3),
            };
            // One convolution (stride 1, padding k/2): 2·N·C_out·HW²·C_in·k² FLOP; each
            // backward the same again.
            plain(
                flop(2 * n * co * hw * hw * ci * k * k * convs),
                move |_, dev| {
                    let mk = |shape: &[usize], grad: bool| {
                        input(dev, shape).map(|t| if grad { t.requires_grad() } else { t })
                    };
                    let x = mk(&[n, ci, hw, hw], dx)?;
                    let w = mk(&[co, ci, k, k], dw)?;
                    let b = mk(&[co], dw)?;
                    // Made before the clock starts: the rows time the convolution's own
                    // kernels, not a loss.
                    let dy = mk(&[n, co, hw, hw], false)?;
                    let o = ConvOptions::default().padding(k / 2);
                    boxed(move || {
                        let y = x.conv2d(&w, Some(&b), &o)?;
                        if dx || dw {
                            y.backward_with(&dy)?;
                        }
                        Ok(y)
                    })
                },
            )
        }
        "attention_forward" | "attention_train_step" => {
            let (batch, heads, len, dim) = (size("B"), size("H"), size("L"), size("d"));
            let bh = batch * heads;
            let train = op == "attention_train_step";
            // Causal: about half of 4·BH·L²·d FLOP forward, 3.5× that with the backward.
            let f = 2.0 * (bh * len * len * dim) as f64 * if train { 3.5 } else { 1.0 };
            plain(Work::Flop(f), move |path, dev| {
                let t = || input(dev, &[bh, len, dim]).map(|t| t.requires_grad());
                let (q, k, v) = (t()?, t()?, t()?);
                let fused = path != "gpu_reference";
                boxed(move || {
                    let o = if fused {
                        let opts = AttentionOptions {
                            causal: true,
                            heads,
                            ..AttentionOptions::default()
                        };
                        attention(&q, &k, &v, opts)?
                    } else {
                        attention_reference(&q, &k, &v, true, None, heads)?
                    };
                    if train {
                        o.sum_all()?.backward()?;
                    }
                    Ok(o)
                })
            })
        }
        "mlp_train_step" => {
            let (b, i, h, o) = (size("B"), size("I"), size("H"), size("O"));
            // Forward 2·B·(I·H + H·O); backward 2·B·I·H for the first weight (the input needs
            // no gradient, so no backward-data there) and 4·B·H·O for the second layer's two:
            // 4·B·I·H + 6·B·H·O FLOP, Adam aside.
            plain(flop(4 * b * i * h + 6 * b * h * o), move |_, dev| {
                let mut rng = timeloom::Rng::new(1);
                let model = Sequential::new()
                    .add(Linear::new(dev, i, h, &mut rng)?)
                    .add(Activation::Relu)
                    .add(Linear::new(dev, h, o, &mut rng)?);
                let mut opt = Optimizer::adam(model.parameters(), 1e-3);
                let x = input(dev, &[b, i])?;
                let t = ids(dev, b, o)?;
                boxed(move || {
                    opt.zero_grad();
                    CrossEntropy::new()
                        .compute(&model.forward(&x)?, &t)?
                        .backward()?;
                    opt.step()
                })
            })
        }
        "lstm_forward" | "lstm_train_step" | "gru_forward" | "gru_train_step"
        | "lstm_forward_f16" | "gru_forward_f16" => {
            let (t, b, i, h) = (size("T"), size("B"), size("I"), size("H"));
            let lstm = op.starts_with("lstm");
            let train = op.ends_with("train_step");
            let half = op.ends_with("_f16");
            let gates = if lstm { 4 } else { 3 };
            // Forward: 2·T·B·(I + H)·G·H FLOP. The backward adds the same for dW_ih and dW_hh
            // and the recurrent sweep's 2·T·B·H·G·H, but no dX (the input needs no gradient):
            // a training step is 2·T·B·G·H·(2·I + 3·H).
            let f = if train {
                2 * t * b * gates * h * (2 * i + 3 * h)
            } else {
                2 * t * b * (i + h) * gates * h
            };
            let prepare = move |_: &str, dev: &Device| {
                let builder = match (lstm, std::env::var_os("TIMELOOM_GRU_RESET_BEFORE")) {
                    (true, _) => Recurrent::lstm(i, h),
                    (false, None) => Recurrent::gru(i, h),
                    (false, Some(_)) => Recurrent::gru_reset_before(i, h),
                };
                let builder = match std::env::var("TIMELOOM_PERSISTENT").as_deref() {
                    Ok("0") => builder.persistent(false),
                    Ok("1") => builder.persistent(true),
                    _ => builder,
                };
                let model = builder.build(dev, &mut timeloom::Rng::new(2))?;
                // The f16 copy alone stays on the device (the f32 one is dropped).
                let model = if half {
                    let copy = model.to_dtype(DType::F16)?;
                    drop(model);
                    if let Device::Gpu(g) = dev {
                        g.synchronize()?;
                        g.trim_pool();
                    }
                    copy
                } else {
                    model
                };
                let mut opt = Optimizer::adam(model.parameters(), 1e-3);
                let x = input(dev, &[t, b, i])?;
                boxed(move || {
                    if !train {
                        return no_grad(|| model.forward(&x)).map(drop);
                    }
                    opt.zero_grad();
                    model.forward(&x)?.square()?.sum_all()?.backward()?;
                    opt.step()
                })
            };
            Workload {
                sequences: Some(b),
                ..plain(flop(f), prepare)
            }
        }
        "char_rnn_generate" => {
            let (v, h, n) = (size("V"), size("H"), size("N"));
            // Per token: the LSTM step 2·4H·(V + H) (a one-hot input, multiplied as a dense
            // one, as the example does) and the decoder 2·H·V.
            let per_token = 2 * 4 * h * (v + h) + 2 * h * v;
            let prepare = move |_: &str, dev: &Device| {
                // A corpus of `v` distinct characters; the untrained model samples as fast as a
                // trained one.
                let text: String = (0..4 * v)
                    .map(|k| char::from_u32(0x21 + (k % v) as u32).unwrap_or('?'))
                    .collect();
                let corpus = char_rnn::Corpus::new(&text)?;
                let cfg = char_rnn::Config {
                    hidden: h,
                    ..char_rnn::Config::default()
                };
                let mut rng = timeloom::Rng::new(3);
                let mut model = char_rnn::CharModel::new(&cfg, corpus.vocab.len(), dev, &mut rng)?;
                model.rnn.set_training(false);
                boxed(move || char_rnn::sample(&model, &corpus, "!", 0.8, 10, n, &mut rng))
            };
            Workload {
                tokens: Some(n),
                ..plain(flop(n * per_token), prepare)
            }
        }
        other => panic!("no workload for case `{other}`: add one beside the others"),
    }
}
