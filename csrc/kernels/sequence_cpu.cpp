// Episode sequences, hidden-state write-back and step windows on the CPU (see sequence.h).
#include <algorithm>
#include <cstring>
#include <vector>

#include "draws.h"
#include "sequence.h"
#include "window.h"

namespace pyrl::kernels {
namespace {

int64_t wrap(const Ring& ring, int64_t row) {
  return row >= ring.capacity ? row - ring.capacity : row;
}

// A row of a few dozen bytes, copied inline: a window is thousands of them, and a memcpy call
// per row costs more than its bytes.
inline void copy_row(uint8_t* dst, const uint8_t* src, int64_t bytes) {
  int64_t i = 0;
  for (; i + 16 <= bytes; i += 16) __builtin_memcpy(dst + i, src + i, 16);
  for (; i + 4 <= bytes; i += 4) __builtin_memcpy(dst + i, src + i, 4);
  for (; i < bytes; ++i) dst[i] = src[i];
}

}  // namespace

void gather_episodes(const Ring& ring, const ColumnView& column, const int64_t* ids, int64_t count,
                     int64_t pad, int64_t positions, uint8_t* out, int64_t* length) {
  const int64_t rb = column.row_bytes;
  for (int64_t e = 0; e < count; ++e) {
    uint8_t* dst = out + e * positions * rb;
    if (!episode_alive(ring, ids[e])) {
      length[e] = 0;
      std::memset(dst, 0, static_cast<size_t>(positions * rb));
      continue;
    }
    const int64_t* record = ring.episode(ids[e]);
    const int64_t rows = record[kEpisodeLength] + 1;
    length[e] = pad + rows;
    const int64_t leading = std::min(pad, positions);
    std::memset(dst, 0, static_cast<size_t>(leading * rb));
    const int64_t copied = std::clamp<int64_t>(positions - pad, 0, rows);
    int64_t row = record[kEpisodeStart];
    for (int64_t p = 0; p < copied; ++p) {
      std::memcpy(dst + (pad + p) * rb, column.at(row), static_cast<size_t>(rb));
      row = wrap(ring, row + 1);
    }
    const int64_t filled = leading + copied;
    std::memset(dst + filled * rb, 0, static_cast<size_t>((positions - filled) * rb));
  }
}

int64_t first_too_long(const Ring& ring, const int64_t* ids, int64_t count, int64_t positions,
                       int64_t offset) {
  for (int64_t e = 0; e < count; ++e) {
    if (episode_alive(ring, ids[e]) &&
        ring.episode(ids[e])[kEpisodeLength] + 1 - offset > positions) {
      return e;
    }
  }
  return -1;
}

void scatter_episodes(const Ring& ring, const ColumnView& column, const int64_t* ids, int64_t count,
                      int64_t positions, int64_t offset, const uint8_t* values, bool* applied) {
  const int64_t rb = column.row_bytes;
  for (int64_t e = 0; e < count; ++e) {
    applied[e] = episode_alive(ring, ids[e]);
    if (!applied[e]) continue;
    const int64_t* record = ring.episode(ids[e]);
    ring_write_rows(column.data, rb, column.stride, ring.capacity,
                    wrap(ring, record[kEpisodeStart] + offset), values + e * positions * rb,
                    record[kEpisodeLength] + 1 - offset);
  }
}

int64_t first_bad_row(const Ring& ring, const int64_t* rows, int64_t count) {
  for (int64_t j = 0; j < count; ++j) {
    if (rows[j] < 0 || rows[j] >= ring.capacity) return j;
  }
  return -1;
}

void write_rows(const Ring& ring, const ColumnView& column, const int64_t* rows, int64_t offset,
                const int64_t* generation, int64_t count, const uint8_t* values, bool* applied) {
  const int64_t rb = column.row_bytes;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = wrap(ring, rows[j] + offset);
    applied[j] = ring.row_episode[row] == generation[j] && generation[j] >= 0;
    if (applied[j]) std::memcpy(column.at(row), values + j * rb, static_cast<size_t>(rb));
  }
}

int64_t first_bad_start(const Ring& ring, const int64_t* start, int64_t count) {
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = start[j];
    if (row < 0 || row >= ring.capacity) return j;
    const int64_t id = ring.row_episode[row];
    if (!episode_alive(ring, id)) return j;
    const int64_t* record = ring.episode(id);
    if (ring.step_of(row, record) >= record[kEpisodeLength]) return j;  // the final row
  }
  return -1;
}

