// pyrl sequence ops (recurrent replay): schemas, argument checks and CPU dispatch. The rules live
// in csrc/kernels/sequence.h; this file checks arguments, extracts pointers and allocates outputs.
// Like the replay ops, they take a buffer's state list (kernels::StateSlot order) and columns,
// validate every row or id they are given, and mutate only what their schema marks (a!).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/SmallVector.h>
#include <c10/util/FunctionRef.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../kernels/replay.h"
#include "../kernels/sequence.h"
#include "checks.h"
#include "replay.h"
#include "sequence.h"

namespace pyrl {
namespace {

using kernels::ColumnView;
using kernels::Ring;

ColumnView column_of(const char* op, const char* name, const at::Tensor& column, int64_t capacity) {
  TORCH_CHECK_VALUE(column.device().is_cpu() && column.dim() >= 1 && column.size(0) == capacity &&
                        rows_contiguous(column),
                    op, ": ", name, " should be a CPU tensor [", capacity,
                    ", ...] with contiguous rows, got ", column.device(), " ",
                    checks::shape_of(column), " with strides ", column.strides());
  return {const_cast<uint8_t*>(static_cast<const uint8_t*>(column.const_data_ptr())),
          row_bytes(column), column.stride(0) * static_cast<int64_t>(column.element_size())};
}

void check_ids(const char* op, const char* name, const at::Tensor& ids) {
  TORCH_CHECK_VALUE(ids.device().is_cpu() && ids.scalar_type() == at::kLong && ids.dim() == 1 &&
                        ids.is_contiguous(),
                    op, ": ", name, " should be a contiguous CPU int64 [E] tensor, got ",
                    ids.device(), " ", ids.scalar_type(), " ", checks::shape_of(ids));
}

// `values` as rows of `column`: [lead..., *row shape] of its dtype, contiguous.
void check_values(const char* op, const at::Tensor& values, const at::Tensor& column,
                  std::vector<int64_t> lead) {
  lead.insert(lead.end(), column.sizes().begin() + 1, column.sizes().end());
  TORCH_CHECK_VALUE(values.device().is_cpu() && values.sizes() == at::IntArrayRef(lead), op,
                    ": values should have shape ", at::IntArrayRef(lead), ", got ", values.sizes());
  TORCH_CHECK_VALUE(values.scalar_type() == column.scalar_type(), op,
                    ": values should have the column's dtype ", column.scalar_type(), ", got ",
                    values.scalar_type());
  TORCH_CHECK_VALUE(values.is_contiguous(), op, ": values should be contiguous");
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> gather_episodes_with(
    at::TensorList state, const at::Tensor& column, const at::Tensor& episode_ids, int64_t pad,
    int64_t positions, c10::function_ref<void(const kernels::GatherEpisodesBody&)> run) {
  constexpr const char* op = "pyrl::replay_gather_episodes";
  const Ring ring = ring_of(op, state);
  check_counters(op, ring);
  const ColumnView view = column_of(op, "column", column, ring.capacity);
  check_ids(op, "episode_ids", episode_ids);
  TORCH_CHECK_VALUE(pad >= 0 && pad < ring.capacity, op, ": pad should be in [0, ", ring.capacity,
                    "), got ", pad);
  TORCH_CHECK_VALUE(positions >= 0 && positions <= ring.capacity + pad, op,
                    ": positions should be in [0, capacity + pad], got ", positions);
  const int64_t count = episode_ids.size(0);
  std::vector<int64_t> shape{count, positions};
  shape.insert(shape.end(), column.sizes().begin() + 1, column.sizes().end());
  auto out = at::empty(shape, column.options().memory_format(at::MemoryFormat::Contiguous));
  auto length = at::empty({count}, episode_ids.options());
  run({ring, view, episode_ids.const_data_ptr<int64_t>(), count, pad, positions,
       static_cast<uint8_t*>(out.mutable_data_ptr()), length.mutable_data_ptr<int64_t>()});
  return {out, length};
}

at::Tensor scatter_episodes_with(at::TensorList state, const at::Tensor& column,
                                 const at::Tensor& episode_ids, const at::Tensor& values,
                                 int64_t offset,
                                 c10::function_ref<void(const kernels::ScatterEpisodesBody&)> run) {
  constexpr const char* op = "pyrl::replay_scatter_episodes";
  const Ring ring = ring_of(op, state);
  check_counters(op, ring);
  const ColumnView view = column_of(op, "column", column, ring.capacity);
  check_ids(op, "episode_ids", episode_ids);
  const int64_t count = episode_ids.size(0);
  TORCH_CHECK_VALUE(values.dim() >= 2, op, ": values should be [E, positions, ...], got ",
                    checks::shape_of(values));
  const int64_t positions = values.size(1);
  check_values(op, values, column, {count, positions});
  TORCH_CHECK_VALUE(offset >= 0 && offset <= 1, op, ": offset should be 0 or 1, got ", offset);
  const int64_t* ids = episode_ids.const_data_ptr<int64_t>();
  const int64_t bad = kernels::first_too_long(ring, ids, count, positions, offset);
  TORCH_CHECK_VALUE(bad < 0, op, ": values hold ", positions, " positions, but episode ",
                    bad < 0 ? 0 : ids[bad], " (episode_ids[", bad, "]) has ",
                    bad < 0 ? 0 : ring.episode(ids[bad])[kernels::kEpisodeLength] + 1 - offset,
                    " rows from offset ", offset);
  auto applied = at::empty({count}, episode_ids.options().dtype(at::kBool));
  run({ring, view, ids, count, positions, offset,
       static_cast<const uint8_t*>(values.const_data_ptr()), applied.mutable_data_ptr<bool>()});
  return applied;
}

at::Tensor write_rows_with(at::TensorList state, const at::Tensor& column, const at::Tensor& index,
                           const at::Tensor& generation, const at::Tensor& values, int64_t offset,
                           c10::function_ref<void(const kernels::WriteRowsBody&)> run) {
  constexpr const char* op = "pyrl::replay_write_rows";
  const Ring ring = ring_of(op, state);
  const ColumnView view = column_of(op, "column", column, ring.capacity);
  check_ids(op, "index", index);
  check_ids(op, "generation", generation);
  const int64_t count = index.size(0);
  TORCH_CHECK_VALUE(generation.size(0) == count, op, ": generation should have index's length ",
                    count, ", got ", generation.size(0));
  check_values(op, values, column, {count});
  const int64_t bad = kernels::first_bad_row(ring, index.const_data_ptr<int64_t>(), count);
  TORCH_CHECK_VALUE(bad < 0, op, ": index[", bad, "] should be in [0, ", ring.capacity, "), got ",
                    bad < 0 ? 0 : index.const_data_ptr<int64_t>()[bad]);
  TORCH_CHECK_VALUE(offset >= 0 && offset < ring.capacity, op, ": offset should be in [0, ",
                    ring.capacity, "), got ", offset);
  auto applied = at::empty({count}, index.options().dtype(at::kBool));
  run({ring, view, index.const_data_ptr<int64_t>(), offset, generation.const_data_ptr<int64_t>(),
       count, static_cast<const uint8_t*>(values.const_data_ptr()),
       applied.mutable_data_ptr<bool>()});
  return applied;
}

namespace {

std::tuple<at::Tensor, at::Tensor> replay_gather_episodes_cpu(at::TensorList state,
                                                              const at::Tensor& column,
                                                              const at::Tensor& episode_ids,
                                                              int64_t pad, int64_t positions) {
  return gather_episodes_with(state, column, episode_ids, pad, positions,
                              [](const kernels::GatherEpisodesBody& b) {
                                kernels::gather_episodes(b.ring, b.column, b.ids, b.count, b.pad,
                                                         b.positions, b.out, b.length);
                              });
}

at::Tensor replay_scatter_episodes_cpu(at::TensorList state, const at::Tensor& column,
                                       const at::Tensor& episode_ids, const at::Tensor& values,
                                       int64_t offset) {
  return scatter_episodes_with(
      state, column, episode_ids, values, offset, [](const kernels::ScatterEpisodesBody& b) {
        kernels::scatter_episodes(b.ring, b.column, b.ids, b.count, b.positions, b.offset, b.values,
                                  b.applied);
      });
}

at::Tensor replay_write_rows_cpu(at::TensorList state, const at::Tensor& column,
                                 const at::Tensor& index, const at::Tensor& generation,
                                 const at::Tensor& values, int64_t offset) {
  return write_rows_with(state, column, index, generation, values, offset,
                         [](const kernels::WriteRowsBody& b) {
                           kernels::write_rows(b.ring, b.column, b.rows, b.offset, b.generation,
                                               b.count, b.values, b.applied);
                         });
}

Windows windows_of(const char* op, const Ring& ring, at::TensorList columns, int64_t count,
                   int64_t steps, int64_t obs_columns, int64_t n, double gamma,
                   const at::TensorOptions& index_options) {
  TORCH_CHECK_VALUE(columns.size() >= 2, op,
                    ": columns should hold the fields and the reward "
                    "last, got ",
                    columns.size(), " columns");
  TORCH_CHECK_VALUE(obs_columns >= 1 && obs_columns < static_cast<int64_t>(columns.size()), op,
                    ": obs_columns should be in [1, ", columns.size() - 1, "], got ", obs_columns);
  TORCH_CHECK_VALUE(steps >= 1 && steps < ring.capacity, op, ": steps should be in [1, ",
                    ring.capacity, "), got ", steps);
  TORCH_CHECK_VALUE(n >= 1, op, ": n should be >= 1, got ", n);
  checks::unit_interval(op, "gamma", gamma);
  const at::Tensor& reward = columns.back();
  TORCH_CHECK_VALUE((reward.scalar_type() == at::kFloat || reward.scalar_type() == at::kDouble) &&
                        reward.dim() <= 2,
                    op,
                    ": the last column (reward) should be float32 or float64 [C] or [C, m], "
                    "got ",
                    reward.scalar_type(), " ", reward.sizes());
  Windows w;
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string name = "columns[" + std::to_string(i) + "]";
    w.views.push_back(column_of(op, name.c_str(), columns[i], ring.capacity));
  }
  const auto contiguous = at::MemoryFormat::Contiguous;
  for (size_t i = 0; i + 1 < columns.size(); ++i) {
    std::vector<int64_t> shape{count, static_cast<int64_t>(i) < obs_columns ? steps + 1 : steps};
    shape.insert(shape.end(), columns[i].sizes().begin() + 1, columns[i].sizes().end());
    w.fields.push_back(at::empty(shape, columns[i].options().memory_format(contiguous)));
    w.field_data.push_back(static_cast<uint8_t*>(w.fields.back().mutable_data_ptr()));
  }
  std::vector<int64_t> reward_shape{count, steps};
  if (reward.dim() == 2) reward_shape.push_back(reward.size(1));
  w.reward = at::empty(reward_shape, reward.options().memory_format(contiguous));
  w.discount = at::empty({count, steps}, reward.options().memory_format(contiguous));
  w.mask = at::empty({count, steps}, index_options.dtype(at::kBool));
  w.k = at::empty({count, steps}, index_options);
  w.terminal = at::empty({count, steps}, index_options.dtype(at::kBool));
  w.generation = at::empty({count}, index_options);
  return w;
}

}  // namespace

GatherWindowsCall prepare_gather_windows(const char* op, at::TensorList state,
                                         at::TensorList columns, const at::Tensor& start,
                                         int64_t steps, at::ArrayRef<double> config_values) {
  GatherWindowsCall g;
  g.ring = ring_of(op, state);
  check_counters(op, g.ring);
  check_ids(op, "start", start);
  g.count = start.size(0);
  // The buffer's own settings, as the sequence sample takes them: its hidden column, the last
  // observation column, comes apart.
  const kernels::ReplayConfig config = config_of(op, config_values, columns);
  const int64_t obs_columns = config.obs_columns - 1;
  const int64_t n = config.n;
  const double gamma = config.gamma;
  g.w = windows_of(op, g.ring, columns, g.count, steps, obs_columns, n, gamma, start.options());
  g.start = start.const_data_ptr<int64_t>();
  const int64_t bad = kernels::first_bad_start(g.ring, g.start, g.count);
  TORCH_CHECK_VALUE(bad < 0, op, ": start[", bad, "] should be a stored transition's row, got ",
                    bad < 0 ? 0 : g.start[bad]);
  g.steps = steps;
  g.obs_columns = obs_columns;
  g.n = n;
  g.gamma = gamma;
  return g;
}

WindowsResult windows_result(const Windows& w) {
  return {w.fields, w.mask, w.reward, w.discount, w.k, w.terminal, w.generation};
}

namespace {

WindowsResult replay_gather_windows_cpu(at::TensorList state, at::TensorList columns,
                                        const at::Tensor& start, int64_t steps,
                                        at::ArrayRef<double> config) {
  GatherWindowsCall g =
      prepare_gather_windows("pyrl::replay_gather_windows", state, columns, start, steps, config);
  AT_DISPATCH_FLOATING_TYPES(g.w.reward.scalar_type(), "replay_gather_windows", [&] {
    kernels::gather_windows(g.ring, g.w.views.data(), static_cast<int64_t>(g.w.views.size()),
                            g.obs_columns, g.start, g.count, g.steps, g.n, g.gamma,
                            g.w.out<scalar_t>());
  });
  return windows_result(g.w);
}

}  // namespace

void prepare_sample_windows(SampleWindowsCall& s, const char* op, at::TensorList state,
                            at::TensorList columns, const at::Tensor& hidden, int64_t batch_size,
                            int64_t steps, at::ArrayRef<double> config_values) {
  s.ring = ring_of(op, state);
  check_counters(op, s.ring);
  s.draws = draws_of(op, state);
  s.seed = s.draws[kernels::kDrawSeed];
  s.call = s.draws[kernels::kDrawCalls];
  TORCH_CHECK_VALUE(batch_size >= 1, op, ": batch_size should be >= 1, got ", batch_size);
  // The buffer's own settings: its hidden column, the last observation column, comes apart.
  const kernels::ReplayConfig config = config_of(op, config_values, columns);
  s.obs_columns = config.obs_columns - 1;
  s.beta = kernels::beta_at(config, s.call);
  TORCH_CHECK_VALUE(s.ring.sum_tree[0] > 0.0, op,
                    ": the buffer is empty (an episode is stored "
                    "once it ends; no episode has ended yet)");
  s.hidden = column_of(op, "hidden", hidden, s.ring.capacity);
  const auto index_options = state[kernels::kStateRowEpisode].options();
  s.n = config.n;
  s.gamma = config.gamma;
  s.batch_max = config.batch_max;
  s.count = batch_size;
  s.steps = steps;
  s.w = windows_of(op, s.ring, columns, batch_size, steps, s.obs_columns, s.n, s.gamma,
                   index_options);
  s.index = at::empty({batch_size}, index_options);
  s.weight = at::empty({batch_size}, index_options.dtype(at::kFloat));
  std::vector<int64_t> hidden_shape{batch_size};
  hidden_shape.insert(hidden_shape.end(), hidden.sizes().begin() + 1, hidden.sizes().end());
  s.first_hidden =
      at::empty(hidden_shape, hidden.options().memory_format(at::MemoryFormat::Contiguous));
}

SequenceSample finish_sample_windows(SampleWindowsCall& s, const char* op, int64_t bad) {
  TORCH_CHECK_VALUE(bad < 0, op, ": sample ", bad,
                    " drew a row that is not a stored "
                    "transition: the sum tree does not match the episode table; "
                    "ReplayBuffer.check() names what is broken");
  s.draws[kernels::kDrawCalls] = s.call + 1;
  const Windows& w = s.w;
  return {s.index,    s.weight, s.first_hidden, w.fields,    w.mask, w.reward,
          w.discount, w.k,      w.terminal,     w.generation};
}

SequenceSample replay_sample_windows_cpu(at::TensorList state, at::TensorList columns,
                                         const at::Tensor& hidden, int64_t batch_size,
                                         int64_t steps, at::ArrayRef<double> config_values) {
  constexpr const char* op = "pyrl::replay_sample_windows";
  SampleWindowsCall s;
  prepare_sample_windows(s, op, state, columns, hidden, batch_size, steps, config_values);
  int64_t bad = -1;
  AT_DISPATCH_FLOATING_TYPES(s.w.reward.scalar_type(), "replay_sample_windows", [&] {
    bad = kernels::sample_windows(
        s.ring, s.seed, s.call, s.beta, s.batch_max, s.w.views.data(),
        static_cast<int64_t>(s.w.views.size()), s.obs_columns, s.hidden, s.count, s.steps, s.n,
        s.gamma, s.index.mutable_data_ptr<int64_t>(), s.weight.mutable_data_ptr<float>(),
        static_cast<uint8_t*>(s.first_hidden.mutable_data_ptr()), s.w.out<scalar_t>());
  });
  return finish_sample_windows(s, op, bad);
}

TORCH_LIBRARY_FRAGMENT(pyrl, m) {
  m.def(kGatherEpisodesSchema);
  m.def(kScatterEpisodesSchema);
  m.def(kWriteRowsSchema);
  m.def(kGatherWindowsSchema);
  m.def(kSampleWindowsSchema);
}

TORCH_LIBRARY_IMPL(pyrl, CPU, m) {
  m.impl("replay_gather_episodes", &replay_gather_episodes_cpu);
  m.impl("replay_scatter_episodes", &replay_scatter_episodes_cpu);
  m.impl("replay_write_rows", &replay_write_rows_cpu);
  m.impl("replay_gather_windows", &replay_gather_windows_cpu);
  m.impl("replay_sample_windows", &replay_sample_windows_cpu);
}

}  // namespace pyrl
