#pragma once
// The episode ring of a replay buffer: which episode owns each row, the episode table, the
// counters, and the priority trees over the rows (SPEC 1.2).
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
//   episodes[E, 3]    start row, T, terminated; episode `id` sits in slot id % E, with E the
//                     power of two >= C / 2 + 1 (every episode has at least 2 rows, so alive
//                     ids never share a slot).
//   counters[7]       RingCounter below.
//   max_priority[1]   the largest priority applied so far: new transitions enter with it.
//
// The sum tree's leaf for a row is priority^alpha for transition rows and 0 for final rows and
// free rows, so a proportional draw only ever returns a row that starts a transition.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "macros.h"
#include "sum_tree.h"

namespace pyrl::kernels {

enum RingCounter : int {
  kCursor = 0,
  kNextEpisode,
  kOldestEpisode,
  kTransitions,         // rows that can be sampled
  kTerminatedEpisodes,  // terminated episodes ever stored (HER warns about relabeling them)
  kUpdatesApplied,      // priority updates applied since construction
  kUpdatesDropped,      // ... and dropped (stale rows, rows that are not transitions)
  kRingCounters
};
enum EpisodeField : int { kEpisodeStart = 0, kEpisodeLength, kEpisodeTerminated, kEpisodeFields };

// Capacities above this are refused: the tree layout and the int64 row arithmetic (row + k,
// u * C) stay exact far below 2^62, and no machine holds 2^48 rows anyway.
constexpr int64_t kMaxCapacity = int64_t{1} << 48;

// Every episode holds at least 2 rows, so at most C / 2 + 1 are alive; the table is the next
// power of two, so that finding an episode's slot is a mask, not a division.
PYRL_HD inline int64_t episode_slots(int64_t capacity) {
  int64_t slots = 1;
  while (slots < capacity / 2 + 1) slots *= 2;
  return slots;
}

struct Ring {
  int64_t capacity;
  int64_t* row_episode;
  int64_t* episodes;
  int64_t* counters;
  double* sum_tree;
  double* min_tree;
  double* max_priority;
  TreeLayout layout;
  int64_t episode_mask;  // episode_slots(capacity) - 1

  PYRL_HD int64_t* episode(int64_t id) const {
    return episodes + (id & episode_mask) * kEpisodeFields;
  }
  // Step t of the row inside its episode (0..T), given the episode's record.
  PYRL_HD int64_t step_of(int64_t row, const int64_t* record) const {
    const int64_t t = row - record[kEpisodeStart];  // rows and starts are in [0, C): no modulo
    return t < 0 ? t + capacity : t;
  }
};

// p = clip(|delta| + eps, p_min, p_max); the tree stores p^alpha (alpha applied exactly once).
PYRL_HD inline double clip_priority(double td_abs, double eps, double p_min, double p_max) {
  const double p = td_abs + eps;
  return p < p_min ? p_min : (p > p_max ? p_max : p);
}

PYRL_HD inline double priority_leaf(double priority, double alpha) {
  return alpha == 1.0 ? priority : ::pow(priority, alpha);
}

// ---- claiming rows and writing them (the CPU ops and the kernel bodies alike) -----------------

// Calls fn(first, count) for the one or two unwrapped pieces of rows [first, first + count).
template <typename Fn>
PYRL_HD inline void ring_for_each_piece(int64_t first, int64_t count, int64_t capacity,
                                        const Fn& fn) {
  const int64_t head = count < capacity - first ? count : capacity - first;
  fn(first, head);
  if (count > head) fn(int64_t{0}, count - head);
}

// Rows [first, first + count) (mod C) owned by `episode` (-1: free), their leaves `leaf`.
PYRL_HD inline void ring_fill_rows(const Ring& ring, int64_t first, int64_t count, int64_t episode,
                                   double leaf) {
  ring_for_each_piece(first, count, ring.capacity, [&](int64_t lo, int64_t n) {
    for (int64_t row = lo; row < lo + n; ++row) ring.row_episode[row] = episode;
    tree_fill_range(ring.layout, ring.sum_tree, ring.min_tree, lo, n, leaf);
  });
}

PYRL_HD inline void ring_evict_oldest(const Ring& ring) {
  int64_t* c = ring.counters;
  const int64_t* episode = ring.episode(c[kOldestEpisode]);
  ring_fill_rows(ring, episode[kEpisodeStart], episode[kEpisodeLength] + 1, -1, 0.0);
  c[kTransitions] -= episode[kEpisodeLength];
  c[kOldestEpisode] += 1;
}

// Evicts what the new episode overwrites, records it and gives its transition rows the leaf
// `leaf`. Returns its start row; the caller copies the T + 1 rows of data there (mod C).
PYRL_HD inline int64_t ring_claim_episode(const Ring& ring, int64_t length, bool terminated,
                                          double leaf) {
  int64_t* c = ring.counters;
  const int64_t rows = length + 1;
  // The free rows run from the cursor to the oldest alive episode's start.
  while (c[kOldestEpisode] < c[kNextEpisode]) {
    const int64_t oldest_start = ring.episode(c[kOldestEpisode])[kEpisodeStart];
    const int64_t free_rows = (oldest_start - c[kCursor] + ring.capacity) % ring.capacity;
    // With episodes alive, a start at the cursor means the ring is full, not empty.
    if (free_rows >= rows) break;
    ring_evict_oldest(ring);
  }
  const int64_t id = c[kNextEpisode];
  const int64_t start = c[kCursor];
  int64_t* episode = ring.episode(id);
  episode[kEpisodeStart] = start;
  episode[kEpisodeLength] = length;
  episode[kEpisodeTerminated] = terminated ? 1 : 0;
  ring_fill_rows(ring, start, length, id, leaf);
  ring_fill_rows(ring, (start + length) % ring.capacity, 1, id, 0.0);  // the final observation row
  c[kTransitions] += length;
  c[kTerminatedEpisodes] += terminated ? 1 : 0;
  c[kNextEpisode] = id + 1;
  c[kCursor] = (start + rows) % ring.capacity;
  return start;
}

// Copies `count` rows of `row_bytes` from `src` (back to back) into `column`, whose rows are
// `stride` bytes apart, starting at row `first` (mod C).
PYRL_HD inline void ring_write_rows(uint8_t* column, int64_t row_bytes, int64_t stride,
                                    int64_t capacity, int64_t first, const uint8_t* src,
                                    int64_t count) {
  if (row_bytes == 0) return;
  ring_for_each_piece(first, count, capacity, [&](int64_t lo, int64_t n) {
    if (stride == row_bytes) {  // a contiguous column: one copy per piece
      ::memcpy(column + lo * row_bytes, src, static_cast<size_t>(n * row_bytes));
      src += n * row_bytes;
      return;
    }
    for (int64_t r = lo; r < lo + n; ++r, src += row_bytes) {
      ::memcpy(column + r * stride, src, static_cast<size_t>(row_bytes));
    }
  });
}

// Sampled rows are scattered over the whole ring: the row passes ask for the cache lines of the
// item kPrefetchAhead places on while they work on the current one, so the misses overlap instead
// of arriving one at a time (prefetching all of a batch at once overflows the miss queue).
constexpr int64_t kPrefetchAhead = 12;

inline void prefetch_bytes(const void* p, int64_t bytes) {
  const auto* first = static_cast<const char*>(p);
  for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(first + offset);
}

}  // namespace pyrl::kernels
