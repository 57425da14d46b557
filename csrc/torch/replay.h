#pragma once
// The replay ops' CPU implementations, declared once: TORCH_LIBRARY_IMPL registers them for the
// dispatcher (torch.ops.pyrl.*: opcheck, torch.compile, other devices) and ReplayHost
// (csrc/replay_host.cpp, pyrl._C.ReplayHost) calls the very same functions for a CPU buffer on
// its hot path, skipping the dispatcher's few microseconds per call.
// tests/test_replay_ops.py::test_host_and_dispatcher_agree checks the two routes on every op.
#include <ATen/core/Tensor.h>
#include <c10/util/SmallVector.h>

#include <c10/util/FunctionRef.h>

#include "../kernels/replay.h"
#include "../kernels/replay_sample.h"
#include "../kernels/replay_update.h"

#include <optional>
#include <tuple>
#include <vector>

namespace pyrl {

// The state list (kernels::StateSlot order), checked, as the kernels' Ring; the glue of every
// op family on replay state starts here (csrc/torch/sequence.cpp too).
kernels::Ring ring_of(const char* op, at::TensorList state);

// The counters the ops index with, checked in O(1) (the rest of a state is validated when it
// comes from outside, by replay_rebuild).
void check_counters(const char* op, const kernels::Ring& ring);

// The state's draw counter (seed, calls; kernels::DrawCounter), checked >= 0, writable: a
// sample advances calls.
int64_t* draws_of(const char* op, at::TensorList state);

// The settings list, checked against the columns it applies to.
kernels::ReplayConfig config_of(const char* op, at::ArrayRef<double> values,
                                at::TensorList columns);

// Bytes of one row of a [C, ...] column.
int64_t row_bytes(const at::Tensor& column);

// Whether each row of `column` is contiguous and rows do not overlap: a contiguous [C, ...]
// tensor, or a strided view of a row record.
bool rows_contiguous(const at::Tensor& column);

using SampleResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
               std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor, at::Tensor>;

// The adds' checked arguments, which every backend's add starts from (the CPU loops, the CPU
// grid runner of the CUDA phases): the *_with functions check and prepare, then call `run`.
// (References: an add is the hot path, and a config is half a kilobyte.)
struct AddCall {
  const kernels::Ring& ring;
  const kernels::ReplayConfig& config;
  const kernels::Columns& cols;
  const kernels::Stage& stage;
  const kernels::StepInput& input;
};
using AddRun = c10::function_ref<int64_t(const AddCall&)>;

struct EndCall {
  const kernels::Ring& ring;
  const kernels::ReplayConfig& config;
  const kernels::Columns& cols;
  const kernels::Stage& stage;
};
using EndRun = c10::function_ref<int64_t(const EndCall&)>;

struct EpisodeCall {
  const kernels::Ring& ring;
  const kernels::ReplayConfig& config;
  const kernels::Columns& cols;
  const uint8_t* const* values;
  int64_t steps;
  bool terminated;
  const double* td_abs;  // or null
};
using EpisodeRun = c10::function_ref<void(const EpisodeCall&)>;

int64_t add_rows_with(at::TensorList state, at::TensorList columns, int64_t envs,
                      const uint8_t* const* step, const uint8_t* const* final_obs,
                      const bool* terminated, const bool* truncated, const bool* skip,
                      at::ArrayRef<double> config, AddRun run);

int64_t add_steps_with(at::TensorList state, at::TensorList columns, at::TensorList step,
                       at::TensorList final_obs, const at::Tensor& terminated,
                       const at::Tensor& truncated, at::ArrayRef<double> config,
                       const std::optional<at::Tensor>& skip, AddRun run);

int64_t end_running_with(at::TensorList state, at::TensorList columns, at::ArrayRef<double> config,
                         EndRun run);

void add_episode_with(at::TensorList state, at::TensorList columns, at::TensorList values,
                      bool terminated, at::ArrayRef<double> config,
                      const std::optional<at::Tensor>& td_abs, EpisodeRun run);

inline constexpr const char* kAddSchema =
    "replay_add(Tensor(a!)[] state, Tensor(b!)[] columns, Tensor[] step, Tensor[] final_obs, "
    "Tensor terminated, Tensor truncated, float[] config, Tensor? skip=None) -> Tensor cut";
inline constexpr const char* kEndEpisodesSchema =
    "replay_end_episodes(Tensor(a!)[] state, Tensor(b!)[] columns, float[] config) "
    "-> Tensor stored";
inline constexpr const char* kAddEpisodeSchema =
    "replay_add_episode(Tensor(a!)[] state, Tensor(b!)[] columns, Tensor[] values, "
    "bool terminated, float[] config, Tensor? td_abs=None) -> ()";

// The add op's work (the op returns its count as a 0-d tensor): the pieces committed because a
// stage filled up.
int64_t replay_add_steps(at::TensorList state, at::TensorList columns, at::TensorList step,
                         at::TensorList final_obs, const at::Tensor& terminated,
                         const at::Tensor& truncated, at::ArrayRef<double> config,
                         const std::optional<at::Tensor>& skip);

// replay_add_cpu's state checks and kernel call, for steps of `envs` environments already
// checked against the columns (ReplayHost's numpy path: raw pointers into the caller's arrays,
// no tensors made). Returns the pieces committed because a stage filled up.
int64_t replay_add_rows(at::TensorList state, at::TensorList columns, int64_t envs,
                        const uint8_t* const* step, const uint8_t* const* final_obs,
                        const bool* terminated, const bool* truncated, const bool* skip,
                        at::ArrayRef<double> config);

// The end_episodes op's work: stores the running episodes, returns how many.
int64_t replay_end_running(at::TensorList state, at::TensorList columns,
                           at::ArrayRef<double> config);

void replay_add_episode_cpu(at::TensorList state, at::TensorList columns, at::TensorList values,
                            bool terminated, at::ArrayRef<double> config,
                            const std::optional<at::Tensor>& td_abs);

inline constexpr const char* kSampleSchema =
    "replay_sample(Tensor(a!)[] state, Tensor[] columns, int batch_size, Tensor? rows, "
    "float[] config) -> (Tensor index, Tensor generation, Tensor weight, Tensor reward, "
    "Tensor discount, Tensor boot, Tensor her_row, Tensor[] fields, Tensor[] next_obs, "
    "Tensor k, Tensor terminated)";

using Pointers = c10::SmallVector<uint8_t*, 8>;
using RowBytes = c10::SmallVector<int64_t, 8>;

// One sample call: its checked inputs (the state's draw counter included) and its outputs,
// allocated or given. prepare_sample changes nothing; finish_sample reports a bad row or advances
// the counter. Every backend's sample runs between the two (the CPU loops, the CPU grid runner of
// the CUDA phases). Not copyable: `cols` points into its own vectors.
//
// Given outputs are only referred to, never copied: a copy of a tensor Python made takes the GIL
// (torch keeps the Python object's count), and the call runs holding the buffer's mutex.
struct SampleCall {
  SampleCall() = default;
  SampleCall(const SampleCall&) = delete;
  SampleCall& operator=(const SampleCall&) = delete;

