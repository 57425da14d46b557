// pyrl replay ops: schemas, argument checks and CPU implementations (math in
// csrc/kernels/sum_tree.h and ring.h).
//
// The ops are stateless: a buffer's state is tensors that Python owns, and each op mutates only
// what its schema marks (a!). The ring state of a buffer with C rows:
//   row_episode  int64 [C]           episodes  int64 [C / 2 + 1, 3]    counters  int64 [5]
//   sum_tree, min_tree  float64 [tree_size(C)]                          max_priority  float64 [1]
// Data columns are contiguous [C, *shape] tensors of any dtype, copied as bytes.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/SmallVector.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <vector>

#include "../kernels/ring.h"
#include "../kernels/sum_tree.h"
#include "checks.h"
#include "replay.h"

namespace pyrl {
namespace {

using kernels::Ring;
using kernels::TreeLayout;

void check_tensor(const char* op, const char* name, const at::Tensor& t, at::ScalarType dtype,
                  at::IntArrayRef shape) {
  TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " should be a CPU tensor, got ", t.device());
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " should be ", dtype, ", got ",
              t.scalar_type());
  TORCH_CHECK(t.sizes() == shape, op, ": ", name, " should have shape ", shape, ", got ",
              t.sizes());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " should be contiguous");
}

void check_trees(const char* op, const at::Tensor& sum_tree, const at::Tensor& min_tree,
                 const TreeLayout& layout) {
  check_tensor(op, "sum_tree", sum_tree, at::kDouble, {layout.size});
  check_tensor(op, "min_tree", min_tree, at::kDouble, {layout.size});
}

void check_capacity(const char* op, int64_t capacity) {
  TORCH_CHECK(capacity >= 1, op, ": capacity should be at least 1, got ", capacity);
}

// The ring state, checked, as raw pointers for the kernels. Capacity is row_episode's length.
Ring ring_of(const char* op, const at::Tensor& row_episode, const at::Tensor& episodes,
             const at::Tensor& counters, const at::Tensor& sum_tree, const at::Tensor& min_tree) {
  checks::rank(op, "row_episode", row_episode, 1, 1, "1-D [C]");
  const int64_t capacity = row_episode.size(0);
  check_capacity(op, capacity);
  check_tensor(op, "row_episode", row_episode, at::kLong, {capacity});
  check_tensor(op, "episodes", episodes, at::kLong,
               {kernels::episode_slots(capacity), kernels::kEpisodeFields});
  check_tensor(op, "counters", counters, at::kLong, {kernels::kRingCounters});
  const TreeLayout layout = kernels::tree_layout(capacity);
  check_trees(op, sum_tree, min_tree, layout);
  // The mutable pointers are only written by ops whose schema marks these tensors (a!).
  return Ring{capacity,
              const_cast<int64_t*>(row_episode.const_data_ptr<int64_t>()),
              const_cast<int64_t*>(episodes.const_data_ptr<int64_t>()),
              const_cast<int64_t*>(counters.const_data_ptr<int64_t>()),
              const_cast<double*>(sum_tree.const_data_ptr<double>()),
              const_cast<double*>(min_tree.const_data_ptr<double>()),
              layout};
}

double max_priority_of(const char* op, const at::Tensor& max_priority) {
  check_tensor(op, "max_priority", max_priority, at::kDouble, {1});
  return max_priority.const_data_ptr<double>()[0];
}

int64_t row_bytes(const at::Tensor& column) {
  return column.dim() == 0 || column.size(0) == 0
             ? 0
             : column.numel() / column.size(0) * static_cast<int64_t>(column.element_size());
}

void check_columns(const char* op, at::TensorList columns, int64_t capacity) {
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& c = columns[i];
    TORCH_CHECK(c.device().is_cpu() && c.dim() >= 1 && c.size(0) == capacity && c.is_contiguous(),
                op, ": columns[", i, "] should be a contiguous CPU tensor [", capacity,
                ", ...], got ", c.device(), " ", checks::shape_of(c));
  }
}

