// pyrl replay ops: schemas, argument checks and CPU dispatch. The rules live in
// csrc/kernels/replay.h (ring.h, her.h, sum_tree.h); this file checks arguments, extracts
// pointers and allocates outputs.
//
// The ops are stateless: a buffer's state is tensors that Python owns, passed as one list in
// kernels::StateSlot order (the draw counter and the stage lengths included), and each op
// mutates only what its schema marks (a!). A sample's draws are keyed by the state's (seed,
// calls), and the sample advances calls (draws.h). Settings are one float list in
// kernels::ConfigSlot order. Both orders are exported by pyrl._C.layout().
// Every check raises ValueError (TORCH_CHECK_VALUE) naming the argument and what came in.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/SmallVector.h>
#include <c10/util/FunctionRef.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "../kernels/replay.h"
#include "checks.h"
#include "replay.h"

namespace pyrl {
namespace {

using kernels::Ring;
using kernels::TreeLayout;

void check_tensor(const char* op, const char* name, const at::Tensor& t, at::ScalarType dtype,
                  at::IntArrayRef shape) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": ", name, " should be a CPU tensor, got ",
                    t.device());
  TORCH_CHECK_VALUE(t.scalar_type() == dtype, op, ": ", name, " should be ", dtype, ", got ",
                    t.scalar_type());
  TORCH_CHECK_VALUE(t.sizes() == shape, op, ": ", name, " should have shape ", shape, ", got ",
                    t.sizes());
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, " should be contiguous");
}

void unit_interval(const char* op, const char* name, double x) {
  TORCH_CHECK_VALUE(x >= 0.0 && x <= 1.0, op, ": ", name, " should be in [0, 1], got ", x);
}

void rank(const char* op, const char* name, const at::Tensor& t, int64_t dims, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == dims, op, ": ", name, " should be ", layout, ", got ",
                    checks::shape_of(t));
}

void check_capacity(const char* op, int64_t capacity) {
  TORCH_CHECK_VALUE(capacity >= 1 && capacity <= kernels::kMaxCapacity, op,
                    ": capacity should be in [1, 2^48], got ", capacity);
}

void check_trees(const char* op, const at::Tensor& sum_tree, const at::Tensor& min_tree,
                 const TreeLayout& layout) {
  check_tensor(op, "sum_tree", sum_tree, at::kDouble, {layout.size});
  check_tensor(op, "min_tree", min_tree, at::kDouble, {layout.size});
}

template <typename T>
T* writable(const at::Tensor& t) {
  // Written only by ops whose schema marks the tensor (a!).
  return const_cast<T*>(t.const_data_ptr<T>());
}

uint8_t* writable_bytes(const at::Tensor& t) {
  return const_cast<uint8_t*>(static_cast<const uint8_t*>(t.const_data_ptr()));
}

}  // namespace

// The state list, checked, as raw pointers for the kernels. Capacity is row_episode's length.
Ring ring_of(const char* op, at::TensorList state) {
  using namespace kernels;
  TORCH_CHECK_VALUE(state.size() >= kStateSlots, op, ": state should hold ", kStateSlots,
                    " tensors (row_episode, episodes, counters, sum_tree, min_tree, "
                    "max_priority, draws, stage_length), then the stage columns, got ",
                    state.size());
  const at::Tensor& row_episode = state[kStateRowEpisode];
  rank(op, "row_episode", row_episode, 1, "1-D [C]");
  const int64_t capacity = row_episode.size(0);
  check_capacity(op, capacity);
  check_tensor(op, "row_episode", row_episode, at::kLong, {capacity});
  check_tensor(op, "episodes", state[kStateEpisodes], at::kLong,
               {episode_slots(capacity), kEpisodeFields});
  check_tensor(op, "counters", state[kStateCounters], at::kLong, {kRingCounters});
  const TreeLayout layout = tree_layout(capacity);
  check_trees(op, state[kStateSumTree], state[kStateMinTree], layout);
  check_tensor(op, "max_priority", state[kStateMaxPriority], at::kDouble, {1});
  // draws and stage_length are checked by the ops that read them (draws_of, stage_of).
  return Ring{capacity,
              writable<int64_t>(row_episode),
              writable<int64_t>(state[kStateEpisodes]),
              writable<int64_t>(state[kStateCounters]),
              writable<double>(state[kStateSumTree]),
              writable<double>(state[kStateMinTree]),
              writable<double>(state[kStateMaxPriority]),
              layout,
              episode_slots(capacity) - 1};
}

// The counters the add, sample and update ops index with, in O(1): the rest of a state is
// validated when it comes from outside (replay_rebuild) and only ever changed by these ops.
// replay_check and replay_rebuild read any state, and report what is broken instead.
void check_counters(const char* op, const Ring& ring) {
  using namespace kernels;
  const int64_t* c = ring.counters;
  TORCH_CHECK_VALUE(c[kCursor] >= 0 && c[kCursor] < ring.capacity && c[kOldestEpisode] >= 0 &&
                        c[kOldestEpisode] <= c[kNextEpisode] &&
                        c[kNextEpisode] - c[kOldestEpisode] <= ring.capacity / 2,
                    op, ": counters are inconsistent (cursor ", c[kCursor], ", episodes [",
                    c[kOldestEpisode], ", ", c[kNextEpisode], ") in ", ring.capacity,
                    " rows); ReplayBuffer.check() names what is broken");
}

// The state's draw counter (seed, calls), checked: both >= 0.
int64_t* draws_of(const char* op, at::TensorList state) {
  check_tensor(op, "draws", state[kernels::kStateDraws], at::kLong, {kernels::kDrawCounters});
  int64_t* draws = writable<int64_t>(state[kernels::kStateDraws]);
  TORCH_CHECK_VALUE(draws[kernels::kDrawSeed] >= 0 && draws[kernels::kDrawCalls] >= 0, op,
                    ": draws should be [seed, calls], both >= 0, got [", draws[kernels::kDrawSeed],
                    ", ", draws[kernels::kDrawCalls], "]");
  return draws;
}

int64_t row_bytes(const at::Tensor& column) {
  return column.size(0) == 0
             ? 0
             : column.numel() / column.size(0) * static_cast<int64_t>(column.element_size());
}

