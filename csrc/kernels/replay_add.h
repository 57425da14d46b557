#pragma once
// Adding to the ring (replay_add, replay_add_episode, replay_end_episodes) as kernel bodies
// (csrc/kernels/grid.h). The CPU ops keep their loops (replay_cpu.cpp); tests/test_grid.py runs
// these bodies through the CPU grid runner, in launch order and shuffled, against them, bit for
// bit.
//
//   add:          1. thread e stages env e's step (envs write disjoint stage rows) and says
//                    whether its episode ends (terminated, truncated or a full stage);
//                 2. one thread commits the ending episodes in env order: each claim evicts
//                    whole episodes and advances the cursor, which the next claim reads, so the
//                    commits are sequential (as on the CPU); it writes their rows and leaves.
//   add_episode, end_episodes: one thread, the same claim and writes.
// The single-thread phases are correct and sync-free, not fast: a commit copies its episode's
// rows on one GPU thread. Steps of many envs, the common GPU case, stage in parallel; episodes
// end rarely.
#include <cstdint>
#include <cstring>

#include "replay.h"
#include "replay_sample.h"

namespace pyrl::kernels {

// Stage (replay.h) by value.
struct StageArrays {
  int64_t envs = 0;
  int64_t horizon = 0;
  uint8_t* data[kMaxColumns] = {};  // per column, [envs, horizon, row]
  int64_t* length = nullptr;        // [envs]
};

inline StageArrays stage_arrays(const Stage& stage, int64_t columns) {
  StageArrays out;
  out.envs = stage.envs;
  out.horizon = stage.horizon;
  for (int64_t i = 0; i < columns; ++i) out.data[i] = stage.data[i];
  out.length = stage.length;
  return out;
}

// StepInput (replay.h) by value.
struct StepArrays {
  const uint8_t* step[kMaxColumns] = {};       // per column, [envs, row]
  const uint8_t* final_obs[kMaxColumns] = {};  // per observation column, [envs, row]
  const bool* terminated = nullptr;
  const bool* truncated = nullptr;
  const bool* skip = nullptr;  // or null
};

inline StepArrays step_arrays(const StepInput& input, int64_t columns, int64_t obs_columns) {
  StepArrays out;
  for (int64_t i = 0; i < columns; ++i) out.step[i] = input.step[i];
  for (int64_t i = 0; i < obs_columns; ++i) out.final_obs[i] = input.final_obs[i];
  out.terminated = input.terminated;
  out.truncated = input.truncated;
  out.skip = input.skip;
  return out;
}

struct StageStepBody {
  ColumnArrays columns;
  StageArrays stage;
  StepArrays input;
  bool* commit;  // [envs] out: the env's episode ends at this step

  PYRL_HD int64_t threads() const { return stage.envs; }
  PYRL_HD void operator()(int64_t e) const {
    commit[e] = false;
    if (input.skip != nullptr && input.skip[e]) return;
    const int64_t t = stage.length[e];
    for (int64_t i = 0; i < columns.count; ++i) {
      const int64_t rb = columns.row_bytes[i];
      ::memcpy(stage.data[i] + (e * stage.horizon + t) * rb, input.step[i] + e * rb,
               static_cast<size_t>(rb));
    }
    // A full stage commits the episode so far as truncated (see replay_add_step).
    commit[e] = input.terminated[e] || input.truncated[e] || t + 1 >= stage.horizon;
    if (!commit[e]) stage.length[e] = t + 1;
  }
};

struct CommitStepsBody {
  Ring ring;
  double alpha;
  ColumnArrays columns;
  StageArrays stage;
  StepArrays input;
  const bool* commit;
  int64_t* cut;  // [1] out: the pieces committed because their stage filled up

