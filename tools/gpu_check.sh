#!/usr/bin/env bash
# The ready check for a machine with a real GPU (issue 15): build (or take binaries built
# elsewhere), run the GPU-path tests (CPU-twin parity, PyTorch fixtures, the engine's counters)
# on the machine's best adapter, time the bench's key rows, and print one table: the adapter,
# its measured multiply-add ceiling (the bench's fma_peak) and each row's share of it, with
# PyTorch CUDA's time for the same row beside ours where PyTorch sees a CUDA device.
#
#   tools/gpu_check.sh                 # build with cargo here, then check (a GPU machine with Rust)
#   tools/gpu_check.sh --pack DIR      # build here and pack stripped binaries into DIR
#   tools/gpu_check.sh --bins DIR      # check with the binaries packed in DIR (a GPU machine
#                                      # without Rust: carry DIR and the checkout there)
#   tools/gpu_check.sh --smoke         # CI on lavapipe: no tests (CI has just run them), the
#                                      # small sizes, one timed call per row
#
# Environment: TIMELOOM_ADAPTER / TIMELOOM_BACKEND pick the adapter as everywhere else;
# GPU_CHECK_SIZES (matmul N and attention L, default 256,1024), GPU_CHECK_REPS (default 5),
# GPU_CHECK_TEST_TIMEOUT (seconds per test binary, default 300). For a short device session:
# GPU_CHECK_TESTS (a test-name filter, e.g. attention), GPU_CHECK_ROWS (the bench rows instead
# of the key rows, comma-separated, e.g. attention_train_step,lstm_forward_f16) and
# GPU_CHECK_SWEEPS=0 (no profile run, no sweeps).
# Writes target/gpu_check/{tests.log,bench.log,profile.log,sweep.log,bench.json,
# torch_cuda.json,table.md}, and copies them to $OUT when that is set (the device tool's
# output folder).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=build
BINS=""
SMOKE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pack) MODE=pack; BINS=${2:?--pack needs a folder}; shift 2 ;;
    --bins) MODE=bins; BINS=${2:?--bins needs a folder}; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
SIZES=${GPU_CHECK_SIZES:-256,1024}
REPS=${GPU_CHECK_REPS:-5}
TEST_TIMEOUT=${GPU_CHECK_TEST_TIMEOUT:-300}
if [ "$SMOKE" = 1 ]; then
  SIZES=${GPU_CHECK_SIZES:-256}
  REPS=${GPU_CHECK_REPS:-1}
fi
WORK=$ROOT/target/gpu_check
mkdir -p "$WORK"
START=$(date +%s)
say() { echo "gpu_check [$(($(date +%s) - START)) s]: $*" >&2; }

# The executables cargo builds for the tests and the bench, from its JSON messages.
executables() { # cargo args...
  cargo "$@" --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["target"]["kind"][0], m["executable"])
'
}

build() {
  say "building (release)"
  cargo test --release --no-run || { say "the test build failed"; exit 1; }
  cargo bench --bench gpu_vs_cpu --no-run || { say "the bench build failed"; exit 1; }
  {
    executables test --release --no-run
    executables bench --bench gpu_vs_cpu --no-run
  } >"$WORK/executables"
}