// Whether each row of `column` is contiguous and rows do not overlap: a contiguous [C, ...]
// tensor, or a strided view of a row record.
bool rows_contiguous(const at::Tensor& column) {
  int64_t expected = 1;
  for (int64_t d = column.dim() - 1; d >= 1; --d) {
    if (column.size(d) != 1 && column.stride(d) != expected) return false;
    expected *= column.size(d);
  }
  return column.stride(0) >= expected;
}

namespace {

// The column list: CPU [C, ...] tensors with contiguous rows, at least one observation column
// and the float reward column last.
kernels::Columns columns_of(const char* op, at::TensorList columns, int64_t capacity,
                            int64_t obs_columns, Pointers& data, RowBytes& bytes,
                            RowBytes& strides) {
  TORCH_CHECK_VALUE(columns.size() >= 2, op,
                    ": columns should hold the observation columns, the other fields and the "
                    "reward, got ",
                    columns.size(), " columns");
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& c = columns[i];
    TORCH_CHECK_VALUE(
        c.device().is_cpu() && c.dim() >= 1 && c.size(0) == capacity && rows_contiguous(c), op,
        ": columns[", i, "] should be a CPU tensor [", capacity,
        ", ...] with contiguous rows, got ", c.device(), " ", checks::shape_of(c), " with strides ",
        c.strides());
    data.push_back(writable_bytes(c));
    bytes.push_back(row_bytes(c));
    strides.push_back(c.stride(0) * static_cast<int64_t>(c.element_size()));
  }
  const auto& reward = columns.back();
  TORCH_CHECK_VALUE((reward.scalar_type() == at::kFloat || reward.scalar_type() == at::kDouble) &&
                        (reward.dim() == 1 || (reward.dim() == 2 && reward.size(1) >= 1)),
                    op,
                    ": the last column (reward) should be float32 or float64 [C] or [C, m], "
                    "got ",
                    reward.scalar_type(), " ", reward.sizes());
  TORCH_CHECK_VALUE(obs_columns >= 1 && obs_columns < static_cast<int64_t>(columns.size()), op,
                    ": config obs_columns should be in [1, ", columns.size() - 1, "], got ",
                    obs_columns);
  return {static_cast<int64_t>(columns.size()), obs_columns, data.data(), bytes.data(),
          strides.data()};
}

bool integral(double x) { return std::isfinite(x) && x == std::floor(x); }

// The kernels' code for a goal column's dtype, -1 for one they do not read.
int goal_type_of(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return kernels::kGoalFloat32;
    case at::kDouble:
      return kernels::kGoalFloat64;
    case at::kChar:
      return kernels::kGoalInt8;
    case at::kByte:
      return kernels::kGoalUint8;
    case at::kShort:
      return kernels::kGoalInt16;
    case at::kInt:
      return kernels::kGoalInt32;
    case at::kLong:
      return kernels::kGoalInt64;
    case at::kBool:
      return kernels::kGoalBool;
    default:
      return -1;
  }
}

}  // namespace

// The settings list, checked against the columns it will be applied to.
kernels::ReplayConfig config_of(const char* op, at::ArrayRef<double> values,
                                at::TensorList columns) {
  using namespace kernels;
  TORCH_CHECK_VALUE(values.size() >= kConfigSlots, op, ": config should hold at least ",
                    kConfigSlots, " values, got ", values.size());
  const double params = values[kConfigHerParams];
  TORCH_CHECK_VALUE(integral(params) && params >= 0 && params <= kHerMaxParams &&
                        values.size() == kConfigSlots + static_cast<size_t>(params),
                    op, ": config should hold ", kConfigSlots, " values and the ", params,
                    " HER reward parameters it announces, got ", values.size(), " values");
  for (int slot :
       {kConfigBetaSteps, kConfigN, kConfigObsColumns, kConfigHerStrategy, kConfigHerReward,
        kConfigAchievedGoal, kConfigDesiredGoal, kConfigEpisodeSelect, kConfigEpisodeMaxDraw}) {
    TORCH_CHECK_VALUE(integral(values[slot]), op, ": config[", slot, "] (", kConfigNames[slot],
                      ") should be a whole number, got ", values[slot]);
  }
  const ReplayConfig config = replay_config(values.data(), static_cast<int64_t>(values.size()));
  unit_interval(op, "alpha", config.alpha);
  unit_interval(op, "beta", config.beta);
  unit_interval(op, "gamma", config.gamma);
  TORCH_CHECK_VALUE(std::isfinite(config.eps) && config.eps >= 0.0 && config.p_min > 0.0 &&
                        config.p_min <= config.p_max && config.p_max <= 1e100,
                    op, ": need eps >= 0 and 0 < p_min <= p_max <= 1e100, got eps=", config.eps,
                    ", p_min=", config.p_min, ", p_max=", config.p_max);
  TORCH_CHECK_VALUE(config.beta_steps >= 0, op, ": beta_steps should be >= 0, got ",
                    config.beta_steps);
  TORCH_CHECK_VALUE(config.n >= 1 && config.n <= kMaxCapacity, op, ": n should be at least 1, got ",
                    config.n);
  TORCH_CHECK_VALUE(config.episode_select >= 0 && config.episode_select <= kMaxCapacity &&
                        (config.episode_select == 0 ||
                         (config.episode_max_draw >= 1 && config.episode_max_draw <= kMaxCapacity)),
                    op,
                    ": config episode_select should be >= 0 (0: no episode mode) and, with "
                    "episode mode, episode_max_draw >= 1, got ",
                    config.episode_select, " and ", config.episode_max_draw);
  const HerConfig& her = config.her;
  TORCH_CHECK_VALUE(her.strategy >= kHerOff && her.strategy <= kHerRandom, op,
                    ": her strategy should be -1 (off), 0 (future), 1 (final), 2 (episode) or "
                    "3 (random), got ",
                    her.strategy);
  for (int slot : {kConfigHerRecompute, kConfigHerTerminalOnSuccess}) {
    TORCH_CHECK_VALUE(values[slot] == 0.0 || values[slot] == 1.0, op, ": config[", slot, "] (",
                      kConfigNames[slot], ") should be 0 or 1, got ", values[slot]);
  }
  if (her.strategy == kHerOff) return config;
  TORCH_CHECK_VALUE(
      !her.terminal_on_success || her.reward == kRewardSparseL2 || her.reward == kRewardStored, op,
      ": terminal_on_success needs a success test: sparse_l2, or a Python "
      "terminal callable (reward kind stored)");
  unit_interval(op, "her_ratio", her.ratio);
  for (const auto& [name, column] : {std::pair{"achieved_goal", her.achieved_column},
                                     std::pair{"desired_goal", her.desired_column}}) {
    TORCH_CHECK_VALUE(column >= 0 && column < config.obs_columns, op, ": ", name,
                      " should index an observation column, in [0, ", config.obs_columns, "), got ",
                      column);
  }
  const auto& achieved = columns[her.achieved_column];
  const auto& desired = columns[her.desired_column];
  const int goal_type = goal_type_of(achieved.scalar_type());
  TORCH_CHECK_VALUE(achieved.dim() >= 1 && goal_type >= 0, op,
                    ": the achieved-goal column should be [C, *goal_shape] of float32, float64, "
                    "int8, uint8, int16, int32, int64 or bool, got ",
                    achieved.scalar_type(), " ", achieved.sizes());
  TORCH_CHECK_VALUE(
      desired.sizes() == achieved.sizes() && desired.scalar_type() == achieved.scalar_type(), op,
      ": the desired-goal column should match the achieved-goal column (", achieved.scalar_type(),
      " ", achieved.sizes(), "), got ", desired.scalar_type(), " ", desired.sizes());
  const int64_t heads = columns.back().dim() == 2 ? columns.back().size(1) : 1;
  int64_t goal_dim = 1;
  for (int64_t d = 1; d < achieved.dim(); ++d) goal_dim *= achieved.size(d);
  if (her.reward == kRewardSparseL2) {
    TORCH_CHECK_VALUE(her.num_params == 1 && heads == 1, op,
                      ": sparse_l2 takes one parameter (eps) and one reward head, got ",
                      her.num_params, " parameters and ", heads, " heads");
  } else if (her.reward == kRewardPerDim) {
    TORCH_CHECK_VALUE(her.num_params >= 2 && her.num_params % 2 == 0 && heads == goal_dim, op,
                      ": per_dim takes thresholds and values of equal length and one reward head "
                      "per goal dimension (",
                      goal_dim, "), got ", her.num_params, " parameters and ", heads, " heads");
  } else {
    TORCH_CHECK_VALUE(her.reward == kRewardStored, op,
                      ": her reward should be 0 (stored), 1 (sparse_l2) or 2 (per_dim), got ",
                      her.reward);
  }
  kernels::ReplayConfig out = config;
  out.her.goal_dim = goal_dim;
  out.her.goal_type = goal_type;
  return out;
}

