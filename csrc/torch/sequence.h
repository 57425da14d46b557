#pragma once
// The sequence ops' entry that ReplayHost (csrc/replay_host.cpp) calls directly on a CPU
// buffer's hot path, as for the replay ops (see replay.h); the dispatcher runs the same function.
#include <ATen/core/Tensor.h>

#include <tuple>
#include <vector>

namespace pyrl {

// (index, weight, hidden at the start rows, fields, mask, reward, discount, k, terminated,
// generation)
using SequenceSample = std::tuple<at::Tensor, at::Tensor, at::Tensor, std::vector<at::Tensor>,
                                  at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                  at::Tensor>;

SequenceSample replay_sample_windows_cpu(at::TensorList state, at::TensorList columns,
                                         const at::Tensor& hidden, int64_t batch_size,
                                         int64_t steps, int64_t obs_columns, int64_t n,
                                         double gamma, int64_t seed, int64_t call, double beta,
                                         bool batch_max);

}  // namespace pyrl
