#pragma once
// The fused replay sample (replay_sample) as the phases a GPU runs, each a kernel body of one
// thread per sample (csrc/kernels/grid.h). The CPU op keeps its own batched loops
// (replay_cpu.cpp: level-synchronous descents, prefetching several samples ahead, a pass per
// column), built from the same per-sample rules below; tests/test_grid.py runs these bodies
// through the CPU grid runner, in launch order and shuffled, against it, bit for bit.
//
//   1. rows:    thread j draws sample j's row: given, a uniform buffer's direct draws (up to
//               kDirectTries uniform rows, then the descent), or the stratified descent.
//   2. windows: thread j reads its row's episode, draws floating k and the HER decision, and
//               writes the window (boot, k, discount, terminal), its return and every gather.
//   3. weights: thread j writes its IS weight; with batch_max, one thread finds the largest
//               (4) and thread j divides by it (5).
// tree_sample (the exposed tree op) draws rows from given uniforms (TreeDrawBody) and weighs them
// the same way (TreeWeightsBody; LargestWeightBody, DivideWeightsBody).
//
// A sample whose row is not a stored transition (an inconsistent tree) sets bad[j]; the caller
// reports the first.
//
// A body carries everything by value (a launch copies its parameters to the device): the column
// and output pointer lists are fixed arrays (ColumnArrays, SampleOutArrays), not host arrays.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "draws.h"
#include "replay.h"
#include "window.h"

namespace pyrl::kernels {

// The most columns a kernel body carries (observation fields, other fields and the reward).
constexpr int64_t kMaxColumns = 32;

// Columns (replay.h) by value.
struct ColumnArrays {
  int64_t count = 0;
  int64_t obs = 0;
  uint8_t* data[kMaxColumns] = {};
  int64_t row_bytes[kMaxColumns] = {};
  int64_t stride[kMaxColumns] = {};