if [ "$MODE" = pack ]; then
  build
  mkdir -p "$BINS"
  rm -f "$BINS"/*.bin "$BINS"/*.bin.xz
  : >"$BINS/executables"
  while read -r name kind exe; do
    # Stripped and compressed (a device tool carries 64 MiB), each named after its target. The
    # binaries find the repository through the path they were built in (CARGO_MANIFEST_DIR),
    # recorded for --bins to link.
    strip -o "$BINS/$kind-$name.bin" "$exe" && xz -T0 -6 "$BINS/$kind-$name.bin"
    echo "$name $kind $kind-$name.bin" >>"$BINS/executables"
  done <"$WORK/executables"
  echo "$ROOT" >"$BINS/manifest_dir"
  du -sh "$BINS"
  exit 0
fi

if [ "$MODE" = bins ]; then
  BINS=$(cd "$BINS" && pwd)
  built_in=$(cat "$BINS/manifest_dir")
  if [ "$built_in" != "$ROOT" ] && [ ! -e "$built_in" ]; then
    # The tests read their fixtures from the folder they were built in.
    mkdir -p "$(dirname "$built_in")" && ln -s "$ROOT" "$built_in" \
      || say "cannot link $built_in to $ROOT: the fixture tests will fail"
  fi
  mkdir -p "$WORK/bin"
  while read -r name kind file; do
    if command -v xz >/dev/null; then
      xz -dc "$BINS/$file.xz" >"$WORK/bin/$file"
    else
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' \
        "$BINS/$file.xz" >"$WORK/bin/$file"
    fi
    chmod +x "$WORK/bin/$file"
    echo "$name $kind $WORK/bin/$file"
  done <"$BINS/executables" >"$WORK/executables"
else
  command -v cargo >/dev/null || { say "no cargo here: pack binaries elsewhere (--pack) and use --bins"; exit 2; }
  build
fi

BENCH=$(awk '$2 == "bench" {print $3}' "$WORK/executables")
[ -x "$BENCH" ] || { say "no bench executable"; exit 1; }

# The examples' figures draw text with DejaVu Sans; a machine without fonts-dejavu-core may
# still have it inside matplotlib.
if [ -z "${TIMELOOM_FONT:-}" ] && [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  font=$(python3 -c 'import matplotlib, os; print(os.path.join(matplotlib.get_data_path(), "fonts/ttf/DejaVuSans.ttf"))' 2>/dev/null)
  [ -n "$font" ] && [ -e "$font" ] && export TIMELOOM_FONT=$font
fi

# The tests: every test binary, on the best adapter (the tests' own choice, as a user's).
: >"$WORK/tests.log"
: >"$WORK/tests.summary"
if [ "$SMOKE" = 0 ]; then
  while read -r name kind exe; do
    [ "$kind" = bench ] && continue
    say "tests: $name"
    # One test at a time: a test that hangs is then the last one named in the log, and the
    # binary runs again without it, so one hang does not hide the other tests' results.
    skip=()
    hung=""
    for attempt in 1 2; do
      timeout "$TEST_TIMEOUT" "$exe" --test-threads=1 ${GPU_CHECK_TESTS:+"$GPU_CHECK_TESTS"} \
        "${skip[@]}" >"$WORK/test.log" 2>&1
      rc=$?
      cat "$WORK/test.log" >>"$WORK/tests.log"
      [ "$rc" = 124 ] || break
      last=$(grep -a '^test .* \.\.\. *$' "$WORK/test.log" | tail -1 | sed 's/^test \(.*\) \.\.\..*/\1/')
      [ -n "$last" ] || break
      echo >>"$WORK/tests.log"
      echo "gpu_check: $name: $last did not finish in ${TEST_TIMEOUT} s" | tee -a "$WORK/tests.log" >&2
      hung="$hung $last"
      skip+=(--skip "$last")
    done
    line=$(grep -a '^test result:' "$WORK/test.log" | tail -1)
    passed=$(echo "$line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
    failed=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    case $rc in
      0) status=ok ;;
      124) status="timed out after ${TEST_TIMEOUT} s" ;;
      *) status="FAILED (exit $rc)" ;;
    esac
    [ -n "$hung" ] && status="$status; hung:$hung"
    echo "$name|${passed:-?}|${failed:-?}|$status" >>"$WORK/tests.summary"
    grep -a -E '^test .* FAILED$|panicked at' "$WORK/test.log" | tail -5 >&2
  done <"$WORK/executables"
fi

# The key rows: the ceiling, the cold starts, matmul (square, skinny, f16 weights), the MLP,
# conv, attention (fused and materialised), LSTM/GRU training steps, generation.
# `lstm_forward` also picks the f16 layer's row (lstm_forward_f16, issue 17), each with its
# resident bytes.
ROWS=(fma_peak matmul_cold_start lstm_cold_start matmul mlp_train_step conv2d_train_step
      attention_train_step lstm_train_step gru_train_step char_rnn_generate lstm_forward)
if [ -n "${GPU_CHECK_ROWS:-}" ]; then
  read -ra ROWS <<<"${GPU_CHECK_ROWS//,/ }"
fi
PATHS=gpu,gpu_reference,cpu
[ "$SMOKE" = 1 ] && PATHS=gpu,gpu_reference
say "bench: ${ROWS[*]} --sizes $SIZES --reps $REPS --paths $PATHS"
"$BENCH" "${ROWS[@]}" --sizes "$SIZES" --shape T=64,B=32,I=128,H=256 --reps "$REPS" \
  --paths "$PATHS" >"$WORK/bench.log" 2>&1
bench_rc=$?
cp -f "$ROOT/target/bench/gpu_vs_cpu.json" "$WORK/bench.json" 2>/dev/null \
  || say "the bench wrote no JSON (exit $bench_rc); see $WORK/bench.log"
[ "$bench_rc" = 0 ] || tail -20 "$WORK/bench.log" >&2

# Where each row's device time goes, kernel by kernel (GPU timestamps; a second run, since the
# timestamps make each submission wait). Not in the smoke run.
if [ "$SMOKE" = 0 ] && [ "${GPU_CHECK_SWEEPS:-1}" != 0 ]; then
  say "bench --profile: device time per kernel"
  "$BENCH" matmul mlp_train_step conv2d_train_step attention_train_step lstm_train_step \
    gru_train_step char_rnn_generate --sizes 1024 --shape T=64,B=32,I=128,H=256 --reps 3 \
    --paths gpu,gpu_reference --profile >"$WORK/profile.log" 2>&1 \
    || say "the profiled bench failed; see $WORK/profile.log"
  # The candidates the autotune chooses among, each timed: every matmul tile on square
  # products, and the recurrent steps' k-split.
  say "sweeps: matmul tiles, recurrent k-split"
  {
    "$BENCH" matmul_tiles --sizes 1024,2048 --paths gpu
    for ks in 4 8 16; do
      echo "TIMELOOM_RECURRENT_KSPLIT=$ks"
      TIMELOOM_RECURRENT_KSPLIT=$ks "$BENCH" lstm_train_step gru_train_step \
        --shape T=64,B=32,I=128,H=256 --reps 3 --paths gpu
    done
  } >"$WORK/sweep.log" 2>&1 || say "a sweep failed; see $WORK/sweep.log"
