#!/usr/bin/env bash
# Installs what binclass builds against, once: libtorch from PyPI's torch wheel
# (plus matplotlib for the figures, safetensors for scripts/predict_torch.py,
# tensorboard to view `--tensorboard` runs and for the tests that read them)
# in a Python environment the project owns,
# kept outside the checkout and keyed by the torch version so that fresh clones
# and CI runs reuse it. Then links it as `.libtorch`, which .cargo/config.toml
# hands to torch-sys, so plain `cargo build|test|run` work afterwards.
# Idempotent: a second run with everything in place takes a second or two.
# On a machine without an NVIDIA GPU the install is light (1.45 GB): the
# torch wheel without CUDA's wheels (nvidia-*, cuda-*, triton, 3.5 GB), which
# binclass never loads on a CPU (it opens libtorch_cuda.so only for --device
# cuda), save the two that libtorch_cpu.so links: CUDA's runtime and CUPTI. `--cuda`, or a working nvidia-smi,
# installs them too; that is also what Python's `import torch` needs on Linux
# (scripts/predict_torch.py, bench_torch.py and the tests that load models in
# PyTorch), since the PyPI wheel's torch._C links CUDA's libraries.
# A light install becomes a full one by running `scripts/setup.sh --cuda`.
# `--keras` also installs TensorFlow/tf-keras 2.21 (Keras 2 mode) for the
# reference runs of scripts/keras_reference.py. `--bench` also installs JAX
# (CPU) for scripts/bench_jax.py, in its own environment beside the torch one,
# keyed by the JAX version; `--jax-env` only prints that environment's path
# (installed or not) and does nothing else: scripts/bench.sh and the tests use it.
set -euo pipefail

keras=0 bench=0 where=0 cuda=0
for arg in "$@"; do
    case $arg in
    --cuda) cuda=1 ;;
    --keras) keras=1 ;;
    --bench) bench=1 ;;
    --jax-env) where=1 ;;
    *) printf 'setup: error: unknown option %s (only --cuda, --keras, --bench, --jax-env)\n' "$arg" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -f "$root/.env" ] && set -a && . "$root/.env" && set +a

TORCH_VERSION=2.11.0 # fixed by tch 0.24; see DEVELOPERS.md
home=${BINCLASS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/binclass}
venv=${BINCLASS_VENV:-$home/torch-$TORCH_VERSION}
python=${BINCLASS_PYTHON:-python3}
JAX_VERSION=0.10.2 # the current release when scripts/bench_jax.py was written
jax_venv=${BINCLASS_JAX_VENV:-$home/jax-$JAX_VERSION}

if [ $where = 1 ]; then
    printf '%s\n' "$jax_venv"
    exit 0
