//! Layers against PyTorch: fixtures written by `tools/make_fixtures.py` (torch, float64, stored as
//! f32) hold parameters, inputs, upstream gradients and torch's outputs and gradients; each
//! layer here loads the same parameters by PyTorch's names and must agree on both devices.

use std::sync::OnceLock;

use timeloom::io::{load, load_into, Weights};
use timeloom::nn::{BatchNorm2d, Conv1d, Conv2d, Flatten, Module, Recurrent, Sequential};
use timeloom::{ConvOptions, Device, Gpu, Rng, Tensor};

fn gpu() -> Device {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    Device::Gpu(
        GPU.get_or_init(|| Gpu::new_blocking().expect("the tests need a GPU adapter"))
            .clone(),
    )
}

fn fixture(name: &str) -> Weights {
    load(format!(
        "{}/tests/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn tensor(w: &Weights, dev: &Device, key: &str) -> Tensor {
    let (shape, v) = &w.tensors[key];
    Tensor::from_slice(dev, v, shape).unwrap()
}

/// |got − want| ≤ abs + rel·|want| everywhere, reporting the worst element.
fn close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .enumerate()
        // An exact match passes even at a zero bound (0 / 0 would read as a failure).
        .map(|(i, (g, w))| {
            (
                i,
                if g == w {
                    0.0
                } else {
                    (g - w).abs() / (abs + rel * w.abs())
                },
            )
        })
        .fold(
            (0, 0.0f32),
            |m, x| if x.1 > m.1 || x.1.is_nan() { x } else { m },
        );
    assert!(
        worst.1 <= 1.0,
        "{what}: worst at [{}]: got {}, want {}",
        worst.0,
        got[worst.0],
        want[worst.0]
    );
}

/// Backpropagates Σ y · w[key], the scalar whose gradient with respect to y is torch's upstream
/// gradient `key`.
fn backprop(y: &Tensor, w: &Weights, dev: &Device, key: &str) {
    y.mul(&tensor(w, dev, key))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
}

/// `close` for a tensor against the fixture's entry `key`.
fn matches(what: &str, got: &Tensor, w: &Weights, key: &str, abs: f32, rel: f32) {
    close(
        what,
        &got.read_blocking().unwrap(),
        &w.tensors[key].1,
        abs,
        rel,
    );
}

/// Runs the fixture's recurrent model on `dev` and compares everything torch computed.
fn check_recurrent(name: &str, dev: &Device) {
    let w = fixture(name);
    let meta = |k: &str| w.metadata[k].clone();
    let num = |k: &str| meta(k).parse::<usize>().unwrap();
    let (i, h) = (num("I"), num("H"));
    let builder = match meta("cell").as_str() {
        "lstm" => Recurrent::lstm(i, h),
        "gru" => Recurrent::gru(i, h),
        "rnn" if name.contains("relu") => Recurrent::rnn_relu(i, h),
        _ => Recurrent::rnn(i, h),
    };
    let model = builder
        .layers(num("layers"))
        .bidirectional(meta("bidirectional") == "true")
        .build(dev, &mut Rng::new(0))
        .unwrap();
    load_into(&model, &w).unwrap();
    let x = tensor(&w, dev, "input").requires_grad();
    let h0 = tensor(&w, dev, "h0").requires_grad();
    let lstm = w.tensors.contains_key("c0");
    let c0 = lstm.then(|| tensor(&w, dev, "c0").requires_grad());
    let lengths = tensor(&w, dev, "lengths");
    let out = model
        .forward_with(&x, Some((&h0, c0.as_ref())), Some(&lengths))
        .unwrap();
    let dot = |a: &Tensor, key: &str| a.mul(&tensor(&w, dev, key)).unwrap().sum_all().unwrap();
    let mut loss = dot(&out.output, "grad_output")
        .add(&dot(&out.h_n, "grad_h_n"))
        .unwrap();
    if let Some(c_n) = &out.c_n {
        loss = loss.add(&dot(c_n, "grad_c_n")).unwrap();
    }
    loss.backward().unwrap();
    let want = |k: &str| &w.tensors[k].1;
    let what = |k: &str| format!("{name} on {dev}: {k}");
    // Outputs to ~1e-5 relative, gradients to ~1e-4 (f32 here, float64 in torch).
    close(
        &what("output"),
        &out.output.read_blocking().unwrap(),
        want("output"),
        1e-5,
        1e-5,
    );
    close(
        &what("h_n"),
        &out.h_n.read_blocking().unwrap(),
        want("h_n"),
        1e-5,
        1e-5,
    );
    if let Some(c_n) = &out.c_n {
        close(
            &what("c_n"),
            &c_n.read_blocking().unwrap(),
            want("c_n"),
            1e-5,
            1e-5,
        );
    }
    close(
        &what("grad_input"),
        &x.grad().unwrap().read_blocking().unwrap(),
        want("grad_input"),
        1e-5,
        1e-4,
    );
    close(
        &what("grad_h0"),
        &h0.grad().unwrap().read_blocking().unwrap(),
        want("grad_h0"),
        1e-5,
        1e-4,
    );
    if let Some(c0) = &c0 {
        close(
            &what("grad_c0"),
            &c0.grad().unwrap().read_blocking().unwrap(),
            want("grad_c0"),
            1e-5,
            1e-4,
        );
    }
    for (pname, p) in model.named_parameters() {
        let key = format!("grad.{pname}");
        close(
            &what(&key),
            &p.grad().unwrap().read_blocking().unwrap(),
            want(&key),
            1e-5,
            1e-4,
        );
    }
}

const FIXTURES: [&str; 6] = [
    "rnn_tanh",
    "rnn_relu",
    "lstm_1layer",
    "lstm_2layer_bidirectional",
    "gru_1layer",
    "gru_2layer_bidirectional",
];

#[test]
fn recurrent_layers_match_torch_on_the_gpu() {
    for name in FIXTURES {
        check_recurrent(name, &gpu());
    }
}

#[test]
fn recurrent_layers_match_torch_on_the_cpu() {
    for name in FIXTURES {
        check_recurrent(name, &Device::Cpu);
    }
}

#[test]
fn a_file_with_a_missing_or_misshapen_key_names_it() {
    let w = fixture("lstm_1layer");
    let wrong = Recurrent::lstm(5, 7)
        .build(&Device::Cpu, &mut Rng::new(0))
        .unwrap();
    let e = load_into(&wrong, &w).unwrap_err().to_string();
    assert!(e.contains("weight_ih_l0") && e.contains("shape"), "{e}");
    let two = Recurrent::lstm(5, 6)
        .layers(2)
        .build(&Device::Cpu, &mut Rng::new(0))
        .unwrap();
    let e = load_into(&two, &w).unwrap_err().to_string();
    assert!(e.contains("weight_ih_l1") && e.contains("missing"), "{e}");
}

#[test]
fn layer_norm_and_embedding_match_torch_on_both_devices() {
    use timeloom::nn::{Embedding, LayerNorm};
    for dev in [gpu(), Device::Cpu] {
        let w = fixture("layer_norm");
        let ln = LayerNorm::new(&dev, 37).unwrap();
        load_into(&ln, &w).unwrap();
        let x = tensor(&w, &dev, "input").requires_grad();
        let y = ln.forward(&x).unwrap();
        backprop(&y, &w, &dev, "grad_output");
        matches(
            &format!("layer_norm on {dev}: output"),
            &y,
            &w,
            "output",
            1e-5,
            1e-5,
        );
        matches(
            &format!("layer_norm on {dev}: grad_input"),
            &x.grad().unwrap(),
            &w,
            "grad_input",
            1e-5,
            1e-4,
        );
        for (name, p) in ln.named_parameters() {
            let key = format!("grad.{name}");
            matches(
                &format!("layer_norm on {dev}: {key}"),
                &p.grad().unwrap(),
                &w,
                &key,
                1e-5,
                1e-4,
            );
        }

        let w = fixture("embedding");
        let emb = Embedding::new(&dev, 13, 5, &mut Rng::new(0)).unwrap();
        load_into(&emb, &w).unwrap();
        let y = emb.forward(&tensor(&w, &dev, "ids")).unwrap();
        assert_eq!(y.shape(), [2, 3, 5]);
        backprop(&y, &w, &dev, "grad_output");
        matches(
            &format!("embedding on {dev}: output"),
            &y,
            &w,
            "output",
            0.0,
            1e-6,
        );
        matches(
            &format!("embedding on {dev}: grad.weight"),
            &emb.weight.grad().unwrap(),
            &w,
            "grad.weight",
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn multihead_attention_and_sdpa_match_torch_on_both_devices() {
    use timeloom::nn::MultiHeadAttention;
    use timeloom::{attention, AttentionOptions};
    for dev in [gpu(), Device::Cpu] {
        let w = fixture("multihead_attention");
        let mha = MultiHeadAttention::new(&dev, 8, 2, &mut Rng::new(0))
            .unwrap()
            .batch_first(true);
        load_into(&mha, &w).unwrap();
        let x = tensor(&w, &dev, "input").requires_grad();
        let lengths = tensor(&w, &dev, "lengths");
        let y = mha.self_attention(&x, true, Some(&lengths)).unwrap();
        backprop(&y, &w, &dev, "grad_output");
        matches(
            &format!("mha on {dev}: output"),
            &y,
            &w,
            "output",
            1e-5,
            1e-4,
        );
        matches(
            &format!("mha on {dev}: grad_input"),
            &x.grad().unwrap(),
            &w,
            "grad_input",
            1e-5,
            1e-4,
        );
        for (name, p) in mha.named_parameters() {
            let key = format!("grad.{name}");
            matches(
                &format!("mha on {dev}: {key}"),
                &p.grad().unwrap(),
                &w,
                &key,
                1e-5,
                1e-4,
            );
        }

        let w = fixture("scaled_dot_product_attention");
        let [q, k, v] = ["q", "k", "v"].map(|n| tensor(&w, &dev, n).requires_grad());
        let o = attention(
            &q,
            &k,
            &v,
            AttentionOptions {
                causal: true,
                ..AttentionOptions::default()
            },
        )
        .unwrap();
        backprop(&o, &w, &dev, "grad_output");
        matches(
            &format!("sdpa on {dev}: output"),
            &o,
            &w,
            "output",
            1e-5,
            1e-4,
        );
        for (n, t) in [("grad_q", &q), ("grad_k", &k), ("grad_v", &v)] {
            matches(
                &format!("sdpa on {dev}: {n}"),
                &t.grad().unwrap(),
                &w,
                n,
                1e-5,
                1e-4,
            );
        }
    }
}

/// Key and value of another shape than the query are refused by name, even when their element
/// counts match (a reshape alone would have mixed batch entries silently).
#[test]
fn multihead_attention_refuses_keys_of_another_shape() {
    use timeloom::nn::MultiHeadAttention;
    let dev = Device::Cpu;
    let mha = MultiHeadAttention::new(&dev, 8, 2, &mut Rng::new(0)).unwrap();
    let q = Tensor::zeros(&dev, &[6, 2, 8]).unwrap();
    let k = Tensor::zeros(&dev, &[4, 3, 8]).unwrap();
    for (arg, (key, value)) in [("key", (&k, &q)), ("value", (&q, &k))] {
        match mha.forward_qkv(&q, key, value, false, None) {
            Err(timeloom::Error::ShapeMismatch { arg: a, .. }) => assert_eq!(a, arg),
            other => panic!("{arg}: {other:?}"),
        }
    }
}

/// Parameters given as views into larger tensors mean the same on both devices (the kernels bind
/// whole buffers, so views are copied first), and embedding ids that are not whole numbers follow
/// one rule everywhere.
#[test]
fn views_and_fractional_ids_agree_across_devices() {
    let mut out = Vec::new();
    for dev in [gpu(), Device::Cpu] {
        let x = Tensor::from_slice(&dev, &Rng::new(1).normals(4 * 6), &[4, 6]).unwrap();
        let p = Tensor::from_slice(&dev, &Rng::new(2).normals(12), &[12]).unwrap();
        let y = x
            .layer_norm(
                Some((&p.narrow(0, 0, 6).unwrap(), &p.narrow(0, 6, 6).unwrap())),
                1e-5,
            )
            .unwrap();
        let table = Tensor::from_slice(&dev, &Rng::new(3).normals(6 * 3), &[6, 3])
            .unwrap()
            .requires_grad();
        let ids = Tensor::from_slice(&dev, &[2.5, -0.5, 4.0, 5.0], &[4]).unwrap();
        let e = timeloom::embedding(&table.narrow(0, 1, 5).unwrap(), &ids).unwrap();
        let rows = e.read_blocking().unwrap();
        assert!(
            rows[3..6].iter().all(|v| v.is_nan()),
            "id −0.5 is out of range on {dev}"
        );
        assert!(
            rows[9..12].iter().all(|v| v.is_nan()),
            "id 5 = V is out of range on {dev}"
        );
        e.narrow(0, 0, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        out.push((
            y.read_blocking().unwrap(),
            rows[..3].to_vec(),
            table.grad().unwrap().read_blocking().unwrap(),
        ));
    }
    close(
        "layer norm with view parameters",
        &out[0].0,
        &out[1].0,
        1e-5,
        1e-5,
    );
    close(
        "embedding of a view, id 2.5",
        &out[0].1,
        &out[1].1,
        1e-12,
        0.0,
    );
    close("embedding gradient", &out[0].2, &out[1].2, 1e-12, 0.0);
}

#[test]
fn max_and_average_pooling_match_torch_on_both_devices() {
    let w = fixture("pool2d");
    let num = |k: &str| w.metadata[k].parse::<usize>().unwrap();
    let (k, s, p) = (num("kernel"), num("stride"), num("padding"));
    for dev in [gpu(), Device::Cpu] {
        for kind in ["max", "avg"] {
            let x = tensor(&w, &dev, "input").requires_grad();
            let y = if kind == "max" {
                x.max_pool2d(k, s, p)
            } else {
                x.avg_pool2d(k, s, p)
            }
            .unwrap();
            backprop(&y, &w, &dev, &format!("{kind}.grad_output"));
            matches(
                &format!("{kind} pool on {dev}: output"),
                &y,
                &w,
                &format!("{kind}.output"),
                1e-6,
                1e-5,
            );
            matches(
                &format!("{kind} pool on {dev}: grad_input"),
                &x.grad().unwrap(),
                &w,
                &format!("{kind}.grad_input"),
                1e-6,
                1e-5,
            );
        }
    }
}

/// Builds the fixture's convolution layer from its metadata and loads its parameters by name.
fn conv_layer(w: &Weights, dev: &Device) -> Box<dyn Module> {
    let pair = |k: &str| -> Vec<usize> {
        w.metadata[k]
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let num = |k: &str| w.metadata[k].parse::<usize>().unwrap();
    let (ks, st, pd, dl) = (
        pair("kernel_size"),
        pair("stride"),
        pair("padding"),
        pair("dilation"),
    );
    let bias = w.metadata["bias"] == "true";
    let rng = &mut Rng::new(0);
    let layer: Box<dyn Module> = if ks.len() == 2 {
        let options = ConvOptions {
            stride: [st[0], st[1]],
            padding: [pd[0], pd[1]],
            dilation: [dl[0], dl[1]],
            groups: num("groups"),
        };
        Box::new(
            Conv2d::builder_hw(num("in_channels"), num("out_channels"), [ks[0], ks[1]])
                .options(options)
                .bias(bias)
                .build(dev, rng)
                .unwrap(),
        )
    } else {
        Box::new(
            Conv1d::builder(num("in_channels"), num("out_channels"), ks[0])
                .stride(st[0])
                .padding(pd[0])
                .dilation(dl[0])
                .groups(num("groups"))
                .bias(bias)
                .build(dev, rng)
                .unwrap(),
        )
    };
    load_into(layer.as_ref(), w).unwrap();
    layer
}

#[test]
fn convolutions_match_torch_on_both_devices() {
    for name in ["conv2d_groups_dilation", "conv2d_depthwise", "conv1d"] {
        let w = fixture(name);
        for dev in [gpu(), Device::Cpu] {
            let layer = conv_layer(&w, &dev);
            let x = tensor(&w, &dev, "input").requires_grad();
            let y = layer.forward(&x).unwrap();
            backprop(&y, &w, &dev, "grad_output");
            let what = format!("{name} on {dev}");
            matches(&format!("{what}: output"), &y, &w, "output", 1e-5, 1e-4);
            matches(
                &format!("{what}: grad_input"),
                &x.grad().unwrap(),
                &w,
                "grad_input",
                1e-5,
                1e-4,
            );
            for (pname, p) in layer.named_parameters() {
                matches(
                    &format!("{what}: grad.{pname}"),
                    &p.grad().unwrap(),
                    &w,
                    &format!("grad.{pname}"),
                    1e-5,
                    1e-4,
                );
            }
        }
    }
}

#[test]
fn batch_norm_matches_torch_in_training_and_evaluation_on_both_devices() {
    let w = fixture("batch_norm2d");
    // The state dict's int64 `num_batches_tracked` (a scalar count) is read like any integer
    // entry; timeloom's batch norm keeps no such counter, so nothing asks for it.
    assert!(!w.skipped.contains_key("num_batches_tracked"));
    assert_eq!(w.get("num_batches_tracked", &[]).unwrap().len(), 1);
    for dev in [gpu(), Device::Cpu] {
        let mut bn = BatchNorm2d::new(&dev, 3).unwrap();
        let (g, b) = (bn.weight.clone().unwrap(), bn.bias.clone().unwrap());
        g.write(&w.tensors["weight"].1).unwrap();
        b.write(&w.tensors["bias"].1).unwrap();
        let x = tensor(&w, &dev, "train.input").requires_grad();
        let y = bn.forward(&x).unwrap();
        backprop(&y, &w, &dev, "train.grad_output");
        let what = format!("batch_norm2d on {dev}");
        let (abs, rel) = (1e-5, 1e-4);
        matches(
            &format!("{what}: train output"),
            &y,
            &w,
            "train.output",
            abs,
            rel,
        );
        for (got, key) in [
            (x.grad().unwrap(), "train.grad_input"),
            (g.grad().unwrap(), "train.grad.weight"),
            (b.grad().unwrap(), "train.grad.bias"),
            (bn.running_mean.clone(), "train.running_mean"),
            (bn.running_var.clone(), "train.running_var"),
        ] {
            matches(&format!("{what}: {key}"), &got, &w, key, abs, rel);
        }
        bn.set_training(false);
        let x2 = tensor(&w, &dev, "eval.input").requires_grad();
        let y2 = bn.forward(&x2).unwrap();
        backprop(&y2, &w, &dev, "eval.grad_output");
        matches(
            &format!("{what}: eval output"),
            &y2,
            &w,
            "eval.output",
            abs,
            rel,
        );
        matches(
            &format!("{what}: eval grad_input"),
            &x2.grad().unwrap(),
            &w,
            "eval.grad_input",
            abs,
            rel,
        );
        // Running statistics travel with the parameters, under PyTorch's state-dict names, and
        // come back through a file.
        let net = Sequential::new().add(Flatten).add(bn);
        let names: Vec<String> = timeloom::io::state(&net)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let path =
            std::env::temp_dir().join(format!("timeloom-bn-{}.safetensors", std::process::id()));
        timeloom::io::save_module(&net, &path).unwrap();
        let fresh = Sequential::new()
            .add(Flatten)
            .add(BatchNorm2d::new(&dev, 3).unwrap());
        load_into(&fresh, &load(&path).unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        let state = timeloom::io::state(&fresh);
        matches(
            &format!("{what}: reloaded running_var"),
            &state[3].1,
            &w,
            "train.running_var",
            abs,
            rel,
        );
        assert_eq!(
            names,
            ["1.weight", "1.bias", "1.running_mean", "1.running_var"]
        );
    }
}

/// A whole PyTorch model's `state_dict` (tools/make_fixtures.py `state_dict_with_ids`): each
/// submodule loads from its prefix in strict mode, the int64 token ids and lengths saved beside
/// the weights are read as they are, and the embedding + LSTM part computes what PyTorch did.
#[test]
fn a_pytorch_state_dict_loads_by_prefix_with_its_int64_entries() {
    use timeloom::io::load_into_strict;
    use timeloom::nn::{Embedding, Linear};
    let dev = Device::Cpu;
    let w = fixture("state_dict_with_ids");
    // int64 entries, as PyTorch saves ids and lengths.
    let ids = w.get("data.ids", &[2, 3]).unwrap();
    assert_eq!(ids, &[3.0, 0.0, 10.0, 7.0, 7.0, 1.0]);
    assert_eq!(w.get("data.lengths", &[3]).unwrap(), &[2.0, 1.0, 2.0]);
    // Each part by its prefix, strictly; the batch norm's num_batches_tracked is no surprise.
    let mut rng = Rng::new(1);
    let embed = Embedding::new(&dev, 11, 3, &mut rng).unwrap();
    let lstm = Recurrent::lstm(3, 4).build(&dev, &mut rng).unwrap();
    let norm = BatchNorm2d::new(&dev, 4).unwrap();
    let decoder = Linear::new(&dev, 4, 11, &mut rng).unwrap();
    load_into_strict(&embed, &w.strip_prefix("embed.")).unwrap();
    load_into_strict(&lstm, &w.strip_prefix("lstm.")).unwrap();
    load_into_strict(&norm, &w.strip_prefix("norm.")).unwrap();
    load_into_strict(&decoder, &w.strip_prefix("decoder.")).unwrap();
    let x = embed
        .forward(&Tensor::from_slice(&dev, ids, &[2, 3]).unwrap())
        .unwrap();
    let y = lstm.forward(&x).unwrap().read_blocking().unwrap();
    let want = w.get("check.lstm_output", &[2, 3, 4]).unwrap();
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "LSTM output {a} vs PyTorch's {b}");
    }
    // The whole file into one part: strict names what is missing and what is unexpected, and
    // loads nothing.
    let before = lstm.named_parameters()[0].1.read_blocking().unwrap();
    let err = load_into_strict(&lstm, &w).unwrap_err().to_string();
    for key in [
        "`weight_ih_l0`",
        "`lstm.weight_ih_l0`",
        "`decoder.bias`",
        "`data.ids`",
    ] {
        assert!(err.contains(key), "{key} not named in: {err}");
    }
    assert!(!err.contains("num_batches_tracked"), "{err}");
    assert_eq!(
        lstm.named_parameters()[0].1.read_blocking().unwrap(),
        before
    );
    // A prefix that holds more than the module: the extra key is named.
    let err = load_into_strict(&embed, &w.strip_prefix("lstm."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unexpected key(s) `bias_hh_l0`"), "{err}");
}

/// f16 inference (issue 17): an MLP whose weights are f16 (converted on the host, uploaded as
/// f16, so the device never holds the f32 copy) runs forward in at most 55% of the f32 model's
/// resident memory, and computes what the f32 model computes with the same, f16-rounded
/// weights, up to the order of f32 sums.
#[test]
fn an_f16_mlp_runs_in_little_more_than_half_the_memory() {
    use timeloom::nn::{Activation, Linear};
    use timeloom::{no_grad, DType};
    let (i, h, o, b) = (784, 1024, 10, 4);
    let mut rng = Rng::new(7);
    let mut normals =
        |n: usize, s: f32| -> Vec<f32> { rng.normals(n).into_iter().map(|v| v * s).collect() };
    let (w1, b1, w2, b2) = (
        normals(h * i, 0.03),
        normals(h, 0.1),
        normals(o * h, 0.03),
        normals(o, 0.1),
    );
    let x = normals(b * i, 1.0);
    // The forward of the f32 model, or of its f16 copy, on a device of its own: outputs and
    // resident bytes after it.
    let run = |half: bool| -> (Vec<f32>, u64) {
        let g = Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(g.clone());
        let t = |v: &[f32], shape: &[usize]| -> Tensor {
            let host = Tensor::from_slice(&Device::Cpu, v, shape).unwrap();
            let host = if half {
                host.to_dtype(DType::F16).unwrap()
            } else {
                host.to_dtype(DType::F16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
            };
            host.to_device(&dev).unwrap()
        };
        let model = Sequential::new()
            .add(Linear::from_tensors(t(&w1, &[h, i]), Some(t(&b1, &[h]))).unwrap())
            .add(Activation::Relu)
            .add(Linear::from_tensors(t(&w2, &[o, h]), Some(t(&b2, &[o]))).unwrap());
        let xt = Tensor::from_slice(&dev, &x, &[b, i]).unwrap();
        let y = no_grad(|| model.forward(&xt))
            .unwrap()
            .read_blocking()
            .unwrap();
        (y, g.stats().bytes_resident)
    };
    let (y32, m32) = run(false);
    let (y16, m16) = run(true);
    eprintln!("resident after the forward: f16 model {m16} bytes, f32 model {m32} bytes");
    assert!(
        m16 as f64 <= 0.55 * m32 as f64,
        "f16 model resident {m16} bytes against {m32} in f32"
    );
    for (k, (a, r)) in y16.iter().zip(&y32).enumerate() {
        assert!(
            (a - r).abs() <= 1e-5 + 1e-5 * r.abs(),
            "[{k}]: f16 {a}, f32 {r}"
        );
    }
}

/// f16 inference of a recurrent model (issue 17): a two-layer LSTM (I = 65, H = 512, a
/// char-RNN's shape) converted to f16 runs a 16-step forward in at most 55% of the f32 model's
/// resident memory (parameters, the step kernels' W_hhᵀ copies and the activations), and
/// computes what the f32 model holding the same f16-rounded weights computes.
#[test]
fn an_f16_lstm_runs_in_little_more_than_half_the_memory() {
    use timeloom::{no_grad, DType};
    let (i, h, t, b) = (65, 512, 16, 1);
    let x: Vec<f32> = Rng::new(3).normals(t * b * i);
    let run = |half: bool| -> (Vec<f32>, u64) {
        let g = Gpu::new_blocking().unwrap();
        let dev = Device::Gpu(g.clone());
        let lstm = Recurrent::lstm(i, h)
            .layers(2)
            .build(&dev, &mut Rng::new(5))
            .unwrap();
        // Both models hold the f16-rounded weights; only the f16 one keeps them in f16.
        let rounded = lstm.to_dtype(DType::F16).unwrap();
        drop(lstm);
        let model = if half {
            rounded
        } else {
            let widened = rounded.to_dtype(DType::F32).unwrap();
            drop(rounded);
            widened
        };
        g.synchronize().unwrap();
        g.trim_pool();
        let xt = Tensor::from_slice(&dev, &x, &[t, b, i]).unwrap();
        let y = no_grad(|| model.forward_with(&xt, None, None))
            .unwrap()
            .output
            .read_blocking()
            .unwrap();
        (y, g.stats().bytes_resident)
    };
    let (y32, m32) = run(false);
    let (y16, m16) = run(true);
    eprintln!("resident after the forward: f16 LSTM {m16} bytes, f32 LSTM {m32} bytes");
    assert!(
        m16 as f64 <= 0.55 * m32 as f64,
        "f16 LSTM resident {m16} bytes against {m32} in f32"
    );
    for (k, (a, r)) in y16.iter().zip(&y32).enumerate() {
        assert!(
            (a - r).abs() <= 1e-5 + 1e-5 * r.abs(),
            "[{k}]: f16 {a}, f32 {r}"
        );
    }
}

/// Every layer's `to_dtype(F16)` copy (issue 17: f16 inference) computes what the f32 layer
/// holding the same f16-rounded parameters computes, on both devices, and holds f16
/// parameters that do not track gradients: Linear, Embedding, LayerNorm, MultiHeadAttention
/// and a causal TransformerBlock at awkward sizes (E = 12, 3 heads, L = 7, B = 2).
#[test]
fn every_layers_f16_copy_computes_what_its_f32_widening_does() {
    use timeloom::nn::{Embedding, LayerNorm, Linear, MultiHeadAttention, TransformerBlock};
    use timeloom::DType;
    let (b, l, e, v) = (2usize, 7usize, 12usize, 11usize);
    for dev in [Device::Gpu(Gpu::new_blocking().unwrap()), Device::Cpu] {
        let mut rng = Rng::new(13);
        let x = Tensor::from_slice(&dev, &rng.normals(b * l * e), &[b, l, e]).unwrap();
        let ids: Vec<f32> = (0..b * l).map(|i| ((i * 5) % v) as f32).collect();
        let ids = Tensor::from_slice(&dev, &ids, &[b, l]).unwrap();
        let mut ln = LayerNorm::new(&dev, e).unwrap();
        ln.weight = Tensor::from_slice(&dev, &rng.normals(e), &[e]).unwrap();
        ln.bias = Tensor::from_slice(&dev, &rng.normals(e), &[e]).unwrap();
        type Pair = (Box<dyn Module>, Box<dyn Module>);
        // The f16 copy and the f32 layer widened back from it: the same rounded parameters.
        fn pair<M: Module + 'static>(half: M, widened: M) -> Pair {
            (Box::new(half), Box::new(widened))
        }
        let linear = Linear::new(&dev, e, 5, &mut rng).unwrap();
        let emb = Embedding::new(&dev, v, e, &mut rng).unwrap();
        let mha = MultiHeadAttention::new(&dev, e, 3, &mut rng)
            .unwrap()
            .batch_first(true);
        let block = TransformerBlock::new(&dev, e, 3, true, &mut rng).unwrap();
        let (h, f) = (DType::F16, DType::F32);
        let linear = linear.to_dtype(h).unwrap();
        let emb = emb.to_dtype(h).unwrap();
        let ln = ln.to_dtype(h).unwrap();
        let mha = mha.to_dtype(h).unwrap();
        let block = block.to_dtype(h).unwrap();
        let layers: Vec<(&str, Pair, &Tensor)> = vec![
            (
                "Linear",
                pair(linear.to_dtype(h).unwrap(), linear.to_dtype(f).unwrap()),
                &x,
            ),
            (
                "Embedding",
                pair(emb.to_dtype(h).unwrap(), emb.to_dtype(f).unwrap()),
                &ids,
            ),
            (
                "LayerNorm",
                pair(ln.to_dtype(h).unwrap(), ln.to_dtype(f).unwrap()),
                &x,
            ),
            (
                "MultiHeadAttention",
                pair(mha.to_dtype(h).unwrap(), mha.to_dtype(f).unwrap()),
                &x,
            ),
            (
                "TransformerBlock",
                pair(block.to_dtype(h).unwrap(), block.to_dtype(f).unwrap()),
                &x,
            ),
        ];
        for (name, (half, widened), input) in layers {
            for (_, p) in half.named_parameters() {
                assert!(p.dtype() == DType::F16 && !p.tracks_grad(), "{dev} {name}");
            }
            let got = half.forward(input).unwrap().read_blocking().unwrap();
            let want = widened.forward(input).unwrap().read_blocking().unwrap();
            assert_eq!(got.len(), want.len(), "{dev} {name}");
            for (k, (a, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - w).abs() <= 1e-5 + 1e-5 * w.abs(),
                    "{dev} {name}[{k}]: f16 {a}, widened {w}"
                );
            }
        }
    }
}
