#pragma once
// The returns family's CUDA launchers: one GPU thread per kernel body's work item (a column or a
// window start; csrc/kernels/returns.h). Instantiated in returns.cu for float and double.
#include <cuda_runtime_api.h>

#include "../kernels/returns.h"

namespace pyrl::cuda {

template <typename Body>
cudaError_t launch(const Body& body, cudaStream_t stream);

}  // namespace pyrl::cuda