// `value` must be one row block of `column`: [leading..., *column.shape[1:]] with its dtype.
void check_rows(const char* op, const char* name, size_t i, const at::Tensor& value,
                const at::Tensor& column, std::initializer_list<int64_t> leading) {
  const auto row_shape = column.sizes().slice(1);
  bool same = value.dim() == static_cast<int64_t>(leading.size() + row_shape.size());
  for (size_t d = 0; same && d < leading.size(); ++d) same = value.size(d) == leading.begin()[d];
  for (size_t d = 0; same && d < row_shape.size(); ++d) {
    same = value.size(leading.size() + d) == row_shape[d];
  }
  TORCH_CHECK(value.device().is_cpu(), op, ": ", name, "[", i, "] should be a CPU tensor, got ",
              value.device());
  TORCH_CHECK(value.scalar_type() == column.scalar_type(), op, ": ", name, "[", i,
              "] should be ", column.scalar_type(), " like its column, got ", value.scalar_type());
  TORCH_CHECK(same, op, ": ", name, "[", i, "] should have shape ", at::IntArrayRef(leading),
              " + ", row_shape, ", got ", value.sizes());
}

const uint8_t* bytes(const at::Tensor& t) { return static_cast<const uint8_t*>(t.const_data_ptr()); }
uint8_t* mutable_bytes(const at::Tensor& t) {
  return const_cast<uint8_t*>(static_cast<const uint8_t*>(t.const_data_ptr()));
}

at::Tensor flags(const char* op, const char* name, const at::Tensor& flag, int64_t envs) {
  TORCH_CHECK(flag.device().is_cpu() && flag.dim() == 1 && flag.size(0) == envs, op, ": ", name,
              " should be a CPU tensor [", envs, "], got ", flag.device(), " ",
              checks::shape_of(flag));
  TORCH_CHECK(!at::isFloatingType(flag.scalar_type()) && !at::isComplexType(flag.scalar_type()),
              op, ": ", name, " should be bool or integer, got ", flag.scalar_type());
  return (flag.scalar_type() == at::kBool ? flag : flag.ne(0)).contiguous();
}

double new_leaf(const char* op, const at::Tensor& max_priority, double alpha) {
  checks::unit_interval(op, "alpha", alpha);
  return kernels::priority_leaf(max_priority_of(op, max_priority), alpha);
}

// ---- stateless tree ops -----------------------------------------------------------------------

void tree_update_cpu(const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
                     const at::Tensor& index, const at::Tensor& leaf) {
  constexpr const char* op = "pyrl::tree_update";
  check_capacity(op, capacity);
  const TreeLayout layout = kernels::tree_layout(capacity);
  check_trees(op, sum_tree, min_tree, layout);
  checks::rank(op, "index", index, 1, 1, "1-D [B]");
  TORCH_CHECK(index.scalar_type() == at::kLong, op, ": index should be int64, got ",
              index.scalar_type());
  check_tensor(op, "leaf", leaf, at::kDouble, {index.size(0)});
  const auto idx = index.contiguous();
  const int64_t* rows = idx.const_data_ptr<int64_t>();
  const double* values = leaf.const_data_ptr<double>();
  for (int64_t j = 0; j < idx.numel(); ++j) {
    TORCH_CHECK_INDEX(rows[j] >= 0 && rows[j] < capacity, op, ": index[", j,
                      "] should be in [0, ", capacity, "), got ", rows[j]);
    TORCH_CHECK_VALUE(values[j] >= 0.0 && values[j] < __builtin_huge_val(), op, ": leaf[", j,
                "] should be finite and >= 0, got ", values[j]);
  }
  kernels::tree_set_leaves(layout, const_cast<double*>(sum_tree.const_data_ptr<double>()),
                           const_cast<double*>(min_tree.const_data_ptr<double>()), rows, values,
                           idx.numel());
}

std::tuple<at::Tensor, at::Tensor> tree_sample_cpu(const at::Tensor& sum_tree,
                                                   const at::Tensor& min_tree, int64_t capacity,
                                                   const at::Tensor& uniform, double beta,
                                                   bool batch_max) {
  constexpr const char* op = "pyrl::tree_sample";
  check_capacity(op, capacity);
  const TreeLayout layout = kernels::tree_layout(capacity);
  check_trees(op, sum_tree, min_tree, layout);
  checks::rank(op, "uniform", uniform, 1, 1, "1-D [B]");
  check_tensor(op, "uniform", uniform, at::kDouble, {uniform.size(0)});
  checks::unit_interval(op, "beta", beta);
  const double* sum = sum_tree.const_data_ptr<double>();
  TORCH_CHECK_VALUE(sum[0] > 0.0, op, ": the tree holds no priority mass to sample from (all leaves 0)");
  const int64_t count = uniform.size(0);
  auto index = at::empty({count}, sum_tree.options().dtype(at::kLong));
  auto weight = at::empty({count}, sum_tree.options().dtype(at::kFloat));
  auto* rows = index.mutable_data_ptr<int64_t>();
  auto* w = weight.mutable_data_ptr<float>();
  kernels::tree_sample_stratified(layout, sum, nullptr, uniform.const_data_ptr<double>(), count,
                                  rows);
  kernels::tree_is_weights(layout, sum, min_tree.const_data_ptr<double>(), rows, count, beta,
                           batch_max, w);
  return {index, weight};
}

}  // namespace

