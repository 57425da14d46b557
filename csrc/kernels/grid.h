#pragma once
// How a kernel body (a struct with `threads()` and a PYRL_HD `operator()(thread)`) is launched:
// blocks of kBlockThreads threads, the last block's extra threads doing nothing. The CUDA
// launchers (csrc/cuda/launch.cuh) and the CPU grid runner below share this, so the runner
// executes exactly the thread indices a launch would.
//
// The grid runner is test-only: it runs every thread of every block on the CPU, in order, or in
// an order shuffled by a seed. A body whose result depends on the order its threads run in would
// race on the GPU; the tests compare both orders with the CPU op, bit for bit.
#include <cstdint>
#include <numeric>
#include <vector>

#include "draws.h"
#include "macros.h"

namespace pyrl::kernels {

constexpr int64_t kBlockThreads = 256;

PYRL_HD inline int64_t blocks_for(int64_t threads) {
  return (threads + kBlockThreads - 1) / kBlockThreads;
}

template <typename Body>
PYRL_HD inline void run_thread(const Body& body, int64_t thread) {
  if (thread < body.threads()) body(thread);
}

// Runs `body` as its launch would, every thread index of every block; shuffle 0 keeps the launch
// order, any other value draws a permutation of all the grid's thread indices from it.
template <typename Body>
void run_grid(const Body& body, uint64_t shuffle) {
  const int64_t threads = blocks_for(body.threads()) * kBlockThreads;
  std::vector<int64_t> order(static_cast<size_t>(threads));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = threads - 1; shuffle != 0 && i > 0; --i) {  // Fisher-Yates
    const uint64_t draw = mix64(shuffle ^ mix64(static_cast<uint64_t>(i)));
    std::swap(order[i], order[draw % static_cast<uint64_t>(i + 1)]);
  }
  for (const int64_t thread : order) run_thread(body, thread);
}

}  // namespace pyrl::kernels
