// Test-only: the CPU grid runner as a torch library of its own, `pyrl_grid`, with the schemas of
// the pyrl ops that have CUDA kernel bodies. Each op checks and prepares its inputs exactly as
// the pyrl op does, then runs the op's kernel body over every thread index of the launch the CUDA
// backend would make (csrc/kernels/grid.h), in launch order or shuffled. tests/test_grid.py
// compares the results with the CPU ops, bit for bit.
#include <torch/library.h>

#include <atomic>
#include <cstdint>

#include "../kernels/grid.h"
#include "returns.h"

namespace pyrl {
namespace {

// 0: every launch runs its threads in order; otherwise the seed of their shuffled order.
std::atomic<uint64_t> grid_shuffle{0};

struct GridRun {
  explicit GridRun(const at::Tensor&) {}

  template <typename Body>
  void operator()(const Body& body) const {
    kernels::run_grid(body, grid_shuffle.load());
  }
};

void set_shuffle(int64_t seed) { grid_shuffle.store(static_cast<uint64_t>(seed)); }

}  // namespace

TORCH_LIBRARY(pyrl_grid, m) {
  for (const char* schema : returns_ops::kSchemas) m.def(schema);
  m.def("set_shuffle(int seed) -> ()");
}

TORCH_LIBRARY_IMPL(pyrl_grid, CPU, m) { returns_ops::register_impls<GridRun>(m); }

TORCH_LIBRARY_IMPL(pyrl_grid, CompositeExplicitAutograd, m) { m.impl("set_shuffle", &set_shuffle); }

}  // namespace pyrl