// ---- the replay buffer ops --------------------------------------------------------------------

void replay_add_cpu(const at::Tensor& row_episode, const at::Tensor& episodes,
                    const at::Tensor& counters, const at::Tensor& sum_tree,
                    const at::Tensor& min_tree, const at::Tensor& max_priority,
                    at::TensorList columns, at::TensorList stage, const at::Tensor& stage_length,
                    at::TensorList step, at::TensorList final_obs, const at::Tensor& terminated,
                    const at::Tensor& truncated, double alpha) {
  constexpr const char* op = "pyrl::replay_add";
  Ring ring = ring_of(op, row_episode, episodes, counters, sum_tree, min_tree);
  const double leaf = new_leaf(op, max_priority, alpha);
  check_columns(op, columns, ring.capacity);
  TORCH_CHECK(stage.size() == columns.size() && step.size() == columns.size(), op,
              ": columns, stage and step should have the same length, got ", columns.size(), ", ",
              stage.size(), " and ", step.size());
  TORCH_CHECK(final_obs.size() <= columns.size(), op, ": final_obs has ", final_obs.size(),
              " entries for ", columns.size(), " columns");
  checks::rank(op, "stage_length", stage_length, 1, 1, "1-D [N]");
  const int64_t envs = stage_length.size(0);
  check_tensor(op, "stage_length", stage_length, at::kLong, {envs});
  TORCH_CHECK(!columns.empty(), op, ": columns should not be empty");
  const int64_t horizon = stage[0].dim() >= 2 ? stage[0].size(1) : 0;
  TORCH_CHECK(horizon >= 1 && horizon + 1 <= ring.capacity, op,
              ": stage should hold between 1 and capacity - 1 = ", ring.capacity - 1,
              " steps per environment, got ", horizon);
  for (size_t i = 0; i < columns.size(); ++i) {
    check_rows(op, "stage", i, stage[i], columns[i], {envs, horizon});
    TORCH_CHECK(stage[i].is_contiguous(), op, ": stage[", i, "] should be contiguous");
    check_rows(op, "step", i, step[i], columns[i], {envs});
    if (i < final_obs.size()) check_rows(op, "final_obs", i, final_obs[i], columns[i], {envs});
  }
  const auto term = flags(op, "terminated", terminated, envs);
  const auto trunc = flags(op, "truncated", truncated, envs);
  int64_t* length = const_cast<int64_t*>(stage_length.const_data_ptr<int64_t>());
  for (int64_t e = 0; e < envs; ++e) {
    TORCH_CHECK(length[e] >= 0 && length[e] < horizon, op, ": stage_length[", e,
                "] should be in [0, ", horizon, "), got ", length[e]);
  }
  c10::SmallVector<at::Tensor, 8> step_data, final_data;
  for (const auto& s : step) step_data.push_back(s.contiguous());
  for (const auto& f : final_obs) final_data.push_back(f.contiguous());

  const bool* ended_terminal = term.const_data_ptr<bool>();
  const bool* ended_cut = trunc.const_data_ptr<bool>();
  for (int64_t e = 0; e < envs; ++e) {
    const int64_t t = length[e];
    for (size_t i = 0; i < columns.size(); ++i) {
      const int64_t rb = row_bytes(columns[i]);
      std::memcpy(mutable_bytes(stage[i]) + (e * horizon + t) * rb, bytes(step_data[i]) + e * rb,
                  static_cast<size_t>(rb));
    }
    // A full stage commits the episode so far as truncated: it bootstraps from the step's next
    // observation, and the environment's next step starts a new episode there.
    if (!ended_terminal[e] && !ended_cut[e] && t + 1 < horizon) {
      length[e] = t + 1;
      continue;
    }
    const int64_t steps = t + 1;
    const int64_t start = kernels::ring_claim_episode(ring, steps, ended_terminal[e], leaf);
    const int64_t final_row = (start + steps) % ring.capacity;
    for (size_t i = 0; i < columns.size(); ++i) {
      const int64_t rb = row_bytes(columns[i]);
      uint8_t* column = mutable_bytes(columns[i]);
      kernels::ring_write_rows(column, rb, ring.capacity, start,
                               bytes(stage[i]) + e * horizon * rb, steps);
      if (i < final_data.size()) {
        std::memcpy(column + final_row * rb, bytes(final_data[i]) + e * rb, static_cast<size_t>(rb));
      } else {
        std::memset(column + final_row * rb, 0, static_cast<size_t>(rb));
      }
    }
    length[e] = 0;
  }
}