namespace {

// `value` must be one row block of `column`: [leading..., *column.shape[1:]] with its dtype.
void check_rows(const char* op, const char* name, size_t i, const at::Tensor& value,
                const at::Tensor& column, std::initializer_list<int64_t> leading) {
  const auto row_shape = column.sizes().slice(1);
  bool same = value.dim() == static_cast<int64_t>(leading.size() + row_shape.size());
  for (size_t d = 0; same && d < leading.size(); ++d) same = value.size(d) == leading.begin()[d];
  for (size_t d = 0; same && d < row_shape.size(); ++d) {
    same = value.size(leading.size() + d) == row_shape[d];
  }
  TORCH_CHECK_VALUE(value.device().is_cpu(), op, ": ", name, "[", i,
                    "] should be a CPU tensor, got ", value.device());
  TORCH_CHECK_VALUE(value.scalar_type() == column.scalar_type(), op, ": ", name, "[", i,
                    "] should be ", column.scalar_type(), " like its column, got ",
                    value.scalar_type());
  TORCH_CHECK_VALUE(same, op, ": ", name, "[", i, "] should have shape ", at::IntArrayRef(leading),
                    " + ", row_shape, ", got ", value.sizes());
}

at::Tensor flags(const char* op, const char* name, const at::Tensor& flag, int64_t envs) {
  TORCH_CHECK_VALUE(flag.device().is_cpu() && flag.dim() == 1 && flag.size(0) == envs, op, ": ",
                    name, " should be a CPU tensor [", envs, "], got ", flag.device(), " ",
                    checks::shape_of(flag));
  TORCH_CHECK_VALUE(
      !at::isFloatingType(flag.scalar_type()) && !at::isComplexType(flag.scalar_type()), op, ": ",
      name, " should be bool or integer, got ", flag.scalar_type());
  return (flag.scalar_type() == at::kBool ? flag : flag.ne(0)).contiguous();
}

// ---- stateless tree ops -----------------------------------------------------------------------

}  // namespace

void tree_update_with(const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
                      const at::Tensor& index, const at::Tensor& leaf,
                      c10::function_ref<void(const kernels::UpdateLeavesBody&)> run) {
  constexpr const char* op = "pyrl::tree_update";
  check_capacity(op, capacity);
  const TreeLayout layout = kernels::tree_layout(capacity);
  check_trees(op, sum_tree, min_tree, layout);
  rank(op, "index", index, 1, "1-D [B]");
  TORCH_CHECK_VALUE(index.scalar_type() == at::kLong, op, ": index should be int64, got ",
                    index.scalar_type());
  check_tensor(op, "leaf", leaf, at::kDouble, {index.size(0)});
  const auto idx = index.contiguous();
  const int64_t* rows = idx.const_data_ptr<int64_t>();
  const double* values = leaf.const_data_ptr<double>();
  for (int64_t j = 0; j < idx.numel(); ++j) {
    TORCH_CHECK_VALUE(rows[j] >= 0 && rows[j] < capacity, op, ": index[", j, "] should be in [0, ",
                      capacity, "), got ", rows[j]);
    TORCH_CHECK_VALUE(values[j] >= 0.0 && values[j] < __builtin_huge_val(), op, ": leaf[", j,
                      "] should be finite and >= 0, got ", values[j]);
  }
  run({layout, writable<double>(sum_tree), writable<double>(min_tree), /*alpha=*/1.0, rows,
       /*applied=*/nullptr, values, idx.numel()});
}

