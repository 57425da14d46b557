// CUDA kernels for the returns family, on the same PYRL_HD math as the CPU scans.
// Backward recurrences: one thread per column walks time backwards; consecutive threads read
// consecutive columns of a row, so every step's loads are coalesced.
// Window ops: one thread per (t, env) window start.
#include "returns.h"

namespace pyrl::cuda {
namespace {

using kernels::acc_t;
constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t work) {
  return static_cast<unsigned>((work + kThreads - 1) / kThreads);
}

template <typename T>
__global__ void gae_kernel(kernels::RolloutArgs<T> a, T* advantage, T* value_target) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= a.columns) return;
  const acc_t gamma_lmbda = a.gamma * a.lmbda;
  acc_t carry = 0;
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const int64_t i = t * a.columns + c;
    const bool ends = t == a.steps - 1 || a.terminated[i] || a.truncated[i];
    carry = kernels::gae_step<acc_t, bool>(a.reward[i], a.value[i], a.next_value[i], a.terminated[i] != 0,
                              ends, a.gamma, gamma_lmbda, carry);
    advantage[i] = T(carry);
    value_target[i] = T(carry + acc_t(a.value[i]));
  }
}

template <typename T>
__global__ void discounted_return_kernel(kernels::RolloutArgs<T> a, T* out) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= a.columns) return;
  acc_t carry = 0;
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const int64_t i = t * a.columns + c;
    const bool ends = t == a.steps - 1 || a.terminated[i] || a.truncated[i];
    carry = kernels::discounted_step<acc_t, bool>(a.reward[i], a.next_value[i], a.terminated[i] != 0, ends,
                                     a.gamma, carry);
    out[i] = T(carry);
  }
}

template <typename T>
__global__ void lambda_return_kernel(kernels::RolloutArgs<T> a, T* out) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= a.columns) return;
  acc_t carry = 0;
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const int64_t i = t * a.columns + c;
    const bool ends = t == a.steps - 1 || a.terminated[i] || a.truncated[i];
    carry = kernels::lambda_step<acc_t, bool>(a.reward[i], a.next_value[i], a.terminated[i] != 0, ends,
                                 a.gamma, a.lmbda, carry);
    out[i] = T(carry);
  }
}

template <typename T>
__global__ void nstep_return_kernel(kernels::WindowArgs<T> a, T* ret, T* discount,
                                    int64_t* boot) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.steps * a.envs) return;
  const int64_t t = i / a.envs;
  const int64_t k = a.uniform ? kernels::floating_k(acc_t(a.uniform[i]), a.n) : a.n;
  const auto w = kernels::episode_window(a.terminated + i, a.truncated + i, a.envs, a.steps - t, k);
  for (int64_t h = 0; h < a.heads; ++h) {
    ret[i * a.heads + h] =
        T(kernels::window_return(a.reward + i * a.heads + h, a.envs * a.heads, w.length, a.gamma));
  }
  discount[i] = w.terminal ? T(0) : T(kernels::power(a.gamma, w.length));
  boot[i] = t + w.length - 1;
}

template <typename T>
__global__ void nstep_gae_kernel(kernels::WindowArgs<T> a, T* credit, T* discount,
                                 int64_t* boot) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.steps * a.envs) return;
  const int64_t t = i / a.envs;
  const acc_t gamma_lmbda = a.gamma * a.lmbda;
  const int64_t k = a.uniform ? kernels::floating_k(acc_t(a.uniform[i]), a.n) : a.n;
  const auto w = kernels::episode_window(a.terminated + i, a.truncated + i, a.envs, a.steps - t, k);
  const acc_t d = a.gamma * kernels::power(gamma_lmbda, w.length - 1);
  for (int64_t h = 0; h < a.heads; ++h) {
    const int64_t j = i * a.heads + h;
    credit[j] = T(kernels::window_gae_credit(a.reward + j, a.value + j, a.next_value + j,
                                             a.envs * a.heads, w, a.gamma, gamma_lmbda, d));
  }
  discount[i] = w.terminal ? T(0) : T(d);
  boot[i] = t + w.length - 1;
}

// V-trace: one thread per column walks time backwards with d_{t+1} and vs_{t+1}.
template <typename T>
__global__ void vtrace_kernel(kernels::OffPolicyArgs<T> a, T* vs, T* pg_advantage) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= a.columns) return;
  acc_t carry = 0, next_vs = 0;
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const int64_t i = t * a.columns + c;
    const bool term = a.terminated[i] != 0;
    const bool ends = t == a.steps - 1 || term || a.truncated[i];
    const acc_t ratio = ::exp(acc_t(a.log_rho[i]));
    const acc_t rho = kernels::clip(ratio, a.rho_bar);
    const acc_t cc = a.lmbda * kernels::clip(ratio, a.c_bar);
    const acc_t v = a.value[i], nv = a.next_value[i], r = a.reward[i];
    const acc_t d = kernels::vtrace_diff<acc_t, bool>(r, v, nv, term, ends, rho, cc, a.gamma, carry);
    pg_advantage[i] = T(kernels::vtrace_pg<acc_t, bool>(r, v, nv, next_vs, term, ends, rho, a.gamma));
    vs[i] = T(v + d);
    carry = d;
    next_vs = v + d;
  }
}

