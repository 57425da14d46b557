#pragma once
// The replay family's CUDA launchers: the fused sample's, the priority update's and the window
// ops' phases (csrc/kernels/replay_sample.h, replay_update.h, sequence_phases.h), instantiated
// in replay.cu.
#include <cuda_runtime_api.h>

#include "../kernels/replay_add.h"
#include "../kernels/replay_sample.h"
#include "../kernels/replay_update.h"
#include "../kernels/sequence_phases.h"

namespace pyrl::cuda {

template <typename Body>
cudaError_t launch(const Body& body, cudaStream_t stream);

}  // namespace pyrl::cuda