  PYRL_HD uint8_t* at(int64_t i, int64_t row) const { return data[i] + row * stride[i]; }
};

// The caller checks columns.count <= kMaxColumns.
inline ColumnArrays column_arrays(const Columns& columns) {
  ColumnArrays out;
  out.count = columns.count;
  out.obs = columns.obs;
  for (int64_t i = 0; i < columns.count; ++i) {
    out.data[i] = columns.data[i];
    out.row_bytes[i] = columns.row_bytes[i];
    out.stride[i] = columns.stride[i];
  }
  return out;
}

// SampleOut (replay.h) by value.
template <typename T>
struct SampleOutArrays {
  int64_t* index;
  int64_t* generation;
  float* weight;
  int64_t* boot;
  int64_t* her_row;
  T* reward;
  T* discount;
  int64_t* steps;
  bool* terminal;
  uint8_t* fields[kMaxColumns];
  uint8_t* next_obs[kMaxColumns];
};

template <typename T>
SampleOutArrays<T> sample_out_arrays(const SampleOut<T>& out, const Columns& columns) {
  SampleOutArrays<T> arrays{out.index,  out.generation, out.weight, out.boot,     out.her_row,
                            out.reward, out.discount,   out.steps,  out.terminal, {},
                            {}};
  for (int64_t i = 0; i + 1 < columns.count; ++i) arrays.fields[i] = out.fields[i];
  for (int64_t i = 0; i < columns.obs; ++i) arrays.next_obs[i] = out.next_obs[i];
  return arrays;
}

// The window of up to k steps from `row`, clipped at its episode's end.
struct RingWindow {
  int64_t steps;
  int64_t boot;
  double discount;  // gamma^steps, 0 when the window's last step is a true terminal
  bool terminal;
};

PYRL_HD inline RingWindow ring_window(const Ring& ring, int64_t row, int64_t t,
                                      const int64_t* record, int64_t k, double gamma) {
  const int64_t length = record[kEpisodeLength];
  const int64_t steps = k < length - t ? k : length - t;
  const bool terminal = record[kEpisodeTerminated] != 0 && t + steps == length;
  const int64_t boot = row + steps;
  return {steps, boot >= ring.capacity ? boot - ring.capacity : boot,
          terminal ? 0.0 : power(gamma, steps), terminal};
}

// `random` HER goals: a uniformly drawn row, moved forward to the next stored one (rows are only
// free at the start or behind an eviction, so this is uniform up to those gaps). -1 if the ring
// holds no row at all, which a buffer with transitions never is; the walk is bounded regardless.
PYRL_HD inline int64_t random_stored_row(const Ring& ring, double u) {
  int64_t row = static_cast<int64_t>(u * static_cast<double>(ring.capacity));
  row = row < ring.capacity - 1 ? row : ring.capacity - 1;
  for (int64_t tries = 0; tries < ring.capacity; ++tries) {
    if (ring.row_episode[row] >= 0) return row;
    row = row + 1 == ring.capacity ? 0 : row + 1;
  }
  return -1;
}

// The return of a sample's window, from `row` to its bootstrap row `boot`, into ret[heads]:
// the stored rewards summed, or, given a relabeled goal (`goal` non-null: a built-in reward),
// the rewards of reaching o_{t+1} .. o_{t+k} recomputed against it, the window ending at the
// first success with terminal_on_success. Returns the steps it took when it ended at the new
// goal (a true terminal there), else -1. The CPU sample and SampleWindowsBody both use it.
template <typename T>
PYRL_HD inline int64_t window_return(const Ring& ring, const ReplayConfig& config, const T* reward,
                                     int64_t reward_stride, int64_t heads, const uint8_t* achieved,
                                     int64_t achieved_stride, const uint8_t* goal, int64_t row,
                                     int64_t boot, T* ret) {
  int64_t taken = (boot - row + ring.capacity) % ring.capacity;
  if (goal == nullptr) {
    const int64_t to_end = ring.capacity - row;
    const int64_t head_piece = taken < to_end ? taken : to_end;  // the rest wraps to row 0
    for (int64_t h = 0; h < heads; ++h) {
      WindowSum acc;
      window_accumulate(acc, reward + row * reward_stride + h, reward_stride, head_piece,
                        config.gamma);
      window_accumulate(acc, reward + h, reward_stride, taken - head_piece, config.gamma);
      ret[h] = static_cast<T>(acc.sum);
    }
    return -1;
  }
  const HerConfig& her = config.her;
  const auto reached = [&](int64_t l) {  // the achieved goal of o_{t+l+1}
    const int64_t next = row + l + 1;
    return achieved + (next >= ring.capacity ? next - ring.capacity : next) * achieved_stride;
  };
  bool success = false;
  for (int64_t l = 0; her.terminal_on_success && l < taken; ++l) {
    if (sparse_l2_reward(her.goal_type, reached(l), goal, her.goal_dim, her.params[0]) == 0.0) {
      success = true;
      taken = l + 1;
      break;
    }
  }
  for (int64_t h = 0; h < heads; ++h) {
    acc_t sum = 0, factor = 1;
    for (int64_t l = 0; l < taken; ++l) {
      sum += factor * her_reward(her, reached(l), goal, h);
      factor *= config.gamma;
    }
    ret[h] = static_cast<T>(sum);
  }
  return success ? taken : -1;
}

// How phase 1 draws rows.
enum SampleRows : int {
  kRowsGiven = 0,   // episode mode, or rows a caller gives: copied
  kRowsDirect,      // a uniform buffer at least 1/kDirectMinFill full: direct draws
  kRowsStratified,  // the stratified proportional descent
};

struct SampleRowsBody {
  Ring ring;
  uint64_t key;
  int64_t count;
  int rows;              // SampleRows
  const int64_t* given;  // kRowsGiven: [count]
  int64_t* index;        // [count] out

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    if (rows == kRowsGiven) {
      index[j] = given[j];
      return;
    }
    const double total = ring.sum_tree[0];
    const double below_total = ::nextafter(total, 0.0);
    const double u = counter_uniform(key, kDrawRow, static_cast<uint64_t>(j));
    if (rows == kRowsStratified) {  // tree_sample_stratified's mass, sample by sample
      const double mass = (static_cast<double>(j) + u) * (total / static_cast<double>(count));
      index[j] = tree_descend(ring.layout, ring.sum_tree, mass < below_total ? mass : below_total);
      return;
    }
    const double* leaves = ring.sum_tree + ring.layout.leaf_offset();
    const double capacity = static_cast<double>(ring.capacity);
    const auto row_of = [&](double v) {
      const int64_t row = static_cast<int64_t>(v * capacity);
      return row < ring.capacity - 1 ? row : ring.capacity - 1;
    };
    int64_t row = row_of(u);
    for (int64_t attempt = 1; leaves[row] <= 0.0 && attempt < kDirectTries; ++attempt) {
      row = row_of(counter_uniform(key, kDrawRow, static_cast<uint64_t>(attempt * count + j)));
    }
    if (leaves[row] <= 0.0) {  // direct_uniform_rows' fallback: its own mass formula
      const double mass = (static_cast<double>(j) + u) * total / static_cast<double>(count);
      row = tree_descend(ring.layout, ring.sum_tree, mass < below_total ? mass : below_total);
    }
    index[j] = row;
  }
};

