#pragma once
// The sequence ops' entries shared beyond csrc/torch/sequence.cpp: the fused sequence sample that
// ReplayHost (csrc/replay_host.cpp) calls directly on a CPU buffer's hot path (the dispatcher
// runs the same function), and the checked inputs and outputs of the window ops, which every
// backend's window gather and sequence sample start from (the CPU loops, the CPU grid runner of
// the CUDA phases in csrc/torch/grid.cpp).
#include <ATen/core/Tensor.h>
#include <c10/util/FunctionRef.h>
#include <c10/util/SmallVector.h>

#include <tuple>
#include <vector>

#include "../kernels/replay.h"
#include "../kernels/sequence.h"
#include "../kernels/sequence_phases.h"

namespace pyrl {

inline constexpr const char* kGatherEpisodesSchema =
    "replay_gather_episodes(Tensor[] state, Tensor column, Tensor episode_ids, int pad, "
    "int positions) -> (Tensor sequences, Tensor lengths)";

inline constexpr const char* kScatterEpisodesSchema =
    "replay_scatter_episodes(Tensor[] state, Tensor(a!) column, Tensor episode_ids, "
    "Tensor values, int offset) -> Tensor applied";

inline constexpr const char* kWriteRowsSchema =
    "replay_write_rows(Tensor[] state, Tensor(a!) column, Tensor index, Tensor generation, "
    "Tensor values, int offset=0) -> Tensor applied";

inline constexpr const char* kGatherWindowsSchema =
    "replay_gather_windows(Tensor[] state, Tensor[] columns, Tensor start, int steps, "
    "float[] config) -> (Tensor[] fields, Tensor mask, Tensor reward, Tensor discount, "
    "Tensor k, Tensor terminated, Tensor generation)";

inline constexpr const char* kSampleWindowsSchema =
    "replay_sample_windows(Tensor(a!)[] state, Tensor[] columns, Tensor hidden, "
    "int batch_size, int steps, float[] config) -> (Tensor index, Tensor weight, "
    "Tensor hidden_first, Tensor[] fields, Tensor mask, Tensor reward, Tensor discount, "
    "Tensor k, Tensor terminated, Tensor generation)";

// (fields, mask, reward, discount, k, terminated, generation)
using WindowsResult = std::tuple<std::vector<at::Tensor>, at::Tensor, at::Tensor, at::Tensor,
                                 at::Tensor, at::Tensor, at::Tensor>;

// (index, weight, hidden at the start rows, fields, mask, reward, discount, k, terminated,
// generation)
using SequenceSample =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, std::vector<at::Tensor>, at::Tensor, at::Tensor,
               at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// The episode and row ops: their checks and outputs, then `run` (the CPU loop, or the CPU grid
// runner of the CUDA body) on the checked arguments, which are the body itself.
std::tuple<at::Tensor, at::Tensor> gather_episodes_with(
    at::TensorList state, const at::Tensor& column, const at::Tensor& episode_ids, int64_t pad,
    int64_t positions, c10::function_ref<void(const kernels::GatherEpisodesBody&)> run);

at::Tensor scatter_episodes_with(at::TensorList state, const at::Tensor& column,
                                 const at::Tensor& episode_ids, const at::Tensor& values,
                                 int64_t offset,
                                 c10::function_ref<void(const kernels::ScatterEpisodesBody&)> run);

at::Tensor write_rows_with(at::TensorList state, const at::Tensor& column, const at::Tensor& index,
                           const at::Tensor& generation, const at::Tensor& values, int64_t offset,
                           c10::function_ref<void(const kernels::WriteRowsBody&)> run);

// The checked column views and the allocated outputs of a window gather.
struct Windows {
  c10::SmallVector<kernels::ColumnView, 8> views;
  std::vector<at::Tensor> fields;
  c10::SmallVector<uint8_t*, 8> field_data;
  at::Tensor reward, discount, mask, k, terminal, generation;

  template <typename T>
  kernels::WindowsOut<T> out() {
    return {field_data.data(),
            mask.mutable_data_ptr<bool>(),
            reward.mutable_data_ptr<T>(),
            discount.mutable_data_ptr<T>(),
            k.mutable_data_ptr<int64_t>(),
            terminal.mutable_data_ptr<bool>(),
            generation.mutable_data_ptr<int64_t>()};
  }
};

// A window gather's checked inputs (every start row a stored transition) and outputs.
struct GatherWindowsCall {
  kernels::Ring ring;
  Windows w;
  const int64_t* start = nullptr;
  int64_t count = 0, steps = 0, obs_columns = 0, n = 1;
  double gamma = 1.0;
};

// `columns` and `config` as replay_sample_windows takes them (the hidden column apart).
GatherWindowsCall prepare_gather_windows(const char* op, at::TensorList state,
                                         at::TensorList columns, const at::Tensor& start,
                                         int64_t steps, at::ArrayRef<double> config);

WindowsResult windows_result(const Windows& w);

// A sequence sample's checked inputs (the state's draw counter included) and outputs;
// finish_sample_windows reports a bad start row or advances the counter.
struct SampleWindowsCall {
  kernels::Ring ring;
  Windows w;
  int64_t* draws = nullptr;
  int64_t seed = 0, call = 0, count = 0, steps = 0, obs_columns = 0, n = 1;
  double gamma = 1.0, beta = 0.0;
  bool batch_max = false;
  kernels::ColumnView hidden{};
  at::Tensor index, weight, first_hidden;
};

void prepare_sample_windows(SampleWindowsCall& s, const char* op, at::TensorList state,
                            at::TensorList columns, const at::Tensor& hidden, int64_t batch_size,
                            int64_t steps, at::ArrayRef<double> config);

SequenceSample finish_sample_windows(SampleWindowsCall& s, const char* op, int64_t bad);

// The windows of a recurrent buffer: `columns` are its columns without the hidden one (the
// last observation column), passed as `hidden`; `config` is the buffer's own settings list.
SequenceSample replay_sample_windows_cpu(at::TensorList state, at::TensorList columns,
                                         const at::Tensor& hidden, int64_t batch_size,
                                         int64_t steps, at::ArrayRef<double> config);

}  // namespace pyrl
