#!/usr/bin/env python3
"""Writes the PyTorch fixtures the layer tests compare against (tests/fixtures/*.safetensors).

Each file holds a model's parameters under PyTorch's names, the inputs (input, h0, c0, lengths as
float32), the upstream gradients, and what PyTorch computed: outputs, final states and the
gradients of the input, the initial states and every parameter. Needs torch and safetensors:

    pip install torch safetensors
    python3 tools/make_fixtures.py                        # every fixture
    python3 tools/make_fixtures.py state_dict_with_ids    # just that one
    python3 tools/make_fixtures.py optimizer_runs         # the torch.optim runs and schedules

The tests themselves need no Python: the fixtures are committed.
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def recurrent(name, cls, T, B, I, H, layers=1, bidirectional=False, lengths=None, **kw):
    model = cls(I, H, num_layers=layers, bidirectional=bidirectional, **kw).double()
    dirs = 2 if bidirectional else 1
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layers * dirs, B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(layers * dirs, B, H, dtype=torch.float64, requires_grad=True)
    lstm = cls is torch.nn.LSTM
    state = (h0, c0) if lstm else h0
    if lengths is None:
        lengths = [T] * B
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    out_packed, final = model(packed, state)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, total_length=T)
    h_n, c_n = final if lstm else (final, None)
    g_out = torch.randn_like(out)
    g_h = torch.randn_like(h_n)
    loss = (out * g_out).sum() + (h_n * g_h).sum()
    tensors = {"input": x, "h0": h0, "lengths": torch.tensor(lengths, dtype=torch.float64),
               "grad_output": g_out, "grad_h_n": g_h, "output": out, "h_n": h_n}
    if lstm:
        g_c = torch.randn_like(c_n)
        loss = loss + (c_n * g_c).sum()
        tensors.update({"c0": c0, "grad_c_n": g_c, "c_n": c_n})
    loss.backward()
    tensors.update({"grad_input": x.grad, "grad_h0": h0.grad})
    if lstm:
        tensors["grad_c0"] = c0.grad
    for pname, p in model.named_parameters():
        tensors[pname] = p
        tensors["grad." + pname] = p.grad
    meta = {"T": str(T), "B": str(B), "I": str(I), "H": str(H), "layers": str(layers),
            "bidirectional": str(bidirectional).lower(), "cell": name.split("_")[0],
            "made_by": "tools/make_fixtures.py, torch " + torch.__version__}
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()},
              os.path.join(OUT, name + ".safetensors"), metadata=meta)


def layer_norm(name, R, D):
    ln = torch.nn.LayerNorm(D).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(D))
        ln.bias.copy_(torch.randn(D))
    x = (torch.randn(R, D, dtype=torch.float64) * 3 + 1).requires_grad_()
    y = ln(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    tensors = {"input": x, "weight": ln.weight, "bias": ln.bias, "grad_output": g, "output": y,
               "grad_input": x.grad, "grad.weight": ln.weight.grad, "grad.bias": ln.bias.grad}
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()},
              os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def embedding(name, V, D, ids):
    emb = torch.nn.Embedding(V, D).double()
    idx = torch.tensor(ids)
    y = emb(idx)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    tensors = {"ids": idx.double(), "weight": emb.weight, "grad_output": g, "output": y,
               "grad.weight": emb.weight.grad}
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()},
              os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def multihead_attention(name, B, L, E, H, lengths):
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_bias.copy_(torch.randn(3 * E) * 0.1)
        mha.out_proj.bias.copy_(torch.randn(E) * 0.1)
    x = torch.randn(B, L, E, dtype=torch.float64, requires_grad=True)
    pad = torch.arange(L)[None, :] >= torch.tensor(lengths)[:, None]
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    y, _ = mha(x, x, x, key_padding_mask=pad, attn_mask=causal, need_weights=False)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    tensors = {"input": x, "lengths": torch.tensor(lengths, dtype=torch.float64), "grad_output": g,
               "output": y, "grad_input": x.grad}
    for pname, prm in mha.named_parameters():
        tensors[pname] = prm
        tensors["grad." + pname] = prm.grad
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()},
              os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def sdpa(name, BH, L, D):
    q, k, v = (torch.randn(BH, L, D, dtype=torch.float64, requires_grad=True) for _ in range(3))
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    g = torch.randn_like(o)
    (o * g).sum().backward()
    tensors = {"q": q, "k": k, "v": v, "grad_output": g, "output": o,
               "grad_q": q.grad, "grad_k": k.grad, "grad_v": v.grad}
    save_file({k_: t.detach().float().contiguous() for k_, t in tensors.items()},
              os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def pooling(name, shape, k, s, p):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    tensors = {"input": x}
    for kind, fn in (("max", torch.nn.functional.max_pool2d), ("avg", torch.nn.functional.avg_pool2d)):
        x.grad = None
        y = fn(x, k, s, p)
        g = torch.randn_like(y)
        (y * g).sum().backward()
        tensors.update({kind + ".grad_output": g, kind + ".output": y, kind + ".grad_input": x.grad.clone()})
    save_file({k_: t.detach().float().contiguous() for k_, t in tensors.items()},
              os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__,
                        "kernel": str(k), "stride": str(s), "padding": str(p)})


def conv(name, module, shape):
    """A convolution layer (its parameters under PyTorch's names) with its input, upstream
    gradient, output and every gradient."""
    module = module.double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    y = module(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    tensors = {"input": x, "grad_output": g, "output": y, "grad_input": x.grad}
    for pname, prm in module.named_parameters():
        tensors[pname] = prm
        tensors["grad." + pname] = prm.grad
    o = module
    meta = {"made_by": "tools/make_fixtures.py, torch " + torch.__version__,
            "in_channels": str(o.in_channels), "out_channels": str(o.out_channels),
            "kernel_size": ",".join(map(str, o.kernel_size)), "stride": ",".join(map(str, o.stride)),
            "padding": ",".join(map(str, o.padding)), "dilation": ",".join(map(str, o.dilation)),
            "groups": str(o.groups), "bias": str(o.bias is not None).lower()}
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()},
              os.path.join(OUT, name + ".safetensors"), metadata=meta)


def batch_norm(name, C, shape):
    """nn.BatchNorm2d: one training step (batch statistics, running-statistics update, every
    gradient), then evaluation on a second input with the updated running statistics. The
    state dict's int64 num_batches_tracked is kept: loaders must skip it."""
    bn = torch.nn.BatchNorm2d(C).double()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(C))
        bn.bias.copy_(torch.randn(C))
    tensors = {"weight": bn.weight.detach().clone(), "bias": bn.bias.detach().clone()}
    x = (torch.randn(*shape, dtype=torch.float64) * 2 + 0.7).requires_grad_()
    y = bn(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    tensors.update({"train.input": x, "train.grad_output": g, "train.output": y,
                    "train.grad_input": x.grad, "train.grad.weight": bn.weight.grad.clone(),
                    "train.grad.bias": bn.bias.grad.clone(),
                    "train.running_mean": bn.running_mean.clone(),
                    "train.running_var": bn.running_var.clone()})
    bn.eval()
    x2 = (torch.randn(*shape, dtype=torch.float64) * 2 + 0.7).requires_grad_()
    y2 = bn(x2)
    g2 = torch.randn_like(y2)
    (y2 * g2).sum().backward()
    tensors.update({"eval.input": x2, "eval.grad_output": g2, "eval.output": y2,
                    "eval.grad_input": x2.grad})
    out = {k: v.detach().float().contiguous() for k, v in tensors.items()}
    out["num_batches_tracked"] = bn.num_batches_tracked.clone()
    save_file(out, os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def state_dict_with_ids(name):
    """A whole model's state_dict as PyTorch saves it: submodules under prefixes (`lstm.`,
    `decoder.`), a batch norm's int64 `num_batches_tracked`, and int64 token ids and lengths
    beside them, with one forward of the LSTM part to check a prefixed load against."""
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(11, 3)
            self.lstm = torch.nn.LSTM(3, 4)
            self.norm = torch.nn.BatchNorm1d(4)
            self.decoder = torch.nn.Linear(4, 11)

    m = Model()
    ids = torch.tensor([[3, 0, 10], [7, 7, 1]], dtype=torch.int64)  # [T = 2, B = 3]
    lengths = torch.tensor([2, 1, 2], dtype=torch.int64)
    x = m.embed(ids)
    y, (h, c) = m.lstm(x)
    out = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    out.update({"data.ids": ids, "data.lengths": lengths,
                "check.lstm_output": y.detach().contiguous()})
    save_file(out, os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def optimizer_run(name, make_opt, steps=25, maximize=False, sched=None, plateau=None, clip=None):
    """A Linear(5 -> 3) fitted by MSE to fixed data with one torch.optim optimizer for `steps`
    steps: the initial weights, the data, the loss before each step, group 0's rate at each
    step and the final weights. `make_opt` gets the model (for parameter groups). With
    `maximize`, the optimizer ascends −MSE (so the fit is the same kind of run); `sched` makes a
    scheduler stepped after each step; `plateau` makes a ReduceLROnPlateau stepped with each
    step's loss; `clip` = (max_norm, norm_type) clips the gradients before each step."""
    torch.manual_seed(3)
    lin = torch.nn.Linear(5, 3)
    x = torch.randn(16, 5)
    y = torch.randn(16, 3)
    out = {"weight0": lin.weight.detach().clone(), "bias0": lin.bias.detach().clone(),
           "x": x, "y": y}
    opt = make_opt(lin)
    scheduler = sched(opt) if sched else None
    reducer = plateau(opt) if plateau else None
    losses, lrs = [], []
    for _ in range(steps):
        opt.zero_grad()
        lrs.append(opt.param_groups[0]["lr"])
        loss = torch.nn.functional.mse_loss(lin(x), y)
        losses.append(loss.item())
        (-loss if maximize else loss).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(lin.parameters(), clip[0], norm_type=clip[1])
        opt.step()
        if scheduler:
            scheduler.step()
        if reducer:
            reducer.step(loss.item())
    out.update({"losses": torch.tensor(losses, dtype=torch.float64),
                "lrs": torch.tensor(lrs, dtype=torch.float64),
                "weight": lin.weight.detach().clone(), "bias": lin.bias.detach().clone()})
    save_file({k: v.float().contiguous() for k, v in out.items()},
              os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def schedules(name="schedules", steps=40):
    """The learning rate torch.optim.lr_scheduler gives each of `steps` steps (base rate 1, so
    the rate is the schedule's factor), one entry per scheduler."""
    def run(make):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = make(opt)
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return torch.tensor(lrs, dtype=torch.float64)
    S = torch.optim.lr_scheduler
    out = {
        "multistep": run(lambda o: S.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.5)),
        "linear": run(lambda o: S.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=8)),
        "onecycle": run(lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=steps, pct_start=0.3,
                                               cycle_momentum=False)),
        "cosine_restarts": run(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2,
                                                                       eta_min=0.1)),
        "sequential": run(lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.ExponentialLR(o, gamma=0.9)],
            milestones=[5])),
    }
    save_file({k: v.float() for k, v in out.items()}, os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def plateau(name="plateau"):
    """ReduceLROnPlateau driven by a fixed metric sequence: the rate after each report, in two
    settings (min mode with a relative threshold and a cooldown; max mode with an absolute
    threshold and a floor)."""
    metrics = [1.0, 0.9, 0.85, 0.849, 0.848, 0.847, 0.846, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.69,
               0.69, 0.69, 0.69, 0.69, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    out = {"metrics": torch.tensor(metrics, dtype=torch.float64)}
    S = torch.optim.lr_scheduler
    settings = {
        "min_rel": dict(mode="min", factor=0.5, patience=2, threshold=1e-2, threshold_mode="rel",
                        cooldown=1, min_lr=0.0),
        "max_abs": dict(mode="max", factor=0.3, patience=1, threshold=0.05, threshold_mode="abs",
                        cooldown=0, min_lr=0.02),
    }
    for key, kw in settings.items():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = S.ReduceLROnPlateau(opt, **kw)
        lrs = []
        for m in metrics:
            # "max" mode sees the metrics negated: a falling loss is a falling score.
            sched.step(m if kw["mode"] == "min" else -m)
            lrs.append(opt.param_groups[0]["lr"])
        out[key] = torch.tensor(lrs, dtype=torch.float64)
    save_file({k: v.float() for k, v in out.items()}, os.path.join(OUT, name + ".safetensors"),
              metadata={"made_by": "tools/make_fixtures.py, torch " + torch.__version__})


def optimizer_runs():
    O, S = torch.optim, torch.optim.lr_scheduler
    optimizer_run("optim_adam", lambda m: O.Adam(m.parameters(), lr=1e-2))
    optimizer_run("optim_adamw", lambda m: O.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1))
    optimizer_run("optim_adamax",
                  lambda m: O.Adamax(m.parameters(), lr=2e-2, weight_decay=0.01))
    optimizer_run("optim_adam_maximize",
                  lambda m: O.Adam(m.parameters(), lr=1e-2, maximize=True), maximize=True)
    optimizer_run("optim_sgd_momentum_maximize",
                  lambda m: O.SGD(m.parameters(), lr=5e-2, momentum=0.9, maximize=True),
                  maximize=True)
    optimizer_run("optim_adam_amsgrad",
                  lambda m: O.Adam(m.parameters(), lr=3e-2, weight_decay=0.01, amsgrad=True))
    optimizer_run("optim_adamw_amsgrad",
                  lambda m: O.AdamW(m.parameters(), lr=3e-2, weight_decay=0.1, amsgrad=True))
    optimizer_run("optim_rmsprop_centered",
                  lambda m: O.RMSprop(m.parameters(), lr=1e-2, alpha=0.9, momentum=0.5,
                                      centered=True))
    optimizer_run("optim_nadam", lambda m: O.NAdam(m.parameters(), lr=2e-2, weight_decay=0.01))
    optimizer_run("optim_nadamw",
                  lambda m: O.NAdam(m.parameters(), lr=2e-2, weight_decay=0.1,
                                    decoupled_weight_decay=True))
    optimizer_run("optim_radam", lambda m: O.RAdam(m.parameters(), lr=1e-2, weight_decay=0.01))
    optimizer_run("optim_radamw",
                  lambda m: O.RAdam(m.parameters(), lr=1e-2, weight_decay=0.1,
                                    decoupled_weight_decay=True))
    # Two groups: the weight decayed at the optimizer's rate, the bias undecayed at its own
    # rate, each with its own LambdaLR function.
    optimizer_run("optim_groups",
                  lambda m: O.AdamW([{"params": [m.weight], "weight_decay": 0.1},
                                     {"params": [m.bias], "lr": 3e-2, "weight_decay": 0.0}],
                                    lr=1e-2),
                  sched=lambda o: S.LambdaLR(o, [lambda k: 0.95 ** k, lambda k: 1 / (1 + 0.1 * k)]))
    optimizer_run("optim_plateau", lambda m: O.SGD(m.parameters(), lr=0.1, momentum=0.9),
                  plateau=lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=1,
                                                        threshold=1e-2))
    optimizer_run("optim_onecycle", lambda m: O.Adam(m.parameters(), lr=5e-2),
                  sched=lambda o: S.OneCycleLR(o, max_lr=5e-2, total_steps=25,
                                               cycle_momentum=False))
    optimizer_run("optim_clip_l1", lambda m: O.SGD(m.parameters(), lr=5e-2, momentum=0.9),
                  clip=(0.5, 1.0))
    optimizer_run("optim_clip_l2", lambda m: O.SGD(m.parameters(), lr=5e-2, momentum=0.9),
                  clip=(0.5, 2.0))
    optimizer_run("optim_clip_inf", lambda m: O.SGD(m.parameters(), lr=5e-2, momentum=0.9),
                  clip=(0.1, float("inf")))


