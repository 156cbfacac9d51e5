#!/usr/bin/env bash
# The GPU checks, as one short run on a lent GPU machine, which has torch
# 2.11.0 in its python3 and no Rust (docs/speed.md#gpu):
#   here:  cargo build --release && cargo test --release --lib --no-run
#   there: scripts/gpu_check.sh target/release/binclass "$OUT" [LIB_TEST_BINARY]
# It times one run on the host's CPU and on CUDA and a sweep of 10,000 seeds,
# and checks on CUDA what the tests pin on the CPU: a sweep's replica against
# `train`, results independent of the batch, shards merged equal to one sweep,
# the per-replica learning rate, CPU against CUDA over the first epoch, and,
# given the library's test binary, its `…_on_cuda` tests. Writes
# OUT/gpu-check.txt, a line per check, and the commands' output beside it
# (the runs themselves go to a temporary folder: 10,000 seeds are 30,000
# files); exits 1 if a check failed (a missed speed target is reported, not
# failed).
# GPU_CHECK_DEVICE=cpu GPU_CHECK_SEEDS=N GPU_CHECK_EPOCHS=N run the same,
# smaller, on the CPU: its test (tests/gpu_check.rs).
# GPU_CHECK_PYTHON: a Python with torch 2.11.0 (default: python3).
set -uo pipefail
BIN=$(readlink -f "${1:?usage: gpu_check.sh BINARY OUT [LIB_TEST_BINARY]}")
OUT=${2:?usage: gpu_check.sh BINARY OUT [LIB_TEST_BINARY]}
TESTS=${3:+$(readlink -f "$3")}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SEEDS=${GPU_CHECK_SEEDS:-10000}
EPOCHS=${GPU_CHECK_EPOCHS:-100}
PYTHON=${GPU_CHECK_PYTHON:-python3}
mkdir -p "$OUT" && OUT=$(readlink -f "$OUT") || exit 2
WORK=$(mktemp -d) && cd "$WORK" || exit 2
trap 'rm -rf "$WORK"' EXIT
REPORT=$OUT/gpu-check.txt
: >"$REPORT"
: >"$OUT/commands.log"
# The binary's rpath names the build machine's libtorch: use this machine's.
lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
    { echo "gpu_check.sh: $PYTHON has no torch; set GPU_CHECK_PYTHON" >&2; exit 2; }
export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
failed=0

say() { echo "$*" | tee -a "$REPORT"; }
check() { # check NAME CONDITION-COMMAND...
    local name=$1
    shift
    if "$@"; then say "ok      $name"; else say "FAILED  $name"; failed=1; fi
}
b() { "$BIN" "$@" --verbose 0 --overwrite >>"$OUT/commands.log" 2>&1; }
py() { "$PYTHON" -c "print($1)"; }
# Wall seconds of a command, the best of $1 runs.
best_of() {
    local n=$1 best=1e9 t0
    shift
    for _ in $(seq "$n"); do
        t0=$EPOCHREALTIME
        "$@" >/dev/null || return 1
        best=$(py "min($best, $EPOCHREALTIME - $t0)")
    done
    py "f'{$best:.2f}'"
}
# The largest difference between two metrics CSVs over their first epochs
# (at most $3), or "inf (why)" when one is missing or empty.
maxdiff() {
    "$PYTHON" - "$1" "$2" "${3:-1000000}" <<'EOF'
import csv, sys
try:
    a, b = ([r for r in csv.reader(open(p))][1:] for p in sys.argv[1:3])
    rows = min(len(a), len(b), int(sys.argv[3]))
    print(max(abs(float(x) - float(y)) for ra, rb in zip(a[:rows], b[:rows]) for x, y in zip(ra[1:], rb[1:])))
except (OSError, ValueError) as e:
    print(f"inf ({e})")
EOF
}
below() { [ "$(py "int(float('${1%% *}') <= $2)")" = 1 ]; }

say "# binclass GPU checks, $(date -u +%FT%TZ)"
say "machine: $(nproc) cores; $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
say "torch: $("$PYTHON" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "no cuda")')"
say "binclass: $("$BIN" --version) on --device $DEVICE"

