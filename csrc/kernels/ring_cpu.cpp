// The episode ring on the CPU: claiming rows for a new episode (with whole-episode eviction),
// row copies, the fused sample and priority updates (layout in ring.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ring.h"

namespace pyrl::kernels {
namespace {

// Calls fn(first, count) for the one or two unwrapped pieces of rows [first, first + count).
template <typename Fn>
void for_each_piece(int64_t first, int64_t count, int64_t capacity, const Fn& fn) {
  const int64_t head = std::min(count, capacity - first);
  fn(first, head);
  if (count > head) fn(int64_t{0}, count - head);
}

void fill_rows(Ring& ring, int64_t first, int64_t count, int64_t episode, double leaf) {
  for_each_piece(first, count, ring.capacity, [&](int64_t lo, int64_t n) {
    std::fill(ring.row_episode + lo, ring.row_episode + lo + n, episode);
    tree_fill_range(ring.layout, ring.sum_tree, ring.min_tree, lo, n, leaf);
  });
}

// Sampled rows are scattered over the whole ring: each pass below asks for the cache lines of
// the item kPrefetchAhead places on while it works on the current one, so the misses overlap
// instead of arriving one at a time (prefetching all of a batch at once overflows the miss queue).
constexpr int64_t kPrefetchAhead = 12;

void prefetch_bytes(const void* p, int64_t bytes) {
  const auto* first = static_cast<const char*>(p);
  for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(first + offset);
}

int64_t* episode_of(const Ring& ring, int64_t id) {
  return ring.episodes + (id % episode_slots(ring.capacity)) * kEpisodeFields;
}

void evict_oldest(Ring& ring) {
  int64_t* c = ring.counters;
  const int64_t* episode = episode_of(ring, c[kOldestEpisode]);
  fill_rows(ring, episode[kEpisodeStart], episode[kEpisodeLength] + 1, -1, 0.0);
  c[kTransitions] -= episode[kEpisodeLength];
  c[kOldestEpisode] += 1;
}

// `random` HER goals: a uniformly drawn row, moved forward to the next stored one (rows are
// only free at the start or behind an eviction, so this is uniform up to those gaps).
int64_t random_stored_row(const Ring& ring, double u) {
  int64_t row = std::min(static_cast<int64_t>(u * static_cast<double>(ring.capacity)),
                         ring.capacity - 1);
  while (ring.row_episode[row] < 0) row = (row + 1) % ring.capacity;
  return row;
}

}  // namespace

int64_t ring_claim_episode(Ring& ring, int64_t length, bool terminated, double leaf) {
  int64_t* c = ring.counters;
  const int64_t rows = length + 1;
  // The free rows run from the cursor to the oldest alive episode's start.
  while (c[kOldestEpisode] < c[kNextEpisode]) {
    const int64_t oldest_start = episode_of(ring, c[kOldestEpisode])[kEpisodeStart];
    const int64_t free_rows = (oldest_start - c[kCursor] + ring.capacity) % ring.capacity;
    // With episodes alive, a start at the cursor means the ring is full, not empty.
    if (free_rows >= rows) break;
    evict_oldest(ring);
  }
  const int64_t id = c[kNextEpisode];
  const int64_t start = c[kCursor];
  int64_t* episode = episode_of(ring, id);
  episode[kEpisodeStart] = start;
  episode[kEpisodeLength] = length;
  episode[kEpisodeTerminated] = terminated ? 1 : 0;
  fill_rows(ring, start, length, id, leaf);
  fill_rows(ring, (start + length) % ring.capacity, 1, id, 0.0);  // the final observation row
  c[kTransitions] += length;
  c[kTerminatedEpisodes] += terminated ? 1 : 0;
  c[kNextEpisode] = id + 1;
  c[kCursor] = (start + rows) % ring.capacity;
  return start;
}

void ring_write_rows(uint8_t* column, int64_t row_bytes, int64_t capacity, int64_t first,
                     const uint8_t* src, int64_t count) {
  if (row_bytes == 0) return;
  for_each_piece(first, count, capacity, [&](int64_t lo, int64_t n) {
    std::memcpy(column + lo * row_bytes, src, static_cast<size_t>(n * row_bytes));
    src += n * row_bytes;
  });
}

void ring_gather_rows(const uint8_t* column, int64_t row_bytes, const int64_t* rows,
                      int64_t count, uint8_t* dst) {
  if (row_bytes == 0) return;
  for (int64_t j = 0; j < std::min(count, kPrefetchAhead); ++j) {
    prefetch_bytes(column + rows[j] * row_bytes, row_bytes);
  }
  for (int64_t j = 0; j < count; ++j) {
    if (j + kPrefetchAhead < count) {
      prefetch_bytes(column + rows[j + kPrefetchAhead] * row_bytes, row_bytes);
    }
    std::memcpy(dst + j * row_bytes, column + rows[j] * row_bytes, static_cast<size_t>(row_bytes));
  }
}

template <typename T>
void ring_sample(const Ring& ring, const double* uniform, const double* floating_uniform,
                 int64_t count, int64_t n, double gamma, double beta, bool batch_max,
                 const T* reward, int64_t heads, T* ret, T* discount, const HerArgs& her,
                 SampleOut out) {
  if (uniform != nullptr) {
    tree_sample_stratified(ring.layout, ring.sum_tree, ring.min_tree, uniform, count, out.index);
  }
  const int64_t reward_bytes = heads * static_cast<int64_t>(sizeof(T));
  for (int64_t j = 0; j < count + kPrefetchAhead; ++j) {
    if (j < count) {
      const int64_t row = out.index[j];
      __builtin_prefetch(ring.row_episode + row);
      prefetch_bytes(reward + row * heads, n * reward_bytes);
    }
    const int64_t behind = j - kPrefetchAhead;
    if (behind >= 0) {
      out.generation[behind] = ring.row_episode[out.index[behind]];
      __builtin_prefetch(episode_of(ring, out.generation[behind]));
    }
  }
  tree_is_weights(ring.layout, ring.sum_tree, ring.min_tree, out.index, count, beta, batch_max,
                  out.weight);
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = out.index[j];
    const int64_t id = out.generation[j];
    const int64_t* episode = episode_of(ring, id);
    int64_t k = replay_lookahead(n, floating_uniform, j);
    int64_t her_row = -1;
    if (her.uniform != nullptr && her.uniform[j] < her.ratio) {
      const double u = her.uniform[count + j];
      if (her.strategy == kHerRandom) {
        her_row = random_stored_row(ring, u);
      } else {
        const int64_t t = (row - episode[kEpisodeStart] + ring.capacity) % ring.capacity;
        her_row = (episode[kEpisodeStart] +
                   her_goal_step(her.strategy, t, episode[kEpisodeLength], u)) % ring.capacity;
      }
      k = 1;  // HER => one step: later actions were chosen for another goal (SPEC 2.3)
    }
    out.her_row[j] = her_row;
    const Window w = replay_window(row, episode, ring.capacity, k, gamma);
    out.boot[j] = w.boot;
    discount[j] = static_cast<T>(w.discount);
    if (her_row >= 0 && her.reward != kRewardStored) {
      __builtin_prefetch(her.achieved + w.boot * her.goal_dim);
      __builtin_prefetch(her.achieved + her_row * her.goal_dim);
    }
  }
  // The window returns, in a pass of their own so the goal rows prefetched above have arrived.
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = out.index[j];
    const int64_t boot = out.boot[j];
    if (out.her_row[j] >= 0 && her.reward != kRewardStored) {
      // The reward of reaching o_{t+1}: its achieved goal against the relabeled goal.
      const float* reached = her.achieved + boot * her.goal_dim;
      const float* goal = her.achieved + out.her_row[j] * her.goal_dim;
      for (int64_t h = 0; h < heads; ++h) {
        ret[j * heads + h] = static_cast<T>(
            her.reward == kRewardSparseL2
                ? sparse_l2_reward(reached, goal, her.goal_dim, her.params[0])
                : per_dim_reward(reached[h], goal[h], her.params, her.params + her.num_params / 2,
                                 her.num_params / 2));
      }
      continue;
    }
    const int64_t steps = (boot - row + ring.capacity) % ring.capacity;
    for (int64_t h = 0; h < heads; ++h) {
      // A direct loop over the window (no gamma^-t prefix sums, which lose precision).
      double sum = 0.0;
      double scale = 1.0;
      for (int64_t l = 0; l < steps; ++l) {
        sum += scale * static_cast<double>(reward[((row + l) % ring.capacity) * heads + h]);
        scale *= gamma;
      }
      ret[j * heads + h] = static_cast<T>(sum);
    }
  }
}

