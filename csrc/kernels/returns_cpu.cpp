// CPU scans for the returns family (math in returns.h).
//
// The backward recurrences run time-outer, columns-inner: each time step reads a contiguous slice
// of every input row, and the float64 carries of a block of columns sit in a small stack array, so
// the inner loop vectorises across columns. Blocks keep that array in L1.
#include <algorithm>

#include "returns.h"

namespace pyrl::kernels {
namespace {

constexpr int64_t kBlock = 256;

// Runs a backward scan over columns [begin, end) in blocks. `step(i, c, ends, carry)` computes row
// t's element at flat index i (column c of the block) from the carry of row t + 1 and stores it.
template <typename Step>
inline void backward_scan(int64_t steps, int64_t columns, const uint8_t* terminated,
                          const uint8_t* truncated, int64_t begin, int64_t end, Step step) {
  acc_t carry[kBlock];
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t width = std::min(kBlock, end - block);
    std::fill(carry, carry + width, acc_t(0));
    for (int64_t t = steps - 1; t >= 0; --t) {
      const bool last = t == steps - 1;
      const int64_t row = t * columns + block;
      for (int64_t c = 0; c < width; ++c) {
        const bool ends = last | (terminated[row + c] != 0) | (truncated[row + c] != 0);
        carry[c] = step(row + c, ends, carry[c]);
      }
    }
  }
}

}  // namespace

template <typename T>
void gae_cpu(const RolloutArgs<T>& a, T* advantage, T* value_target, int64_t begin, int64_t end) {
  const acc_t gamma_lmbda = a.gamma * a.lmbda;
  backward_scan(a.steps, a.columns, a.terminated, a.truncated, begin, end,
                [&](int64_t i, bool ends, acc_t next) {
                  const acc_t adv = gae_step(a.reward[i], a.value[i], a.next_value[i],
                                             a.terminated[i] != 0, ends, a.gamma, gamma_lmbda, next);
                  advantage[i] = T(adv);
                  value_target[i] = T(adv + acc_t(a.value[i]));
                  return adv;
                });
}

template <typename T>
void discounted_return_cpu(const RolloutArgs<T>& a, T* out, int64_t begin, int64_t end) {
  backward_scan(a.steps, a.columns, a.terminated, a.truncated, begin, end,
                [&](int64_t i, bool ends, acc_t next) {
                  const acc_t g = discounted_step(a.reward[i], a.next_value[i],
                                                  a.terminated[i] != 0, ends, a.gamma, next);
                  out[i] = T(g);
                  return g;
                });
}

template <typename T>
void lambda_return_cpu(const RolloutArgs<T>& a, T* out, int64_t begin, int64_t end) {
  backward_scan(a.steps, a.columns, a.terminated, a.truncated, begin, end,
                [&](int64_t i, bool ends, acc_t next) {
                  const acc_t g = lambda_step(a.reward[i], a.next_value[i], a.terminated[i] != 0,
                                              ends, a.gamma, a.lmbda, next);
                  out[i] = T(g);
                  return g;
                });
}

template <typename T>
void nstep_return_cpu(const WindowArgs<T>& a, T* ret, T* discount, int64_t* boot, int64_t begin,
                      int64_t end) {
  const int64_t stride = a.envs * a.heads;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t t = i / a.envs;
    const int64_t k = a.uniform ? floating_k(acc_t(a.uniform[i]), a.n) : a.n;
    const Window w = episode_window(a.terminated + i, a.truncated + i, a.envs, a.steps - t, k);
    for (int64_t h = 0; h < a.heads; ++h) {
      ret[i * a.heads + h] = T(window_return(a.reward + i * a.heads + h, stride, w.length, a.gamma));
    }
    discount[i] = w.terminal ? T(0) : T(power(a.gamma, w.length));
    boot[i] = t + w.length - 1;
  }
}

template <typename T>
void nstep_gae_cpu(const WindowArgs<T>& a, T* credit, T* discount, int64_t* boot, int64_t begin,
                   int64_t end) {
  const int64_t stride = a.envs * a.heads;
  const acc_t gamma_lmbda = a.gamma * a.lmbda;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t t = i / a.envs;
    const int64_t k = a.uniform ? floating_k(acc_t(a.uniform[i]), a.n) : a.n;
    const Window w = episode_window(a.terminated + i, a.truncated + i, a.envs, a.steps - t, k);
    const acc_t d = a.gamma * power(gamma_lmbda, w.length - 1);
    for (int64_t h = 0; h < a.heads; ++h) {
      const int64_t j = i * a.heads + h;
      credit[j] = T(window_gae_credit(a.reward + j, a.value + j, a.next_value + j, stride, w,
                                      a.gamma, gamma_lmbda, d));
    }
    discount[i] = w.terminal ? T(0) : T(d);
    boot[i] = t + w.length - 1;
  }
}

#define PYRL_INSTANTIATE(T)                                                                     \
  template void gae_cpu<T>(const RolloutArgs<T>&, T*, T*, int64_t, int64_t);                    \
  template void discounted_return_cpu<T>(const RolloutArgs<T>&, T*, int64_t, int64_t);          \
  template void lambda_return_cpu<T>(const RolloutArgs<T>&, T*, int64_t, int64_t);              \
  template void nstep_return_cpu<T>(const WindowArgs<T>&, T*, T*, int64_t*, int64_t, int64_t);  \
  template void nstep_gae_cpu<T>(const WindowArgs<T>&, T*, T*, int64_t*, int64_t, int64_t);
PYRL_INSTANTIATE(float)
PYRL_INSTANTIATE(double)
#undef PYRL_INSTANTIATE

}  // namespace pyrl::kernels
