#pragma once
// The replay ops' CPU implementations, declared once: TORCH_LIBRARY_IMPL registers them for the
// dispatcher (torch.ops.pyrl.*: opcheck, torch.compile, other devices) and ReplayHost
// (csrc/replay_host.cpp, pyrl._C.ReplayHost) calls the very same functions for a CPU buffer on
// its hot path, skipping the dispatcher's few microseconds per call.
// tests/test_replay_ops.py::test_host_and_dispatcher_agree checks the two routes on every op.
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>
#include <vector>

namespace pyrl {

using SampleResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                at::Tensor, at::Tensor, std::vector<at::Tensor>,
                                std::vector<at::Tensor>>;

void replay_add_cpu(at::TensorList state, at::TensorList columns, at::TensorList stage,
                    const at::Tensor& stage_length, at::TensorList step, at::TensorList final_obs,
                    const at::Tensor& terminated, const at::Tensor& truncated,
                    at::ArrayRef<double> config);

void replay_add_episode_cpu(at::TensorList state, at::TensorList columns, at::TensorList values,
                            bool terminated, at::ArrayRef<double> config);

SampleResult replay_sample_cpu(at::TensorList state, at::TensorList columns, int64_t batch_size,
                               const std::optional<at::Tensor>& rows, int64_t seed, int64_t call,
                               at::ArrayRef<double> config);

void replay_update_priorities_cpu(at::TensorList state, const at::Tensor& index,
                                  const at::Tensor& generation, const at::Tensor& td_abs,
                                  at::ArrayRef<double> config, const at::Tensor& applied);

at::Tensor replay_check_cpu(at::TensorList state);

void replay_rebuild_cpu(at::TensorList state, double alpha);

}  // namespace pyrl
