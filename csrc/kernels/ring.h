#pragma once
// The episode ring of a replay buffer: which episode owns each row, the episode table, and the
// per-sample window math (SPEC 1.2 and 3.2).
//
// An episode of T transitions fills T + 1 consecutive rows, modulo the capacity C:
//
//   rows    start        start+1      ...  start+T-1        start+T
//           o_0 a_0 r_0  o_1 a_1 r_1  ...  o_{T-1} a r      o_T  (final observation only)
//
// Episodes are written in id order, so the alive ones are the ids [oldest, next) and sit back to
// back ending just before the cursor. Writing a new episode evicts, whole, every old episode that
// would lose a row: partial episodes are never kept (n-step and HER read past and future rows).
//
//   row_episode[C]    id of the episode owning the row, -1 if free. Ids are never reused, so
//                     this is also the row's generation: it changes whenever the row is
//                     overwritten or evicted, which is how stale priority updates are found.
//   episodes[E, 3]    start row, T, terminated; episode `id` sits in slot id % E, with
//                     E = C / 2 + 1 (every episode has at least 2 rows, so alive ids never share
//                     a slot).
//   counters[5]       cursor, next id, oldest alive id, transitions (rows that can be sampled),
//                     terminated episodes ever stored.
//
// The sum tree's leaf for a row is priority^alpha for transition rows and 0 for final rows and
// free rows, so a proportional draw only ever returns a row that starts a transition.
#include <cmath>
#include <cstdint>

#include "macros.h"
#include "sum_tree.h"

