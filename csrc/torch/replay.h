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

namespace kernels {
struct Ring;
struct ReplayConfig;
}

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

using SampleResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                at::Tensor, at::Tensor, std::vector<at::Tensor>,
                                std::vector<at::Tensor>, at::Tensor, at::Tensor>;

// The add op's work (the op returns its count as a 0-d tensor): the pieces committed because a
// stage filled up.
int64_t replay_add_steps(at::TensorList state, at::TensorList columns, at::TensorList stage,
                       at::TensorList step, at::TensorList final_obs,
                       const at::Tensor& terminated, const at::Tensor& truncated,
                       at::ArrayRef<double> config, const std::optional<at::Tensor>& skip);

// replay_add_cpu's state checks and kernel call, for steps of `envs` environments already
// checked against the columns (ReplayHost's numpy path: raw pointers into the caller's arrays,
// no tensors made). Returns the pieces committed because a stage filled up.
int64_t replay_add_rows(at::TensorList state, at::TensorList columns, at::TensorList stage,
                        int64_t envs, const uint8_t* const* step, const uint8_t* const* final_obs,
                        const bool* terminated, const bool* truncated, const bool* skip,
                        at::ArrayRef<double> config);

// The end_episodes op's work: stores the running episodes, returns how many.
int64_t replay_end_running(at::TensorList state, at::TensorList columns, at::TensorList stage,
                           at::ArrayRef<double> config);

void replay_add_episode_cpu(at::TensorList state, at::TensorList columns, at::TensorList values,
                            bool terminated, at::ArrayRef<double> config,
                            const std::optional<at::Tensor>& td_abs);

SampleResult replay_sample_cpu(at::TensorList state, at::TensorList columns, int64_t batch_size,
                               const std::optional<at::Tensor>& rows, at::ArrayRef<double> config);

void replay_update_priorities_cpu(at::TensorList state, const at::Tensor& index,
                                  const at::Tensor& generation, const at::Tensor& td_abs,
                                  at::ArrayRef<double> config, const at::Tensor& applied);

at::Tensor replay_check_cpu(at::TensorList state);

void replay_rebuild_cpu(at::TensorList state, double alpha);

}  // namespace pyrl
