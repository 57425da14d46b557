// Test-only: the CPU grid runner as a torch library of its own, `pyrl_grid`, with the schemas of
// the pyrl ops that have CUDA kernel bodies. Each op checks and prepares its inputs exactly as
// the pyrl op does, then runs the op's kernel body over every thread index of the launch the CUDA
// backend would make (csrc/kernels/grid.h), in launch order or shuffled. tests/test_grid.py
// compares the results with the CPU ops, bit for bit.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "../kernels/grid.h"
#include "../kernels/replay_add.h"
#include "../kernels/replay_sample.h"
#include "../kernels/replay_update.h"
#include "../kernels/sequence_phases.h"
#include "replay.h"
#include "returns.h"
#include "sequence.h"

namespace pyrl {
namespace {

// 0: every launch runs its threads in order; otherwise the seed of their shuffled order.
std::atomic<uint64_t> grid_shuffle{0};

struct GridRun {
  GridRun() = default;
  explicit GridRun(const at::Tensor&) {}

  template <typename Body>
  void operator()(const Body& body) const {
    kernels::run_grid(body, grid_shuffle.load());
  }
};

void set_shuffle(int64_t seed) { grid_shuffle.store(static_cast<uint64_t>(seed)); }

// The priority update's CUDA phases (csrc/kernels/replay_update.h) on the CPU state.
void replay_update_priorities_grid(at::TensorList state, const at::Tensor& index,
                                   const at::Tensor& generation, const at::Tensor& td_abs,
                                   at::ArrayRef<double> config, const at::Tensor& applied) {
  constexpr const char* op = "pyrl::replay_update_priorities";
  const UpdateArgs args = update_args(op, state, index, generation, td_abs, config, applied);
  const kernels::PrioritySettings settings{args.config.alpha, args.config.eps, args.config.p_min,
                                           args.config.p_max};
  auto priority = at::empty({args.count}, td_abs.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(args.td_type, op, [&] {
    kernels::update_priorities_in_phases(args.ring, settings, args.rows, args.generations,
                                         args.td_values<scalar_t>(), args.count, args.heads,
                                         applied.mutable_data_ptr<bool>(),
                                         priority.mutable_data_ptr<double>(), GridRun{});
  });
}

void check_column_count(const char* op, int64_t count) {
  TORCH_CHECK_VALUE(count <= kernels::kMaxColumns, op, ": a kernel body carries at most ",
                    kernels::kMaxColumns, " columns, got ", count);
}

// The fused sample's CUDA phases (csrc/kernels/replay_sample.h) on the CPU state.
SampleResult replay_sample_grid(at::TensorList state, at::TensorList columns, int64_t batch_size,
                                const std::optional<at::Tensor>& rows,
                                at::ArrayRef<double> config) {
  constexpr const char* op = "pyrl::replay_sample";
  SampleCall s;
  prepare_sample(s, op, state, columns, batch_size, rows, config);
  check_column_count(op, s.cols.count);
  auto bad = at::empty({s.count}, s.index().options().dtype(at::kBool));
  auto largest = at::empty({1}, s.weight().options());
  AT_DISPATCH_FLOATING_TYPES(s.reward().scalar_type(), op, [&] {
    kernels::sample_in_phases(s.ring, s.seed, s.call, s.config, s.cols, s.count, s.given,
                              s.out<scalar_t>(), bad.mutable_data_ptr<bool>(),
                              largest.mutable_data_ptr<float>(), GridRun{});
  });
  const bool* flags = bad.const_data_ptr<bool>();
  int64_t first = -1;
  for (int64_t j = 0; j < s.count && first < 0; ++j) first = flags[j] ? j : -1;
  finish_sample(s, op, first);
  return sample_result(s);
}

// The window gather's CUDA body (csrc/kernels/sequence_phases.h) on the CPU state.
WindowsResult replay_gather_windows_grid(at::TensorList state, at::TensorList columns,
                                         const at::Tensor& start, int64_t steps,
                                         at::ArrayRef<double> config) {
  constexpr const char* op = "pyrl::replay_gather_windows";
  GatherWindowsCall g = prepare_gather_windows(op, state, columns, start, steps, config);
  check_column_count(op, static_cast<int64_t>(g.w.views.size()));
  AT_DISPATCH_FLOATING_TYPES(g.w.reward.scalar_type(), op, [&] {
    GridRun{}(kernels::gather_windows_body(
        g.ring, g.w.views.data(), static_cast<int64_t>(g.w.views.size()), g.obs_columns, g.start,
        g.count, g.steps, g.n, g.gamma, g.w.out<scalar_t>()));
  });
  return windows_result(g.w);
}

// The sequence sample's CUDA phases on the CPU state.
SequenceSample replay_sample_windows_grid(at::TensorList state, at::TensorList columns,
                                          const at::Tensor& hidden, int64_t batch_size,
                                          int64_t steps, at::ArrayRef<double> config) {
  constexpr const char* op = "pyrl::replay_sample_windows";
  SampleWindowsCall s;
  prepare_sample_windows(s, op, state, columns, hidden, batch_size, steps, config);
  check_column_count(op, static_cast<int64_t>(s.w.views.size()));
  auto bad = at::empty({s.count}, s.index.options().dtype(at::kBool));
  auto largest = at::empty({1}, s.weight.options());
  const bool* flags = bad.const_data_ptr<bool>();
  const auto first_bad = [&] {
    for (int64_t j = 0; j < s.count; ++j) {
      if (flags[j]) return j;
    }
    return int64_t{-1};
  };
  AT_DISPATCH_FLOATING_TYPES(s.w.reward.scalar_type(), op, [&] {
    kernels::sample_windows_in_phases(
        s.ring, s.seed, s.call, s.beta, s.batch_max, s.w.views.data(),
        static_cast<int64_t>(s.w.views.size()), s.obs_columns, s.hidden, s.count, s.steps, s.n,
        s.gamma, s.index.mutable_data_ptr<int64_t>(), s.weight.mutable_data_ptr<float>(),
        static_cast<uint8_t*>(s.first_hidden.mutable_data_ptr()), s.w.out<scalar_t>(),
        bad.mutable_data_ptr<bool>(), largest.mutable_data_ptr<float>(), GridRun{});
  });
  return finish_sample_windows(s, op, first_bad());
}

// The adds' bodies.
at::Tensor replay_add_grid(at::TensorList state, at::TensorList columns, at::TensorList step,
                           at::TensorList final_obs, const at::Tensor& terminated,
                           const at::Tensor& truncated, at::ArrayRef<double> config,
                           const std::optional<at::Tensor>& skip) {
  constexpr const char* op = "pyrl::replay_add";
  check_column_count(op, static_cast<int64_t>(columns.size()));
  const int64_t cut = add_steps_with(
      state, columns, step, final_obs, terminated, truncated, config, skip, [](const AddCall& a) {
        std::unique_ptr<bool[]> commit(new bool[static_cast<size_t>(a.stage.envs)]);
        int64_t pieces = 0;
        kernels::add_step_in_phases(a.ring, a.config, a.cols, a.stage, a.input, commit.get(),
                                    &pieces, GridRun{});
        return pieces;
      });
  auto out = at::empty({}, state[0].options());
  out.mutable_data_ptr<int64_t>()[0] = cut;
  return out;
}

at::Tensor replay_end_episodes_grid(at::TensorList state, at::TensorList columns,
                                    at::ArrayRef<double> config) {
  check_column_count("pyrl::replay_end_episodes", static_cast<int64_t>(columns.size()));
  const int64_t stored = end_running_with(state, columns, config, [](const EndCall& a) {
    int64_t count = 0;
    GridRun{}(kernels::EndEpisodesBody{a.ring, a.config, kernels::column_arrays(a.cols),
                                       kernels::stage_arrays(a.stage, a.cols.count), &count});
    return count;
  });
  auto out = at::empty({}, state[0].options());
  out.mutable_data_ptr<int64_t>()[0] = stored;
  return out;
}

void replay_add_episode_grid(at::TensorList state, at::TensorList columns, at::TensorList values,
                             bool terminated, at::ArrayRef<double> config,
                             const std::optional<at::Tensor>& td_abs) {
  check_column_count("pyrl::replay_add_episode", static_cast<int64_t>(columns.size()));
  add_episode_with(state, columns, values, terminated, config, td_abs, [](const EpisodeCall& a) {
    kernels::AddEpisodeBody body{
        a.ring, a.config, kernels::column_arrays(a.cols), {}, a.steps, a.terminated, a.td_abs};
    for (int64_t i = 0; i < a.cols.count; ++i) body.values[i] = a.values[i];
    GridRun{}(body);
  });
}

// The exposed tree ops' bodies.
void tree_update_grid(const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
                      const at::Tensor& index, const at::Tensor& leaf) {
  tree_update_with(
      sum_tree, min_tree, capacity, index, leaf,
      [](const kernels::UpdateLeavesBody& b) { kernels::tree_update_in_phases(b, GridRun{}); });
}

std::tuple<at::Tensor, at::Tensor> tree_sample_grid(const at::Tensor& sum_tree,
                                                    const at::Tensor& min_tree, int64_t capacity,
                                                    const at::Tensor& uniform, double beta,
                                                    bool batch_max) {
  return tree_sample_with(
      sum_tree, min_tree, capacity, uniform, beta, batch_max,
      [](const kernels::TreeDrawBody& b) { GridRun{}(b); },
      [](const kernels::TreeWeightsBody& b, bool normalize) {
        GridRun{}(b);
        if (!normalize) return;
        float largest = 0.0f;
        GridRun{}(kernels::LargestWeightBody{b.weight, b.count, &largest});
        GridRun{}(kernels::DivideWeightsBody{&largest, b.count, b.weight});
      });
}

// The episode and row ops' bodies.
std::tuple<at::Tensor, at::Tensor> replay_gather_episodes_grid(at::TensorList state,
                                                               const at::Tensor& column,
                                                               const at::Tensor& episode_ids,
                                                               int64_t pad, int64_t positions) {
  return gather_episodes_with(state, column, episode_ids, pad, positions,
                              [](const kernels::GatherEpisodesBody& b) { GridRun{}(b); });
}

at::Tensor replay_scatter_episodes_grid(at::TensorList state, const at::Tensor& column,
                                        const at::Tensor& episode_ids, const at::Tensor& values,
                                        int64_t offset) {
  return scatter_episodes_with(state, column, episode_ids, values, offset,
                               [](const kernels::ScatterEpisodesBody& b) { GridRun{}(b); });
}

at::Tensor replay_write_rows_grid(at::TensorList state, const at::Tensor& column,
                                  const at::Tensor& index, const at::Tensor& generation,
                                  const at::Tensor& values, int64_t offset) {
  return write_rows_with(state, column, index, generation, values, offset,
                         [](const kernels::WriteRowsBody& b) { GridRun{}(b); });
}

}  // namespace

TORCH_LIBRARY(pyrl_grid, m) {
  for (const char* schema : returns_ops::kSchemas) m.def(schema);
  for (const char* schema : {kAddSchema, kEndEpisodesSchema, kAddEpisodeSchema, kTreeUpdateSchema,
                             kTreeSampleSchema, kUpdatePrioritiesSchema, kSampleSchema,
                             kGatherEpisodesSchema, kScatterEpisodesSchema, kWriteRowsSchema}) {
    m.def(schema);
  }
  m.def(kGatherWindowsSchema);
  m.def(kSampleWindowsSchema);
  m.def("set_shuffle(int seed) -> ()");
}

TORCH_LIBRARY_IMPL(pyrl_grid, CPU, m) {
  returns_ops::register_impls<GridRun>(m);
  m.impl("replay_add", &replay_add_grid);
  m.impl("replay_end_episodes", &replay_end_episodes_grid);
  m.impl("replay_add_episode", &replay_add_episode_grid);
  m.impl("tree_update", &tree_update_grid);
  m.impl("tree_sample", &tree_sample_grid);
  m.impl("replay_gather_episodes", &replay_gather_episodes_grid);
  m.impl("replay_scatter_episodes", &replay_scatter_episodes_grid);
  m.impl("replay_write_rows", &replay_write_rows_grid);
  m.impl("replay_update_priorities", &replay_update_priorities_grid);
  m.impl("replay_sample", &replay_sample_grid);
  m.impl("replay_gather_windows", &replay_gather_windows_grid);
  m.impl("replay_sample_windows", &replay_sample_windows_grid);
}

TORCH_LIBRARY_IMPL(pyrl_grid, CompositeExplicitAutograd, m) { m.impl("set_shuffle", &set_shuffle); }

}  // namespace pyrl
