// pyrl._C: importing it runs the TORCH_LIBRARY registrars of csrc/torch/*.cpp (the ops live in
// torch.ops.pyrl); the pybind11 module reports how the extension was built, and binds the
// replay ops a CPU buffer calls on its hot path directly.
#include <ATen/Parallel.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>  // at::Tensor <-> torch.Tensor casters

#include "kernels/returns.h"
#include "kernels/sum_tree.h"
#include "torch/replay.h"

namespace py = pybind11;

namespace {

py::dict build_info() {
  py::dict info;
  info["torch_version"] = PYRL_TORCH_VERSION;
  info["compiler"] = std::string(PYRL_COMPILER_ID) + " " + __VERSION__;
  info["cxx_standard"] = static_cast<long>(__cplusplus);
#if defined(_OPENMP)
  info["openmp"] = true;
#else
  info["openmp"] = false;
#endif
  info["threads"] = at::get_num_threads();
  info["cpu_isa"] = pyrl::kernels::cpu_isa();
  info["parallel_backend"] = at::get_parallel_info();
#if defined(PYRL_WITH_CUDA)
  info["cuda"] = true;
#else
  info["cuda"] = false;
#endif
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyrl compiled extension; its ops are registered as torch.ops.pyrl.*";
  m.def("build_info", &build_info,
        "How this extension was built: torch version, compiler, OpenMP, threads, CUDA kernels.");
  m.def(
      "tree_size", [](int64_t capacity) { return pyrl::kernels::tree_layout(capacity).size; },
      py::arg("capacity"), "Length of the flat sum (or min) tree over `capacity` leaves.");
  m.def(
      "tree_leaf_offset",
      [](int64_t capacity) { return pyrl::kernels::tree_layout(capacity).leaf_offset(); },
      py::arg("capacity"), "Where the leaves start in that flat tree.");
  // The replay buffer's per-call ops without the dispatcher (see torch/replay.h).
  using Tensors = std::vector<at::Tensor>;
  const auto release = py::call_guard<py::gil_scoped_release>();
  m.def(
      "replay_add_cpu",
      [](const at::Tensor& row_episode, const at::Tensor& episodes, const at::Tensor& counters,
         const at::Tensor& sum_tree, const at::Tensor& min_tree, const at::Tensor& max_priority,
         const Tensors& columns, const Tensors& stage, const at::Tensor& stage_length,
         const Tensors& step, const Tensors& final_obs, const at::Tensor& terminated,
         const at::Tensor& truncated, double alpha) {
        pyrl::replay_add_cpu(row_episode, episodes, counters, sum_tree, min_tree, max_priority,
                             columns, stage, stage_length, step, final_obs, terminated, truncated,
                             alpha);
      },
      release);
  m.def(
      "replay_sample_cpu",
      [](const at::Tensor& row_episode, const at::Tensor& episodes, const at::Tensor& counters,
         const at::Tensor& sum_tree, const at::Tensor& min_tree, const at::Tensor& reward,
         const Tensors& columns, int64_t obs_columns, const std::optional<at::Tensor>& uniform,
         const std::optional<at::Tensor>& rows, const std::optional<at::Tensor>& floating_uniform,
         int64_t n, double gamma, double beta, bool batch_max,
         const std::optional<at::Tensor>& her_uniform, int64_t her_strategy, double her_ratio,
         int64_t achieved_goal, int64_t desired_goal, int64_t her_reward,
         const std::vector<double>& her_params) {
        return pyrl::replay_sample_cpu(row_episode, episodes, counters, sum_tree, min_tree, reward,
                                       columns, obs_columns, uniform, rows, floating_uniform, n,
                                       gamma, beta, batch_max, her_uniform, her_strategy,
                                       her_ratio, achieved_goal, desired_goal, her_reward,
                                       her_params);
      },
      release);
  m.def("replay_update_priorities_cpu", &pyrl::replay_update_priorities_cpu, release);
}