// How a sample call draws its rows (the CPU op's own choice, replay_sample).
inline int sample_rows_mode(const Ring& ring, const ReplayConfig& config, bool given) {
  if (given) return kRowsGiven;
  if (config.alpha != 0.0) return kRowsStratified;
  const bool full_enough = !(ring.sum_tree[0] * static_cast<double>(kDirectMinFill) <
                             static_cast<double>(ring.capacity));
  return full_enough ? kRowsDirect : kRowsStratified;
}

template <typename T>
struct SampleWindowsBody {
  Ring ring;
  ReplayConfig config;
  ColumnArrays columns;
  uint64_t key;
  int64_t count;
  SampleOutArrays<T> out;  // index already drawn
  bool* bad;               // [count] out

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    bad[j] = false;
    const int64_t row = out.index[j];
    if (row < 0 || row >= ring.capacity) {
      bad[j] = true;
      return;
    }
    const int64_t id = ring.row_episode[row];
    out.generation[j] = id;
    if (id < 0) {
      bad[j] = true;
      return;
    }
    const int64_t* record = ring.episode(id);
    const int64_t t = ring.step_of(row, record);
    if (t >= record[kEpisodeLength]) {  // only transition rows carry priority
      bad[j] = true;
      return;
    }
    const uint64_t sample = static_cast<uint64_t>(j);
    int64_t k = config.floating ? floating_k(counter_uniform(key, kDrawLookahead, sample), config.n)
                                : config.n;
    const HerConfig& her = config.her;
    const bool relabels = her.strategy != kHerOff && her.ratio > 0.0;
    int64_t her_row = -1;
    if (relabels && counter_uniform(key, kDrawRelabel, sample) < her.ratio) {
      const double u = counter_uniform(key, kDrawGoal, sample);
      her_row = her.strategy == kHerRandom
                    ? random_stored_row(ring, u)
                    : (record[kEpisodeStart] +
                       her_goal_step(her.strategy, t, record[kEpisodeLength], u)) %
                          ring.capacity;
      if (her_row >= 0 && !her.recompute) k = 1;
    }
    out.her_row[j] = her_row;
    const RingWindow w = ring_window(ring, row, t, record, k, config.gamma);
    int64_t boot = w.boot;
    T discount = static_cast<T>(w.discount);
    int64_t steps = w.steps;
    bool terminal = w.terminal;

    const int64_t reward_column = columns.count - 1;
    const T* reward = reinterpret_cast<const T*>(columns.data[reward_column]);
    const int64_t heads = columns.row_bytes[reward_column] / static_cast<int64_t>(sizeof(T));
    const int64_t reward_stride = columns.stride[reward_column] / static_cast<int64_t>(sizeof(T));
    T* ret = out.reward + j * heads;
    // The goal columns' rows, in bytes (goals are of any dtype and shape).
    const uint8_t* achieved = relabels ? columns.data[her.achieved_column] : nullptr;
    const int64_t achieved_stride = relabels ? columns.stride[her.achieved_column] : 0;
    const uint8_t* goal = her_row >= 0 && her.reward != kRewardStored
                              ? achieved + her_row * achieved_stride
                              : nullptr;
    const int64_t ended = window_return(ring, config, reward, reward_stride, heads, achieved,
                                        achieved_stride, goal, row, boot, ret);
    if (ended >= 0) {  // reaching the new goal ends the window: a true terminal there
      const int64_t end = row + ended;
      boot = end >= ring.capacity ? end - ring.capacity : end;
      discount = T(0);
      steps = ended;
      terminal = true;
    }
    out.boot[j] = boot;
    out.discount[j] = discount;
    out.steps[j] = steps;
    out.terminal[j] = terminal;
    // The gathers: every field at the row, observations also at the bootstrap row.
    for (int64_t i = 0; i < reward_column; ++i) {
      const int64_t rb = columns.row_bytes[i];
      ::memcpy(out.fields[i] + j * rb, columns.at(i, row), static_cast<size_t>(rb));
      if (i < columns.obs) {
        ::memcpy(out.next_obs[i] + j * rb, columns.at(i, boot), static_cast<size_t>(rb));
      }
    }
    if (her_row >= 0) {  // the new goal, at the sample's own step and at the bootstrap step
      const int64_t goal_bytes = columns.row_bytes[her.achieved_column];
      const uint8_t* goal = achieved + her_row * achieved_stride;
      ::memcpy(out.fields[her.desired_column] + j * goal_bytes, goal,
               static_cast<size_t>(goal_bytes));
      ::memcpy(out.next_obs[her.desired_column] + j * goal_bytes, goal,
               static_cast<size_t>(goal_bytes));
    }
  }
};