std::tuple<at::Tensor, at::Tensor> tree_sample_with(
    const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
    const at::Tensor& uniform, double beta, bool batch_max,
    c10::function_ref<void(const kernels::TreeDrawBody&)> draw,
    c10::function_ref<void(const kernels::TreeWeightsBody&, bool batch_max)> weigh) {
  constexpr const char* op = "pyrl::tree_sample";
  check_capacity(op, capacity);
  const TreeLayout layout = kernels::tree_layout(capacity);
  check_trees(op, sum_tree, min_tree, layout);
  rank(op, "uniform", uniform, 1, "1-D [B]");
  check_tensor(op, "uniform", uniform, at::kDouble, {uniform.size(0)});
  unit_interval(op, "beta", beta);
  const double* sum = sum_tree.const_data_ptr<double>();
  const int64_t count = uniform.size(0);
  const double* u = uniform.const_data_ptr<double>();
  for (int64_t j = 0; j < count; ++j) {
    TORCH_CHECK_VALUE(u[j] >= 0.0 && u[j] < 1.0, op, ": uniform[", j, "] should be in [0, 1), got ",
                      u[j]);
  }
  TORCH_CHECK_VALUE(sum[0] > 0.0, op,
                    ": the tree holds no priority mass to sample from (all leaves 0)");
  auto index = at::empty({count}, sum_tree.options().dtype(at::kLong));
  auto weight = at::empty({count}, sum_tree.options().dtype(at::kFloat));
  auto* rows = index.mutable_data_ptr<int64_t>();
  draw({layout, sum, u, count, rows});
  const double* leaves = sum + layout.leaf_offset();
  for (int64_t j = 0; j < count; ++j) {
    TORCH_CHECK_VALUE(rows[j] < capacity && leaves[rows[j]] > 0.0, op, ": sample ", j,
                      " reached leaf ", rows[j],
                      " without priority: sum_tree's parents do not "
                      "match their children");
  }
  weigh({layout, sum, min_tree.const_data_ptr<double>(), rows, count, beta,
         weight.mutable_data_ptr<float>()},
        batch_max);
  return {index, weight};
}

namespace {

void tree_update_cpu(const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
                     const at::Tensor& index, const at::Tensor& leaf) {
  tree_update_with(
      sum_tree, min_tree, capacity, index, leaf, [](const kernels::UpdateLeavesBody& b) {
        kernels::tree_set_leaves(b.layout, b.sum_tree, b.min_tree, b.index, b.priority, b.count);
      });
}

std::tuple<at::Tensor, at::Tensor> tree_sample_cpu(const at::Tensor& sum_tree,
                                                   const at::Tensor& min_tree, int64_t capacity,
                                                   const at::Tensor& uniform, double beta,
                                                   bool batch_max) {
  return tree_sample_with(
      sum_tree, min_tree, capacity, uniform, beta, batch_max,
      [](const kernels::TreeDrawBody& b) {
        kernels::tree_sample_stratified(b.layout, b.sum_tree, nullptr, b.uniform, b.count, b.index);
      },
      [](const kernels::TreeWeightsBody& b, bool batch_max) {
        kernels::tree_is_weights(b.layout, b.sum_tree, b.min_tree, b.index, b.count, b.beta,
                                 batch_max, b.weight);
      });
}

}  // namespace

// ---- the replay buffer ops --------------------------------------------------------------------

namespace {

// The stage of `envs` environments: each stage column [N, horizon, *row] beside its column,
// checked, as the kernels' Stage. A buffer's stage starts with N = 0 and is allocated here at
// the first step (zeros), after every other check has passed (`allocate`).
kernels::Stage stage_of(const char* op, at::TensorList state, at::TensorList columns, int64_t envs,
                        int64_t capacity, bool allocate, Pointers& stage_data) {
  const at::TensorList stage = state.slice(kernels::kStateSlots);
  TORCH_CHECK_VALUE(stage.size() == columns.size(), op,
                    ": state should end with one stage "
                    "column per column (",
                    columns.size(), "), got ", stage.size());
  const at::Tensor& stage_length = state[kernels::kStateStageLength];
  rank(op, "stage_length", stage_length, 1, "1-D [N]");
  const int64_t staged = stage_length.size(0);
  check_tensor(op, "stage_length", stage_length, at::kLong, {staged});
  TORCH_CHECK_VALUE(staged == 0 || envs < 0 || staged == envs, op, ": the step has ", envs,
                    " environments, but earlier steps had ", staged);
  const int64_t horizon = stage[0].dim() >= 2 ? stage[0].size(1) : 0;
  TORCH_CHECK_VALUE(horizon >= 1 && horizon + 1 <= capacity, op,
                    ": stage should hold between 1 and capacity - 1 = ", capacity - 1,
                    " steps per environment, got ", horizon);
  for (size_t i = 0; i < columns.size(); ++i) {
    check_rows(op, "stage", i, stage[i], columns[i], {staged, horizon});
    TORCH_CHECK_VALUE(stage[i].is_contiguous(), op, ": stage[", i, "] should be contiguous");
  }
  const int64_t* length = stage_length.const_data_ptr<int64_t>();
  for (int64_t e = 0; e < staged; ++e) {
    TORCH_CHECK_VALUE(length[e] >= 0 && length[e] < horizon, op, ": stage_length[", e,
                      "] should be in [0, ", horizon, "), got ", length[e]);
  }
  if (staged == 0 && allocate && envs > 0) {
    // resize_ keeps each tensor itself (the buffer's and the host's references stay valid).
    const_cast<at::Tensor&>(stage_length).resize_({envs}).zero_();
    for (size_t i = 0; i < columns.size(); ++i) {
      auto shape = stage[i].sizes().vec();
      shape[0] = envs;
      const_cast<at::Tensor&>(stage[i]).resize_(shape).zero_();
    }
  }
  for (size_t i = 0; i < columns.size(); ++i) stage_data.push_back(writable_bytes(stage[i]));
  return {stage_length.size(0), horizon, stage_data.data(), writable<int64_t>(stage_length)};
}

}  // namespace

int64_t add_rows_with(at::TensorList state, at::TensorList columns, int64_t envs,
                      const uint8_t* const* step, const uint8_t* const* final_obs,
                      const bool* terminated, const bool* truncated, const bool* skip,
                      at::ArrayRef<double> config_values, AddRun run) {
  constexpr const char* op = "pyrl::replay_add";
  Ring ring = ring_of(op, state);
  check_counters(op, ring);
  const kernels::ReplayConfig config = config_of(op, config_values, columns);
  Pointers data, stage_data;
  RowBytes bytes, strides;
  const kernels::Columns cols =
      columns_of(op, columns, ring.capacity, config.obs_columns, data, bytes, strides);
  TORCH_CHECK_VALUE(envs >= 1, op, ": a step should hold at least one environment, got ", envs);
  const kernels::Stage staged =
      stage_of(op, state, columns, envs, ring.capacity, /*allocate=*/true, stage_data);
  const kernels::StepInput input{step, final_obs, terminated, truncated, skip};
  return run({ring, config, cols, staged, input});
}

