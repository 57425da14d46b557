#pragma once
// The CPU replay ops that module.cpp also binds directly: a buffer on the CPU calls them through
// pybind11, skipping the dispatcher's few microseconds per call on its per-step hot path. Both
// routes run these same functions and the same argument checks.
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>
#include <vector>

namespace pyrl {

void replay_add_cpu(const at::Tensor& row_episode, const at::Tensor& episodes,
                    const at::Tensor& counters, const at::Tensor& sum_tree,
                    const at::Tensor& min_tree, const at::Tensor& max_priority,
                    at::TensorList columns, at::TensorList stage, const at::Tensor& stage_length,
                    at::TensorList step, at::TensorList final_obs, const at::Tensor& terminated,
                    const at::Tensor& truncated, double alpha);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           std::vector<at::Tensor>, std::vector<at::Tensor>>
replay_sample_cpu(const at::Tensor& row_episode, const at::Tensor& episodes,
                  const at::Tensor& counters, const at::Tensor& sum_tree,
                  const at::Tensor& min_tree, const at::Tensor& reward, at::TensorList columns,
                  int64_t obs_columns, const std::optional<at::Tensor>& uniform,
                  const std::optional<at::Tensor>& rows,
                  const std::optional<at::Tensor>& floating_uniform, int64_t n, double gamma,
                  double beta, bool batch_max, const std::optional<at::Tensor>& her_uniform,
                  int64_t her_strategy, double her_ratio, int64_t achieved_goal,
                  int64_t desired_goal, int64_t her_reward, at::ArrayRef<double> her_params);

void replay_update_priorities_cpu(const at::Tensor& row_episode, const at::Tensor& episodes,
                                  const at::Tensor& counters, const at::Tensor& sum_tree,
                                  const at::Tensor& min_tree, const at::Tensor& max_priority,
                                  const at::Tensor& index, const at::Tensor& generation,
                                  const at::Tensor& td_abs, double alpha, double eps,
                                  double p_min, double p_max);

}  // namespace pyrl
