#!/usr/bin/env bash
# The GPU check, in one go, for a machine with a GPU, torch for CUDA, nvcc, cmake and ninja but no
# network (the lent H200: torch 2.11+cu130, Python 3.12, nvcc 13, 16 cores):
#   scripts/device_check.sh OUT_DIR
# 1. installs the Python packages that travel as wheels in .whl/ (git-ignored; see
#    docs/guides/gpu.md for how to fetch them), into a folder of their own;
# 2. builds pyrl with CUDA kernels for this GPU's architecture (build/device);
# 3. runs the CUDA tests (CPU/CUDA parity of every op with a CUDA kernel, opcheck on CUDA tensors,
#    no synchronisation, the grid runner) and the returns tests on both devices;
# 4. runs the CUDA parity tests under compute-sanitizer's memcheck;
# 5. runs the GPU benchmark.
# Logs and tables go to OUT_DIR: build.log, tests.log, sanitizer.log, bench_gpu.txt and summary.txt.
# Where there is no GPU it says so and stops, having built nothing; PYRL_DEVICE_DRY_RUN=1 goes on
# (built for sm_90, the CUDA tests skipped) to try the script itself on a CPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/device_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
summary="$OUT/summary.txt"
: >"$summary"
say() { echo "device-check: $*" | tee -a "$summary"; }
started=$(date +%s)

if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/pyrl-site .whl/*.whl || { say "installing .whl/ failed"; exit 1; }
  export PYTHONPATH=/tmp/pyrl-site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" - <<'PY' 2>&1 | tee -a "$summary"
import importlib, torch
print("device-check: python", __import__("sys").version.split()[0], "| torch", torch.__version__,
      "| cuda", torch.version.cuda, "| gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
missing = [m for m in ("numpy", "gymnasium", "tqdm", "pytest", "hypothesis", "scikit_build_core")
           if importlib.util.find_spec(m) is None]
print("device-check: missing Python packages:", ", ".join(missing) or "none")
PY
if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  if [[ -z "${PYRL_DEVICE_DRY_RUN:-}" ]]; then
    say "no GPU here: nothing built or run (PYRL_DEVICE_DRY_RUN=1 builds for sm_90 and runs the rest)"
    exit 0
  fi
  say "no GPU here: a dry run (builds for sm_90; the CUDA tests skip)"
fi
command -v compute-sanitizer >/dev/null || say "compute-sanitizer not found: step 4 will be skipped"

arch=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability() if torch.cuda.is_available() else '9.0')")
say "building for sm_${arch/./} ($(nproc) cores)"
export TORCH_CUDA_ARCH_LIST="$arch" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
build_started=$(date +%s)
if ! "$PY" -m pip install --no-build-isolation --no-deps --no-index -v -Cbuild-dir=build/device \
    -e . >"$OUT/build.log" 2>&1; then
  say "build failed after $(( $(date +%s) - build_started )) s; the end of build.log:"
  tail -40 "$OUT/build.log" | tee -a "$summary"
  exit 1
fi
say "built in $(( $(date +%s) - build_started )) s: $("$PY" -c "import pyrl; i = pyrl.build_info(); print(i['cuda'], i.get('cuda_architectures'), i.get('cuda_compiler'))")"

rc=0
"$PY" -m pytest -q -p no:cacheprovider -m needs_cuda tests/ >"$OUT/tests.log" 2>&1 || rc=1
say "CUDA tests: $(tail -1 "$OUT/tests.log")"
"$PY" -m pytest -q -p no:cacheprovider tests/test_grid.py tests/test_returns.py tests/test_offpolicy.py \
  tests/test_build.py >>"$OUT/tests.log" 2>&1 || rc=1
say "grid, returns and build tests: $(tail -1 "$OUT/tests.log")"

if command -v compute-sanitizer >/dev/null && "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  compute-sanitizer --tool memcheck --error-exitcode 3 --target-processes all \
    "$PY" -m pytest -q -p no:cacheprovider -x tests/test_grid.py -k "gpu" >"$OUT/sanitizer.log" 2>&1
  code=$?
  [[ $code -eq 0 ]] || rc=1
  say "compute-sanitizer memcheck (exit $code): $(grep -E "ERROR SUMMARY" "$OUT/sanitizer.log" | tail -1) | $(grep -E "passed|failed" "$OUT/sanitizer.log" | tail -1)"
fi

"$PY" -m benchmarks.ops.gpu >"$OUT/bench_gpu.txt" 2>&1 || rc=1
say "benchmarks.ops.gpu: $(wc -l <"$OUT/bench_gpu.txt") lines (bench_gpu.txt)"
cat "$OUT/bench_gpu.txt"
say "finished in $(( $(date +%s) - started )) s, status $rc"
exit $rc