void replay_add_episode_cpu(const at::Tensor& row_episode, const at::Tensor& episodes,
                            const at::Tensor& counters, const at::Tensor& sum_tree,
                            const at::Tensor& min_tree, const at::Tensor& max_priority,
                            at::TensorList columns, at::TensorList values, int64_t obs_columns,
                            bool terminated, double alpha) {
  constexpr const char* op = "pyrl::replay_add_episode";
  Ring ring = ring_of(op, row_episode, episodes, counters, sum_tree, min_tree);
  const double leaf = new_leaf(op, max_priority, alpha);
  check_columns(op, columns, ring.capacity);
  TORCH_CHECK(values.size() == columns.size(), op, ": values should have one entry per column (",
              columns.size(), "), got ", values.size());
  TORCH_CHECK(obs_columns >= 1 && obs_columns <= static_cast<int64_t>(columns.size()), op,
              ": obs_columns should be in [1, ", columns.size(), "], got ", obs_columns);
  TORCH_CHECK(values[0].dim() >= 1, op, ": values[0] should be [T + 1, ...], got a scalar");
  const int64_t steps = values[0].size(0) - 1;
  TORCH_CHECK(steps >= 1, op, ": an episode needs at least 1 transition (2 observation rows), got ",
              steps + 1, " observation rows");
  TORCH_CHECK(steps + 1 <= ring.capacity, op, ": an episode of ", steps, " transitions needs ",
              steps + 1, " rows, more than the capacity ", ring.capacity);
  c10::SmallVector<at::Tensor, 8> data;
  for (size_t i = 0; i < columns.size(); ++i) {
    const bool obs = static_cast<int64_t>(i) < obs_columns;
    check_rows(op, "values", i, values[i], columns[i], {obs ? steps + 1 : steps});
    data.push_back(values[i].contiguous());
  }
  const int64_t start = kernels::ring_claim_episode(ring, steps, terminated, leaf);
  for (size_t i = 0; i < columns.size(); ++i) {
    const int64_t rb = row_bytes(columns[i]);
    const bool obs = static_cast<int64_t>(i) < obs_columns;
    uint8_t* column = mutable_bytes(columns[i]);
    kernels::ring_write_rows(column, rb, ring.capacity, start, bytes(data[i]),
                             obs ? steps + 1 : steps);
    if (!obs) std::memset(column + ((start + steps) % ring.capacity) * rb, 0, static_cast<size_t>(rb));
  }
}

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
                  int64_t desired_goal, int64_t her_reward, at::ArrayRef<double> her_params) {
  constexpr const char* op = "pyrl::replay_sample";
  const Ring ring = ring_of(op, row_episode, episodes, counters, sum_tree, min_tree);
  check_columns(op, columns, ring.capacity);
  TORCH_CHECK(obs_columns >= 0 && obs_columns <= static_cast<int64_t>(columns.size()), op,
              ": obs_columns should be in [0, ", columns.size(), "], got ", obs_columns);
  checks::floating(op, "reward", reward);
  checks::rank(op, "reward", reward, 1, 2, "1-D [C] or 2-D [C, m]");
  TORCH_CHECK(reward.size(0) == ring.capacity && reward.is_contiguous() && reward.device().is_cpu(),
              op, ": reward should be a contiguous CPU column [", ring.capacity, "] or [",
              ring.capacity, ", m], got ", reward.device(), " ", checks::shape_of(reward));
  TORCH_CHECK(uniform.has_value() != rows.has_value(), op,
              ": pass either uniform (draw rows by priority) or rows (read these rows), not ",
              uniform ? "both" : "neither");
  const at::Tensor& drawn = uniform ? *uniform : *rows;
  checks::rank(op, uniform ? "uniform" : "rows", drawn, 1, 1, "1-D [B]");
  const int64_t count = drawn.size(0);
  if (uniform) check_tensor(op, "uniform", *uniform, at::kDouble, {count});
  if (rows) check_tensor(op, "rows", *rows, at::kLong, {count});
  if (floating_uniform) check_tensor(op, "floating_uniform", *floating_uniform, at::kDouble, {count});
  TORCH_CHECK(n >= 1, op, ": n should be at least 1, got ", n);
  checks::unit_interval(op, "gamma", gamma);
  checks::unit_interval(op, "beta", beta);
  TORCH_CHECK_VALUE(sum_tree.const_data_ptr<double>()[0] > 0.0, op,
                    ": the buffer has no transitions to sample (no episode has been committed yet)");
  if (rows) {
    const double* leaves = sum_tree.const_data_ptr<double>() + ring.layout.leaf_offset();
    const int64_t* r = rows->const_data_ptr<int64_t>();
    for (int64_t j = 0; j < count; ++j) {
      TORCH_CHECK_INDEX(r[j] >= 0 && r[j] < ring.capacity && leaves[r[j]] > 0.0, op, ": rows[", j,
                        "] should be a stored transition row, got ", r[j]);
    }
  }

  const int64_t heads = reward.dim() == 2 ? reward.size(1) : 1;
  kernels::HerArgs her;
  if (her_uniform) {
    check_tensor(op, "her_uniform", *her_uniform, at::kDouble, {2, count});
    checks::unit_interval(op, "her_ratio", her_ratio);
    TORCH_CHECK(her_strategy >= kernels::kHerFuture && her_strategy <= kernels::kHerRandom, op,
                ": her_strategy should be 0 (future), 1 (final), 2 (episode) or 3 (random), got ",
                her_strategy);
    for (const auto& [name, column] : {std::pair{"achieved_goal", achieved_goal},
                                       std::pair{"desired_goal", desired_goal}}) {
      TORCH_CHECK(column >= 0 && column < obs_columns, op, ": ", name,
                  " should index an observation column, in [0, ", obs_columns, "), got ", column);
    }
    const auto& achieved = columns[achieved_goal];
    const auto& desired = columns[desired_goal];
    TORCH_CHECK(achieved.dim() == 2 && achieved.scalar_type() == at::kFloat, op,
                ": the achieved-goal column should be float32 [C, g], got ",
                achieved.scalar_type(), " ", achieved.sizes());
    TORCH_CHECK(desired.sizes() == achieved.sizes() && desired.scalar_type() == at::kFloat, op,
                ": the desired-goal column should match the achieved-goal column ",
                achieved.sizes(), ", got ", desired.scalar_type(), " ", desired.sizes());
    const int64_t goal_dim = achieved.size(1);
    if (her_reward == kernels::kRewardSparseL2) {
      TORCH_CHECK(her_params.size() == 1 && heads == 1, op,
                  ": sparse_l2 takes one parameter (eps) and one reward head, got ",
                  her_params.size(), " parameters and ", heads, " heads");
    } else if (her_reward == kernels::kRewardPerDim) {
      TORCH_CHECK(her_params.size() >= 2 && her_params.size() % 2 == 0 && heads == goal_dim, op,
                  ": per_dim takes thresholds and values of equal length and one reward head "
                  "per goal dimension (", goal_dim, "), got ", her_params.size(),
                  " parameters and ", heads, " heads");
    } else {
      TORCH_CHECK(her_reward == kernels::kRewardStored, op,
                  ": her_reward should be 0 (stored), 1 (sparse_l2) or 2 (per_dim), got ",
                  her_reward);
    }
    her = {her_uniform->const_data_ptr<double>(), her_ratio, static_cast<int>(her_strategy),
           static_cast<int>(her_reward), her_params.data(), static_cast<int64_t>(her_params.size()),
           achieved.const_data_ptr<float>(), goal_dim};
  }
  auto index = at::empty({count}, row_episode.options());
  auto generation = at::empty({count}, row_episode.options());
  auto boot = at::empty({count}, row_episode.options());
  auto her_row = at::empty({count}, row_episode.options());
  auto weight = at::empty({count}, reward.options().dtype(at::kFloat));
  auto ret = at::empty(reward.dim() == 2 ? std::vector<int64_t>{count, heads}
                                         : std::vector<int64_t>{count},
                       reward.options());
  auto discount = at::empty({count}, reward.options());
  const kernels::SampleOut out{index.mutable_data_ptr<int64_t>(),
                               generation.mutable_data_ptr<int64_t>(),
                               weight.mutable_data_ptr<float>(), boot.mutable_data_ptr<int64_t>(),
                               her_row.mutable_data_ptr<int64_t>()};
  const double* k_uniform = floating_uniform ? floating_uniform->const_data_ptr<double>() : nullptr;
  if (rows) index.copy_(*rows);
  AT_DISPATCH_FLOATING_TYPES(reward.scalar_type(), op, [&] {
    kernels::ring_sample<scalar_t>(ring, uniform ? uniform->const_data_ptr<double>() : nullptr,
                                   k_uniform, count, n, gamma, rows ? 0.0 : beta, batch_max, reward.const_data_ptr<scalar_t>(),
                                   heads, ret.mutable_data_ptr<scalar_t>(),
                                   discount.mutable_data_ptr<scalar_t>(), her, out);
  });
  std::vector<at::Tensor> fields, next_obs;
  for (size_t i = 0; i < columns.size(); ++i) {
    auto shape = columns[i].sizes().vec();
    shape[0] = count;
    auto gathered = at::empty(shape, columns[i].options());
    kernels::ring_gather_rows(bytes(columns[i]), row_bytes(columns[i]), out.index, count,
                              mutable_bytes(gathered));
    fields.push_back(gathered);
    if (static_cast<int64_t>(i) < obs_columns) {
      auto at_boot = at::empty(shape, columns[i].options());
      kernels::ring_gather_rows(bytes(columns[i]), row_bytes(columns[i]), out.boot, count,
                                mutable_bytes(at_boot));
      next_obs.push_back(at_boot);
    }
  }
  if (her_uniform) {
    // Relabeled samples see the new goal, at their own step and at the bootstrap step.
    const int64_t goal_bytes = her.goal_dim * static_cast<int64_t>(sizeof(float));
    const uint8_t* achieved = bytes(columns[achieved_goal]);
    for (at::Tensor* goals : {&fields[desired_goal], &next_obs[desired_goal]}) {
      for (int64_t j = 0; j < count; ++j) {
        if (out.her_row[j] < 0) continue;
        std::memcpy(mutable_bytes(*goals) + j * goal_bytes, achieved + out.her_row[j] * goal_bytes,
                    static_cast<size_t>(goal_bytes));
      }
    }
  }
  return {index, generation, weight, ret, discount, boot, her_row, fields, next_obs};
}

