#!/usr/bin/env bash
# The CPU path against PyTorch on the rows issue 14 tracks, in one sitting: ROUNDS alternating
# rounds (default 3) of our bench's CPU rows and tools/torch_bench.py's, then the median of each
# row and the time ratios. Set BEFORE=<path to an older gpu_vs_cpu bench binary> to time it in
# the same rounds (a third column). Needs PyTorch (`pip install torch numpy`); the tests do not.
#
#   tools/cpu_vs_torch.sh            # after `cargo bench --bench gpu_vs_cpu --no-run`
#   BEFORE=/tmp/gpu_vs_cpu-old tools/cpu_vs_torch.sh 5
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
cargo bench --bench gpu_vs_cpu --no-run -q 2>/dev/null || cargo bench --bench gpu_vs_cpu --no-run
NOW=$(ls -t target/release/deps/gpu_vs_cpu-* | grep -v '\.d$' | head -1)
OUT=$(mktemp)
trap 'rm -f "$OUT" "$OUT.json"' EXIT
# Each line: the rows one bench invocation runs (ops first: `--paths` takes one value).
ROWS=(
  "matmul --sizes 256,1024 --reps 5"
  "mlp_train_step conv2d_train_step --reps 5"
  "attention --sizes 256 --reps 5"
  "lstm gru --shape T=64,B=32,I=128,H=256 --reps 3"
  "attention_train_step --sizes 1024 --reps 2"
)
ours() { # tag binary args...
  local tag=$1 bin=$2; shift 2
  "$bin" "$@" --paths cpu 2>&1 | awk -v t="$tag" '$3 == "cpu" {print t, $1, $2, $4}' >>"$OUT"
}
for round in $(seq "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    # shellcheck disable=SC2086
    {
      [ -n "${BEFORE:-}" ] && ours before "$BEFORE" $row
      ours after "$NOW" $row
      python3 tools/torch_bench.py $row --out "$OUT.json" 2>/dev/null \
        | awk '$3 == "torch-cpu" {print "torch", $1, $2, $4}' >>"$OUT"
    }
  done
  echo "round $round of $ROUNDS done" >&2
done
python3 - "$OUT" <<'PY'
import sys
from collections import defaultdict
from statistics import median
d = defaultdict(list)
for line in open(sys.argv[1]):
    tag, op, shape, ms = line.split()
    d[(op, shape, tag)].append(float(ms))
tags = [t for t in ("before", "after", "torch") if any(k[2] == t for k in d)]
print(f"{'op':22} {'shape':36} " + " ".join(f"{t + ' ms':>10}" for t in tags)
      + "".join(f" {t + '/torch':>13}" for t in tags if t != "torch"))
for op, shape in sorted({(o, s) for o, s, _ in d}):
    med = {t: median(d[(op, shape, t)]) for t in tags if d[(op, shape, t)]}
    cells = " ".join(f"{med.get(t, float('nan')):10.3f}" for t in tags)
    ratios = "".join(f" {med[t] / med['torch']:13.2f}" if t in med and "torch" in med else f" {'-':>13}"
                     for t in tags if t != "torch")
    print(f"{op:22} {shape:36} {cells}{ratios}")
PY