template <typename T>
void gather_windows(const Ring& ring, const ColumnView* columns, int64_t column_count,
                    int64_t obs_columns, const int64_t* start, int64_t count, int64_t steps,
                    int64_t n, double gamma, const WindowsOut<T>& out) {
  const ColumnView& reward = columns[column_count - 1];
  const int64_t heads = reward.row_bytes / static_cast<int64_t>(sizeof(T));
  // Windows start at scattered rows: the next window's rows are requested while this one is
  // copied, so its misses overlap with the copying instead of following it.
  auto prefetch_window = [&](int64_t row) {
    for (int64_t p = 0; p <= steps; ++p) {
      for (int64_t i = 0; i < column_count; ++i) {
        prefetch_bytes(columns[i].at(row), columns[i].row_bytes);
      }
      row = wrap(ring, row + 1);
    }
  };
  if (count > 0) prefetch_window(start[0]);
  for (int64_t b = 0; b < count; ++b) {
    if (b + 1 < count) prefetch_window(start[b + 1]);
    const int64_t first = start[b];
    const int64_t id = ring.row_episode[first];
    const int64_t* record = ring.episode(id);
    const int64_t t0 = ring.step_of(first, record);
    const int64_t remaining = record[kEpisodeLength] - t0;  // steps of the episode from `first`
    const bool terminated = record[kEpisodeTerminated] != 0;
    out.generation[b] = id;
    for (int64_t i = 0; i + 1 < column_count; ++i) {  // the rewards enter as returns only
      const ColumnView& column = columns[i];
      const int64_t positions = i < obs_columns ? steps + 1 : steps;
      const int64_t valid = std::min(positions, i < obs_columns ? remaining + 1 : remaining);
      uint8_t* dst = out.fields[i] + b * positions * column.row_bytes;
      int64_t row = first;
      for (int64_t p = 0; p < valid; ++p) {
        copy_row(dst + p * column.row_bytes, column.at(row), column.row_bytes);
        row = wrap(ring, row + 1);
      }
      std::memset(dst + valid * column.row_bytes, 0,
                  static_cast<size_t>((positions - valid) * column.row_bytes));
    }
    for (int64_t j = 0; j < steps; ++j) {
      const int64_t at = b * steps + j;
      T* ret = out.reward + at * heads;
      out.mask[at] = j < remaining;
      if (j >= remaining) {
        std::fill(ret, ret + heads, T(0));
        out.discount[at] = T(0);
        out.k[at] = 0;
        out.terminal[at] = false;
        continue;
      }
      const int64_t k = std::min({n, remaining - j, steps - j});
      const int64_t row = wrap(ring, first + j);
      // The window may wrap past the ring's end: summed in two pieces, in order.
      const int64_t before_wrap = std::min(k, ring.capacity - row);
      for (int64_t h = 0; h < heads; ++h) {
        WindowSum acc;
        const T* base = reinterpret_cast<const T*>(reward.data) + h;
        const int64_t stride = reward.stride / static_cast<int64_t>(sizeof(T));
        window_accumulate(acc, base + row * stride, stride, before_wrap, gamma);
        window_accumulate(acc, base, stride, k - before_wrap, gamma);
        ret[h] = static_cast<T>(acc.sum);
      }
      const bool terminal = terminated && j + k == remaining;
      out.discount[at] = terminal ? T(0) : static_cast<T>(power(gamma, k));
      out.k[at] = k;
      out.terminal[at] = terminal;
    }
  }
}

template <typename T>
int64_t sample_windows(const Ring& ring, int64_t seed, int64_t call, double beta, bool batch_max,
                       const ColumnView* columns, int64_t column_count, int64_t obs_columns,
                       const ColumnView& hidden, int64_t count, int64_t steps, int64_t n,
                       double gamma, int64_t* index, float* weight, uint8_t* hidden_out,
                       const WindowsOut<T>& out) {
  const uint64_t key = draw_key(static_cast<uint64_t>(seed), static_cast<uint64_t>(call));
  thread_local std::vector<double> uniform;  // scratch reused across calls
  uniform.resize(static_cast<size_t>(count));
  for (int64_t j = 0; j < count; ++j) uniform[j] = counter_uniform(key, kDrawRow, j);
  tree_sample_stratified(ring.layout, ring.sum_tree, nullptr, uniform.data(), count, index);
  const int64_t bad = first_bad_start(ring, index, count);
  if (bad >= 0) return bad;
  tree_is_weights(ring.layout, ring.sum_tree, ring.min_tree, index, count, beta, batch_max, weight);
  if (hidden.data != nullptr) {
    for (int64_t j = 0; j < count; ++j) {
      std::memcpy(hidden_out + j * hidden.row_bytes, hidden.at(index[j]),
                  static_cast<size_t>(hidden.row_bytes));
    }
  }
  gather_windows(ring, columns, column_count, obs_columns, index, count, steps, n, gamma, out);
  return -1;
}

template int64_t sample_windows<float>(const Ring&, int64_t, int64_t, double, bool,
                                       const ColumnView*, int64_t, int64_t, const ColumnView&,
                                       int64_t, int64_t, int64_t, double, int64_t*, float*,
                                       uint8_t*, const WindowsOut<float>&);
template int64_t sample_windows<double>(const Ring&, int64_t, int64_t, double, bool,
                                        const ColumnView*, int64_t, int64_t, const ColumnView&,
                                        int64_t, int64_t, int64_t, double, int64_t*, float*,
                                        uint8_t*, const WindowsOut<double>&);

template void gather_windows<float>(const Ring&, const ColumnView*, int64_t, int64_t,
                                    const int64_t*, int64_t, int64_t, int64_t, double,
                                    const WindowsOut<float>&);
template void gather_windows<double>(const Ring&, const ColumnView*, int64_t, int64_t,
                                     const int64_t*, int64_t, int64_t, int64_t, double,
                                     const WindowsOut<double>&);

}  // namespace pyrl::kernels