namespace pyrl::kernels {

enum RingCounter : int {
  kCursor = 0,
  kNextEpisode,
  kOldestEpisode,
  kTransitions,
  kTerminatedEpisodes,  // terminated episodes ever stored (HER warns about relabeling them)
  kRingCounters
};
enum EpisodeField : int { kEpisodeStart = 0, kEpisodeLength, kEpisodeTerminated, kEpisodeFields };

inline int64_t episode_slots(int64_t capacity) { return capacity / 2 + 1; }

struct Ring {
  int64_t capacity;
  int64_t* row_episode;
  int64_t* episodes;
  int64_t* counters;
  double* sum_tree;
  double* min_tree;
  TreeLayout layout;
};

// Where a sampled row's window ends (SPEC 3.2): k clipped at the episode end, the bootstrap row,
// and the bootstrap discount gamma^k_eff, 0 when the window reaches a true terminal.
struct Window {
  int64_t t;
  int64_t steps;  // k_eff
  int64_t boot;
  double discount;
};

PYRL_HD inline Window replay_window(int64_t row, const int64_t* episode, int64_t capacity,
                                    int64_t k, double gamma) {
  Window w;
  const int64_t length = episode[kEpisodeLength];
  w.t = (row - episode[kEpisodeStart] + capacity) % capacity;
  w.steps = k < length - w.t ? k : length - w.t;
  w.boot = (row + w.steps) % capacity;
  const bool terminal = episode[kEpisodeTerminated] != 0 && w.t + w.steps == length;
  double discount = 1.0;
  for (int64_t l = 0; l < w.steps; ++l) discount *= gamma;
  w.discount = terminal ? 0.0 : discount;
  return w;
}

// The lookahead k of one sample: n, or uniform on {1..n} when a floating uniform is given.
PYRL_HD inline int64_t replay_lookahead(int64_t n, const double* floating_uniform, int64_t j) {
  if (floating_uniform == nullptr) return n;
  const int64_t k = 1 + static_cast<int64_t>(floating_uniform[j] * static_cast<double>(n));
  return k > n ? n : k;
}

// ---- hindsight relabeling (SPEC 2.2) ----------------------------------------------------------

enum HerStrategy : int { kHerFuture = 0, kHerFinal, kHerEpisode, kHerRandom };
enum HerReward : int { kRewardStored = 0, kRewardSparseL2, kRewardPerDim };

// The episode step whose achieved goal becomes the relabeled goal of a sample at step t of an
// episode of T steps: future t+1+floor(u(T-t)) in {t+1..T}, final T, episode 1+floor(uT) in
// {1..T}. (`random` draws a row of the whole buffer instead; see ring_cpu.cpp.)
PYRL_HD inline int64_t her_goal_step(int strategy, int64_t t, int64_t length, double u) {
  int64_t step = length;
  if (strategy == kHerFuture) step = t + 1 + static_cast<int64_t>(u * static_cast<double>(length - t));
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

struct HerArgs {
  const double* uniform = nullptr;  // [2, count]: relabel draws, then goal-row draws; null: off
  double ratio = 0.0;               // k / (k + 1)
  int strategy = kHerFuture;
  int reward = kRewardStored;       // stored: the caller recomputes relabeled rewards itself
  const double* params = nullptr;   // sparse_l2: {eps}; per_dim: {thresholds..., values...}
  int64_t num_params = 0;
  const float* achieved = nullptr;  // the achieved-goal column [C, goal_dim]
  int64_t goal_dim = 0;
};

// p = clip(|delta| + eps, p_min, p_max); the tree stores p^alpha (alpha applied exactly once).
PYRL_HD inline double clip_priority(double td_abs, double eps, double p_min, double p_max) {
  const double p = td_abs + eps;
  return p < p_min ? p_min : (p > p_max ? p_max : p);
}

PYRL_HD inline double priority_leaf(double priority, double alpha) {
  return alpha == 1.0 ? priority : ::pow(priority, alpha);
}

// ---- CPU entry points (ring_cpu.cpp) ----------------------------------------------------------

// Evicts what the new episode overwrites, records it and gives its transition rows the leaf
// `leaf`. Returns its start row; the caller copies the T + 1 rows of data there (mod C).
int64_t ring_claim_episode(Ring& ring, int64_t length, bool terminated, double leaf);

// Copies `count` rows of `row_bytes` from `src` into `column` starting at `first` (mod C).
void ring_write_rows(uint8_t* column, int64_t row_bytes, int64_t capacity, int64_t first,
                     const uint8_t* src, int64_t count);

void ring_gather_rows(const uint8_t* column, int64_t row_bytes, const int64_t* rows,
                      int64_t count, uint8_t* dst);

struct SampleOut {
  int64_t* index;
  int64_t* generation;
  float* weight;
  int64_t* boot;
  int64_t* her_row;  // the row whose achieved goal relabels the sample, -1 if not relabeled
};

// Draws `count` rows (stratified proportional) with their IS weights, (P_min / P)^beta or divided
// by the batch maximum, and their n-step windows; with `uniform` null the rows are taken as given
// in out.index (episode mode). With `her.uniform` set, a fraction her.ratio of the samples is
// relabeled (SPEC 2.2): k = 1 and, unless her.reward is stored, the reward recomputed from the
// next row's achieved goal against the new goal. Then: `reward` is the [C, heads] reward column, `ret`
// receives the [count, heads] window returns and `discount` the bootstrap discounts.
template <typename T>
void ring_sample(const Ring& ring, const double* uniform, const double* floating_uniform,
                 int64_t count, int64_t n, double gamma, double beta, bool batch_max,
                 const T* reward, int64_t heads, T* ret, T* discount, const HerArgs& her,
                 SampleOut out);

// Index of the first td_abs entry that is NaN or negative, or -1.
template <typename T>
int64_t first_bad_priority(const T* td_abs, int64_t count);

// Sets the priority of every sampled row still owned by the generation it was sampled with
// (`td_abs` is [count, heads], averaged over heads); returns how many were applied and raises
// max_priority to the largest priority applied.
template <typename T>
int64_t ring_update_priorities(Ring& ring, const int64_t* index, const int64_t* generation,
                               const T* td_abs, int64_t count, int64_t heads, double alpha,
                               double eps, double p_min, double p_max, double* max_priority);

}  // namespace pyrl::kernels
