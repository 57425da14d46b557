#!/usr/bin/env bash
# Compiles every csrc/cuda/*.cu with nvcc (compile only: no GPU, no torch headers needed), so CUDA
# code that does not compile fails CI on machines without a GPU. Skips when nvcc is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || true)}
if [[ -z "$NVCC" ]]; then
  echo "cuda-check: nvcc not found; skipped"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in csrc/cuda/*.cu; do
  "$NVCC" -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -Xcompiler -Wall,-Wextra -Werror all-warnings -c "$f" -o "$out/$(basename "$f").o"
  echo "cuda-check: $f compiles"
done