int64_t replay_add_rows(at::TensorList state, at::TensorList columns, int64_t envs,
                        const uint8_t* const* step, const uint8_t* const* final_obs,
                        const bool* terminated, const bool* truncated, const bool* skip,
                        at::ArrayRef<double> config_values) {
  return add_rows_with(state, columns, envs, step, final_obs, terminated, truncated, skip,
                       config_values, [](const AddCall& a) {
                         return kernels::replay_add_step(a.ring, a.config, a.cols, a.stage,
                                                         a.input);
                       });
}

int64_t add_steps_with(at::TensorList state, at::TensorList columns, at::TensorList step,
                       at::TensorList final_obs, const at::Tensor& terminated,
                       const at::Tensor& truncated, at::ArrayRef<double> config_values,
                       const std::optional<at::Tensor>& skip, AddRun run) {
  constexpr const char* op = "pyrl::replay_add";
  const double announced = config_values.size() > kernels::kConfigObsColumns
                               ? config_values[kernels::kConfigObsColumns]
                               : 0;
  TORCH_CHECK_VALUE(integral(announced) && announced >= 1 && announced < columns.size(), op,
                    ": config obs_columns should be in [1, ", columns.size(), "), got ", announced);
  const auto obs_columns = static_cast<size_t>(announced);
  TORCH_CHECK_VALUE(step.size() == columns.size() && final_obs.size() == obs_columns, op,
                    ": step should have one entry per column (", columns.size(),
                    ") and final_obs one per observation column (", obs_columns, "), got ",
                    step.size(), " and ", final_obs.size());
  TORCH_CHECK_VALUE(step[0].dim() >= 1, op, ": step[0] should be [N, ...], got a scalar");
  const int64_t envs = step[0].size(0);
  c10::SmallVector<at::Tensor, 8> step_data, final_data;
  for (size_t i = 0; i < columns.size(); ++i) {
    check_rows(op, "step", i, step[i], columns[i], {envs});
    step_data.push_back(step[i].contiguous());
    if (i < final_obs.size()) {
      check_rows(op, "final_obs", i, final_obs[i], columns[i], {envs});
      final_data.push_back(final_obs[i].contiguous());
    }
  }
  const auto term = flags(op, "terminated", terminated, envs);
  const auto trunc = flags(op, "truncated", truncated, envs);
  const at::Tensor skipped = skip ? flags(op, "skip", *skip, envs) : at::Tensor();
  c10::SmallVector<const uint8_t*, 8> step_bytes, final_bytes;
  for (const auto& s : step_data)
    step_bytes.push_back(static_cast<const uint8_t*>(s.const_data_ptr()));
  for (const auto& f : final_data)
    final_bytes.push_back(static_cast<const uint8_t*>(f.const_data_ptr()));
  return add_rows_with(state, columns, envs, step_bytes.data(), final_bytes.data(),
                       term.const_data_ptr<bool>(), trunc.const_data_ptr<bool>(),
                       skipped.defined() ? skipped.const_data_ptr<bool>() : nullptr, config_values,
                       run);
}

int64_t replay_add_steps(at::TensorList state, at::TensorList columns, at::TensorList step,
                         at::TensorList final_obs, const at::Tensor& terminated,
                         const at::Tensor& truncated, at::ArrayRef<double> config_values,
                         const std::optional<at::Tensor>& skip) {
  return add_steps_with(state, columns, step, final_obs, terminated, truncated, config_values, skip,
                        [](const AddCall& a) {
                          return kernels::replay_add_step(a.ring, a.config, a.cols, a.stage,
                                                          a.input);
                        });
}

int64_t end_running_with(at::TensorList state, at::TensorList columns,
                         at::ArrayRef<double> config_values, EndRun run) {
  constexpr const char* op = "pyrl::replay_end_episodes";
  Ring ring = ring_of(op, state);
  check_counters(op, ring);
  const kernels::ReplayConfig config = config_of(op, config_values, columns);
  Pointers data, stage_data;
  RowBytes bytes, strides;
  const kernels::Columns cols =
      columns_of(op, columns, ring.capacity, config.obs_columns, data, bytes, strides);
  const kernels::Stage staged =
      stage_of(op, state, columns, -1, ring.capacity, /*allocate=*/false, stage_data);
  return run({ring, config, cols, staged});
}

int64_t replay_end_running(at::TensorList state, at::TensorList columns,
                           at::ArrayRef<double> config_values) {
  return end_running_with(state, columns, config_values, [](const EndCall& a) {
    return kernels::replay_end_episodes(a.ring, a.config, a.cols, a.stage);
  });
}