void replay_update_priorities_cpu(const at::Tensor& row_episode, const at::Tensor& episodes,
                                  const at::Tensor& counters, const at::Tensor& sum_tree,
                                  const at::Tensor& min_tree, const at::Tensor& max_priority,
                                  const at::Tensor& index, const at::Tensor& generation,
                                  const at::Tensor& td_abs, double alpha, double eps,
                                  double p_min, double p_max) {
  constexpr const char* op = "pyrl::replay_update_priorities";
  Ring ring = ring_of(op, row_episode, episodes, counters, sum_tree, min_tree);
  max_priority_of(op, max_priority);
  checks::unit_interval(op, "alpha", alpha);
  TORCH_CHECK(eps >= 0.0 && p_min > 0.0 && p_min <= p_max, op,
              ": need eps >= 0 and 0 < p_min <= p_max, got eps=", eps, ", p_min=", p_min,
              ", p_max=", p_max);
  checks::rank(op, "index", index, 1, 1, "1-D [B]");
  const int64_t count = index.size(0);
  TORCH_CHECK(index.scalar_type() == at::kLong && generation.scalar_type() == at::kLong, op,
              ": index and generation should be int64, got ", index.scalar_type(), " and ",
              generation.scalar_type());
  checks::shaped(op, "generation", generation, {count}, "index", index);
  checks::floating(op, "td_abs", td_abs);
  TORCH_CHECK((td_abs.dim() == 1 || td_abs.dim() == 2) && td_abs.size(0) == count &&
                  td_abs.device() == index.device(),
              op, ": td_abs should be [", count, "] or [", count, ", m] on ", index.device(),
              ", got ", td_abs.device(), " ", checks::shape_of(td_abs));
  const int64_t heads = td_abs.dim() == 2 ? td_abs.size(1) : 1;
  TORCH_CHECK(heads >= 1, op, ": td_abs should have at least one head, got ", td_abs.sizes());
  const auto rows = index.contiguous();
  const auto gens = generation.contiguous();
  const auto td = td_abs.contiguous();
  const int64_t* r = rows.const_data_ptr<int64_t>();
  for (int64_t j = 0; j < count; ++j) {
    TORCH_CHECK_INDEX(r[j] >= 0 && r[j] < ring.capacity, op, ": index[", j,
                      "] should be in [0, ", ring.capacity, "), got ", r[j]);
  }
  AT_DISPATCH_FLOATING_TYPES(td.scalar_type(), op, [&] {
    const scalar_t* values = td.const_data_ptr<scalar_t>();
    const int64_t bad = kernels::first_bad_priority(values, td.numel());
    TORCH_CHECK_VALUE(bad < 0, op, ": td_abs should be >= 0 and not NaN, got ",
                bad < 0 ? 0.0 : static_cast<double>(values[bad]), " at flat position ", bad,
                "; nothing was updated");
    kernels::ring_update_priorities(ring, r, gens.const_data_ptr<int64_t>(), values, count, heads,
                                    alpha, eps, p_min, p_max,
                                    const_cast<double*>(max_priority.const_data_ptr<double>()));
  });
}

