#pragma once
// The sequence ops of recurrent replay (sequence.h) as the phases a GPU runs, each a kernel body
// (csrc/kernels/grid.h). The CPU ops keep their own loops (sequence_cpu.cpp: the next window's
// rows prefetched while one is copied); tests/test_grid.py runs these bodies through the CPU
// grid runner, in launch order and shuffled, against them, bit for bit.
//
//   episodes: thread e gathers episode e's padded sequence, or scatters values over its rows
//            (of an id given twice, the later values win, as in the CPU's in-order loop);
//   rows:    thread j writes row index[j] + offset where it still belongs to generation[j] (of
//            entries writing one row, the last wins);
//   gather:  thread b copies window b (every column at its positions, zeros past the episode's
//            end) and writes its steps' n-step returns, discounts, k and terminal flags.
//   sample:  1. rows (the stratified descent, replay_sample.h's SampleRowsBody);
//            2. thread j checks its start row (a stored transition: bad[j] otherwise, whose
//               window phase 4 skips) and copies its stored state;
//            3. weights (SampleWeightsBody; batch_max: LargestWeightBody, DivideWeightsBody);
//            4. the gather above.
#include <cstdint>
#include <cstring>

#include "replay_sample.h"
#include "sequence.h"
#include "window.h"

namespace pyrl::kernels {

struct GatherEpisodesBody {
  Ring ring;
  ColumnView column;
  const int64_t* ids;
  int64_t count, pad, positions;
  uint8_t* out;     // [count, positions, row]
  int64_t* length;  // [count]

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t e) const {
    const int64_t rb = column.row_bytes;
    uint8_t* dst = out + e * positions * rb;
    if (!episode_alive(ring, ids[e])) {
      length[e] = 0;
      ::memset(dst, 0, static_cast<size_t>(positions * rb));
      return;
    }
    const int64_t* record = ring.episode(ids[e]);
    const int64_t rows = record[kEpisodeLength] + 1;
    length[e] = pad + rows;
    const int64_t leading = pad < positions ? pad : positions;
    ::memset(dst, 0, static_cast<size_t>(leading * rb));
    int64_t copied = positions - pad;
    copied = copied < 0 ? 0 : (copied > rows ? rows : copied);
    int64_t row = record[kEpisodeStart];
    for (int64_t p = 0; p < copied; ++p) {
      ::memcpy(dst + (pad + p) * rb, column.data + row * column.stride, static_cast<size_t>(rb));
      row = row + 1 == ring.capacity ? 0 : row + 1;
    }
    const int64_t filled = leading + copied;
    ::memset(dst + filled * rb, 0, static_cast<size_t>((positions - filled) * rb));
  }
};

struct ScatterEpisodesBody {
  Ring ring;
  ColumnView column;
  const int64_t* ids;
  int64_t count, positions, offset;
  const uint8_t* values;  // [count, positions, row]
  bool* applied;          // [count] out

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t e) const {
    applied[e] = episode_alive(ring, ids[e]);
    if (!applied[e]) return;
    for (int64_t later = e + 1; later < count; ++later) {
      if (ids[later] == ids[e]) return;  // the same episode again: the later values win
    }
    const int64_t* record = ring.episode(ids[e]);
    const int64_t rb = column.row_bytes;
    int64_t row = record[kEpisodeStart] + offset;
    row = row >= ring.capacity ? row - ring.capacity : row;
    const uint8_t* src = values + e * positions * rb;
    for (int64_t p = 0; p < record[kEpisodeLength] + 1 - offset; ++p) {
      ::memcpy(column.data + row * column.stride, src + p * rb, static_cast<size_t>(rb));
      row = row + 1 == ring.capacity ? 0 : row + 1;
    }
  }
};

struct WriteRowsBody {
  Ring ring;
  ColumnView column;
  const int64_t* rows;        // [count] in [0, C) (checked by the caller)
  int64_t offset;             // in [0, C)
  const int64_t* generation;  // [count]
  int64_t count;
  const uint8_t* values;  // [count, row]
  bool* applied;          // [count] out

  PYRL_HD int64_t target(int64_t j) const {
    const int64_t row = rows[j] + offset;
    return row >= ring.capacity ? row - ring.capacity : row;
  }
  PYRL_HD bool owned(int64_t j) const {
    return generation[j] >= 0 && ring.row_episode[target(j)] == generation[j];
  }
  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    applied[j] = owned(j);
    if (!applied[j]) return;
    const int64_t row = target(j);
    for (int64_t later = j + 1; later < count; ++later) {
      if (target(later) == row && owned(later)) return;  // the last write wins
    }
    ::memcpy(column.data + row * column.stride, values + j * column.row_bytes,
             static_cast<size_t>(column.row_bytes));
  }
};

// WindowsOut (sequence.h) by value, for a launch's parameters.
template <typename T>
struct WindowsOutArrays {
  uint8_t* fields[kMaxColumns];
  bool* mask;
  T* reward;
  T* discount;
  int64_t* k;
  bool* terminal;
  int64_t* generation;
};

