#pragma once
// Sequences of stored episodes, for recurrent encoders (SPEC 5.2, 7.5): gathering each episode's
// observations as one zero-padded sequence, writing recomputed hidden states back under a
// generation check, and reading windows of consecutive steps with their n-step targets.
//
// Episode ids are never reused, so an id is its episode's generation: an episode is alive while
// oldest <= id < next (ring.h), and a write meant for an evicted episode is skipped. A row's
// generation is row_episode[row].
//
// The padded sequence of an episode of T transitions, with `pad` = n_history - 1 leading zeros
// (the zero-filled window at reset, as in collection):
//
//   position   0 .. pad-1    pad .. pad+T
//   value      0             o_0 .. o_T
//
// hidden_in[t] is the encoder state after position t - 1 of it (hidden_in[0]: the stored first
// state), so recomputing T + 1 states reads positions 0 .. T - 1.
#include <cstdint>

#include "ring.h"

namespace pyrl::kernels {

// One column of the ring: rows of `row_bytes` bytes, `stride` bytes apart.
struct ColumnView {
  uint8_t* data;
  int64_t row_bytes;
  int64_t stride;

  uint8_t* at(int64_t row) const { return data + row * stride; }
};

PYRL_HD inline bool episode_alive(const Ring& ring, int64_t id) {
  return id >= ring.counters[kOldestEpisode] && id < ring.counters[kNextEpisode];
}

// Copies positions [0, positions) of each episode's padded sequence of `column` to
// out[e, position] (rows back to back), zeros outside the episode; length[e] is pad + T + 1
// for an alive episode, 0 (and all zeros) for any other id.
void gather_episodes(const Ring& ring, const ColumnView& column, const int64_t* ids, int64_t count,
                     int64_t pad, int64_t positions, uint8_t* out, int64_t* length);

// The first alive episode whose rows from `offset` on (T + 1 - offset of them) do not fit in
// `positions`, or -1.
int64_t first_too_long(const Ring& ring, const int64_t* ids, int64_t count, int64_t positions,
                       int64_t offset);

// Writes values[e, 0 .. T - offset] over rows start + offset .. start + T of each alive episode
// (checked with first_too_long first); applied[e] says which were written. Recomputation writes
// from offset 1: the first stored state is where the encoder started.
void scatter_episodes(const Ring& ring, const ColumnView& column, const int64_t* ids, int64_t count,
                      int64_t positions, int64_t offset, const uint8_t* values, bool* applied);

// The first row outside [0, C), or -1.
int64_t first_bad_row(const Ring& ring, const int64_t* rows, int64_t count);

// Writes values[j] over row rows[j] + offset (modulo C: a window may cross the ring's end) where
// that row still belongs to episode generation[j] (rows checked with first_bad_row first, and
// 0 <= offset < C); applied[j] says which were written.
void write_rows(const Ring& ring, const ColumnView& column, const int64_t* rows, int64_t offset,
                const int64_t* generation, int64_t count, const uint8_t* values, bool* applied);

// The first start row that is not a stored transition (a final or free row), or -1.
int64_t first_bad_start(const Ring& ring, const int64_t* start, int64_t count);

template <typename T>
struct WindowsOut {
  uint8_t* const* fields;  // per column but the reward (last): [count, steps + 1, row] for
                           // observations, [count, steps, row] for the others
  bool* mask;              // [count, steps]: the step is inside the episode
  T* reward;               // [count, steps, heads] n-step returns
  T* discount;             // [count, steps] gamma^k, 0 where the window reaches a true terminal
  int64_t* k;              // [count, steps] steps to the bootstrap position j + k
  bool* terminal;          // [count, steps] the step's window reaches a true terminal
  int64_t* generation;     // [count] the owner of each start row
};

// Windows of `steps` consecutive steps from each start row (checked with first_bad_start): the
// observation columns at positions 0 .. steps (o_{t+steps} bootstraps the last step), the other
// columns at 0 .. steps - 1, zeros past the episode's end, and the reward column (last) as n-step
// returns: step j looks k_j = min(n, T - t_j, steps - j) steps ahead, so that its bootstrap
// position j + k_j stays inside the window.
template <typename T>
void gather_windows(const Ring& ring, const ColumnView* columns, int64_t column_count,
                    int64_t obs_columns, const int64_t* start, int64_t count, int64_t steps,
                    int64_t n, double gamma, const WindowsOut<T>& out);

// The whole sequence sample: `count` start rows drawn from the sum tree (stratified, uniforms
// keyed by (seed, call) on the row stream, as replay_sample draws), their IS weights
// (tree_is_weights), the stored state at each start row into `hidden_out` (skipped when
// hidden.data is null) and the windows. Returns -1, or the first sample whose drawn row is not
// a stored transition (a tree inconsistent with the episode table): nothing is read past it.
template <typename T>
int64_t sample_windows(const Ring& ring, int64_t seed, int64_t call, double beta, bool batch_max,
                       const ColumnView* columns, int64_t column_count, int64_t obs_columns,
                       const ColumnView& hidden, int64_t count, int64_t steps, int64_t n,
                       double gamma, int64_t* index, float* weight, uint8_t* hidden_out,
                       const WindowsOut<T>& out);

}  // namespace pyrl::kernels
