#!/usr/bin/env python3
"""PyTorch on the CPU on the rows of `cargo bench --bench gpu_vs_cpu`, to print beside our CPU path.

Times the bench's cases (same ops, same shapes, same flags, same timing rule) with PyTorch on the
CPU and writes the rows in the bench's JSON format with `"path": "torch-cpu"`; the bench reads
them with `--torch` and prints each beside our row of the same op and shape, with the time ratio.
Each workload mirrors benches/gpu_vs_cpu/workload.rs: the same inputs, loss, gradients and
optimizer, through the PyTorch module or function that is the semantic reference (`F.gelu`,
`F.cross_entropy`, `F.layer_norm`, `F.batch_norm`, `F.max_pool2d`, `F.conv2d`,
`F.scaled_dot_product_attention`, `nn.LSTM`, `nn.GRU`, `torch.optim.Adam`, ...). GFLOP/s and
GB/s come from the same formulas as ours, so they compare the two at equal work.

Needs PyTorch (the CPU build is enough):

    pip install torch numpy

Then, from the repository root:

    python3 tools/torch_bench.py --list                        # the cases, shapes, torch calls
    python3 tools/torch_bench.py                               # every case, modest sizes
    python3 tools/torch_bench.py matmul --sizes 256,1024
    python3 tools/torch_bench.py lstm --shape T=64,B=32,I=128,H=256
    cargo bench --bench gpu_vs_cpu -- lstm --shape T=64,B=32,I=128,H=256 --paths cpu --torch target/bench/torch_cpu.json

Flags: positional op prefixes keep the cases whose op starts with one of them; `--sizes` keeps
the matmul rows whose N and the attention rows whose L is listed (large sizes included);
`--shape NAME=SIZE,...` replaces those sizes in every case whose shapes have all of them;
`--large` adds the large shapes; `--reps N` times exactly N calls (default: until 2 s or 10 calls,
at least 3, after one untimed call; the median is reported); `--threads N` sets
`torch.set_num_threads` (default `os.cpu_count()`); `--out PATH` (default
target/bench/torch_cpu.json under the repository root) is written atomically; `--fused-adam`
uses `torch.optim.Adam(fused=True)` instead of torch's default Adam in the rows with an Adam step.
`--device cuda` times the same rows on PyTorch's CUDA device instead (path `torch-cuda`, default
out target/bench/torch_cuda.json), with TF32 off so that both sides compute in f32, and
`torch.cuda.synchronize()` ending every call as the bench's wait ends ours: the yardstick for
the GPU path on a machine with an NVIDIA GPU (tools/gpu_check.sh runs it there).

Thread counts: our CPU path runs every parallel twin, GEMMs included, on one rayon pool of
all the machine's threads (`RAYON_NUM_THREADS` overrides it), as PyTorch parallelises every op
over `--threads` (default: the same count). Pass `--threads 1` with `RAYON_NUM_THREADS=1` to
compare single-thread kernels.

The GPU-only rows (matmul_cold_start, lstm_cold_start, fma_peak, matmul_tiles) have no CPU row and
are skipped. With TIMELOOM_GRU_RESET_BEFORE set, the bench's gru rows measure the reset-before
GRU, which PyTorch does not have: they are skipped (with a line on stderr) rather than measured
with `nn.GRU`'s reset-after cell.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "target" / "bench" / "torch_cpu.json"
DEFAULT_OUT_CUDA = REPO / "target" / "bench" / "torch_cuda.json"
# The rows' path: torch-cpu, or torch-cuda with --device cuda (set once the flags are read).
PATH = ["torch-cpu"]

# ---------------------------------------------------------------------------------------------
# The case table. It mirrors CASES (and GPU_ONLY) in benches/gpu_vs_cpu.rs: the same ops in the
# same order, the same shapes with their sizes named and ordered as there, the same large shapes
# and `sized_by`. Keep the two in step: the bench matches our rows to its own by op and shape.
# ---------------------------------------------------------------------------------------------


def case(op, shapes, large=(), sized_by=None):
    return {"op": op, "shapes": shapes, "large": large, "sized_by": sized_by}


ELEMENTS = ((("N", 1 << 20),),)
ROWS = ((("R", 1024), ("C", 1024)),)
IMAGES = ((("N", 32), ("C", 32), ("HW", 32)),)
CONV = (
    (("N", 32), ("C_in", 3), ("C_out", 32), ("HW", 32), ("k", 3)),
    (("N", 32), ("C_in", 32), ("C_out", 64), ("HW", 16), ("k", 3)),
)
ATTENTION = (
    (("B", 4), ("H", 8), ("L", 128), ("d", 64)),
    (("B", 4), ("H", 8), ("L", 256), ("d", 64)),
)
ATTENTION_LARGE = (
    (("B", 4), ("H", 8), ("L", 512), ("d", 64)),
    (("B", 4), ("H", 8), ("L", 1024), ("d", 64)),
    (("B", 4), ("H", 8), ("L", 2048), ("d", 64)),
)
# The per-step path (B·H > 1024) and the persistent one-dispatch path (H ≤ 128, B·H ≤ 1024).
RECURRENT = (
    (("T", 32), ("B", 16), ("I", 128), ("H", 256)),
    (("T", 64), ("B", 8), ("I", 64), ("H", 64)),
)
# T ∈ {16, 64, 256}, B ∈ {1, 16, 64}, H = I ∈ {64, 256, 512}, in the Rust table's order.
RECURRENT_LARGE = tuple(
    (("T", t), ("B", b), ("I", h), ("H", h))
    for t in (16, 64, 256)
    for b in (1, 16, 64)
    for h in (64, 256, 512)
)

CASES = (
    case(
        "matmul",
        (
            (("M", 128), ("N", 128), ("K", 128)),
            (("M", 256), ("N", 256), ("K", 256)),
            (("M", 512), ("N", 512), ("K", 512)),
            (("M", 1024), ("N", 1024), ("K", 1024)),
            # Skinny, as an RNN's recurrent step: M = batch rows against K = N.
            (("M", 1), ("N", 256), ("K", 256)),
            (("M", 16), ("N", 256), ("K", 256)),
            (("M", 64), ("N", 256), ("K", 256)),
            (("M", 1), ("N", 1024), ("K", 1024)),
            (("M", 16), ("N", 1024), ("K", 1024)),
            (("M", 64), ("N", 1024), ("K", 1024)),
        ),
        large=((("M", 2048), ("N", 2048), ("K", 2048)),),
        sized_by="N",
    ),
    case("unary", ELEMENTS),
    case("unary_fwd_bwd", ELEMENTS),
    case("binary", ELEMENTS),
    case("axpy", ELEMENTS),
    case("dropout", ELEMENTS),
    case("reduce", ROWS),
    case("softmax_forward", ROWS),
    case("softmax_fwd_bwd", ROWS),
    case("cross_entropy_forward", ROWS),
    case("cross_entropy_fwd_bwd", ROWS),
    case("layer_norm_forward", ROWS),
    case("layer_norm_fwd_bwd", ROWS),
    case("embedding_forward", ((("V", 256), ("N", 2048), ("D", 128)),)),
    case("embedding_fwd_bwd", ((("V", 256), ("N", 2048), ("D", 128)),)),
    case("optimizer_step", ELEMENTS),
    case("optimizer_step_clipped", ((("P", 8), ("N", 1 << 17)),)),
    case("pool2d_forward", IMAGES),
    case("pool2d_fwd_bwd", IMAGES),
    case("batch_norm_forward", IMAGES),
    case("batch_norm_fwd_bwd", IMAGES),
    case("conv2d_forward", CONV),
    case("conv2d_fwd_bwd_data", CONV),
    case("conv2d_fwd_bwd_weight", CONV),
    case("conv2d_train_step", CONV),
    case("attention_forward", ATTENTION, large=ATTENTION_LARGE, sized_by="L"),
    case("attention_train_step", ATTENTION, large=ATTENTION_LARGE, sized_by="L"),
    case(
        "mlp_train_step",
        (
            (("B", 32), ("I", 64), ("H", 128), ("O", 10)),
            (("B", 256), ("I", 784), ("H", 256), ("O", 10)),
        ),
    ),
    case("lstm_forward", RECURRENT, large=RECURRENT_LARGE),
    case("lstm_train_step", RECURRENT, large=RECURRENT_LARGE),
    case("gru_forward", RECURRENT, large=RECURRENT_LARGE),
    case("gru_train_step", RECURRENT, large=RECURRENT_LARGE),
    case("char_rnn_generate", ((("V", 65), ("H", 256), ("N", 64)),)),
)

# Rows of the bench that run on the GPU alone (gpu_vs_cpu/gpu_only.rs): nothing to compare.
# matmul_tiles runs only when named, as in the bench.
GPU_ONLY = ("matmul_cold_start", "lstm_cold_start", "fma_peak", "matmul_tiles")

# What each torch row calls, for --list.
TORCH_CALL = {
    "matmul": "torch.matmul(a, b)",
    "unary": "F.gelu(x) (erf form), no_grad",
    "unary_fwd_bwd": "F.gelu(x).backward(dy), x.grad accumulates",
    "binary": "a + b, no_grad",
    "axpy": "x.backward(dy) on a leaf: x.grad += dy",
    "dropout": "F.dropout(x, 0.5, training=True), no_grad",
    "reduce": "x.sum(1), no_grad",
    "softmax_forward": "torch.softmax(x, -1), no_grad",
    "softmax_fwd_bwd": "torch.softmax(x, -1).backward(dy)",
    "cross_entropy_forward": "F.cross_entropy(x, t) (mean), no_grad",
    "cross_entropy_fwd_bwd": "F.cross_entropy(x, t).backward()",
    "layer_norm_forward": "F.layer_norm(x, (C,), g, b, 1e-5), no_grad",
    "layer_norm_fwd_bwd": "F.layer_norm(x, (C,), g, b, 1e-5).backward(dy): dx, dg, db",
    "embedding_forward": "F.embedding(t, w), no_grad",
    "embedding_fwd_bwd": "F.embedding(t, w).backward(dy): dw",
    "optimizer_step": "torch.optim.Adam([p], lr=1e-3).step()",
    "optimizer_step_clipped": "clip_grad_norm_(ps, 1.0); Adam(ps, lr=1e-3).step()",
    "pool2d_forward": "F.max_pool2d(x, 2, 2) on a leaf x (indices kept)",
    "pool2d_fwd_bwd": "F.max_pool2d(x, 2, 2).backward(dy)",
    "batch_norm_forward": "F.batch_norm(x, rm, rv, g, b, training=True, 0.1, 1e-5) on leaves",
    "batch_norm_fwd_bwd": "F.batch_norm(...training...).backward(dy): dx, dg, db",
    "conv2d_forward": "F.conv2d(x, w, b, padding=k//2), no_grad",
    "conv2d_fwd_bwd_data": "F.conv2d(...).backward(dy): dx",
    "conv2d_fwd_bwd_weight": "F.conv2d(...).backward(dy): dw, db",
    "conv2d_train_step": "F.conv2d(...).backward(dy): dx, dw, db",
    "attention_forward": "F.scaled_dot_product_attention(q, k, v, is_causal=True) on leaves",
    "attention_train_step": "F.scaled_dot_product_attention(causal).sum().backward(): dq, dk, dv",
    "mlp_train_step": "Linear-ReLU-Linear, F.cross_entropy, backward, Adam(lr=1e-3)",
    "lstm_forward": "nn.LSTM(I, H) on [T, B, I], no_grad",
    "lstm_train_step": "nn.LSTM(I, H), Σy², backward, Adam(lr=1e-3)",
    "gru_forward": "nn.GRU(I, H) on [T, B, I], no_grad",
    "gru_train_step": "nn.GRU(I, H), Σy², backward, Adam(lr=1e-3)",
    "char_rnn_generate": "nn.LSTM(V, H) + Linear(H, V), one token at a time: topk(10), "
    "multinomial(softmax(/0.8)), one-hot of the draw fed back; one .cpu() at the end",
}


# ---------------------------------------------------------------------------------------------
# The command line: the bench's flags, plus --threads and --out.
# ---------------------------------------------------------------------------------------------


def count(s):
    """A count of at least 1 (the bench's `cli::count`)."""
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{s}` is not a count")
    if n < 1:
        raise argparse.ArgumentTypeError(f"`{s}`: must be at least 1")
    return n


def parse_shape(s):
    """`--shape T=64,B=32`: (name, size) pairs."""
    out = []
    for kv in s.split(","):
        if "=" not in kv:
            raise argparse.ArgumentTypeError(f"`{kv}` is not NAME=SIZE")
        k, v = kv.split("=", 1)
        try:
            n = int(v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{v}` is not a size")
        if n < 0:
            raise argparse.ArgumentTypeError(f"`{v}` is not a size")
        out.append((k.strip(), n))
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="tools/torch_bench.py",
        description="PyTorch on the CPU on the rows of `cargo bench --bench gpu_vs_cpu`: prints "
        "a table and writes the rows (path torch-cpu) in the bench's JSON format, for its --torch.",
    )
    p.add_argument(
        "ops",
        nargs="*",
        help="keep the cases whose op starts with one of these (matmul, conv, lstm, attention, "
        "...; --list shows them)",
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        metavar="SIZE",
        help="keep the matmul rows whose N, and the attention rows whose L, is listed, the large "
        "sizes included (e.g. 256,1024)",
    )
    p.add_argument(
        "--reps",
        type=count,
        help="timed calls per row (default: until 2 s or 10 calls have passed, at least 3)",
    )
    p.add_argument(
        "--shape",
        type=parse_shape,
        metavar="NAME=SIZE,...",
        help="named sizes that replace those of every case whose shapes have all of them, e.g. "
        "T=64,B=32,I=128,H=256 for the recurrent rows",
    )
    p.add_argument("--large", action="store_true", help="also run the large shapes")
    p.add_argument(
        "--list", action="store_true", help="list the cases, their shapes and torch calls, and exit"
    )
    p.add_argument(
        "--threads",
        type=count,
        default=os.cpu_count() or 1,
        help="torch.set_num_threads (default: os.cpu_count(), here %(default)s)",
    )
    p.add_argument(
        "--fused-adam",
        action="store_true",
        help="torch.optim.Adam(fused=True) (torch >= 2.4 on the CPU) instead of torch's default "
        "Adam, in the optimizer and train-step rows; the adapter string says so",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where PyTorch runs (cuda: path torch-cuda, TF32 off, each call synchronized)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="the JSON rows (default: target/bench/torch_cpu.json, or torch_cuda.json with "
        "--device cuda, under the repository root)",
    )
    args = p.parse_args(argv)
    if args.out is None:
        args.out = DEFAULT_OUT_CUDA if args.device == "cuda" else DEFAULT_OUT
    PATH[0] = f"torch-{args.device}"
    if args.sizes is not None:
        sizes = []
        for item in args.sizes:
            for s in item.split(","):
                if s.strip():
                    try:
                        sizes.append(int(s))
                    except ValueError:
                        p.error(f"--sizes: `{s}` is not a size")
        args.sizes = sizes
    return args


