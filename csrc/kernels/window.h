#pragma once
// The n-step window math that the returns ops (returns.h) and the replay sample (replay.h) share
// (SPEC 3.2): the floating lookahead k, gamma^k, and the discounted sum over a window.
//
//   k      = n, or 1 + floor(u n) for a floating window (u uniform in [0, 1))
//   R      = sum_{l<k_eff} gamma^l r_{t+l}       (a direct loop: no gamma^-t prefix sums)
//   D      = gamma^k_eff, or 0 when the window's last step is a true terminal
#include <cstdint>

#include "macros.h"

// Included by sources compiled once per instruction set (see returns.h): the inline namespace
// gives each copy of the inline math its own symbols.
#ifndef PYRL_CPU_ISA
#define PYRL_CPU_ISA baseline
#endif

namespace pyrl::kernels {

// Every recurrence accumulates in float64 whatever the storage dtype, so float32 results stay
// within 1e-6 of float64 ones at long horizons and CPU and CUDA agree (SPEC 8.3).
using acc_t = double;

inline namespace PYRL_CPU_ISA {

// A window of `length` steps; `terminal`: its last step is a true terminal (no bootstrap).
struct Window {
  int64_t length;
  bool terminal;
};

// k drawn from a uniform u in [0, 1): uniform on {1..n}; clamped because u * n can round up to n.
PYRL_HD inline int64_t floating_k(acc_t u, int64_t n) {
  const int64_t k = 1 + static_cast<int64_t>(u * static_cast<acc_t>(n));
  return k < 1 ? 1 : (k > n ? n : k);
}

// gamma^length by repeated multiplication, the same on every backend.
PYRL_HD inline acc_t power(acc_t base, int64_t exponent) {
  acc_t result = 1;
  for (int64_t l = 0; l < exponent; ++l) result *= base;
  return result;
}

// A discounted sum in progress, so a window split in pieces (a ring's wrap-around) adds up
// exactly as one loop would.
struct WindowSum {
  acc_t sum = 0;
  acc_t discount = 1;
};

// Adds sum_{l<length} discount gamma^l x[l * stride] to `acc`.
template <typename T>
PYRL_HD inline void window_accumulate(WindowSum& acc, const T* x, int64_t stride, int64_t length,
                                      acc_t gamma) {
  for (int64_t l = 0; l < length; ++l) {
    acc.sum += acc.discount * acc_t(x[l * stride]);
    acc.discount *= gamma;
  }
}

// sum_{l<length} gamma^l x[l * stride]: the discounted reward of one window, one head.
template <typename T>
PYRL_HD inline acc_t window_return(const T* x, int64_t stride, int64_t length, acc_t gamma) {
  WindowSum acc;
  window_accumulate(acc, x, stride, length, gamma);
  return acc.sum;
}

}  // namespace PYRL_CPU_ISA
}  // namespace pyrl::kernels