fi

# PyTorch on the same rows on the same GPU, where it has one (not in CI).
rm -f "$WORK/torch_cuda.json"
if [ "$SMOKE" = 0 ] && python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  say "PyTorch CUDA on the same rows"
  python3 tools/torch_bench.py "${ROWS[@]}" --sizes "$SIZES" --shape T=64,B=32,I=128,H=256 \
    --reps "$REPS" --device cuda --out "$WORK/torch_cuda.json" >"$WORK/torch.log" 2>&1 \
    || say "torch_bench failed; see $WORK/torch.log"
fi

python3 - "$WORK" <<'PY' | tee "$WORK/table.md"
import json, os, sys
work = sys.argv[1]
try:
    rows = json.load(open(os.path.join(work, "bench.json")))
except (OSError, ValueError):
    rows = []
torch = {}
try:
    for r in json.load(open(os.path.join(work, "torch_cuda.json"))):
        torch[(r["op"], json.dumps(r["shape"]))] = r
except (OSError, ValueError):
    pass
gpu = [r for r in rows if r["path"] != "cpu"]
adapter = gpu[0]["adapter"] + " [" + gpu[0]["backend"] + "]" if gpu else "no GPU row"
peak = next((r["gflops"] for r in rows if r["op"] == "fma_peak"), None)
print(f"adapter: {adapter}")
print(f"fma_peak: {peak:.1f} GFLOP/s (f32 multiply-add ceiling measured in this run)" if peak else "fma_peak: not measured")
tests = [l.strip().split("|") for l in open(os.path.join(work, "tests.summary")) if l.strip()]
if tests:
    print()
    print("| test binary | passed | failed | status |")
    print("|---|---|---|---|")
    for name, p, f, s in tests:
        print(f"| {name} | {p} | {f} | {s} |")
print()
tc = any(torch.values())
head = "| row | shape | path | dtype | ms | GFLOP/s | share of fma_peak | disp | subm |"
if tc:
    head += " PyTorch CUDA ms | ours / PyTorch |"
print(head + " note |")
print("|" + "---|" * (head.count("|") - 1 + 1))
for r in rows:
    if r["op"] == "fma_peak":
        continue
    shape = ",".join(f"{k}={v}" for k, v in r["shape"].items())
    g = r.get("gflops")
    share = f"{100 * g / peak:.1f}%" if g and peak and r["path"] != "cpu" else "-"
    note = []
    if r.get("tokens_per_s"):
        note.append(f"{r['tokens_per_s']:.0f} tokens/s")
    if r.get("sequences_per_s"):
        note.append(f"{r['sequences_per_s']:.0f} seq/s")
    if r.get("resident_bytes"):
        note.append(f"resident {r['resident_bytes'] / 2**20:.1f} MiB")
    if r["path"] == "cpu":
        note.append(r["adapter"])
    line = (f"| {r['op']} | {shape} | {r['path']} | {r.get('dtype', 'f32')} | {r['median_ms']:.3f} | "
            f"{g:.1f} |" if g else f"| {r['op']} | {shape} | {r['path']} | {r.get('dtype', 'f32')} | {r['median_ms']:.3f} | - |")
    line += f" {share} | {r['dispatches']:.0f} | {r['submissions']:.0f} |"
    if tc:
        t = torch.get((r["op"], json.dumps(r["shape"]))) if r["path"] == "gpu" else None
        line += f" {t['median_ms']:.3f} | {r['median_ms'] / t['median_ms']:.2f} |" if t else " - | - |"
    print(line + f" {', '.join(note)} |")
if tc:
    print()
    print("PyTorch: " + next(iter(torch.values()))["adapter"])
PY

say "done in $(($(date +%s) - START)) s; logs in $WORK"
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
  cp -f "$WORK"/tests.log "$WORK"/bench.log "$WORK"/table.md "$OUT"/ 2>/dev/null
  cp -f "$WORK"/profile.log "$WORK"/sweep.log "$OUT"/ 2>/dev/null
  cp -f "$WORK"/bench.json "$WORK"/torch_cuda.json "$WORK"/torch.log "$OUT"/ 2>/dev/null
fi
failed=$(awk -F'|' '$4 != "ok"' "$WORK/tests.summary" | wc -l)
[ "$failed" = 0 ] && [ "$bench_rc" = 0 ]