def wants(args, op):
    return not args.ops or any(op.startswith(o) for o in args.ops)


def shapes_of(args, c):
    """`Args::shapes`: the default shapes (and the large ones with --large); with --sizes, those
    of either list whose `sized_by` size is listed; --shape replacing sizes; no shape twice."""
    every = list(c["shapes"]) + list(c["large"])
    if args.sizes is not None and c["sized_by"] is not None:
        key = c["sized_by"]
        picked = [s for s in every if any(k == key and v in args.sizes for k, v in s)]
    elif args.large:
        picked = every
    else:
        picked = list(c["shapes"])
    out = []
    for s in picked:
        s = [list(e) for e in s]
        if args.shape is not None and all(any(e[0] == k for e in s) for k, _ in args.shape):
            for k, v in args.shape:
                for e in s:
                    if e[0] == k:
                        e[1] = v
        s = [tuple(e) for e in s]
        if s not in out:
            out.append(s)
    return out


def shape_str(shape):
    return ",".join(f"{k}={v}" for k, v in shape)


def skip(op, shape, why):
    print(f"{op:<24} {shape_str(shape) if shape else '':<34} {PATH[0]:<13} skipped: {why}",
          file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The workloads: benches/gpu_vs_cpu/workload.rs, in PyTorch. `workload` returns the work of one
# call (("flop" | "bytes", amount)), the sequences per call (the recurrent rows) and `prepare`,
# which makes the inputs (untimed) and returns one call. A call that stands for our forward on
# plain inputs runs under torch.no_grad(); where our inputs are leaves (`leaf(...)`), the torch
# inputs require grad too and the call records a graph, as ours does, even without a backward.
# ---------------------------------------------------------------------------------------------


class Skip(Exception):
    """A row with no faithful PyTorch equivalent."""


def workload(op, size, opts):
    import torch
    import torch.nn.functional as F

    def normals(shape, grad=False):
        """Seeded normal values, a different stream per length (as `normals` in workload.rs;
        the values differ from ours, the distribution does not)."""
        n = 1
        for d in shape:
            n *= d
        g = torch.Generator().manual_seed(n)
        t = torch.randn(*shape, generator=g, dtype=torch.float32, device="cpu")
        t = t.to(torch.get_default_device())
        return t.requires_grad_() if grad else t

    def ids(n, classes):
        """Class ids 0, 7, 14, ... modulo `classes` (int64, what torch's ops take)."""
        return (torch.arange(n, dtype=torch.int64) * 7) % classes

    def no_grad(f):
        def call():
            with torch.no_grad():
                return f()

        return call

    def adam(params):
        # Our Optimizer::adam: β = (0.9, 0.999), ε = 1e-8, no weight decay; torch's defaults.
        kw = {"fused": True} if opts.fused_adam else {}
        return torch.optim.Adam(params, lr=1e-3, **kw)

    def plain(kind, amount, prepare, sequences=None):
        return (kind, float(amount)), sequences, prepare

    if op == "matmul":
        m, n, k = size("M"), size("N"), size("K")

        # 2·M·N·K: one multiply and one add per term.
        def prepare():
            a, b = normals([m, k]), normals([k, n])
            return no_grad(lambda: torch.matmul(a, b))

        return plain("flop", 2 * m * n * k, prepare)

    if op == "unary":
        n = size("N")

        # Read x, write y: 8·N bytes.
        def prepare():
            x = normals([n])
            return no_grad(lambda: F.gelu(x))

        return plain("bytes", 8 * n, prepare)

    if op == "unary_fwd_bwd":
        n = size("N")

        # Forward 8·N, backward 12·N, the leaf's gradient accumulation 12·N: 32·N bytes.
        def prepare():
            x, dy = normals([n], grad=True), normals([n])
            return lambda: F.gelu(x).backward(dy)

        return plain("bytes", 32 * n, prepare)

    if op == "binary":
        n = size("N")

        # Read a and b, write c: 12·N bytes.
        def prepare():
            a, b = normals([n]), normals([n])
            return no_grad(lambda: torch.add(a, b))

        return plain("bytes", 12 * n, prepare)

    if op == "axpy":
        n = size("N")

        # A leaf's gradient += dy (backward from the leaf itself): 12·N bytes.
        def prepare():
            x, dy = normals([n], grad=True), normals([n])
            return lambda: x.backward(dy)

        return plain("bytes", 12 * n, prepare)

    if op == "dropout":
        n = size("N")

        # Read x, write y: 8·N bytes. Ours hashes (seed, index) for the mask and never stores
        # it; torch's CPU dropout draws a Bernoulli mask from its generator into a tensor and
        # multiplies, which is torch's cost for the same result.
        def prepare():
            x = normals([n])
            return no_grad(lambda: F.dropout(x, 0.5, training=True))

        return plain("bytes", 8 * n, prepare)

    if op == "reduce":
        r, c = size("R"), size("C")

        # Read x, write one sum per row: 4·R·C + 4·R bytes.
        def prepare():
            x = normals([r, c])
            return no_grad(lambda: x.sum(1))

        return plain("bytes", 4 * r * c + 4 * r, prepare)

    if op == "softmax_forward":
        r, c = size("R"), size("C")

        # Read x, write y: 8·R·C bytes.
        def prepare():
            x = normals([r, c])
            return no_grad(lambda: torch.softmax(x, -1))

        return plain("bytes", 8 * r * c, prepare)

    if op == "softmax_fwd_bwd":
        r, c = size("R"), size("C")

        # Forward 8·R·C, backward 12·R·C, accumulation 12·R·C.
        def prepare():
            x, dy = normals([r, c], grad=True), normals([r, c])
            return lambda: torch.softmax(x, -1).backward(dy)

        return plain("bytes", 32 * r * c, prepare)

    if op == "cross_entropy_forward":
        r, c = size("R"), size("C")

        # Read the logits once: 4·R·C bytes. Mean over rows, as CrossEntropy::new().
        def prepare():
            x, t = normals([r, c]), ids(r, c)
            return no_grad(lambda: F.cross_entropy(x, t))

        return plain("bytes", 4 * r * c, prepare)

    if op == "cross_entropy_fwd_bwd":
        r, c = size("R"), size("C")

        # Forward 4·R·C, backward 8·R·C, accumulation 12·R·C: 24·R·C bytes.
        def prepare():
            x, t = normals([r, c], grad=True), ids(r, c)
            return lambda: F.cross_entropy(x, t).backward()

        return plain("bytes", 24 * r * c, prepare)

    if op == "layer_norm_forward":
        r, c = size("R"), size("C")

        # Read x, write y: 8·R·C bytes.
        def prepare():
            x, g, b = normals([r, c]), normals([c]), normals([c])
            return no_grad(lambda: F.layer_norm(x, (c,), g, b, 1e-5))

        return plain("bytes", 8 * r * c, prepare)

    if op == "layer_norm_fwd_bwd":
        r, c = size("R"), size("C")

        # Forward 8·R·C, backward 12·R·C, accumulation 12·R·C; dγ and dβ too.
        def prepare():
            x, dy = normals([r, c], grad=True), normals([r, c])
            g, b = normals([c], grad=True), normals([c], grad=True)
            return lambda: F.layer_norm(x, (c,), g, b, 1e-5).backward(dy)

        return plain("bytes", 32 * r * c, prepare)

    if op == "embedding_forward":
        v, n, d = size("V"), size("N"), size("D")

        # Read N ids and N rows of D, write N·D: 8·N·D + 4·N bytes (torch's ids are int64).
        def prepare():
            w, t = normals([v, d]), ids(n, v)
            return no_grad(lambda: F.embedding(t, w))

        return plain("bytes", 8 * n * d + 4 * n, prepare)

    if op == "embedding_fwd_bwd":
        v, n, d = size("V"), size("N"), size("D")

        # 12·N·D + 8·N + 16·V·D bytes (dense dW, accumulated into w.grad).
        def prepare():
            w, t = normals([v, d], grad=True), ids(n, v)
            dy = normals([n, d])
            return lambda: F.embedding(t, w).backward(dy)

        return plain("bytes", 12 * n * d + 8 * n + 16 * v * d, prepare)

    if op == "optimizer_step":
        n = size("N")

        # Adam reads θ, g, m, v and writes θ, m, v: 28·N bytes. The gradient is set once and
        # every step reuses it, as ours.
        def prepare():
            p = torch.nn.Parameter(normals([n]))
            p.grad = normals([n])
            opt = adam([p])
            return opt.step

        return plain("bytes", 28 * n, prepare)

    if op == "optimizer_step_clipped":
        count_, n = size("P"), size("N")

        # Per parameter: Σg² reads g (4·N), Adam moves 28·N. Ours folds the clip scale into the
        # update kernel; torch's clip_grad_norm_ also multiplies every gradient in place (one
        # more read and write of g per step), which is what a torch user's step costs.
        def prepare():
            params = []
            for _ in range(count_):
                p = torch.nn.Parameter(normals([n]))
                p.grad = normals([n])
                params.append(p)
            opt = adam(params)

            def call():
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()

            return call

        return plain("bytes", 32 * count_ * n, prepare)

    if op in ("pool2d_forward", "pool2d_fwd_bwd"):
        n, c, hw = size("N"), size("C"), size("HW")
        numel = n * c * hw * hw
        train = op == "pool2d_fwd_bwd"

        # 2×2 max pool, stride 2: forward 6·NCHW bytes (y and the winning taps), backward
        # 6·NCHW, accumulation 12·NCHW. x is a leaf in both rows (as ours), so torch's forward
        # keeps the argmax indices too (int64 where ours keeps a u32 tap).
        def prepare():
            x = normals([n, c, hw, hw], grad=True)
            dy = normals([n, c, hw // 2, hw // 2])

            def call():
                y = F.max_pool2d(x, 2, 2, 0)
                if train:
                    y.backward(dy)
                return y

            return call

        return plain("bytes", (24 if train else 6) * numel, prepare)

    if op in ("batch_norm_forward", "batch_norm_fwd_bwd"):
        n, c, hw = size("N"), size("C"), size("HW")
        numel = n * c * hw * hw
        train = op == "batch_norm_fwd_bwd"

        # Training mode (batch statistics, running statistics updated with momentum 0.1):
        # 16·NCHW bytes forward, 48·NCHW with the backward and accumulation.
        def prepare():
            x = normals([n, c, hw, hw], grad=True)
            dy = normals([n, c, hw, hw])
            g, b = normals([c], grad=True), normals([c], grad=True)
            mean, var = torch.zeros(c), torch.ones(c)

            def call():
                y = F.batch_norm(x, mean, var, g, b, training=True, momentum=0.1, eps=1e-5)
                if train:
                    y.backward(dy)
                return y

            return call

        return plain("bytes", (48 if train else 16) * numel, prepare)

    if op in ("conv2d_forward", "conv2d_fwd_bwd_data", "conv2d_fwd_bwd_weight", "conv2d_train_step"):
        n, ci, co, hw, k = size("N"), size("C_in"), size("C_out"), size("HW"), size("k")
        # (x needs a gradient, w and b need one, convolutions per call); no optimizer in any.
        dx, dw, convs = {
            "conv2d_forward": (False, False, 1),
            "conv2d_fwd_bwd_data": (True, False, 2),
            "conv2d_fwd_bwd_weight": (False, True, 2),
            "conv2d_train_step": (True, True, 3),
        }[op]

        # One convolution (stride 1, padding k/2): 2·N·C_out·HW²·C_in·k² FLOP; each backward
        # the same again. dy is made beforehand: the rows time the convolution, not a loss.
        def prepare():
            x = normals([n, ci, hw, hw], grad=dx)
            w = normals([co, ci, k, k], grad=dw)
            b = normals([co], grad=dw)
            dy = normals([n, co, hw, hw])
            if not (dx or dw):
                return no_grad(lambda: F.conv2d(x, w, b, stride=1, padding=k // 2))

            def call():
                y = F.conv2d(x, w, b, stride=1, padding=k // 2)
                y.backward(dy)
                return y

            return call

        return plain("flop", 2 * n * co * hw * hw * ci * k * k * convs, prepare)

    if op in ("attention_forward", "attention_train_step"):
        batch, heads, length, dim = size("B"), size("H"), size("L"), size("d")
        bh = batch * heads
        train = op == "attention_train_step"
        # Causal: about half of 4·BH·L²·d FLOP forward, 3.5× that with the backward.
        f = 2.0 * (bh * length * length * dim) * (3.5 if train else 1.0)

        # Ours takes [B·H, L, d] with `heads`; SDPA takes the same memory as [B, H, L, d] (its
        # fused CPU kernels want 4-D). Scale 1/√d, causal, q, k and v leaves as ours.
        def prepare():
            def t():
                return normals([batch, heads, length, dim], grad=True)

            q, kk, v = t(), t(), t()

            def call():
                o = F.scaled_dot_product_attention(q, kk, v, is_causal=True)
                if train:
                    o.sum().backward()
                return o

            return call

        return plain("flop", f, prepare)

    if op == "mlp_train_step":
        b, i, h, o = size("B"), size("I"), size("H"), size("O")

        # 4·B·I·H + 6·B·H·O FLOP, Adam aside (the input needs no gradient).
        def prepare():
            torch.manual_seed(1)
            model = torch.nn.Sequential(
                torch.nn.Linear(i, h), torch.nn.ReLU(), torch.nn.Linear(h, o)
            )
            opt = adam(list(model.parameters()))
            x, t = normals([b, i]), ids(b, o)

            def call():
                opt.zero_grad()
                F.cross_entropy(model(x), t).backward()
                opt.step()

            return call

        return plain("flop", 4 * b * i * h + 6 * b * h * o, prepare)

    if op in ("lstm_forward", "lstm_train_step", "gru_forward", "gru_train_step"):
        t, b, i, h = size("T"), size("B"), size("I"), size("H")
        lstm = op.startswith("lstm")
        train = op.endswith("train_step")
        gates = 4 if lstm else 3
        if not lstm and os.environ.get("TIMELOOM_GRU_RESET_BEFORE") is not None:
            raise Skip(
                "TIMELOOM_GRU_RESET_BEFORE is set: the bench's gru rows measure the reset-before "
                "GRU, and PyTorch has only the reset-after one (nn.GRU)"
            )
        # Forward 2·T·B·(I + H)·G·H FLOP; a training step 2·T·B·G·H·(2·I + 3·H) (no dX).
        if train:
            f = 2 * t * b * gates * h * (2 * i + 3 * h)
        else:
            f = 2 * t * b * (i + h) * gates * h

        # One layer, unidirectional, biases, time-major [T, B, I] (our default layout, so
        # batch_first=False); loss Σ y² over the whole output sequence; Adam over every weight.
        def prepare():
            torch.manual_seed(2)
            cls = torch.nn.LSTM if lstm else torch.nn.GRU
            model = cls(i, h, num_layers=1, bias=True, batch_first=False)
            opt = adam(list(model.parameters()))
            x = normals([t, b, i])
            if not train:
                return no_grad(lambda: model(x)[0])

            def call():
                opt.zero_grad()
                y, _ = model(x)
                y.square().sum().backward()
                opt.step()

            return call

        return plain("flop", f, prepare, sequences=b)

    if op == "char_rnn_generate":
        v, h, n = size("V"), size("H"), size("N")
        # Per token: the LSTM step 2·4H·(V + H) on a one-hot input and the decoder 2·H·V.
        per_token = 2 * 4 * h * (v + h) + 2 * h * v

        # As char_rnn's sample: temperature 0.8, top 10, each draw on the device and fed back as
        # a one-hot row; the tokens read once at the end.
        def prepare():
            torch.manual_seed(3)
            lstm, dec = torch.nn.LSTM(v, h), torch.nn.Linear(h, v)
            eye = torch.eye(v)

            def call():
                with torch.no_grad():
                    x, state, ids = eye[0].view(1, 1, v), None, []
                    for _ in range(n):
                        y, state = lstm(x, state)
                        vals, idx = torch.topk(dec(y[0]), 10)
                        pick = torch.multinomial(torch.softmax(vals / 0.8, -1), 1)
                        token = idx.gather(1, pick).view(1)
                        ids.append(token)
                        x = eye[token].view(1, 1, v)
                    return torch.cat(ids).cpu()

            return call

        return plain("flop", n * per_token, prepare)

    raise Skip(f"no torch workload for `{op}`: add one beside the others")


# ---------------------------------------------------------------------------------------------
# Timing, rows and output.
# ---------------------------------------------------------------------------------------------


def time_calls(reps, call, sync):
    """`time_calls`: `reps` timed calls, or until 2 s or 10 calls have passed (at least 3); the
    median in ms (the upper one of an even count, as ours). Each call ends with `sync` (the
    device's work done). The caller has made one untimed call."""
    times = []
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
        if reps is not None:
            enough = len(times) >= reps
        else:
            enough = len(times) >= 3 and (time.perf_counter() - start > 2.0 or len(times) >= 10)
        if enough:
            break
    times.sort()
    return times[len(times) // 2]


def make_row(op, shape, adapter, ms, work, sequences, path="torch-cpu", backend="cpu"):
    kind, amount = work
    rate = amount / ms / 1e6
    return {
        "op": op,
        "shape": {k: v for k, v in shape},
        "path": path,
        "adapter": adapter,
        "backend": backend,
        "median_ms": ms,
        "gflops": rate if kind == "flop" else None,
        "dispatches": 0.0,
        "submissions": 0.0,
        "sequences_per_s": sequences / (ms / 1e3) if sequences is not None else None,
        "peak_bytes": None,
        "gbytes_per_s": rate if kind == "bytes" else None,
        "kernels": [],
    }


def print_row(row, shape):
    if row["gflops"] is not None:
        rate = f"{row['gflops']:.2f} GFLOP/s"
    elif row["gbytes_per_s"] is not None:
        rate = f"{row['gbytes_per_s']:.2f} GB/s"
    else:
        rate = "-"
    note = ""
    if row["sequences_per_s"] is not None:
        note = f"  ({row['sequences_per_s']:.1f} seq/s)"
    print(
        f"{row['op']:<24} {shape_str(shape):<34} {row['path']:<13} {row['median_ms']:>10.3f} ms "
        f"{rate:>15} {0:>5} disp {0:>3} subm  {row['adapter']} [{row['backend']}]{note}",
        flush=True,
    )


def write_json(rows, path):
    """One row per line inside a JSON array (the bench's `write_json`), written whole to a
    temporary file beside `path` and renamed over it, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["  " + json.dumps(r, separators=(",", ":"), allow_nan=False) for r in rows]
    text = "[\n" + ",\n".join(lines) + "\n]\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def list_cases(args):
    for c in CASES:
        print(f"{c['op']}: {TORCH_CALL.get(c['op'], '(no torch workload)')}")
        for s in shapes_of(args, c):
            print(f"    {shape_str(s)} on torch-cpu")
        if c["large"] and not args.large:
            print(f"    and {len(c['large'])} large shapes (--large)")
    for op in GPU_ONLY:
        print(f"{op}: GPU only, no torch row")


def main(argv=None):
    args = parse_args(argv)
    # The table on stdout and the skips on stderr stay in order when both go to one pipe.
    sys.stdout.reconfigure(line_buffering=True)
    if args.list:
        list_cases(args)
        return 0
    known = [c["op"] for c in CASES] + list(GPU_ONLY)
    for o in args.ops:
        if not any(op.startswith(o) for op in known):
            print(f"no case's op starts with `{o}` (--list shows them)", file=sys.stderr)
    for op in GPU_ONLY:
        named = op in args.ops if op == "matmul_tiles" else wants(args, op)
        if named:
            skip(op, None, "GPU only (gpu_vs_cpu/gpu_only.rs): no CPU row to compare")

    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch numpy", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    path, backend = "torch-cpu", "cpu"
    adapter = f"PyTorch {torch.__version__} CPU ({torch.get_num_threads()} threads)"

    def sync():
        pass

    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("--device cuda: PyTorch sees no CUDA device", file=sys.stderr)
            return 2
        # f32 on both sides: TF32 would compute products in 10-bit mantissas.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_default_device("cuda")
        path, backend = "torch-cuda", "cuda"
        adapter = f"PyTorch {torch.__version__} CUDA {torch.cuda.get_device_name()} (TF32 off)"
        sync = torch.cuda.synchronize
    if args.fused_adam:
        adapter += ", fused Adam"
    print(f"adapter: {adapter}")

    start = time.perf_counter()
    rows = []
    for c in CASES:
        if not wants(args, c["op"]):
            continue
        for shape in shapes_of(args, c):
            sizes = dict(shape)

            def size(k, op=c["op"], sizes=sizes):
                if k not in sizes:
                    raise KeyError(f"{op}: the shape has no `{k}`")
                return sizes[k]

            try:
                work, sequences, prepare = workload(c["op"], size, args)
            except Skip as e:
                skip(c["op"], shape, e)
                continue
            try:
                call = prepare()
                call()  # untimed: lazy state (Adam's moments, grads), allocator, kernel choice
                sync()
            except Exception as e:  # a size torch refuses shows here, as the bench's first call
                skip(c["op"], shape, f"{type(e).__name__}: {e}")
                continue
            ms = time_calls(args.reps, call, sync)
            row = make_row(c["op"], shape, adapter, ms, work, sequences, path, backend)
            print_row(row, shape)
            rows.append(row)
            del call, prepare

    out = write_json(rows, args.out)
    print(f"wrote {out} ({len(rows)} rows in {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