void add_episode_with(at::TensorList state, at::TensorList columns, at::TensorList values,
                      bool terminated, at::ArrayRef<double> config_values,
                      const std::optional<at::Tensor>& td_abs, EpisodeRun run) {
  constexpr const char* op = "pyrl::replay_add_episode";
  Ring ring = ring_of(op, state);
  check_counters(op, ring);
  const kernels::ReplayConfig config = config_of(op, config_values, columns);
  Pointers data;
  RowBytes bytes, strides;
  const kernels::Columns cols =
      columns_of(op, columns, ring.capacity, config.obs_columns, data, bytes, strides);
  TORCH_CHECK_VALUE(values.size() == columns.size(), op,
                    ": values should have one entry per column (", columns.size(), "), got ",
                    values.size());
  TORCH_CHECK_VALUE(values[0].dim() >= 1, op, ": values[0] should be [T + 1, ...], got a scalar");
  const int64_t steps = values[0].size(0) - 1;
  TORCH_CHECK_VALUE(steps >= 1, op,
                    ": an episode needs at least 1 transition (2 observation rows), got ",
                    steps + 1, " observation rows");
  TORCH_CHECK_VALUE(steps + 1 <= ring.capacity, op, ": an episode of ", steps,
                    " transitions needs ", steps + 1, " rows, more than the capacity ",
                    ring.capacity);
  c10::SmallVector<at::Tensor, 8> contiguous;
  c10::SmallVector<const uint8_t*, 8> value_bytes;
  for (size_t i = 0; i < columns.size(); ++i) {
    const bool obs = static_cast<int64_t>(i) < config.obs_columns;
    check_rows(op, "values", i, values[i], columns[i], {obs ? steps + 1 : steps});
    contiguous.push_back(values[i].contiguous());
    value_bytes.push_back(static_cast<const uint8_t*>(contiguous.back().const_data_ptr()));
  }
  const double* priorities = nullptr;
  at::Tensor td;
  if (td_abs) {
    TORCH_CHECK_VALUE(config.alpha > 0.0, op,
                      ": td_abs needs a prioritized buffer (alpha > 0), "
                      "got alpha=",
                      config.alpha);
    check_tensor(op, "td_abs", *td_abs, at::kDouble, {steps});
    if (!td_abs->is_contiguous()) td = td_abs->contiguous();  // else not copied (SampleCall)
    priorities = (td.defined() ? td : *td_abs).const_data_ptr<double>();
    const int64_t bad = kernels::first_bad_priority(priorities, steps);
    TORCH_CHECK_VALUE(bad < 0, op, ": td_abs should be >= 0 and not NaN, got ",
                      bad < 0 ? 0.0 : priorities[bad], " at position ", bad, "; nothing was added");
  }
  run({ring, config, cols, value_bytes.data(), steps, terminated, priorities});
}

void replay_add_episode_cpu(at::TensorList state, at::TensorList columns, at::TensorList values,
                            bool terminated, at::ArrayRef<double> config_values,
                            const std::optional<at::Tensor>& td_abs) {
  add_episode_with(state, columns, values, terminated, config_values, td_abs,
                   [](const EpisodeCall& a) {
                     kernels::replay_add_episode(a.ring, a.config, a.cols, a.values, a.steps,
                                                 a.terminated, a.td_abs);
                   });
}

namespace {

// The dispatcher's form of a count: a 0-d int64 tensor (an int output has no fake value).
at::Tensor count_tensor(const at::Tensor& like, int64_t count) {
  auto out = at::empty({}, like.options());
  out.mutable_data_ptr<int64_t>()[0] = count;
  return out;
}

at::Tensor replay_add_cpu(at::TensorList state, at::TensorList columns, at::TensorList step,
                          at::TensorList final_obs, const at::Tensor& terminated,
                          const at::Tensor& truncated, at::ArrayRef<double> config,
                          const std::optional<at::Tensor>& skip) {
  return count_tensor(state[0], replay_add_steps(state, columns, step, final_obs, terminated,
                                                 truncated, config, skip));
}

at::Tensor replay_end_episodes_cpu(at::TensorList state, at::TensorList columns,
                                   at::ArrayRef<double> config) {
  return count_tensor(state[0], replay_end_running(state, columns, config));
}

}  // namespace

namespace {

// A [sizes] `type` tensor on `block`'s storage at `offset` bytes: a view made without the
// dispatcher (a sample's outputs share one allocation).
at::Tensor block_view(const at::Tensor& block, int64_t offset, at::ScalarType type,
                      at::IntArrayRef sizes) {
  at::Tensor view = at::detail::make_tensor<c10::TensorImpl>(
      c10::Storage(block.storage()), block.key_set(), c10::scalarTypeToTypeMeta(type));
  view.unsafeGetTensorImpl()->set_storage_offset(offset /
                                                 static_cast<int64_t>(c10::elementSize(type)));
  view.unsafeGetTensorImpl()->set_sizes_contiguous(sizes);
  return view;
}

// Each output of a sample, in sample_output order, as its dtype and shape.
struct OutputSpec {
  at::ScalarType type;
  c10::SmallVector<int64_t, 5> sizes;
};

c10::SmallVector<OutputSpec, 16> sample_output_specs(at::TensorList columns, int64_t obs_columns,
                                                     int64_t count) {
  const at::Tensor& reward = columns.back();
  c10::SmallVector<OutputSpec, 16> specs;
  const auto add = [&](at::ScalarType type, at::IntArrayRef row) {
    OutputSpec spec{type, {count}};
    spec.sizes.append(row.begin(), row.end());
    specs.push_back(std::move(spec));
  };
  add(at::kLong, {});                                  // index
  add(at::kLong, {});                                  // generation
  add(at::kFloat, {});                                 // weight
  add(reward.scalar_type(), reward.sizes().slice(1));  // reward
  add(reward.scalar_type(), {});                       // discount
  add(at::kLong, {});                                  // boot
  add(at::kLong, {});                                  // her_row
  for (size_t i = 0; i + 1 < columns.size(); ++i) {    // fields
    add(columns[i].scalar_type(), columns[i].sizes().slice(1));
  }
  for (int64_t i = 0; i < obs_columns; ++i) {  // next_obs
    add(columns[i].scalar_type(), columns[i].sizes().slice(1));
  }
  add(at::kLong, {});  // k
  add(at::kBool, {});  // terminated
  return specs;
}

// The outputs' data pointers: fields and next observations (sample_output order).
void point_at_outputs(SampleCall& s, int64_t obs_columns) {
  const size_t fields = s.outputs.size() - 9 - static_cast<size_t>(obs_columns);
  for (size_t i = 0; i < fields; ++i) s.field_data.push_back(writable_bytes(s.outputs[7 + i]));
  for (int64_t i = 0; i < obs_columns; ++i) {
    s.next_data.push_back(writable_bytes(s.outputs[7 + fields + static_cast<size_t>(i)]));
  }
}

}  // namespace