if __name__ == "__main__":
    import sys
    os.makedirs(OUT, exist_ok=True)
    # One group alone: regenerating every file with another torch version rewrites them.
    if sys.argv[1:] == ["state_dict_with_ids"]:
        state_dict_with_ids("state_dict_with_ids")
        sys.exit(0)
    if sys.argv[1:] == ["optimizer_runs"]:
        optimizer_runs()
        schedules()
        plateau()
        sys.exit(0)
    state_dict_with_ids("state_dict_with_ids")
    optimizer_runs()
    schedules()
    plateau()
    recurrent("rnn_tanh", torch.nn.RNN, T=6, B=3, I=4, H=5, lengths=[6, 3, 5])
    recurrent("rnn_relu", torch.nn.RNN, T=5, B=2, I=3, H=4, nonlinearity="relu")
    recurrent("lstm_1layer", torch.nn.LSTM, T=7, B=3, I=5, H=6, lengths=[7, 2, 4])
    recurrent("lstm_2layer_bidirectional", torch.nn.LSTM, T=6, B=4, I=3, H=5, layers=2,
              bidirectional=True, lengths=[6, 1, 4, 5])
    recurrent("gru_1layer", torch.nn.GRU, T=6, B=3, I=4, H=5, lengths=[6, 4, 2])
    recurrent("gru_2layer_bidirectional", torch.nn.GRU, T=5, B=2, I=3, H=4, layers=2,
              bidirectional=True)
    layer_norm("layer_norm", R=6, D=37)
    embedding("embedding", V=13, D=5, ids=[[3, 0, 3], [12, 3, 7]])
    multihead_attention("multihead_attention", B=3, L=5, E=8, H=2, lengths=[5, 3, 4])
    sdpa("scaled_dot_product_attention", BH=3, L=9, D=16)
    pooling("pool2d", (2, 3, 9, 7), k=3, s=2, p=1)
    conv("conv2d_groups_dilation",
         torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
         (2, 4, 9, 8))
    conv("conv2d_depthwise", torch.nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False), (2, 3, 7, 6))
    conv("conv1d", torch.nn.Conv1d(3, 5, 3, stride=2, padding=1, dilation=2), (2, 3, 13))
    batch_norm("batch_norm2d", 3, (4, 3, 5, 6))
    print("wrote", sorted(os.listdir(OUT)))
