#pragma once
// Returns and advantages over a time-first rollout of T steps by C columns.
//
// Layout: arrays are row-major [T, C], element (t, c) at t * C + c, so one time step of every
// column is contiguous and the CPU scans run time-outer, columns-inner (vectorised across
// columns). Episode-end flags are bytes (0 or 1):
//   terminated[t]  o_{t+1} is terminal: nothing is bootstrapped past step t;
//   truncated[t]   the episode was cut after step t: bootstrap from next_value[t], which holds
//                  V(final observation), not the value of the reset observation.
// The rollout's last step is cut by the collector, so it is treated as truncated.
//
//   GAE         delta_t = r_t + gamma * nv_t - v_t   (nv_t = 0 if terminated_t, else next_value_t)
//               A_t     = delta_t + gamma * lmbda * A_{t+1}   (carry 0 where the episode ends)
//               ret_t   = A_t + v_t
//   discounted  G_t = r_t + gamma * (terminated_t ? 0 : ends_t ? nv_t : G_{t+1})
//   lambda      G_t = r_t + gamma * (terminated_t ? 0 : ends_t ? nv_t : M_t)
//                 M_t = (1 - lmbda) nv_t + lmbda G_{t+1}
//   n-step      k_eff = k clipped at the episode (or rollout) end;  boot = t + k_eff - 1
//               R_t = sum_{l<k_eff} gamma^l r_{t+l}
//               D_t = gamma^k_eff, or 0 if the window ends terminal
//   n-step GAE  C_t = sum_{l<k_eff} (gamma lmbda)^l delta_{t+l} + v_t - D_t * nv_boot
//               D_t = gamma (gamma lmbda)^(k_eff - 1), or 0 if terminal   (SPEC 4.2)
// A target is then y_t = R_t + D_t * next_value[boot_t] (or C_t + D_t * Q(...)).
//
// gamma and lmbda are scalars, or per step and env (TorchRL's tensor gamma): gamma_t discounts
// what follows step t and lmbda_t weighs the carry from t + 1 into t, so a window's products run
// over its own steps, R_t = sum_l (prod_{i<l} gamma_{t+i}) r_{t+l}, D_t = prod_{i<k_eff}
// gamma_{t+i}, and the n-step GAE credit weighs delta_{t+l} by prod_{i<l} (gamma lmbda)_{t+i}.
#include <cmath>
#include <cstdint>

#include "macros.h"
#include "window.h"

