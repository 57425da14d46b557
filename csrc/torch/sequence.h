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

// The windows of a recurrent buffer: `columns` are its columns without the hidden one (the
// last observation column), passed as `hidden`; `config` is the buffer's own settings list.
SequenceSample replay_sample_windows_cpu(at::TensorList state, at::TensorList columns,
                                         const at::Tensor& hidden, int64_t batch_size,
                                         int64_t steps, at::ArrayRef<double> config);

}  // namespace pyrl
