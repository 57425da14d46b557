#!/usr/bin/env bash
# Builds the extension with AddressSanitizer and UndefinedBehaviorSanitizer in its own build dir
# (build/sanitize; the regular build is untouched) and runs the C++-facing tests against it.
# Any memory error or undefined behaviour aborts the run (-fno-sanitize-recover).
#   scripts/sanitize.sh            the C++-facing tests
#   scripts/sanitize.sh tests/...  the tests given
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=build/sanitize
SITE=$BUILD/site
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
prefix=$("$PY" -c "import torch.utils; print(torch.utils.cmake_prefix_path)")
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE="$(command -v "$PY")" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$BUILD" --target _C -j 2

# A package tree of its own: the Python sources beside the sanitized _C, found first on
# PYTHONPATH; sitecustomize drops the editable install's finder so that `import pyrl` (in the
# tests and in the subprocesses they start) loads this build.
rm -rf "$SITE"
mkdir -p "$SITE"
cp -r pyrl "$SITE/pyrl"
find "$SITE/pyrl" -name "_C*.so" -delete
cp "$BUILD"/_C*.so "$BUILD/_build_config.py" "$SITE/pyrl/"
cat >"$SITE/sitecustomize.py" <<'PYEOF'
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
PYEOF

export PYTHONPATH="$PWD/$SITE" PYTHONSAFEPATH=1  # never the source tree from the cwd
export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1
"$PY" -c "import pyrl, sys; assert '$SITE' in pyrl._C.__file__, pyrl._C.__file__; print('sanitize: testing', pyrl._C.__file__)"
if [[ $# -eq 0 ]]; then
  set -- tests/test_replay.py tests/test_replay_ops.py tests/test_her.py tests/test_fuzz.py \
    tests/test_reliability.py tests/test_locks_and_disks.py tests/test_returns.py \
    tests/test_offpolicy.py tests/test_recurrent.py tests/test_grid.py \
    -m "not slow"
fi
# Two worker processes where pytest-xdist is installed (each inherits the preload).
workers=()
if "$PY" -c "import xdist" 2>/dev/null; then workers=(-n 2); fi
"$PY" -m pytest -p no:cacheprovider -q "${workers[@]}" "$@"