void prepare_sample(SampleCall& s, const char* op, at::TensorList state, at::TensorList columns,
                    int64_t batch_size, const std::optional<at::Tensor>& rows,
                    at::ArrayRef<double> config_values, SampleOutputs outputs,
                    at::TensorList given) {
  s.ring = ring_of(op, state);
  const Ring& ring = s.ring;
  check_counters(op, ring);
  s.draws = draws_of(op, state);
  s.seed = s.draws[kernels::kDrawSeed];
  s.call = s.draws[kernels::kDrawCalls];
  s.config = config_of(op, config_values, columns);
  const kernels::ReplayConfig& config = s.config;
  s.cols = columns_of(op, columns, ring.capacity, config.obs_columns, s.data, s.bytes, s.strides);
  TORCH_CHECK_VALUE(batch_size >= 1, op, ": batch_size should be at least 1, got ", batch_size);
  TORCH_CHECK_VALUE(ring.sum_tree[0] > 0.0, op,
                    ": the buffer is empty (an episode is stored once it ends; no episode has "
                    "ended yet)");
  const int64_t count = s.count = batch_size;
  if (rows) {
    check_tensor(op, "rows", *rows, at::kLong, {count});
    const double* leaves = ring.sum_tree + ring.layout.leaf_offset();
    const int64_t* r = rows->const_data_ptr<int64_t>();
    for (int64_t j = 0; j < count; ++j) {
      TORCH_CHECK_VALUE(r[j] >= 0 && r[j] < ring.capacity && leaves[r[j]] > 0.0, op, ": rows[", j,
                        "] should be a stored transition row, got ", r[j]);
    }
  }
  const auto specs = sample_output_specs(columns, config.obs_columns, count);
  const at::TensorOptions options = state[kernels::kStateRowEpisode].options();
  if (outputs == SampleOutputs::kGiven) {
    TORCH_CHECK_VALUE(given.size() == specs.size(), op, ": out should hold ", specs.size(),
                      " tensors, got ", given.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const at::Tensor& t = given[i];
      TORCH_CHECK_VALUE(t.defined() && t.scalar_type() == specs[i].type &&
                            t.sizes() == at::IntArrayRef(specs[i].sizes) &&
                            t.device() == options.device() && t.is_contiguous(),
                        op, ": out[", i, "] should be a contiguous ", specs[i].type, " tensor ",
                        at::IntArrayRef(specs[i].sizes), " on ", options.device(),
                        " (a batch of this buffer, this batch size), got ",
                        t.defined() ? c10::str(t.scalar_type(), " ", checks::shape_of(t), " on ",
                                               t.device(), t.is_contiguous() ? "" : ", strided")
                                    : std::string("an undefined tensor"));
    }
    s.outputs = given;
  } else {
    s.made.reserve(specs.size());
    if (outputs == SampleOutputs::kOneBlock) {
      // One allocation for the batch: each output at a 64-byte boundary of it.
      c10::SmallVector<int64_t, 16> offsets;
      int64_t total = 0;
      for (const OutputSpec& spec : specs) {
        offsets.push_back(total);
        int64_t bytes = static_cast<int64_t>(c10::elementSize(spec.type));
        for (int64_t d : spec.sizes) bytes *= d;
        total += (bytes + 63) / 64 * 64;
      }
      const at::Tensor block = at::empty({total}, options.dtype(at::kByte));
      for (size_t i = 0; i < specs.size(); ++i) {
        s.made.push_back(block_view(block, offsets[i], specs[i].type, specs[i].sizes));
      }
    } else {
      for (const OutputSpec& spec : specs) {
        s.made.push_back(at::empty(spec.sizes, options.dtype(spec.type)));
      }
    }
    s.outputs = s.made;
  }
  point_at_outputs(s, config.obs_columns);
  s.given = rows ? rows->const_data_ptr<int64_t>() : nullptr;
  if (!rows && config.episode_select > 0) {  // episode mode: groups of steps of drawn episodes
    s.episode_rows.resize(static_cast<size_t>(count));
    kernels::episode_rows(ring, s.seed, s.call, config, count, s.episode_rows.data());
    s.given = s.episode_rows.data();
  }
}

void finish_sample(SampleCall& s, const char* op, int64_t bad) {
  TORCH_CHECK_VALUE(bad < 0, op, ": sample ", bad, " drew row ",
                    bad < 0 ? -1 : s.index().const_data_ptr<int64_t>()[bad],
                    ", which is not a stored transition: the priority tree does not match the "
                    "episode table (ReplayBuffer.check() names what is broken)");
  s.draws[kernels::kDrawCalls] = s.call + 1;
}

SampleResult sample_result(const SampleCall& s) {
  const at::TensorList o = s.outputs;
  const size_t next = o.size() - 2 - static_cast<size_t>(s.config.obs_columns);
  return {o[0],
          o[1],
          o[2],
          o[3],
          o[4],
          o[5],
          o[6],
          std::vector<at::Tensor>(o.begin() + 7, o.begin() + static_cast<int64_t>(next)),
          std::vector<at::Tensor>(o.begin() + static_cast<int64_t>(next), o.end() - 2),
          o[o.size() - 2],
          o[o.size() - 1]};
}

namespace {

int64_t run_sample(SampleCall& s) {
  int64_t bad = -1;
  AT_DISPATCH_FLOATING_TYPES(s.reward().scalar_type(), "pyrl::replay_sample", [&] {
    bad = kernels::replay_sample<scalar_t>(s.ring, s.seed, s.call, s.config, s.cols, s.count,
                                           s.given, s.out<scalar_t>());
  });
  return bad;
}

}  // namespace

SampleResult replay_sample_cpu(at::TensorList state, at::TensorList columns, int64_t batch_size,
                               const std::optional<at::Tensor>& rows,
                               at::ArrayRef<double> config_values) {
  constexpr const char* op = "pyrl::replay_sample";
  SampleCall s;
  prepare_sample(s, op, state, columns, batch_size, rows, config_values);
  finish_sample(s, op, run_sample(s));
  return sample_result(s);
}

std::vector<at::Tensor> replay_sample_into_cpu(at::TensorList state, at::TensorList columns,
                                               int64_t batch_size,
                                               at::ArrayRef<double> config_values,
                                               at::TensorList out) {
  constexpr const char* op = "pyrl::replay_sample";
  SampleCall s;
  prepare_sample(s, op, state, columns, batch_size, std::nullopt, config_values,
                 out.empty() ? SampleOutputs::kOneBlock : SampleOutputs::kGiven, out);
  finish_sample(s, op, run_sample(s));
  return std::move(s.made);  // none when given
}