// The CPU scans are compiled once per instruction set (see CMakeLists.txt); the inline namespace
// (PYRL_CPU_ISA, set in window.h) gives each copy of the inline math below its own symbols, so
// the linker never hands AVX2 code to a baseline caller.
namespace pyrl::kernels {

inline namespace PYRL_CPU_ISA {

// One step of each backward recurrence. A is the accumulator (acc_t, or a vector of acc_t lanes on
// the CPU) and M the episode-end condition (bool, or a lane mask); `ends` is terminated, truncated
// or the rollout's last step. G is a discount's type: acc_t, or lanes of per-step discounts.
template <typename A, typename M, typename G>
PYRL_HD inline A gae_step(A reward, A value, A next_value, M terminated, M ends, G gamma,
                          G gamma_lmbda, A next_advantage) {
  const A bootstrap = terminated ? A{} : next_value;
  const A delta = reward + gamma * bootstrap - value;
  return ends ? delta : delta + gamma_lmbda * next_advantage;
}

template <typename A, typename M, typename G>
PYRL_HD inline A discounted_step(A reward, A next_value, M terminated, M ends, G gamma,
                                 A next_return) {
  const A tail = ends ? next_value : next_return;
  return reward + gamma * (terminated ? A{} : tail);
}

template <typename A, typename M, typename G>
PYRL_HD inline A lambda_step(A reward, A next_value, M terminated, M ends, G gamma, G lmbda,
                             A next_return) {
  const A mixed = (acc_t(1) - lmbda) * next_value + lmbda * next_return;
  const A tail = ends ? next_value : mixed;
  return reward + gamma * (terminated ? A{} : tail);
}

// The window of up to k steps starting at step t: it stops after the step that ends the episode
// (terminated or truncated) or the rollout (steps_left = T - t). flags point at step t.
PYRL_HD inline Window episode_window(const uint8_t* terminated, const uint8_t* truncated,
                                     int64_t flag_stride, int64_t steps_left, int64_t k) {
  const int64_t limit = k < steps_left ? k : steps_left;
  for (int64_t l = 0; l < limit; ++l) {
    if (terminated[l * flag_stride]) return {l + 1, true};
    if (truncated[l * flag_stride]) return {l + 1, false};
  }
  return {limit, false};
}

// C of the n-step GAE credit for one window and one head; the window's last step is the only one
// that can be terminal, so bootstrap values before it are always used.
template <typename T>
PYRL_HD inline acc_t window_gae_credit(const T* reward, const T* value, const T* next_value,
                                       int64_t stride, Window window, acc_t gamma,
                                       acc_t gamma_lmbda, acc_t discount) {
  acc_t credit = 0, weight = 1;
  for (int64_t l = 0; l < window.length; ++l) {
    const bool terminal = window.terminal && l + 1 == window.length;
    const acc_t bootstrap = terminal ? acc_t(0) : acc_t(next_value[l * stride]);
    credit += weight * (acc_t(reward[l * stride]) + gamma * bootstrap - acc_t(value[l * stride]));
    weight *= gamma_lmbda;
  }
  const acc_t last_bootstrap =
      window.terminal ? acc_t(0) : acc_t(next_value[(window.length - 1) * stride]);
  return credit + acc_t(value[0]) - discount * last_bootstrap;
}

// ---- off-policy corrections ------------------------------------------------------------------
//
// V-trace (Espeholt et al. 2018, https://arxiv.org/abs/1802.01561), with
//   rho_t = min(rho_bar, exp(log_rho_t)),  c_t = lmbda min(c_bar, exp(log_rho_t)):
//   delta_t = rho_t (r_t + gamma nv_t - v_t)                       (nv_t = 0 if terminated_t)
//   d_t     = vs_t - v_t = delta_t + gamma c_t d_{t+1}            (d_{t+1} = 0 where it ends)
//   pg_t    = rho_t (r_t + gamma vhat_{t+1} - v_t)    vhat = vs_{t+1} inside an episode, nv_t at
//                                                     an end or the rollout's last step
// Retrace (Munos et al. 2016, https://arxiv.org/abs/1606.02647), c_{t+1} = lmbda min(1, rho_{t+1}):
//   G_t = r_t + gamma (nv_t + c_{t+1} (G_{t+1} - q_{t+1}))         (the trace cut where it ends;
//                                                                  G_t = r_t if terminated_t)
// nv_t is V(o_{t+1}) (V-trace) or E_pi Q(o_{t+1}, .) (Retrace), the final observation's at a cut.

// The step functions take A = acc_t (and M = bool) or CPU lanes of them, like gae_step.
template <typename A>
PYRL_HD inline A clip(A ratio, acc_t bar) {
  const A limit = A{} + bar;
  return ratio < limit ? ratio : limit;
}

// V-trace, one step back: d_t from d_{t+1}.
template <typename A, typename M, typename G>
PYRL_HD inline A vtrace_diff(A reward, A value, A next_value, M terminated, M ends, A rho, A c,
                             G gamma, A next_diff) {
  const A bootstrap = terminated ? A{} : next_value;
  const A carried = ends ? A{} : gamma * c * next_diff;
  return rho * (reward + gamma * bootstrap - value) + carried;
}

// V-trace's policy-gradient advantage; `next_vs` is vs_{t+1}, read only inside an episode.
template <typename A, typename M, typename G>
PYRL_HD inline A vtrace_pg(A reward, A value, A next_value, A next_vs, M terminated, M ends, A rho,
                           G gamma) {
  const A vhat = ends ? next_value : next_vs;
  return rho * (reward + gamma * (terminated ? A{} : vhat) - value);
}

// Retrace, one step back; `next_carry` is G_{t+1} - q_{t+1} and `next_c` the trace of step t + 1.
template <typename A, typename M, typename G>
PYRL_HD inline A retrace_step(A reward, A next_v, M terminated, M ends, A next_c, G gamma,
                              A next_carry) {
  const A trace = ends ? A{} : next_c * next_carry;
  return reward + gamma * (terminated ? A{} : next_v + trace);
}

}  // namespace PYRL_CPU_ISA

// ---- CPU entry points (returns_cpu.cpp) and their arguments. ----

// V-trace and Retrace: all arrays [T, C]; `value` holds v (V-trace) or q (Retrace), `next_value`
// nv or next_v.
template <typename T>
struct OffPolicyArgs {
  const T* log_rho;
  const T* reward;
  const T* value;
  const T* next_value;
  const uint8_t* terminated;
  const uint8_t* truncated;
  int64_t steps;
  int64_t columns;
  acc_t gamma;
  acc_t rho_bar;  // V-trace only
  acc_t c_bar;    // V-trace only; Retrace clips at 1
  acc_t lmbda;
  const T* gammas = nullptr;  // [T, C] per-step gamma and lmbda; nullptr: the scalars
  const T* lmbdas = nullptr;
};

template <typename T>
struct RolloutArgs {
  const T* reward;
  const T* value;  // GAE only
  const T* next_value;
  const uint8_t* terminated;
  const uint8_t* truncated;
  int64_t steps;    // T
  int64_t columns;  // C
  acc_t gamma;
  acc_t lmbda;
  const T* gammas = nullptr;  // [T, C] per-step gamma and lmbda; nullptr: the scalars
  const T* lmbdas = nullptr;
};

// n-step family: reward (and value / next_value) are [T, N, heads], flags and uniform are [T, N];
// work items are the T * N window starts, [begin, end) in row-major order.
template <typename T>
struct WindowArgs {
  const T* reward;
  const T* value;       // n-step GAE only
  const T* next_value;  // n-step GAE only
  const uint8_t* terminated;
  const uint8_t* truncated;
  const T* uniform;  // nullptr: k = n for every window
  int64_t steps;     // T
  int64_t envs;      // N
  int64_t heads;     // m (1 for [T, N] rewards)
  int64_t n;
  acc_t gamma;
  acc_t lmbda;
  const T* gammas = nullptr;  // [T, N] per-step gamma and lmbda; nullptr: the scalars
  const T* lmbdas = nullptr;
};

// gamma and lmbda at element i of the args' per-step layout.
template <typename Args>
PYRL_HD inline acc_t gamma_at(const Args& in, int64_t i) {
  return in.gammas != nullptr ? acc_t(in.gammas[i]) : in.gamma;
}
template <typename Args>
PYRL_HD inline acc_t lmbda_at(const Args& in, int64_t i) {
  return in.lmbdas != nullptr ? acc_t(in.lmbdas[i]) : in.lmbda;
}

// ---- kernel bodies ------------------------------------------------------------------------
//
// One work item per thread: a column for the backward recurrences, a window start for the window
// ops. `threads()` is the number of work items and `operator()(i)` does item i, touching only its
// own outputs, so items run in any order. The CUDA launchers (csrc/cuda/returns.cu) run one per
// GPU thread; the CPU grid runner (grid.h) runs every thread index of the same launch, in order
// and shuffled, for the tests; the CPU window ops run them in a loop. The CPU recurrences keep
// their vectorised scans (returns_cpu.cpp); the grid tests tie the two, bit for bit.

inline namespace PYRL_CPU_ISA {

template <typename T>
struct GaeBody {
  RolloutArgs<T> in;
  T* advantage;
  T* value_target;

  PYRL_HD int64_t threads() const { return in.columns; }
  PYRL_HD void operator()(int64_t c) const {
    acc_t carry = 0;
    for (int64_t t = in.steps - 1; t >= 0; --t) {
      const int64_t i = t * in.columns + c;
      const bool term = in.terminated[i] != 0;
      const bool ends = term || in.truncated[i] != 0 || t == in.steps - 1;
      const acc_t v = in.value[i], gamma = gamma_at(in, i);
      carry = gae_step<acc_t, bool>(in.reward[i], v, in.next_value[i], term, ends, gamma,
                                    gamma * lmbda_at(in, i), carry);
      advantage[i] = T(carry);
      value_target[i] = T(carry + v);
    }
  }
};

// discounted_return (lambda_form false) and lambda_return (true).
template <typename T>
struct ReturnBody {
  RolloutArgs<T> in;
  T* out;
  bool lambda_form;

  PYRL_HD int64_t threads() const { return in.columns; }
  PYRL_HD void operator()(int64_t c) const {
    acc_t carry = 0;
    for (int64_t t = in.steps - 1; t >= 0; --t) {
      const int64_t i = t * in.columns + c;
      const bool term = in.terminated[i] != 0;
      const bool ends = in.truncated[i] != 0 || t == in.steps - 1;
      const acc_t r = in.reward[i], nv = in.next_value[i];
      const acc_t gamma = gamma_at(in, i);
      carry = lambda_form
                  ? lambda_step<acc_t, bool>(r, nv, term, ends, gamma, lmbda_at(in, i), carry)
                  : discounted_step<acc_t, bool>(r, nv, term, ends, gamma, carry);
      out[i] = T(carry);
    }
  }
};

template <typename T>
struct NstepReturnBody {
  WindowArgs<T> in;
  T* ret;
  T* discount;
  int64_t* boot;

  PYRL_HD int64_t threads() const { return in.steps * in.envs; }
  PYRL_HD void operator()(int64_t i) const {
    const int64_t t = i / in.envs;
    const int64_t k = in.uniform ? floating_k(acc_t(in.uniform[i]), in.n) : in.n;
    const Window w = episode_window(in.terminated + i, in.truncated + i, in.envs, in.steps - t, k);
    if (in.gammas != nullptr) {  // per-step discounts: the products run over the window's steps
      for (int64_t h = 0; h < in.heads; ++h) {
        acc_t sum = 0, factor = 1;
        for (int64_t l = 0; l < w.length; ++l) {
          const int64_t step = i + l * in.envs;
          sum += factor * acc_t(in.reward[step * in.heads + h]);
          factor *= acc_t(in.gammas[step]);
        }
        ret[i * in.heads + h] = T(sum);
      }
      acc_t d = 1;
      for (int64_t l = 0; l < w.length; ++l) d *= acc_t(in.gammas[i + l * in.envs]);
      discount[i] = w.terminal ? T(0) : T(d);
      boot[i] = t + w.length - 1;
      return;
    }
    for (int64_t h = 0; h < in.heads; ++h) {
      ret[i * in.heads + h] =
          T(window_return(in.reward + i * in.heads + h, in.envs * in.heads, w.length, in.gamma));
    }
    discount[i] = w.terminal ? T(0) : T(power(in.gamma, w.length));
    boot[i] = t + w.length - 1;
  }
};

template <typename T>
struct NstepGaeBody {
  WindowArgs<T> in;
  T* credit;
  T* discount;
  int64_t* boot;

  PYRL_HD int64_t threads() const { return in.steps * in.envs; }
  PYRL_HD void operator()(int64_t i) const {
    const int64_t t = i / in.envs;
    const acc_t gamma_lmbda = in.gamma * in.lmbda;
    const int64_t k = in.uniform ? floating_k(acc_t(in.uniform[i]), in.n) : in.n;
    const Window w = episode_window(in.terminated + i, in.truncated + i, in.envs, in.steps - t, k);
    if (in.gammas != nullptr || in.lmbdas != nullptr) {
      per_step_credit(i, t, w);
      return;
    }
    const acc_t d = in.gamma * power(gamma_lmbda, w.length - 1);
    for (int64_t h = 0; h < in.heads; ++h) {
      const int64_t j = i * in.heads + h;
      credit[j] = T(window_gae_credit(in.reward + j, in.value + j, in.next_value + j,
                                      in.envs * in.heads, w, in.gamma, gamma_lmbda, d));
    }
    discount[i] = w.terminal ? T(0) : T(d);
    boot[i] = t + w.length - 1;
  }

  // The credit with per-step gamma and lmbda: delta_{t+l} weighed by prod_{i<l} (gamma lmbda),
  // D = prod_{i<k-1} (gamma lmbda) * gamma_{t+k-1}.
  PYRL_HD void per_step_credit(int64_t i, int64_t t, Window w) const {
    acc_t d = 1;
    for (int64_t l = 0; l + 1 < w.length; ++l) {
      const int64_t step = i + l * in.envs;
      d *= gamma_at(in, step) * lmbda_at(in, step);
    }
    d *= gamma_at(in, i + (w.length - 1) * in.envs);
    for (int64_t h = 0; h < in.heads; ++h) {
      acc_t sum = 0, weight = 1;
      for (int64_t l = 0; l < w.length; ++l) {
        const int64_t step = i + l * in.envs, j = step * in.heads + h;
        const bool terminal = w.terminal && l + 1 == w.length;
        const acc_t gamma = gamma_at(in, step);
        const acc_t bootstrap = terminal ? acc_t(0) : acc_t(in.next_value[j]);
        sum += weight * (acc_t(in.reward[j]) + gamma * bootstrap - acc_t(in.value[j]));
        weight *= gamma * lmbda_at(in, step);
      }
      const int64_t last = (i + (w.length - 1) * in.envs) * in.heads + h;
      const acc_t last_bootstrap = w.terminal ? acc_t(0) : acc_t(in.next_value[last]);
      credit[i * in.heads + h] = T(sum + acc_t(in.value[i * in.heads + h]) - d * last_bootstrap);
    }
    discount[i] = w.terminal ? T(0) : T(d);
    boot[i] = t + w.length - 1;
  }
};

// V-trace: walks time backwards with d_{t+1} and vs_{t+1} = v_{t+1} + d_{t+1}.
template <typename T>
struct VtraceBody {
  OffPolicyArgs<T> in;
  T* vs;
  T* pg_advantage;

  PYRL_HD int64_t threads() const { return in.columns; }
  PYRL_HD void operator()(int64_t c) const {
    acc_t carry = 0;
    for (int64_t t = in.steps - 1; t >= 0; --t) {
      const int64_t i = t * in.columns + c;
      const bool term = in.terminated[i] != 0;
      const bool ends = term || in.truncated[i] != 0 || t == in.steps - 1;
      const acc_t ratio = ::exp(acc_t(in.log_rho[i]));
      const acc_t rho = clip(ratio, in.rho_bar), cc = lmbda_at(in, i) * clip(ratio, in.c_bar);
      const acc_t gamma = gamma_at(in, i);
      const acc_t v = in.value[i], nv = in.next_value[i], r = in.reward[i];
      const acc_t next_vs = t == in.steps - 1 ? acc_t(0) : acc_t(in.value[i + in.columns]) + carry;
      const acc_t d = vtrace_diff<acc_t, bool>(r, v, nv, term, ends, rho, cc, gamma, carry);
      vs[i] = T(v + d);
      pg_advantage[i] = T(vtrace_pg<acc_t, bool>(r, v, nv, next_vs, term, ends, rho, gamma));
      carry = d;
    }
  }
};

// Retrace: carries G_{t+1} - q_{t+1} and the ratio of step t + 1.
template <typename T>
struct RetraceBody {
  OffPolicyArgs<T> in;
  T* target;

  PYRL_HD int64_t threads() const { return in.columns; }
  PYRL_HD void operator()(int64_t c) const {
    acc_t carry = 0, next_ratio = 0;
    for (int64_t t = in.steps - 1; t >= 0; --t) {
      const int64_t i = t * in.columns + c;
      const bool term = in.terminated[i] != 0;
      const bool ends = term || in.truncated[i] != 0 || t == in.steps - 1;
      const acc_t next_c = lmbda_at(in, i) * clip(next_ratio, acc_t(1));
      const acc_t g = retrace_step<acc_t, bool>(acc_t(in.reward[i]), acc_t(in.next_value[i]), term,
                                                ends, next_c, gamma_at(in, i), carry);
      target[i] = T(g);
      carry = g - acc_t(in.value[i]);
      next_ratio = ::exp(acc_t(in.log_rho[i]));
    }
  }
};

}  // namespace PYRL_CPU_ISA

// The CPU entry points; each handles work items [begin, end): columns for the rollout scans,
// window starts (row-major over [T, N]) for the window ops.
template <typename T>
struct CpuScans {
  void (*gae)(const RolloutArgs<T>&, T* advantage, T* value_target, int64_t begin, int64_t end);
  void (*discounted_return)(const RolloutArgs<T>&, T* out, int64_t begin, int64_t end);
  void (*lambda_return)(const RolloutArgs<T>&, T* out, int64_t begin, int64_t end);
  void (*nstep_return)(const WindowArgs<T>&, T* ret, T* discount, int64_t* boot, int64_t begin,
                       int64_t end);
  void (*nstep_gae)(const WindowArgs<T>&, T* credit, T* discount, int64_t* boot, int64_t begin,
                    int64_t end);
  void (*vtrace)(const OffPolicyArgs<T>&, T* vs, T* pg_advantage, int64_t begin, int64_t end);
  void (*retrace)(const OffPolicyArgs<T>&, T* target, int64_t begin, int64_t end);
};

// The scans compiled for the widest instruction set this CPU runs, chosen once.
template <typename T>
const CpuScans<T>& cpu_scans();

// "avx2" or "baseline": which copy cpu_scans() picked.
const char* cpu_isa();

}  // namespace pyrl::kernels