fi

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# install VENV READY_FN INSTALL_FN WHAT PACKAGE...: makes VENV and installs
# the packages with INSTALL_FN unless READY_FN already holds; a lock keeps two
# clones setting up at once from interleaving pip runs.
install() {
    local venv=$1 is_ready=$2 installer=$3 what=$4
    shift 4
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9
    if ! "$is_ready"; then
        say "installing $what into $venv"
        [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$installer" "$@"
        "$is_ready" || die "$what did not install into $venv"
    fi
    flock -u 9
}

# The requirements of the installed torch that this machine's pip would
# install and that are missing (its metadata, markers evaluated by pip's own
# `packaging`): CUDA's wheels and torch's Python dependencies, on a light install.
torch_missing() {
    "$venv/bin/python" - <<'PY'
import importlib.metadata as m
from pip._vendor.packaging.requirements import Requirement
for r in map(Requirement, m.requires("torch") or []):
    if r.marker and not r.marker.evaluate({"extra": ""}):
        continue
    try:
        if m.version(r.name) in r.specifier:
            continue
    except m.PackageNotFoundError:
        pass
    print(r)
PY
}

ready() {
    "$venv/bin/python" - "$TORCH_VERSION" <<'PY' 2>/dev/null || return 1
# Reads package metadata only: importing torch itself takes seconds.
import sys, importlib.metadata as m
assert m.version("torch").split("+")[0] == sys.argv[1]
for name in ("numpy", "matplotlib", "safetensors", "tensorboard"):
    m.version(name)
PY
    local missing
    [ $cuda = 0 ] || { missing=$(torch_missing) && [ -z "$missing" ]; }
}

# pip compiles every module it installs; Python compiles the few the scripts
# import when they first run (--no-compile: 177 MB less).
pip_install() { "$venv/bin/python" -m pip install --quiet --no-compile "$@"; }

# The light install: the torch wheel and, of its requirements, only the two
# CUDA libraries libtorch_cpu.so itself links (CUDA's runtime and CUPTI,
# 60 MB: a binary that loads libtorch needs them even on a CPU), as the
# cuda-toolkit extras torch pins. The rest serve only Python's `import
# torch`, which on Linux needs all of CUDA's wheels; pip's conflict warning
# would name each one left out.
install_light() {
    pip_install --no-deps "torch==$TORCH_VERSION"
    local toolkit
    toolkit=$("$venv/bin/python" - <<'PY'
import importlib.metadata as m
from pip._vendor.packaging.requirements import Requirement
toolkit = next(r for r in map(Requirement, m.requires("torch")) if r.name == "cuda-toolkit")
print(f"{toolkit.name}[cudart,cupti]{toolkit.specifier}")
PY
)
    pip_install --no-warn-conflicts "$toolkit" "$@"
}

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) and retry"
if [ $cuda = 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    cuda=1
fi

if ! ready; then
    command -v "$python" >/dev/null ||
        die "$python not found: install Python 3.10+ (Debian/Ubuntu: apt-get install python3 python3-venv)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$python is $("$python" -V 2>&1); torch $TORCH_VERSION needs Python 3.10+ (set BINCLASS_PYTHON)"
    "$python" -c 'import venv, ensurepip' 2>/dev/null ||
        die "$python lacks venv/ensurepip (Debian/Ubuntu: apt-get install python3-venv)"
    if [ $cuda = 1 ]; then
        install "$venv" ready pip_install "torch $TORCH_VERSION with CUDA's libraries, matplotlib, safetensors and tensorboard (about 5 GB, once)" \
            "torch==$TORCH_VERSION" numpy matplotlib safetensors tensorboard
    else
        install "$venv" ready install_light "torch $TORCH_VERSION for the CPU, matplotlib, safetensors and tensorboard (about 1.45 GB, once; --cuda adds CUDA's 3.5 GB)" \
            numpy matplotlib safetensors tensorboard
    fi
fi

if [ $keras = 1 ] && ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("tf-keras"); m.version("tensorflow-cpu")' 2>/dev/null; then
    say "installing tensorflow-cpu==2.21.0 and tf-keras==2.21.0 into $venv"
    "$venv/bin/python" -m pip install --quiet "tensorflow-cpu==2.21.0" "tf-keras==2.21.0"
fi

jax_install() { "$jax_venv/bin/python" -m pip install --quiet "$@"; }

jax_ready() {
    "$jax_venv/bin/python" - "$JAX_VERSION" <<'PY' 2>/dev/null
import sys, importlib.metadata as m
assert m.version("jax") == sys.argv[1] and m.version("jaxlib") == sys.argv[1]
m.version("numpy")
PY
}

if [ $bench = 1 ] && ! jax_ready; then
    install "$jax_venv" jax_ready jax_install "jax==$JAX_VERSION (CPU, about 600 MB, once)" "jax==$JAX_VERSION" numpy
fi

torch_dir=$("$venv/bin/python" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("torch").origin))')
if [ "$(readlink "$root/.libtorch" 2>/dev/null)" != "$torch_dir" ]; then
    ln -sfn "$torch_dir" "$root/.libtorch"
    say "linked .libtorch -> $torch_dir"
fi