// (P_min / P)^beta in float, as tree_is_weights computes it.
struct SampleWeightsBody {
  Ring ring;
  double beta;
  int64_t count;
  const int64_t* index;
  float* weight;

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    const int64_t row = index[j];
    if (row < 0 || row >= ring.capacity) {  // a bad sample (reported by phase 2): no read
      weight[j] = 0.0f;
      return;
    }
    const double* leaves = ring.sum_tree + ring.layout.leaf_offset();
    const float ratio = static_cast<float>(ring.min_tree[0] / leaves[row]);
    weight[j] = beta == 0.0 ? 1.0f : beta == 1.0 ? ratio : ::powf(ratio, static_cast<float>(beta));
  }
};

struct LargestWeightBody {
  const float* weight;
  int64_t count;
  float* largest;  // [1] out

  PYRL_HD int64_t threads() const { return 1; }
  PYRL_HD void operator()(int64_t) const {
    float top = 0.0f;
    for (int64_t j = 0; j < count; ++j) top = weight[j] > top ? weight[j] : top;
    *largest = top;
  }
};

struct DivideWeightsBody {
  const float* largest;
  int64_t count;
  float* weight;

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    if (*largest > 0.0f) weight[j] /= *largest;
  }
};

// tree_sample: the stratified draw of given uniforms (tree_sample_stratified's mass), then the
// IS weights (tree_is_weights, in float). `largest` is [1] scratch.
struct TreeDrawBody {
  TreeLayout layout;
  const double* sum_tree;
  const double* uniform;
  int64_t count;
  int64_t* index;

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    const double total = sum_tree[0];
    const double below_total = ::nextafter(total, 0.0);
    const double stratum = total / static_cast<double>(count);
    const double mass = (static_cast<double>(j) + uniform[j]) * stratum;
    index[j] = tree_descend(layout, sum_tree, mass < below_total ? mass : below_total);
  }
};

struct TreeWeightsBody {
  TreeLayout layout;
  const double* sum_tree;
  const double* min_tree;
  const int64_t* index;
  int64_t count;
  double beta;
  float* weight;

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    const float ratio = static_cast<float>(min_tree[0] / sum_tree[layout.leaf_offset() + index[j]]);
    weight[j] = beta == 0.0 ? 1.0f : beta == 1.0 ? ratio : ::powf(ratio, static_cast<float>(beta));
  }
};

// The sample as its launches, in order (see the top of the file): `launch(body)` runs one body
// over its grid; columns.count <= kMaxColumns (checked by the caller). `bad` is [count] and
// `largest` [1] scratch. Phases 2 and 3 read only phase 1's rows.
template <typename T, typename Launch>
void sample_in_phases(const Ring& ring, int64_t seed, int64_t call, const ReplayConfig& config,
                      const Columns& columns, int64_t count, const int64_t* given_rows,
                      const SampleOut<T>& out, bool* bad, float* largest, const Launch& launch) {
  const uint64_t key = draw_key(static_cast<uint64_t>(seed), static_cast<uint64_t>(call));
  launch(SampleRowsBody{ring, key, count, sample_rows_mode(ring, config, given_rows != nullptr),
                        given_rows, out.index});
  launch(SampleWindowsBody<T>{ring, config, column_arrays(columns), key, count,
                              sample_out_arrays(out, columns), bad});
  const double beta = given_rows != nullptr ? 0.0 : beta_at(config, call);
  launch(SampleWeightsBody{ring, beta, count, out.index, out.weight});
  if (config.batch_max) {
    launch(LargestWeightBody{out.weight, count, largest});
    launch(DivideWeightsBody{largest, count, out.weight});
  }
}

}  // namespace pyrl::kernels
