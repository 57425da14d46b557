// pyrl._C: importing it runs the TORCH_LIBRARY registrars of csrc/torch/*.cpp (the ops live in
// torch.ops.pyrl); the pybind11 module reports how the extension was built, exports the replay
// layout that Python reads instead of restating it, and binds ReplayHost, through which a CPU
// buffer calls its replay ops directly (the same functions the dispatcher runs; see
// torch/replay.h).
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>  // at::Tensor <-> torch.Tensor casters

#include "kernels/draws.h"
#include "kernels/replay.h"
#include "kernels/returns.h"

namespace py = pybind11;

namespace pyrl {
void bind_replay_host(py::module_& m);   // replay_host.cpp
void bind_returns_host(py::module_& m);  // returns_host.cpp
}  // namespace pyrl

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
  info["cuda_architectures"] = PYRL_CUDA_ARCHITECTURES;  // CMake's spelling: 80-real = sm_80 only
  info["cuda_compiler"] = PYRL_CUDA_VERSION;
#else
  info["cuda"] = false;
#endif
  return info;
}

// The replay layout, from the enums of csrc/kernels: {group: {name: slot}} plus sizes. Each
// name is paired with its enum value here, so a reordered enum cannot shift the names.
py::dict layout() {
  using namespace pyrl::kernels;
  using Slots = std::initializer_list<std::pair<const char*, int64_t>>;
  auto dict = [](Slots slots) {
    py::dict out;
    for (const auto& [name, slot] : slots) out[name] = slot;
    return out;
  };
  py::dict out;
  out["state"] = dict({{"row_episode", kStateRowEpisode},
                       {"episodes", kStateEpisodes},
                       {"counters", kStateCounters},
                       {"sum_tree", kStateSumTree},
                       {"min_tree", kStateMinTree},
                       {"max_priority", kStateMaxPriority},
                       {"draws", kStateDraws},
                       {"stage_length", kStateStageLength}});
  out["draws"] = dict({{"seed", kDrawSeed}, {"calls", kDrawCalls}});
  out["counters"] = dict({{"cursor", kCursor},
                          {"next_episode", kNextEpisode},
                          {"oldest_episode", kOldestEpisode},
                          {"transitions", kTransitions},
                          {"terminated_episodes", kTerminatedEpisodes},
                          {"updates_applied", kUpdatesApplied},
                          {"updates_dropped", kUpdatesDropped}});
  out["episode_fields"] = dict(
      {{"start", kEpisodeStart}, {"length", kEpisodeLength}, {"terminated", kEpisodeTerminated}});
  py::dict config;
  for (int i = 0; i < kConfigSlots; ++i) config[kConfigNames[i]] = i;
  out["config"] = config;
  out["her_strategies"] = dict({{"future", kHerFuture},
                                {"final", kHerFinal},
                                {"episode", kHerEpisode},
                                {"random", kHerRandom}});
  out["her_off"] = static_cast<int>(kHerOff);
  out["her_rewards"] =
      dict({{"stored", kRewardStored}, {"sparse_l2", kRewardSparseL2}, {"per_dim", kRewardPerDim}});
  out["her_max_params"] = kHerMaxParams;
  py::dict invariants;
  for (int i = 0; i < kInvariants; ++i) invariants[kInvariantNames[i]] = i;
  out["invariants"] = invariants;
  out["draw_streams"] = dict({{"row", kDrawRow},
                              {"relabel", kDrawRelabel},
                              {"goal", kDrawGoal},
                              {"lookahead", kDrawLookahead}});
  out["sizes"] = dict({{"state", kStateSlots},
                       {"counters", kRingCounters},
                       {"episode_fields", kEpisodeFields},
                       {"config", kConfigSlots}});
  out["column_order"] = "observation columns, other fields, reward (last)";
  // Each op's outputs by name, in the order its schema returns them, so Python builds a batch
  // by name and never by position (the schemas in csrc/torch/*.cpp are the one place they live).
  py::dict outputs;
  for (const auto& op : c10::Dispatcher::singleton().getAllOpNames()) {
    const std::string& name = op.name;
    if (name.rfind("pyrl::", 0) != 0 || !op.overload_name.empty()) continue;
    const auto handle = c10::Dispatcher::singleton().findSchema(op);
    if (!handle.has_value()) continue;
    py::list names;
    for (const auto& value : handle->schema().returns()) names.append(value.name());
    outputs[py::str(name.substr(6))] = py::tuple(names);
  }
  out["outputs"] = outputs;
  out["max_capacity"] = kMaxCapacity;
  return out;
}

// The helpers below size and index allocations: what comes in is checked like an op's argument.
int64_t checked_capacity(const char* helper, int64_t capacity) {
  TORCH_CHECK_VALUE(capacity >= 1 && capacity <= pyrl::kernels::kMaxCapacity, "pyrl._C.", helper,
                    ": capacity should be in [1, 2^48], got ", capacity);
  return capacity;
}

constexpr int64_t kMaxUniforms = int64_t{1} << 31;

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyrl compiled extension; its ops are registered as torch.ops.pyrl.*";
  m.def("build_info", &build_info,
        "How this extension was built: torch version, compiler, OpenMP, threads, CUDA kernels.");
  m.def("layout", &layout, "The replay layout: state, counter and config slots, codes, names.");
  m.def(
      "tree_size",
      [](int64_t capacity) {
        return pyrl::kernels::tree_layout(checked_capacity("tree_size", capacity)).size;
      },
      py::arg("capacity"), "Length of the flat sum (or min) tree over `capacity` leaves.");
  m.def(
      "tree_leaf_offset",
      [](int64_t capacity) {
        return pyrl::kernels::tree_layout(checked_capacity("tree_leaf_offset", capacity))
            .leaf_offset();
      },
      py::arg("capacity"), "Where the leaves start in that flat tree.");
  m.def(
      "episode_slots",
      [](int64_t capacity) {
        return pyrl::kernels::episode_slots(checked_capacity("episode_slots", capacity));
      },
      py::arg("capacity"), "Rows of the episode table of a buffer of `capacity` rows.");
  m.def(
      "counter_uniforms",
      [](uint64_t seed, uint64_t call, uint64_t stream, int64_t count) {
        TORCH_CHECK_VALUE(count >= 0 && count <= kMaxUniforms,
                          "pyrl._C.counter_uniforms: count should be in [0, 2^31], got ", count);
        std::vector<double> out(static_cast<size_t>(count));
        const uint64_t key = pyrl::kernels::draw_key(seed, call);
        for (size_t j = 0; j < out.size(); ++j) {
          out[j] = pyrl::kernels::counter_uniform(key, stream, j);
        }
        return out;
      },
      py::arg("seed"), py::arg("call"), py::arg("stream"), py::arg("count"),
      "The uniforms a replay sample call draws (draws.h), for episode mode and tests.");
  m.def(
      "beta_at",
      [](double beta, int64_t beta_steps, int64_t calls) {
        pyrl::kernels::ReplayConfig config;
        config.beta = beta;
        config.beta_steps = beta_steps;
        return pyrl::kernels::beta_at(config, calls);
      },
      py::arg("beta"), py::arg("beta_steps"), py::arg("calls"),
      "The IS exponent the sample ops use after `calls` sample calls (replay.h's beta_at).");
  // The replay ops' direct route for CPU buffers (replay_host.cpp).
  pyrl::bind_replay_host(m);
  // returns.gae's direct route for CPU tensors (returns_host.cpp).
  pyrl::bind_returns_host(m);
}