TORCH_LIBRARY_FRAGMENT(pyrl, m) {
  m.def("tree_update(Tensor(a!) sum_tree, Tensor(b!) min_tree, int capacity, Tensor index, "
        "Tensor leaf) -> ()");
  m.def("tree_sample(Tensor sum_tree, Tensor min_tree, int capacity, Tensor uniform, float beta, "
        "bool batch_max) -> (Tensor index, Tensor weight)");
  m.def("replay_add(Tensor(a!) row_episode, Tensor(b!) episodes, Tensor(c!) counters, "
        "Tensor(d!) sum_tree, Tensor(e!) min_tree, Tensor max_priority, Tensor(f!)[] columns, "
        "Tensor(g!)[] stage, Tensor(h!) stage_length, Tensor[] step, Tensor[] final_obs, "
        "Tensor terminated, Tensor truncated, float alpha) -> ()");
  m.def("replay_add_episode(Tensor(a!) row_episode, Tensor(b!) episodes, Tensor(c!) counters, "
        "Tensor(d!) sum_tree, Tensor(e!) min_tree, Tensor max_priority, Tensor(f!)[] columns, "
        "Tensor[] values, int obs_columns, bool terminated, float alpha) -> ()");
  m.def("replay_sample(Tensor row_episode, Tensor episodes, Tensor counters, Tensor sum_tree, "
        "Tensor min_tree, Tensor reward, Tensor[] columns, int obs_columns, Tensor? uniform, "
        "Tensor? rows, Tensor? floating_uniform, int n, float gamma, float beta, bool batch_max, "
        "Tensor? her_uniform, int her_strategy, float her_ratio, int achieved_goal, "
        "int desired_goal, int her_reward, float[] her_params) -> (Tensor index, "
        "Tensor generation, Tensor weight, Tensor ret, Tensor discount, Tensor boot, "
        "Tensor her_row, Tensor[] fields, Tensor[] next_obs)");
  m.def("replay_update_priorities(Tensor row_episode, Tensor episodes, Tensor counters, "
        "Tensor(a!) sum_tree, Tensor(b!) min_tree, Tensor(c!) max_priority, "
        "Tensor index, Tensor generation, Tensor td_abs, float alpha, float eps, float p_min, "
        "float p_max) -> ()");
}

TORCH_LIBRARY_IMPL(pyrl, CPU, m) {
  m.impl("tree_update", &tree_update_cpu);
  m.impl("tree_sample", &tree_sample_cpu);
  m.impl("replay_add", &replay_add_cpu);
  m.impl("replay_add_episode", &replay_add_episode_cpu);
  m.impl("replay_sample", &replay_sample_cpu);
  m.impl("replay_update_priorities", &replay_update_priorities_cpu);
}

}  // namespace pyrl
