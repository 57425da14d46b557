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
// The goal columns' element type: goals of any of these dtypes and any shape, flattened to
// goal_dim elements a row; the built-in rewards read every element as a double.
enum GoalType : int {
  kGoalFloat32 = 0,
  kGoalFloat64,
  kGoalInt8,
  kGoalUint8,
  kGoalInt16,
  kGoalInt32,
  kGoalInt64,
  kGoalBool
};
enum HerReward : int { kRewardStored = 0, kRewardSparseL2, kRewardPerDim };
constexpr int kHerMaxParams = 64;  // per_dim bands: thresholds and values, 32 each

struct HerConfig {
  int strategy = kHerOff;
  double ratio = 0.0;            // k / (k + 1)
  int reward = kRewardStored;    // stored: Python recomputes relabeled rewards (a callable)
  int64_t achieved_column = -1;  // the [C, *goal_shape] observation columns
  int64_t desired_column = -1;
  int64_t goal_dim = 0;  // elements of one goal
  int goal_type = kGoalFloat32;
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

template <typename E>
PYRL_HD inline double element_as_double(const uint8_t* goal, int64_t d) {
  return static_cast<double>(reinterpret_cast<const E*>(goal)[d]);
}

// Element d of a goal stored as `type`, as a double (exact for every type but int64 beyond 2^53).
PYRL_HD inline double goal_element(int type, const uint8_t* goal, int64_t d) {
  switch (type) {
    case kGoalFloat64:
      return element_as_double<double>(goal, d);
    case kGoalInt8:
      return element_as_double<int8_t>(goal, d);
    case kGoalUint8:
      return element_as_double<uint8_t>(goal, d);
    case kGoalInt16:
      return element_as_double<int16_t>(goal, d);
    case kGoalInt32:
      return element_as_double<int32_t>(goal, d);
    case kGoalInt64:
      return element_as_double<int64_t>(goal, d);
    case kGoalBool:
      return goal[d] != 0 ? 1.0 : 0.0;
    default:
      return element_as_double<float>(goal, d);
  }
}

// sparse_l2(eps) over the flattened goal: 0 if ||achieved - goal||_2 < eps, else -1.
PYRL_HD inline double sparse_l2_reward(int type, const uint8_t* achieved, const uint8_t* goal,
                                       int64_t dim, double eps) {
  double squared = 0.0;
  for (int64_t d = 0; d < dim; ++d) {
    const double diff = goal_element(type, achieved, d) - goal_element(type, goal, d);
    squared += diff * diff;
  }
  return ::sqrt(squared) < eps ? 0.0 : -1.0;
}

// per_dim (SPEC 7.1), one reward per goal element: r_d = sum_b values[b] * [e_d passes band b],
// e_d = |achieved_d - goal_d|; a band with threshold thr > 0 passes when e < thr, one with
// thr < 0 when e > -thr.
PYRL_HD inline double per_dim_reward(double achieved, double goal, const double* thresholds,
                                     const double* values, int64_t bands) {
  const double e = ::fabs(achieved - goal);
  double reward = 0.0;
  for (int64_t b = 0; b < bands; ++b) {
    const bool pass = thresholds[b] > 0.0 ? e < thresholds[b] : e > -thresholds[b];
    reward += pass ? values[b] : 0.0;
  }
  return reward;
}

// The built-in reward of head h for reaching `reached` under `goal` (rows of the goal columns).
PYRL_HD inline double her_reward(const HerConfig& her, const uint8_t* reached, const uint8_t* goal,
                                 int64_t h) {
  if (her.reward == kRewardSparseL2)
    return sparse_l2_reward(her.goal_type, reached, goal, her.goal_dim, her.params[0]);
  const int bands = her.num_params / 2;
  return per_dim_reward(goal_element(her.goal_type, reached, h),
                        goal_element(her.goal_type, goal, h), her.params, her.params + bands,
                        bands);
}

}  // namespace pyrl::kernels