  kernels::Ring ring;
  kernels::ReplayConfig config;
  int64_t* draws = nullptr;
  int64_t seed = 0, call = 0, count = 0;
  Pointers data;
  RowBytes bytes, strides;
  kernels::Columns cols;
  std::vector<int64_t> episode_rows;
  const int64_t* given = nullptr;  // the rows given, or drawn in episode mode; null otherwise
  std::vector<at::Tensor> made;    // the outputs it allocated (none when they were given)
  at::TensorList outputs;          // every output, in sample_output order: `made` or the caller's
  Pointers field_data, next_data;

  const at::Tensor& index() const { return outputs[0]; }
  const at::Tensor& weight() const { return outputs[2]; }
  const at::Tensor& reward() const { return outputs[3]; }

  template <typename T>
  kernels::SampleOut<T> out() const {
    const size_t last = outputs.size() - 2;
    return {outputs[0].mutable_data_ptr<int64_t>(),
            outputs[1].mutable_data_ptr<int64_t>(),
            outputs[2].mutable_data_ptr<float>(),
            outputs[5].mutable_data_ptr<int64_t>(),
            outputs[6].mutable_data_ptr<int64_t>(),
            outputs[3].mutable_data_ptr<T>(),
            outputs[4].mutable_data_ptr<T>(),
            field_data.data(),
            next_data.data(),
            outputs[last].mutable_data_ptr<int64_t>(),
            outputs[last + 1].mutable_data_ptr<bool>()};
  }
};

// Where a sample's outputs come from: one allocation each (the dispatcher's op), views of one
// allocation (a fresh batch of the direct route), or tensors the caller gives (a reused batch,
// each checked: dtype, shape, device, contiguous).
enum class SampleOutputs { kSeparate, kOneBlock, kGiven };

// `given` (kGiven) in sample_output order: index, generation, weight, reward, discount, boot,
// her_row, fields..., next_obs..., k, terminated (the schema's outputs, flattened).
void prepare_sample(SampleCall& s, const char* op, at::TensorList state, at::TensorList columns,
                    int64_t batch_size, const std::optional<at::Tensor>& rows,
                    at::ArrayRef<double> config, SampleOutputs outputs = SampleOutputs::kSeparate,
                    at::TensorList given = {});

// Reports a bad row (`bad` >= 0) or advances the draw counter.
void finish_sample(SampleCall& s, const char* op, int64_t bad);

// The outputs as the schema returns them (copies: not for given outputs, see SampleCall).
SampleResult sample_result(const SampleCall& s);

SampleResult replay_sample_cpu(at::TensorList state, at::TensorList columns, int64_t batch_size,
                               const std::optional<at::Tensor>& rows, at::ArrayRef<double> config);

// The direct route's sample: into `out` (a reused batch, in sample_output order; returns
// nothing), or, with `out` empty, into views of one new allocation, returned in that order.
std::vector<at::Tensor> replay_sample_into_cpu(at::TensorList state, at::TensorList columns,
                                               int64_t batch_size, at::ArrayRef<double> config,
                                               at::TensorList out);

inline constexpr const char* kTreeUpdateSchema =
    "tree_update(Tensor(a!) sum_tree, Tensor(b!) min_tree, int capacity, Tensor index, "
    "Tensor leaf) -> ()";

inline constexpr const char* kTreeSampleSchema =
    "tree_sample(Tensor sum_tree, Tensor min_tree, int capacity, Tensor uniform, float beta, "
    "bool batch_max) -> (Tensor index, Tensor weight)";

// The exposed tree ops: their checks and outputs, with `run` (or `draw`, then `weigh`) on the
// checked arguments, which are the kernel bodies themselves (the CPU loops, or the grid runner).
void tree_update_with(const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
                      const at::Tensor& index, const at::Tensor& leaf,
                      c10::function_ref<void(const kernels::UpdateLeavesBody&)> run);

std::tuple<at::Tensor, at::Tensor> tree_sample_with(
    const at::Tensor& sum_tree, const at::Tensor& min_tree, int64_t capacity,
    const at::Tensor& uniform, double beta, bool batch_max,
    c10::function_ref<void(const kernels::TreeDrawBody&)> draw,
    c10::function_ref<void(const kernels::TreeWeightsBody&, bool batch_max)> weigh);

inline constexpr const char* kUpdatePrioritiesSchema =
    "replay_update_priorities(Tensor(a!)[] state, Tensor index, Tensor generation, "
    "Tensor td_abs, float[] config, Tensor(b!) applied) -> ()";

// A priority update's inputs, checked (nothing changes when a check fails): every backend's
// update starts here (the CPU loop, the CPU grid runner of the CUDA phases).
// The checked arguments of a priority update, as data pointers. The caller's tensors are only
// read, not copied (a copy of a tensor Python made takes the GIL, and the update runs holding the
// buffer's mutex); a strided one is copied into `contiguous`.
struct UpdateArgs {
  kernels::Ring ring;
  kernels::ReplayConfig config;
  const int64_t* rows = nullptr;
  const int64_t* generations = nullptr;
  const void* td = nullptr;  // td_type values [count, heads]
  at::ScalarType td_type = at::kFloat;
  at::Tensor contiguous[3];
  int64_t count = 0, heads = 1;

  template <typename T>
  const T* td_values() const {
    return static_cast<const T*>(td);
  }
};

UpdateArgs update_args(const char* op, at::TensorList state, const at::Tensor& index,
                       const at::Tensor& generation, const at::Tensor& td_abs,
                       at::ArrayRef<double> config, const at::Tensor& applied);

void replay_update_priorities_cpu(at::TensorList state, const at::Tensor& index,
                                  const at::Tensor& generation, const at::Tensor& td_abs,
                                  at::ArrayRef<double> config, const at::Tensor& applied);

at::Tensor replay_check_cpu(at::TensorList state);

void replay_rebuild_cpu(at::TensorList state, double alpha);

}  // namespace pyrl
