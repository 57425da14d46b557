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
//   GAE         delta_t = r_t + gamma * nv_t - v_t          (nv_t = 0 if terminated_t, else next_value_t)
//               A_t     = delta_t + gamma * lmbda * A_{t+1}  (the carry is 0 where the episode ends)
//               ret_t   = A_t + v_t
//   discounted  G_t = r_t + gamma * (terminated_t ? 0 : ends_t ? nv_t : G_{t+1})
//   lambda      G_t = r_t + gamma * (terminated_t ? 0 : ends_t ? nv_t : (1 - lmbda) nv_t + lmbda G_{t+1})
//   n-step      k_eff = k clipped at the episode (or rollout) end;  boot = t + k_eff - 1
//               R_t = sum_{l<k_eff} gamma^l r_{t+l};  D_t = gamma^k_eff, or 0 if the window ends terminal
//   n-step GAE  C_t = sum_{l<k_eff} (gamma lmbda)^l delta_{t+l} + v_t - D_t * nv_boot
//               D_t = gamma (gamma lmbda)^(k_eff - 1), or 0 if terminal   (SPEC 4.2)
// A target is then y_t = R_t + D_t * next_value[boot_t] (or C_t + D_t * Q(...)).
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
// or the rollout's last step.
template <typename A, typename M>
PYRL_HD inline A gae_step(A reward, A value, A next_value, M terminated, M ends, acc_t gamma,
                          acc_t gamma_lmbda, A next_advantage) {
  const A bootstrap = terminated ? A{} : next_value;
  const A delta = reward + gamma * bootstrap - value;
  return ends ? delta : delta + gamma_lmbda * next_advantage;
}

template <typename A, typename M>
PYRL_HD inline A discounted_step(A reward, A next_value, M terminated, M ends, acc_t gamma,
                                 A next_return) {
  const A tail = ends ? next_value : next_return;
  return reward + gamma * (terminated ? A{} : tail);
}

template <typename A, typename M>
PYRL_HD inline A lambda_step(A reward, A next_value, M terminated, M ends, acc_t gamma,
                             acc_t lmbda, A next_return) {
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
template <typename A, typename M>
PYRL_HD inline A vtrace_diff(A reward, A value, A next_value, M terminated, M ends, A rho, A c,
                             acc_t gamma, A next_diff) {
  const A bootstrap = terminated ? A{} : next_value;
  const A carried = ends ? A{} : gamma * c * next_diff;
  return rho * (reward + gamma * bootstrap - value) + carried;
}

// V-trace's policy-gradient advantage; `next_vs` is vs_{t+1}, read only inside an episode.
template <typename A, typename M>
PYRL_HD inline A vtrace_pg(A reward, A value, A next_value, A next_vs, M terminated, M ends,
                           A rho, acc_t gamma) {
  const A vhat = ends ? next_value : next_vs;
  return rho * (reward + gamma * (terminated ? A{} : vhat) - value);
}

// Retrace, one step back; `next_carry` is G_{t+1} - q_{t+1} and `next_c` the trace of step t + 1.
template <typename A, typename M>
PYRL_HD inline A retrace_step(A reward, A next_v, M terminated, M ends, A next_c, acc_t gamma,
                              A next_carry) {
  const A trace = ends ? A{} : next_c * next_carry;
  return reward + gamma * (terminated ? A{} : next_v + trace);
}

}  // inline namespace PYRL_CPU_ISA

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
};

template <typename T>
struct RolloutArgs {
  const T* reward;
  const T* value;       // GAE only
  const T* next_value;
  const uint8_t* terminated;
  const uint8_t* truncated;
  int64_t steps;        // T
  int64_t columns;      // C
  acc_t gamma;
  acc_t lmbda;
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
  const T* uniform;     // nullptr: k = n for every window
  int64_t steps;        // T
  int64_t envs;         // N
  int64_t heads;        // m (1 for [T, N] rewards)
  int64_t n;
  acc_t gamma;
  acc_t lmbda;
};

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
