#!/usr/bin/env bash
# Sets up a machine for pyrl and builds it: keeps an importable torch (installs torch 2.13.0, the
# CPU wheel, when there is none), pins it so nothing replaces it, installs the build and test
# tools, and builds pyrl against that torch (incrementally, in build/).
#   scripts/setup.sh          build + test tools
#   scripts/setup.sh --main   build + the op benchmarks' peers only (make main: no test tools)
#   scripts/setup.sh --bench  build + test tools + the peers every benchmark compares against
#   scripts/setup.sh --docs   build + test tools + Sphinx and its extensions (the docs extra)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install --disable-pip-version-check --root-user-action=ignore -q "$@"; }

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "setup: no importable torch; installing torch==2.13.0"
  pip_install torch==2.13.0
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PY" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" >"$constraints"
echo "setup: building against $(cat "$constraints")"

mode=${1:-}
pip_install -c "$constraints" "scikit-build-core>=0.10" ninja numpy "gymnasium>=1.1" tqdm matplotlib
if [[ "$mode" != "--main" ]]; then
  pip_install -c "$constraints" "pytest>=8" "pytest-xdist>=3.6" "hypothesis>=6" "ruff==0.17.6" \
    "clang-format==19.1.7"
  # Optional: gymnasium-robotics' goal envs for the DDPG+HER test on FetchReach (skipped without).
  pip_install -c "$constraints" "gymnasium-robotics==1.4.2" "mujoco==3.3.7" \
    || echo "setup: gymnasium-robotics did not install; its test will be skipped"
  # Optional: Stable-Baselines3, for pyrl.compat.sb3's drop-ins and their tests (the sb3 extra).
  pip_install -c "$constraints" stable-baselines3==2.9.2 \
    || echo "setup: stable-baselines3 did not install; the pyrl.compat.sb3 tests will be skipped"
  # Optional: rl_zoo3, for the drop-ins' train / enjoy / resume test through the zoo.
  pip_install -c "$constraints" rl_zoo3==2.9.2 \
    || echo "setup: rl_zoo3 did not install; its test will be skipped"
  # Optional: Ray, for pyrl.distributed's actor processes and their tests (the ray extra).
  pip_install -c "$constraints" ray==2.60.0 \
    || echo "setup: ray did not install; the distributed tests will be skipped"
  # Optional: TensorBoard logging and video recording (the tensorboard and video extras).
  pip_install -c "$constraints" tensorboard moviepy pygame \
    || echo "setup: tensorboard/moviepy/pygame did not install; their tests will be skipped"
fi
if [[ "$mode" == "--main" ]]; then
  # The peers of the op tables make main prints (a row is skipped, with its reason, without one).
  pip_install -c "$constraints" numba stable-baselines3==2.9.2 cpprb==11.0.0 torchrl==0.14.1 \
    tensordict==0.14.3 || echo "setup: some benchmark peers did not install; their rows will be skipped"
fi
if [[ "$mode" == "--bench" ]]; then
  # Optional peers: a benchmark row is skipped, with its reason, when one is missing.
  pip_install -c "$constraints" numba stable-baselines3==2.9.2 sb3-contrib==2.9.2 cpprb==11.0.0 \
    gymnasium==1.4.0 torchrl==0.14.1 tensordict==0.14.3 rlox==1.2.0 || echo "setup: some benchmark peers did not install; their rows will be skipped"
fi
if [[ "$mode" == "--docs" ]]; then
  pip_install -c "$constraints" "sphinx>=8" furo myst-parser sphinx-copybutton \
    sphinx-autodoc-typehints sphinx-argparse
fi
pip_install -c "$constraints" --no-build-isolation -e .
"$PY" -c "import pyrl; print('setup: pyrl built:', {k: v for k, v in pyrl.build_info().items() if k != 'parallel_backend'})"