  PYRL_HD int64_t threads() const { return 1; }
  PYRL_HD void operator()(int64_t) const {
    const double leaf = priority_leaf(*ring.max_priority, alpha);
    int64_t pieces = 0;
    for (int64_t e = 0; e < stage.envs; ++e) {
      if (!commit[e]) continue;
      const bool terminated = input.terminated[e];
      pieces += !terminated && !input.truncated[e];
      commit_staged_episode(ring, leaf, columns, stage.data, stage.horizon, input.final_obs, e,
                            stage.length[e] + 1, terminated);
      stage.length[e] = 0;
    }
    *cut = pieces;
  }
};

// One episode into the ring: `values[i]` (from row `first_row` on) holds steps + 1 rows for
// observation columns, `steps` for the others; with td_abs ([steps], or null), its transitions
// take the priorities an update would give them (replay_add_episode).
PYRL_HD inline void add_episode_rows(const Ring& ring, const ReplayConfig& config,
                                     const ColumnArrays& columns, const uint8_t* const* values,
                                     int64_t first_row, int64_t steps, bool terminated,
                                     const double* td_abs) {
  const double leaf = priority_leaf(*ring.max_priority, config.alpha);
  const int64_t start = ring_claim_episode(ring, steps, terminated, leaf);
  for (int64_t i = 0; i < columns.count; ++i) {
    const int64_t rb = columns.row_bytes[i];
    const bool obs = i < columns.obs;
    ring_write_rows(columns.data[i], rb, columns.stride[i], ring.capacity, start,
                    values[i] + first_row * rb, obs ? steps + 1 : steps);
    if (!obs) ::memset(columns.at(i, (start + steps) % ring.capacity), 0, static_cast<size_t>(rb));
  }
  if (td_abs == nullptr) return;
  double highest = *ring.max_priority;
  const int64_t leaves = ring.layout.leaf_offset();
  for (int64_t t = 0; t < steps; ++t) {
    const double p = clip_priority(td_abs[t], config.eps, config.p_min, config.p_max);
    highest = highest < p ? p : highest;
    const double value = priority_leaf(p, config.alpha);
    const int64_t row = (start + t) % ring.capacity;
    ring.sum_tree[leaves + row] = value;
    ring.min_tree[leaves + row] = tree_min_leaf(value);
  }
  for (int level = ring.layout.leaf_level() - 1; level >= 0; --level) {
    const int shift = 3 * (ring.layout.leaf_level() - level);
    int64_t previous = -1;
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t node = ((start + t) % ring.capacity) >> shift;
      if (node == previous) continue;  // runs of neighbouring rows share their ancestors
      tree_refresh_node(ring.layout, ring.sum_tree, ring.min_tree, level, node);
      previous = node;
    }
  }
  *ring.max_priority = highest;
}

struct AddEpisodeBody {
  Ring ring;
  ReplayConfig config;
  ColumnArrays columns;
  const uint8_t* values[kMaxColumns];
  int64_t steps;
  bool terminated;
  const double* td_abs;

  PYRL_HD int64_t threads() const { return 1; }
  PYRL_HD void operator()(int64_t) const {
    add_episode_rows(ring, config, columns, values, 0, steps, terminated, td_abs);
  }
};

struct EndEpisodesBody {
  Ring ring;
  ReplayConfig config;
  ColumnArrays columns;
  StageArrays stage;
  int64_t* stored;  // [1] out

  PYRL_HD int64_t threads() const { return 1; }
  PYRL_HD void operator()(int64_t) const {
    int64_t count = 0;
    for (int64_t e = 0; e < stage.envs; ++e) {
      const int64_t length = stage.length[e];
      stage.length[e] = 0;
      if (length < 2) continue;
      // The staged observations o_0 .. o_{T-1} are the episode's T rows; its last step is dropped.
      add_episode_rows(ring, config, columns, stage.data, e * stage.horizon, length - 1, false,
                       nullptr);
      ++count;
    }
    *stored = count;
  }
};

// An add as its launches; `commit` is [envs] and `cut` [1] scratch.
template <typename Launch>
void add_step_in_phases(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                        const Stage& stage, const StepInput& input, bool* commit, int64_t* cut,
                        const Launch& launch) {
  const ColumnArrays cols = column_arrays(columns);
  const StageArrays staged = stage_arrays(stage, columns.count);
  const StepArrays step = step_arrays(input, columns.count, columns.obs);
  launch(StageStepBody{cols, staged, step, commit});
  launch(CommitStepsBody{ring, config.alpha, cols, staged, step, commit, cut});
}

}  // namespace pyrl::kernels