template <typename T>
int64_t first_bad_priority(const T* td_abs, int64_t count) {
  for (int64_t j = 0; j < count; ++j) {
    if (!(td_abs[j] >= T(0))) return j;  // also catches NaN
  }
  return -1;
}

template <typename T>
int64_t ring_update_priorities(Ring& ring, const int64_t* index, const int64_t* generation,
                               const T* td_abs, int64_t count, int64_t heads, double alpha,
                               double eps, double p_min, double p_max, double* max_priority) {
  std::vector<int64_t> rows;
  std::vector<double> leaves;
  rows.reserve(static_cast<size_t>(count));
  leaves.reserve(static_cast<size_t>(count));
  double highest = *max_priority;
  for (int64_t j = 0; j < count; ++j) {
    if (ring.row_episode[index[j]] != generation[j]) continue;  // overwritten since sampled
    double mean = 0.0;
    for (int64_t h = 0; h < heads; ++h) mean += static_cast<double>(td_abs[j * heads + h]);
    mean /= static_cast<double>(heads);
    const double p = clip_priority(mean, eps, p_min, p_max);
    highest = std::max(highest, p);
    rows.push_back(index[j]);
    leaves.push_back(priority_leaf(p, alpha));
  }
  tree_set_leaves(ring.layout, ring.sum_tree, ring.min_tree, rows.data(), leaves.data(),
                  static_cast<int64_t>(rows.size()));
  *max_priority = highest;
  return static_cast<int64_t>(rows.size());
}

#define PYRL_INSTANTIATE(T)                                                                   \
  template void ring_sample<T>(const Ring&, const double*, const double*, int64_t, int64_t,   \
                               double, double, bool, const T*, int64_t, T*, T*,              \
                               const HerArgs&, SampleOut);                                   \
  template int64_t first_bad_priority<T>(const T*, int64_t);                                  \
  template int64_t ring_update_priorities<T>(Ring&, const int64_t*, const int64_t*, const T*, \
                                             int64_t, int64_t, double, double, double,        \
                                             double, double*);
PYRL_INSTANTIATE(float)
PYRL_INSTANTIATE(double)
#undef PYRL_INSTANTIATE

}  // namespace pyrl::kernels
