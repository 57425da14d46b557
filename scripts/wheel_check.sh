#!/usr/bin/env bash
# pyrl installed from a wheel as a user would: the wheel built once from this checkout
# (python -m build --wheel --no-isolation, against the torch here), installed into a fresh
# virtual environment that holds only that torch, the wheel's own dependencies and the test tools;
# then, with no compiler on PATH and from a directory without the sources (so `import pyrl` can
# only find the wheel), it is imported, the test suite runs from a copy of tests/, and
# `pyrl bench --quick` runs the ops tables the wheel ships.
#   scripts/wheel_check.sh [WORKDIR]   (default: a new temporary directory, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
PY=${PYTHON:-python3}
if [[ $# -ge 1 ]]; then
  work=$1
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
work=$(cd "$work" && pwd)
pin=$("$PY" -c "import torch; print('torch==' + torch.__version__.split('+')[0])")
echo "$pin" >"$work/constraints.txt"
pip_in() { "$1" -m pip install --disable-pip-version-check --root-user-action=ignore -q \
  -c "$work/constraints.txt" "${@:2}"; }

echo "wheel-check: building the wheel against $pin"
pip_in "$PY" "build>=1.2"
start=$SECONDS
# Its own build folder, so the editable install's build/ is left as it was.
(cd "$work" && "$PY" -m build --wheel --no-isolation -C build-dir="$checkout/build/wheel" \
  -o "$work/dist" "$checkout" >"$work/build.log" 2>&1) || { tail -40 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/pyrl-*.whl)
echo "wheel-check: built $(basename "$wheel") in $((SECONDS - start)) s"

venv="$work/venv"
rm -rf "$venv"
"$PY" -m venv "$venv"
pip_in "$venv/bin/python" "$pin"
pip_in "$venv/bin/python" "$wheel" "pytest>=8" "hypothesis>=6"

# The user's directory: the tests and the documents they read, no sources.
user="$work/user"
rm -rf "$user"
mkdir -p "$user"
cp -r tests docs README.md pyproject.toml "$user/"
rm -rf "$user/docs/_build"

# A PATH with the venv's tools and the basic commands, and no compiler.
bin="$work/bin"
rm -rf "$bin"
mkdir -p "$bin"
for tool in sh bash env cat ls rm mkdir cp mv uname nproc sleep kill ps mount umount; do
  if command -v "$tool" >/dev/null; then ln -sf "$(command -v "$tool")" "$bin/$tool"; fi
done
user_path="$venv/bin:$bin"
for compiler in cc c++ gcc g++ clang clang++ nvcc cmake ninja make; do
  if PATH="$user_path" command -v "$compiler" >/dev/null; then
    echo "wheel-check: $compiler is on the user's PATH" >&2
    exit 1
  fi
done

cd "$user"
run() { env -i HOME="$HOME" PATH="$user_path" TMPDIR="${TMPDIR:-/tmp}" LANG=C.UTF-8 "$@"; }
run python -c "
import pyrl, torch
where = pyrl.__file__
assert where.startswith('$venv/'), where
print('wheel-check: pyrl', pyrl.__version__, 'from', where, 'on torch', torch.__version__)
print('wheel-check: build', {k: v for k, v in pyrl.build_info().items() if k != 'parallel_backend'})
"
start=$SECONDS
run python -m pytest -q -m "not slow" -p no:cacheprovider
echo "wheel-check: the test suite passed in $((SECONDS - start)) s"
start=$SECONDS
run pyrl bench --quick
echo "wheel-check: pyrl bench --quick ran in $((SECONDS - start)) s"
echo "wheel-check: passed"
