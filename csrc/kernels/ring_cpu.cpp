// The episode ring on the CPU: claiming rows for a new episode (with whole-episode eviction) and
// row copies (layout in ring.h).
#include <algorithm>
#include <cstring>

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

void evict_oldest(Ring& ring) {
  int64_t* c = ring.counters;
  const int64_t* episode = ring.episode(c[kOldestEpisode]);
  fill_rows(ring, episode[kEpisodeStart], episode[kEpisodeLength] + 1, -1, 0.0);
  c[kTransitions] -= episode[kEpisodeLength];
  c[kOldestEpisode] += 1;
}

}  // namespace

int64_t ring_claim_episode(Ring& ring, int64_t length, bool terminated, double leaf) {
  int64_t* c = ring.counters;
  const int64_t rows = length + 1;
  // The free rows run from the cursor to the oldest alive episode's start.
  while (c[kOldestEpisode] < c[kNextEpisode]) {
    const int64_t oldest_start = ring.episode(c[kOldestEpisode])[kEpisodeStart];
    const int64_t free_rows = (oldest_start - c[kCursor] + ring.capacity) % ring.capacity;
    // With episodes alive, a start at the cursor means the ring is full, not empty.
    if (free_rows >= rows) break;
    evict_oldest(ring);
  }
  const int64_t id = c[kNextEpisode];
  const int64_t start = c[kCursor];
  int64_t* episode = ring.episode(id);
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

void ring_write_rows(uint8_t* column, int64_t row_bytes, int64_t stride, int64_t capacity,
                     int64_t first, const uint8_t* src, int64_t count) {
  if (row_bytes == 0) return;
  for_each_piece(first, count, capacity, [&](int64_t lo, int64_t n) {
    if (stride == row_bytes) {  // a contiguous column: one copy per piece
      std::memcpy(column + lo * row_bytes, src, static_cast<size_t>(n * row_bytes));
      src += n * row_bytes;
      return;
    }
    for (int64_t r = lo; r < lo + n; ++r, src += row_bytes) {
      std::memcpy(column + r * stride, src, static_cast<size_t>(row_bytes));
    }
  });
}

}  // namespace pyrl::kernels
