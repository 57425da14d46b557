#!/usr/bin/env bash
# Proves the CUDA build on a machine without a GPU: in its own virtual environment
# (build/cuda-venv) it installs a CUDA build of torch, builds pyrl with its CUDA kernels
# (build/cuda), imports it, checks that build_info() reports CUDA and which ops have CUDA kernels,
# and runs the CPU test suite against that build (CUDA tests skip: there is no GPU).
# PYRL_CUDA_VENV puts the environment elsewhere (CI keeps it in ~/.cache, so a fresh clone does
# not reinstall torch's 5 GB every run); it is created when missing or without a CUDA torch.
#   scripts/cuda_build.sh          the whole CPU suite (make cuda-build)
#   scripts/cuda_build.sh --quick  the returns, grid-runner and build tests only (CI)
#
# torch 2.14.1+cu130 is pinned: CUDA 13.0 is the toolkit installed here (nvcc 13.0), and that
# wheel and its nvidia-* packages lie on this machine's package mirror, so nothing of several GB
# is downloaded. The GPU machine builds against its own torch (scripts/device_check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_CUDA=${PYRL_CUDA_TORCH:-torch==2.14.1}
VENV=${PYRL_CUDA_VENV:-build/cuda-venv}
PY=$VENV/bin/python
started=$(date +%s)
pip_install() { "$PY" -m pip install --disable-pip-version-check --root-user-action=ignore -q "$@" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }; }

if ! command -v nvcc >/dev/null && [[ ! -x /usr/local/cuda/bin/nvcc && ! -x "${CUDA_HOME:-/nonexistent}/bin/nvcc" ]]; then
  echo "cuda-build: no nvcc (CUDA toolkit) on this machine; skipped"
  exit 0
fi
[[ -x "$PY" ]] || python3 -m venv "$VENV"
if ! "$PY" -c "import torch, sys; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
  echo "cuda-build: installing $TORCH_CUDA (a CUDA build) into $VENV"
  pip_install "$TORCH_CUDA"
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PY" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" >"$constraints"
pip_install -c "$constraints" "scikit-build-core>=0.10" ninja numpy "pytest>=8" "hypothesis>=6" \
  "gymnasium>=1.1" tqdm
echo "cuda-build: building pyrl with CUDA kernels against $("$PY" -c 'import torch; print(torch.__version__)')"
"$PY" -m pip install --disable-pip-version-check --root-user-action=ignore -q --no-build-isolation \
  -Cbuild-dir=build/cuda -e . 2>&1 | { grep -v "^WARNING: Location" || true; }

"$PY" - <<'PY'
import torch

import pyrl

info = pyrl.build_info()
assert info["cuda"], f"pyrl was built without CUDA kernels: {info}"
print(f"cuda-build: built for {info['cuda_architectures']} with nvcc {info['cuda_compiler']}")
names = sorted({op.split("::")[1].split(".")[0] for op in torch._C._dispatch_get_all_op_names()
                if op.startswith("pyrl::")})
has = {n: torch._C._dispatch_has_kernel_for_dispatch_key(f"pyrl::{n}", "CUDA") for n in names}
with_cuda = [n for n in names if has[n]]
without = [n for n in names if not has[n]]
returns_ops = {"gae", "discounted_return", "lambda_return", "nstep_return", "nstep_gae", "vtrace",
               "retrace"}
print(f"cuda-build: {len(with_cuda)} of {len(names)} ops have a CUDA kernel: {', '.join(with_cuda)}")
print(f"cuda-build: without one yet (the GPU buffer's ops): {', '.join(without) or 'none'}")
missing = returns_ops - set(with_cuda)
assert not missing, f"returns ops without a CUDA kernel: {sorted(missing)}"
PY

if [[ "${1:-}" == "--quick" ]]; then
  "$PY" -m pytest -q -p no:cacheprovider tests/test_returns.py tests/test_offpolicy.py \
    tests/test_grid.py tests/test_build.py
else
  "$PY" -m pytest -q -p no:cacheprovider -m "not slow"
fi
echo "cuda-build: passed in $(( $(date +%s) - started )) s"
