// The returns ops on CUDA tensors: the same checks and kernel bodies as the CPU ops
// (returns.h), one GPU thread per work item (csrc/cuda/returns.cu), on the current stream of
// the input's device. Built only when the installed torch has CUDA.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../cuda/returns.h"
#include "returns.h"

namespace pyrl {
namespace {

// Runs a body on the current stream of the reward's device (the op checks that every input is
// on it), with that device current while the op allocates and launches.
struct CudaRun {
  explicit CudaRun(const at::Tensor& reward)
      : guard(reward.is_cuda() ? std::optional<c10::Device>(reward.device()) : std::nullopt) {}

  c10::cuda::OptionalCUDAGuard guard;

  template <typename Body>
  void operator()(const Body& body) const {
    C10_CUDA_CHECK(cuda::launch(body, c10::cuda::getCurrentCUDAStream()));
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(pyrl, CUDA, m) { returns_ops::register_impls<CudaRun>(m); }

}  // namespace pyrl
