#!/usr/bin/env bash
# Checks that two builds of binclass write the same files and print the same
# tables on a fixed set of commands: every CSV and summary byte for byte,
# every run record with its timings (epoch_seconds, total_seconds, seconds)
# left out, and the printed tables of experiments, compare and parity.
# For refactors that must not change behaviour:
#   cp target/release/binclass /tmp/before   # on the commit before
#   scripts/same_outputs.sh /tmp/before target/release/binclass
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_all() { # binary, folder
    local b=$1 d=$2
    mkdir -p "$d" && cd "$d"
    {
        "$b" experiments
        "$b" train --epochs 5 --verbose 0 --out t/base.csv; echo "exit $?"
        "$b" train -e noise --seed 3 --epochs 4 --verbose 0 --out t/noise.csv; echo "exit $?"
        "$b" train -e dummy-features --optimizer keras-adam --epochs 3 --verbose 0 --out t/dummy.csv; echo "exit $?"
        "$b" train --hidden-layers 0 --scale 3e38 --epochs 3 --samples 300 --verbose 0 --out t/nan.csv 2>/dev/null; echo "exit $?"
        "$b" sweep --seeds 0..3 --epochs 3 --verbose 0 --out-dir s/a; echo "exit $?"
        "$b" sweep -e scaled --seeds 5..7 --epochs 2 --chunk 1 --verbose 0 --out-dir s/b; echo "exit $?"
        "$b" sweep --seeds 0..2 --hidden-layers 0 --scale 3e38 --epochs 2 --samples 300 --verbose 0 --out-dir s/nan 2>/dev/null; echo "exit $?"
        # Shards cut where their settings' costs differ, merged: only the
        # merged folder is compared (builds may cut the shards elsewhere).
        for k in 0 1; do
            "$b" sweep --seeds 0..3 --vary epochs=1,3 --samples 300 --shard $k/2 --verbose 0 --out-dir m/part$k; echo "exit $?"
        done
        "$b" merge m/part0 m/part1 --out s/merged >/dev/null; echo "exit $?"
        rm -rf m
        "$b" compare s/a t/base.csv --reference "$root/reference/keras" 2>&1; echo "exit $?"
        "$b" compare s/a --reference "$root/reference/keras" --format csv 2>/dev/null; echo "exit $?"
        "$b" parity "$root/tests/fixtures/parity-baseline-seed0" --optimizer keras-adam --tolerance 1 --out p/steps.csv; echo "exit $?"
    } > printed.txt 2>/dev/null || true
    # Records without their timings, which differ from run to run. Records
    # and manifests of version 1 (builds before they carried a version) as
    # version 2 reads them: a record's ending from its sentence, a plan's
    # seeds typed (src/callbacks/record.rs, src/manifest.rs).
    find . -name '*.json' | while read -r j; do
        python3 - "$j" <<'PY'
import json, sys
p = sys.argv[1]
r = json.load(open(p))
for k in ("epoch_seconds", "total_seconds"):
    r.pop(k, None)
if r.get("final_metrics"):
    r["final_metrics"].pop("seconds", None)
if "version" not in r and "seed" in r:
    why, n = r.get("stopped"), r.get("epochs_completed", 0)
    r["version"] = 2
    r["ended"] = (
        {"kind": "finished"} if r.get("finished") else
        None if why is None else
        {"kind": "diverged", "epoch": n - 1} if why.startswith("loss became") else
        {"kind": "interrupted", "epoch": n} if why.startswith("interrupted") else
        {"kind": "failed", "epoch": n} if why.startswith("failed") else
        {"kind": "stopped", "epoch": n - 1})
if "version" not in r and r.get("format") == "binclass-folder" and r["command"] == "sweep":
    plan = r["plan"]
    seeds = {"first": plan["seeds"][0], "last": plan["seeds"][1]}
    typed = {"seeds": {"range": seeds}, "settings": [
        {"folder": s["folder"], "experiment": s["experiment"], "seeds": seeds}
        for s in plan["settings"]]}
    if plan.get("knobs"):
        typed["knobs"] = plan["knobs"]
    r["plan"], r["version"] = typed, 2
json.dump(r, open(p, "w"), indent=1, sort_keys=True)
PY
    done
    # Model files with their header's keys sorted: builds before the header
    # was written sorted wrote it in hash order, different from run to run.
    find . -name '*.safetensors' | while read -r m; do
        python3 - "$m" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.dumps(json.loads(b[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
open(p, "wb").write(struct.pack("<Q", len(h)) + h + b[8 + n:])
PY
    done
    cd - >/dev/null
}

run_all "$(readlink -f "$1")" "$work/old"
run_all "$(readlink -f "$2")" "$work/new"
# A build from before models were saved writes none: compare the rest.
if [ -z "$(find "$work/old" -name '*.safetensors')" ]; then
    n=$(find "$work/new" -name '*.safetensors' -delete -print | wc -l)
    [ "$n" = 0 ] || echo "the old build saves no models: $n new .safetensors files not compared"
fi
# A build from before folders had manifests writes none.
if [ -z "$(find "$work/old" -name manifest.json)" ]; then
    n=$(find "$work/new" -name manifest.json -delete -print | wc -l)
    [ "$n" = 0 ] || echo "the old build writes no manifests: $n new manifest.json files not compared"
fi
if diff -r "$work/old" "$work/new"; then
    echo "same outputs: $(find "$work/new" -type f | wc -l) files"
else
    echo "outputs differ (above)" >&2
    exit 1
fi