template <typename T>
struct GatherWindowsBody {
  Ring ring;
  ColumnView columns[kMaxColumns];  // [column_count], the reward column last
  int64_t column_count, obs_columns;
  const int64_t* start;  // [count] stored transition rows (checked by the caller)
  int64_t count, steps, n;
  double gamma;
  WindowsOutArrays<T> out;
  const bool* bad;  // [count] start rows that are not stored transitions: their
                    // windows are not read (null: every start row is checked)

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t b) const {
    if (bad != nullptr && bad[b]) return;  // the op reports it; nothing of it is read
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
      const int64_t available = i < obs_columns ? remaining + 1 : remaining;
      const int64_t valid = positions < available ? positions : available;
      uint8_t* dst = out.fields[i] + b * positions * column.row_bytes;
      int64_t row = first;
      for (int64_t p = 0; p < valid; ++p) {
        ::memcpy(dst + p * column.row_bytes, column.data + row * column.stride,
                 static_cast<size_t>(column.row_bytes));
        row = row + 1 == ring.capacity ? 0 : row + 1;
      }
      ::memset(dst + valid * column.row_bytes, 0,
               static_cast<size_t>((positions - valid) * column.row_bytes));
    }
    const ColumnView& reward = columns[column_count - 1];
    const int64_t heads = reward.row_bytes / static_cast<int64_t>(sizeof(T));
    const int64_t stride = reward.stride / static_cast<int64_t>(sizeof(T));
    for (int64_t j = 0; j < steps; ++j) {
      const int64_t at = b * steps + j;
      T* ret = out.reward + at * heads;
      out.mask[at] = j < remaining;
      if (j >= remaining) {
        for (int64_t h = 0; h < heads; ++h) ret[h] = T(0);
        out.discount[at] = T(0);
        out.k[at] = 0;
        out.terminal[at] = false;
        continue;
      }
      int64_t k = n < remaining - j ? n : remaining - j;
      k = k < steps - j ? k : steps - j;
      const int64_t row = first + j >= ring.capacity ? first + j - ring.capacity : first + j;
      // The window may wrap past the ring's end: summed in two pieces, in order.
      const int64_t to_end = ring.capacity - row;
      const int64_t before_wrap = k < to_end ? k : to_end;
      for (int64_t h = 0; h < heads; ++h) {
        WindowSum acc;
        const T* base = reinterpret_cast<const T*>(reward.data) + h;
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
};

// Sample phase 2: whether start row j is a stored transition (first_bad_start's test), and its
// stored state copied out (hidden.data null: none).
struct WindowStartsBody {
  Ring ring;
  const int64_t* index;
  int64_t count;
  ColumnView hidden;
  uint8_t* hidden_out;
  bool* bad;  // [count] out

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    const int64_t row = index[j];
    bool ok = row >= 0 && row < ring.capacity;
    if (ok) {
      const int64_t id = ring.row_episode[row];
      ok = episode_alive(ring, id);
      if (ok) {
        const int64_t* record = ring.episode(id);
        ok = ring.step_of(row, record) < record[kEpisodeLength];
      }
    }
    bad[j] = !ok;
    if (ok && hidden.data != nullptr) {
      ::memcpy(hidden_out + j * hidden.row_bytes, hidden.data + row * hidden.stride,
               static_cast<size_t>(hidden.row_bytes));
    }
  }
};

// The gather as a body; column_count <= kMaxColumns (checked by the caller).
template <typename T>
GatherWindowsBody<T> gather_windows_body(const Ring& ring, const ColumnView* columns,
                                         int64_t column_count, int64_t obs_columns,
                                         const int64_t* start, int64_t count, int64_t steps,
                                         int64_t n, double gamma, const WindowsOut<T>& out,
                                         const bool* bad = nullptr) {
  GatherWindowsBody<T> body{
      ring,         {},
      column_count, obs_columns,
      start,        count,
      steps,        n,
      gamma,        {{}, out.mask, out.reward, out.discount, out.k, out.terminal, out.generation},
      bad};
  for (int64_t i = 0; i < column_count; ++i) body.columns[i] = columns[i];
  for (int64_t i = 0; i + 1 < column_count; ++i) body.out.fields[i] = out.fields[i];
  return body;
}

// The sequence sample as its launches. `bad` is [count] (the caller reports the first bad start
// row after the launches: no phase waits for the host) and `largest` [1] scratch.
template <typename T, typename Launch>
void sample_windows_in_phases(const Ring& ring, int64_t seed, int64_t call, double beta,
                              bool batch_max, const ColumnView* columns, int64_t column_count,
                              int64_t obs_columns, const ColumnView& hidden, int64_t count,
                              int64_t steps, int64_t n, double gamma, int64_t* index, float* weight,
                              uint8_t* hidden_out, const WindowsOut<T>& out, bool* bad,
                              float* largest, const Launch& launch) {
  const uint64_t key = draw_key(static_cast<uint64_t>(seed), static_cast<uint64_t>(call));
  launch(SampleRowsBody{ring, key, count, kRowsStratified, nullptr, index});
  launch(WindowStartsBody{ring, index, count, hidden, hidden_out, bad});
  launch(SampleWeightsBody{ring, beta, count, index, weight});
  if (batch_max) {
    launch(LargestWeightBody{weight, count, largest});
    launch(DivideWeightsBody{largest, count, weight});
  }
  launch(gather_windows_body(ring, columns, column_count, obs_columns, index, count, steps, n,
                             gamma, out, bad));
}

}  // namespace pyrl::kernels