cpu=$(best_of 2 b train --device cpu --epochs "$EPOCHS" --out cpu.csv)
dev=$(best_of 2 b train --device "$DEVICE" --epochs "$EPOCHS" --out dev.csv)
say "time    train, baseline, $EPOCHS epochs: cpu ${cpu:-?} s, $DEVICE ${dev:-?} s (target: $DEVICE <= cpu: $(below "${dev:-1e9}" "${cpu:-0}" && echo met || echo 'not met'))"
d=$(maxdiff cpu.csv dev.csv 1)
check "train: cpu and $DEVICE within 1e-5 over the first epoch (largest difference $d)" below "$d" 1e-5

t0=$EPOCHREALTIME
"$BIN" sweep --seeds "0..$SEEDS" --epochs "$EPOCHS" --device "$DEVICE" --verbose 1 --overwrite --out-dir big >"$OUT/sweep.txt" 2>&1
rc=$?
big=$(py "f'{$EPOCHREALTIME - $t0:.1f}'")
say "time    sweep of $SEEDS seeds, $EPOCHS epochs: $big s, whole process (target for 10,000: <= 15 s): $(tail -n 2 "$OUT/sweep.txt" | head -n 1)"
check "sweep of $SEEDS seeds finished" [ "$rc" = 0 ]

# At 3000 samples, where every seed agrees to 1e-5 on the CPU for 3 epochs
# (docs/sweep.md#agreement-with-train); at 10,000 some seeds part by then.
b sweep --seeds 0..8 --samples 3000 --epochs 3 --device "$DEVICE" --out-dir replicas
b train --seed 5 --samples 3000 --epochs 3 --device "$DEVICE" --out seed5.csv
d=$(maxdiff replicas/baseline-seed5.csv seed5.csv)
check "sweep's replica 5 against train --seed 5, 3 epochs: within 1e-5 (largest $d)" below "$d" 1e-5

b sweep --seeds 0..2 --epochs 3 --device "$DEVICE" --out-dir two
b sweep --seeds 0..3 --epochs 3 --device "$DEVICE" --out-dir three
b sweep --seeds 0..3 --epochs 3 --device "$DEVICE" --chunk 1 --out-dir ones
check "seed 0's CSV is the same bytes in batches of 2, 3 and 1" \
    bash -c 'cmp -s two/baseline-seed0.csv three/baseline-seed0.csv && cmp -s two/baseline-seed0.csv ones/baseline-seed0.csv'

b sweep --seeds 0..6 --epochs 3 --device "$DEVICE" --out-dir whole
for k in 0 1; do b sweep --seeds 0..6 --epochs 3 --device "$DEVICE" --shard "$k/2" --out-dir "shard-$k"; done
"$BIN" merge shard-0 shard-1 --out merged --overwrite >>"$OUT/commands.log" 2>&1
check "two shards merged equal one sweep (every CSV and summary.csv)" \
    bash -c 'for f in whole/*.csv; do cmp -s "$f" "merged/${f#whole/}" || exit 1; done'

b sweep --seeds 0..2 --samples 3000 --epochs 3 --device "$DEVICE" --vary lr=0.01,0.03 --out-dir lanes
b train --seed 1 --samples 3000 --lr 0.01 --epochs 3 --device "$DEVICE" --out lr.csv
d=$(maxdiff lanes/lr=0.01/baseline-seed1.csv lr.csv)
check "per-replica lr: lr=0.01 replica against train --lr 0.01, 3 epochs, within 1e-5 (largest $d)" below "$d" 1e-5

if [ -n "$TESTS" ]; then
    "$TESTS" on_cuda --test-threads 1 --nocapture >"$OUT/tests.txt" 2>&1
    rc=$?
    grep -q skipped "$OUT/tests.txt" && say "note    the library's CUDA tests skipped: no CUDA device"
    check "the library's tests on CUDA: $(grep -o '[0-9]* passed; [0-9]* failed' "$OUT/tests.txt")" [ "$rc" = 0 ]
fi
say "$([ "$failed" = 0 ] && echo 'every check passed' || echo 'some checks FAILED'); the commands' output: $OUT"
exit "$failed"