UpdateArgs update_args(const char* op, at::TensorList state, const at::Tensor& index,
                       const at::Tensor& generation, const at::Tensor& td_abs,
                       at::ArrayRef<double> config_values, const at::Tensor& applied) {
  UpdateArgs args;
  args.ring = ring_of(op, state);
  check_counters(op, args.ring);
  TORCH_CHECK_VALUE(config_values.size() >= kernels::kConfigSlots, op,
                    ": config should hold at least ", kernels::kConfigSlots, " values, got ",
                    config_values.size());
  args.config =
      kernels::replay_config(config_values.data(), static_cast<int64_t>(config_values.size()));
  const kernels::ReplayConfig& config = args.config;
  unit_interval(op, "alpha", config.alpha);
  TORCH_CHECK_VALUE(std::isfinite(config.eps) && config.eps >= 0.0 && config.p_min > 0.0 &&
                        config.p_min <= config.p_max && config.p_max <= 1e100,
                    op, ": need eps >= 0 and 0 < p_min <= p_max <= 1e100, got eps=", config.eps,
                    ", p_min=", config.p_min, ", p_max=", config.p_max);
  TORCH_CHECK_VALUE(index.dim() == 1 && index.scalar_type() == at::kLong && index.device().is_cpu(),
                    op, ": index should be a 1-D int64 CPU tensor [B], got ", index.scalar_type(),
                    " ", checks::shape_of(index), " on ", index.device());
  const int64_t count = index.size(0);
  TORCH_CHECK_VALUE(generation.dim() == 1 && generation.size(0) == count &&
                        generation.scalar_type() == at::kLong && generation.device().is_cpu(),
                    op, ": generation should be a 1-D int64 CPU tensor [", count,
                    "] like index, got ", generation.scalar_type(), " ",
                    checks::shape_of(generation), " on ", generation.device());
  TORCH_CHECK_VALUE(td_abs.scalar_type() == at::kFloat || td_abs.scalar_type() == at::kDouble, op,
                    ": td_abs should be float32 or float64, got ", td_abs.scalar_type());
  TORCH_CHECK_VALUE((td_abs.dim() == 1 || (td_abs.dim() == 2 && td_abs.size(1) >= 1)) &&
                        td_abs.size(0) == count && td_abs.device().is_cpu(),
                    op, ": td_abs should be a CPU tensor [", count, "] or [", count, ", m], got ",
                    td_abs.device(), " ", checks::shape_of(td_abs));
  args.count = count;
  args.heads = td_abs.dim() == 2 ? td_abs.size(1) : 1;
  const auto data = [&](const at::Tensor& t, int slot) {
    if (t.is_contiguous()) return t.const_data_ptr();
    args.contiguous[slot] = t.contiguous();
    return args.contiguous[slot].const_data_ptr();
  };
  args.rows = static_cast<const int64_t*>(data(index, 0));
  args.generations = static_cast<const int64_t*>(data(generation, 1));
  args.td = data(td_abs, 2);
  args.td_type = td_abs.scalar_type();
  const int64_t* r = args.rows;
  for (int64_t j = 0; j < count; ++j) {
    TORCH_CHECK_VALUE(r[j] >= 0 && r[j] < args.ring.capacity, op, ": index[", j,
                      "] should be a row in [0, ", args.ring.capacity, "), got ", r[j],
                      "; nothing was updated");
  }
  check_tensor(op, "applied", applied, at::kBool, {count});
  AT_DISPATCH_FLOATING_TYPES(args.td_type, "replay_update_priorities", [&] {
    const scalar_t* values = args.td_values<scalar_t>();
    const int64_t bad = kernels::first_bad_priority(values, td_abs.numel());
    TORCH_CHECK_VALUE(bad < 0, op, ": td_abs should be >= 0 and not NaN, got ",
                      bad < 0 ? 0.0 : static_cast<double>(values[bad]), " at flat position ", bad,
                      "; nothing was updated");
  });
  return args;
}

void replay_update_priorities_cpu(at::TensorList state, const at::Tensor& index,
                                  const at::Tensor& generation, const at::Tensor& td_abs,
                                  at::ArrayRef<double> config_values, const at::Tensor& applied) {
  constexpr const char* op = "pyrl::replay_update_priorities";
  UpdateArgs args = update_args(op, state, index, generation, td_abs, config_values, applied);
  AT_DISPATCH_FLOATING_TYPES(args.td_type, op, [&] {
    kernels::replay_update_priorities(args.ring, args.config, args.rows, args.generations,
                                      args.td_values<scalar_t>(), args.count, args.heads,
                                      writable<bool>(applied));
  });
}

void replay_rebuild_cpu(at::TensorList state, double alpha) {
  constexpr const char* op = "pyrl::replay_rebuild";
  Ring ring = ring_of(op, state);
  unit_interval(op, "alpha", alpha);
  const kernels::InvariantReport report = kernels::replay_rebuild(ring, alpha);
  TORCH_CHECK_VALUE(report.invariant == kernels::kInvariantOk, op, ": invariant '",
                    kernels::kInvariantNames[report.invariant], "' is broken at index ",
                    report.index, "; nothing was changed");
}

at::Tensor replay_check_cpu(at::TensorList state) {
  const Ring ring = ring_of("pyrl::replay_check", state);
  const kernels::InvariantReport report = kernels::replay_check(ring);
  auto out = at::empty({2}, state[kernels::kStateCounters].options());
  out.mutable_data_ptr<int64_t>()[0] = report.invariant;
  out.mutable_data_ptr<int64_t>()[1] = report.index;
  return out;
}

TORCH_LIBRARY_FRAGMENT(pyrl, m) {
  m.def(kTreeUpdateSchema);
  m.def(kTreeSampleSchema);
  m.def(kAddSchema);
  m.def(kEndEpisodesSchema);
  m.def(kAddEpisodeSchema);
  m.def(kSampleSchema);
  m.def(kUpdatePrioritiesSchema);
  m.def("replay_check(Tensor[] state) -> Tensor report");
  m.def("replay_rebuild(Tensor(a!)[] state, float alpha) -> ()");
}

TORCH_LIBRARY_IMPL(pyrl, CPU, m) {
  m.impl("tree_update", &tree_update_cpu);
  m.impl("tree_sample", &tree_sample_cpu);
  m.impl("replay_add", &replay_add_cpu);
  m.impl("replay_end_episodes", &replay_end_episodes_cpu);
  m.impl("replay_add_episode", &replay_add_episode_cpu);
  m.impl("replay_sample", &replay_sample_cpu);
  m.impl("replay_update_priorities", &replay_update_priorities_cpu);
  m.impl("replay_check", &replay_check_cpu);
  m.impl("replay_rebuild", &replay_rebuild_cpu);
}

}  // namespace pyrl
