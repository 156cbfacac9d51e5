#!/usr/bin/env python3
"""Times the baseline job (100 epochs) side by side, in one run, on this
machine: binclass train (1 seed), binclass sweep (100 seeds), JAX
(scripts/bench_jax.py, compiled: 1 seed, and the sweep's seeds under vmap; with
--jax, the python of `scripts/setup.sh --bench`'s environment), eager PyTorch
(scripts/bench_torch.py) and Keras (scripts/keras_reference.py, when
`scripts/setup.sh --keras` has installed it). Each figure is the median of
--runs runs of the whole process: wall time, runs (seeds) per minute, and
peak resident memory. Prints a Markdown table; its last column sets each job
against the JAX job of the same number of seeds.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "binclass")


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one run of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def keras_available() -> bool:
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('tf_keras') is None)"
    return subprocess.run([sys.executable, "-c", probe]).returncode == 0


def jax_available(python: str | None) -> bool:
    return bool(python) and os.access(python, os.X_OK) and subprocess.run([python, "-c", "import jax"]).returncode == 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="runs per job (median taken)")
    p.add_argument("--seeds", type=int, default=100, help="seeds in the sweep")
    p.add_argument("--jax", metavar="PYTHON", help="the python of the JAX environment (scripts/setup.sh --bench)")
    p.add_argument("--tensorboard", action="store_true",
                   help="only binclass train and sweep, each with and without --tensorboard: what writing events costs")
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="binclass-bench-")
    if a.tensorboard:
        return tensorboard_cost(a, tmp)
    jobs = [
        ("binclass train", 1, [BIN, "train", "--verbose", "0", "--overwrite", "--out", f"{tmp}/t.csv"]),
        (
            f"binclass sweep ({a.seeds} seeds)",
            a.seeds,
            [BIN, "sweep", "--seeds", f"0..{a.seeds}", "--verbose", "0", "--overwrite", "--out-dir", f"{tmp}/s"],
        ),
    ]
    if jax_available(a.jax):
        bench_jax = [a.jax, os.path.join(ROOT, "scripts", "bench_jax.py")]
        jobs.append(("JAX (jit+scan)", 1, bench_jax))
        jobs.append((f"JAX (jit+scan+vmap, {a.seeds} seeds)", a.seeds, bench_jax + ["--seeds", str(a.seeds)]))
    else:
        print("bench: JAX not installed (scripts/setup.sh --bench, then --jax PYTHON): its rows are skipped", file=sys.stderr)
    jobs.append(("eager PyTorch", 1, [sys.executable, os.path.join(ROOT, "scripts", "bench_torch.py")]))
    if keras_available():
        keras = [sys.executable, os.path.join(ROOT, "scripts", "keras_reference.py")]
        jobs.append(("Keras 2.21 (tf-keras)", 1, keras + ["--preset", "baseline", "--verbose", "0", "--out", f"{tmp}/k.csv"]))
    else:
        print("bench: Keras not installed (scripts/setup.sh --keras): its row is skipped", file=sys.stderr)

    rows = []
    for name, seeds, cmd in jobs:
        # Interleaving would be fairer to drift, but each job warms its own caches.
        samples = [measure(cmd) for _ in range(a.runs)]
        wall = statistics.median(s[0] for s in samples)
        rss = statistics.median(s[1] for s in samples)
        rows.append((name, seeds, wall, rss, [round(s[0], 2) for s in samples]))
        print(f"bench: {name}: {[round(s[0], 2) for s in samples]} s", file=sys.stderr)

    base = rows[0][2]
    # Each job against the JAX job of as many seeds: one seed against jit+scan, the sweep against vmap.
    jax_wall = {seeds: wall for name, seeds, wall, _, _ in rows if name.startswith("JAX")}
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"Baseline preset, 100 epochs, median of {a.runs} runs per job, whole process; "
          f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}.\n")
    print("| job | wall time per run (s) | runs (seeds) per minute | peak RSS (MiB) | wall time vs binclass train "
          "| wall time vs JAX, same seeds |")
    print("|---|---|---|---|---|---|")
    for name, seeds, wall, rss, _ in rows:
        vs_jax = f"{wall / jax_wall[seeds]:.2f}×" if seeds in jax_wall else "–"
        print(f"| {name} | {wall:.2f} | {seeds * 60 / wall:.1f} | {rss:.0f} | {wall / base:.2f}× | {vs_jax} |")


def tensorboard_cost(a, tmp: str) -> None:
    """Each binclass job with and without `--tensorboard`, the two runs
    alternating so that drift in the machine's load hits both alike."""
    jobs = [
        ("binclass train", [BIN, "train", "--verbose", "0", "--overwrite", "--out", f"{tmp}/t.csv"]),
        (f"binclass sweep ({a.seeds} seeds)",
         [BIN, "sweep", "--seeds", f"0..{a.seeds}", "--verbose", "0", "--overwrite", "--out-dir", f"{tmp}/s"]),
    ]
    print(f"Baseline preset, 100 epochs, median of {a.runs} runs each, alternating; {os.cpu_count()} cores.\n")
    print("| job | wall (s) | with --tensorboard (s) | wall cost | CPU (s) | with --tensorboard (s) | CPU cost |")
    print("|---|---|---|---|---|---|---|")
    for name, cmd in jobs:
        off, on = [], []
        for _ in range(a.runs):
            off.append(measure(cmd))
            on.append(measure(cmd + ["--tensorboard", f"{tmp}/tb"]))
        print(f"bench: {name}: {[round(s[0], 2) for s in off]} s, with --tensorboard {[round(s[0], 2) for s in on]} s",
              file=sys.stderr)
        (w0, w1), (c0, c1) = [(statistics.median(s[i] for s in off), statistics.median(s[i] for s in on)) for i in (0, 2)]
        print(f"| {name} | {w0:.2f} | {w1:.2f} | {100 * (w1 / w0 - 1):+.1f} % "
              f"| {c0:.2f} | {c1:.2f} | {100 * (c1 / c0 - 1):+.1f} % |")


if __name__ == "__main__":
    main()
