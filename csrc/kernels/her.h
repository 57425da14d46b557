#pragma once
// Hindsight relabeling (SPEC 2.2): which stored achieved goal replaces a sample's goal, and the
// built-in rewards recomputed under it. The replay sample (replay_cpu.cpp) applies them.
//
// A fraction ratio = k / (k + 1) of the samples is relabeled. The goal is the achieved goal of
//   future   step t+1+floor(u(T-t)) in {t+1..T} of the sample's own episode of T steps
//   final    step T
//   episode  step 1+floor(uT) in {1..T}
//   random   a row of the whole buffer, drawn uniformly and moved on to the next stored row
// and the sample then takes one step (k = 1): later actions were chosen for another goal
// (SPEC 2.3). With `recompute`, a relabeled sample keeps the k it drew, and every reward of its
// window is recomputed under the new goal instead; with `terminal_on_success` the window ends at
// the first step whose achieved goal reaches the new goal (a success of sparse_l2), a true
// terminal there.
#include <cmath>
#include <cstdint>

#include "macros.h"

namespace pyrl::kernels {

enum HerStrategy : int { kHerOff = -1, kHerFuture = 0, kHerFinal, kHerEpisode, kHerRandom };
enum HerReward : int { kRewardStored = 0, kRewardSparseL2, kRewardPerDim };
constexpr int kHerMaxParams = 64;  // per_dim bands: thresholds and values, 32 each

struct HerConfig {
  int strategy = kHerOff;
  double ratio = 0.0;            // k / (k + 1)
  int reward = kRewardStored;    // stored: Python recomputes relabeled rewards (a callable)
  int64_t achieved_column = -1;  // the float32 [C, goal_dim] observation columns
  int64_t desired_column = -1;
  int64_t goal_dim = 0;
  bool recompute = false;            // relabeled windows keep k; rewards recomputed per step
  bool terminal_on_success = false;  // reaching the new goal ends the window (sparse_l2 only)
  int num_params = 0;                // sparse_l2: {eps}; per_dim: {thresholds..., values...}
  double params[kHerMaxParams] = {};
};

// The episode step whose achieved goal relabels a sample at step t of an episode of `length`
// steps (strategies future, final and episode).
PYRL_HD inline int64_t her_goal_step(int strategy, int64_t t, int64_t length, double u) {
  int64_t step = length;
  if (strategy == kHerFuture)
    step = t + 1 + static_cast<int64_t>(u * static_cast<double>(length - t));
  if (strategy == kHerEpisode) step = 1 + static_cast<int64_t>(u * static_cast<double>(length));
  return step > length ? length : step;
}

// sparse_l2(eps): 0 if ||achieved - goal||_2 < eps, else -1.
PYRL_HD inline double sparse_l2_reward(const float* achieved, const float* goal, int64_t dim,
                                       double eps) {
  double squared = 0.0;
  for (int64_t d = 0; d < dim; ++d) {
    const double diff = static_cast<double>(achieved[d]) - static_cast<double>(goal[d]);
    squared += diff * diff;
  }
  return ::sqrt(squared) < eps ? 0.0 : -1.0;
}

// per_dim (SPEC 7.1), one reward per goal dimension: r_d = sum_b values[b] * [e_d passes band b],
// e_d = |achieved_d - goal_d|; a band with threshold thr > 0 passes when e < thr, one with
// thr < 0 when e > -thr.
PYRL_HD inline double per_dim_reward(float achieved, float goal, const double* thresholds,
                                     const double* values, int64_t bands) {
  const double e = ::fabs(static_cast<double>(achieved) - static_cast<double>(goal));
  double reward = 0.0;
  for (int64_t b = 0; b < bands; ++b) {
    const bool pass = thresholds[b] > 0.0 ? e < thresholds[b] : e > -thresholds[b];
    reward += pass ? values[b] : 0.0;
  }
  return reward;
}

// The built-in reward of head h for reaching `reached` under `goal`.
PYRL_HD inline double her_reward(const HerConfig& her, const float* reached, const float* goal,
                                 int64_t h) {
  if (her.reward == kRewardSparseL2)
    return sparse_l2_reward(reached, goal, her.goal_dim, her.params[0]);
  const int bands = her.num_params / 2;
  return per_dim_reward(reached[h], goal[h], her.params, her.params + bands, bands);
}

}  // namespace pyrl::kernels
