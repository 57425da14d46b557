#pragma once
// One __global__ wrapper for every kernel body (csrc/kernels/grid.h): thread i of the grid runs
// body(i). A body's launcher is `launch(body, stream)`; each .cu instantiates the bodies it owns.
#include <cuda_runtime_api.h>

#include "../kernels/grid.h"

namespace pyrl::cuda {

template <typename Body>
__global__ void __launch_bounds__(kernels::kBlockThreads) run_body(Body body) {
  kernels::run_thread(body, blockIdx.x * int64_t(blockDim.x) + threadIdx.x);
}

template <typename Body>
cudaError_t launch(const Body& body, cudaStream_t stream) {
  const int64_t blocks = kernels::blocks_for(body.threads());
  if (blocks == 0) return cudaSuccess;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  run_body<Body><<<static_cast<unsigned>(blocks), kernels::kBlockThreads, 0, stream>>>(body);
  return cudaGetLastError();
}

}  // namespace pyrl::cuda