// Retrace: one thread per column, carrying G_{t+1} - q_{t+1} and the trace of step t + 1.
template <typename T>
__global__ void retrace_kernel(kernels::OffPolicyArgs<T> a, T* target) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= a.columns) return;
  acc_t carry = 0, next_ratio = 0;
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const int64_t i = t * a.columns + c;
    const bool term = a.terminated[i] != 0;
    const bool ends = t == a.steps - 1 || term || a.truncated[i];
    const acc_t next_c = a.lmbda * kernels::clip(next_ratio, acc_t(1));
    const acc_t g = kernels::retrace_step<acc_t, bool>(a.reward[i], a.next_value[i], term, ends,
                                                       next_c, a.gamma, carry);
    target[i] = T(g);
    carry = g - acc_t(a.value[i]);
    next_ratio = ::exp(acc_t(a.log_rho[i]));
  }
}

}  // namespace

template <typename T>
cudaError_t vtrace(const kernels::OffPolicyArgs<T>& a, T* vs, T* pg_advantage,
                   cudaStream_t stream) {
  if (a.columns == 0 || a.steps == 0) return cudaSuccess;
  vtrace_kernel<T><<<blocks_for(a.columns), kThreads, 0, stream>>>(a, vs, pg_advantage);
  return cudaGetLastError();
}

template <typename T>
cudaError_t retrace(const kernels::OffPolicyArgs<T>& a, T* target, cudaStream_t stream) {
  if (a.columns == 0 || a.steps == 0) return cudaSuccess;
  retrace_kernel<T><<<blocks_for(a.columns), kThreads, 0, stream>>>(a, target);
  return cudaGetLastError();
}

template <typename T>
cudaError_t gae(const kernels::RolloutArgs<T>& a, T* advantage, T* value_target,
                cudaStream_t stream) {
  if (a.columns == 0 || a.steps == 0) return cudaSuccess;
  gae_kernel<T><<<blocks_for(a.columns), kThreads, 0, stream>>>(a, advantage, value_target);
  return cudaGetLastError();
}

template <typename T>
cudaError_t discounted_return(const kernels::RolloutArgs<T>& a, T* out, cudaStream_t stream) {
  if (a.columns == 0 || a.steps == 0) return cudaSuccess;
  discounted_return_kernel<T><<<blocks_for(a.columns), kThreads, 0, stream>>>(a, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t lambda_return(const kernels::RolloutArgs<T>& a, T* out, cudaStream_t stream) {
  if (a.columns == 0 || a.steps == 0) return cudaSuccess;
  lambda_return_kernel<T><<<blocks_for(a.columns), kThreads, 0, stream>>>(a, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t nstep_return(const kernels::WindowArgs<T>& a, T* ret, T* discount, int64_t* boot,
                         cudaStream_t stream) {
  const int64_t windows = a.steps * a.envs;
  if (windows == 0) return cudaSuccess;
  nstep_return_kernel<T><<<blocks_for(windows), kThreads, 0, stream>>>(a, ret, discount, boot);
  return cudaGetLastError();
}

template <typename T>
cudaError_t nstep_gae(const kernels::WindowArgs<T>& a, T* credit, T* discount, int64_t* boot,
                      cudaStream_t stream) {
  const int64_t windows = a.steps * a.envs;
  if (windows == 0) return cudaSuccess;
  nstep_gae_kernel<T><<<blocks_for(windows), kThreads, 0, stream>>>(a, credit, discount, boot);
  return cudaGetLastError();
}

#define PYRL_INSTANTIATE(T)                                                                    \
  template cudaError_t gae<T>(const kernels::RolloutArgs<T>&, T*, T*, cudaStream_t);           \
  template cudaError_t discounted_return<T>(const kernels::RolloutArgs<T>&, T*, cudaStream_t); \
  template cudaError_t lambda_return<T>(const kernels::RolloutArgs<T>&, T*, cudaStream_t);     \
  template cudaError_t nstep_return<T>(const kernels::WindowArgs<T>&, T*, T*, int64_t*,        \
                                       cudaStream_t);                                          \
  template cudaError_t nstep_gae<T>(const kernels::WindowArgs<T>&, T*, T*, int64_t*, cudaStream_t); \
  template cudaError_t vtrace<T>(const kernels::OffPolicyArgs<T>&, T*, T*, cudaStream_t);       \
  template cudaError_t retrace<T>(const kernels::OffPolicyArgs<T>&, T*, cudaStream_t);
PYRL_INSTANTIATE(float)
PYRL_INSTANTIATE(double)
#undef PYRL_INSTANTIATE

}  // namespace pyrl::cuda
