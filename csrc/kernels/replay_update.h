#pragma once
// The priority update (replay_update_priorities) as the phases a GPU runs, each a kernel body of
// one thread per entry (csrc/kernels/grid.h): the CPU op keeps its own loop (replay_cpu.cpp),
// and tests/test_grid.py runs these bodies through the CPU grid runner, in launch order and
// shuffled, against it, bit for bit.
//
//   1. entries:   thread j decides whether entry j applies (a transition row still owned by the
//                 generation it was sampled with) and clips its priority.
//   2. leaves:    thread j writes its row's leaf unless a later applied entry has the same row,
//                 so of repeated rows the last wins, as on the CPU, whatever the thread order.
//   3. totals:    one thread raises max_priority and counts applied and dropped entries.
//   4. ancestors: one launch per tree level, bottom up; thread j recomputes its row's ancestor
//                 at that level from its 8 children unless an earlier applied entry shares it.
//                 A level reads only the level below, which the previous launch finished.
//
// tree_update (the exposed tree op) is phases 2 and 4 without the PER rules: leaves as given,
// every entry applied (tree_update_in_phases).
//
// Only the paths of the updated leaves are touched: O(B log_8 C) node writes, no rebuild. The
// duplicate tests cost O(B) per thread, O(B^2) per phase: fine for batches of hundreds to a few
// thousand rows.
#include <cstdint>

#include "ring.h"
#include "sum_tree.h"

namespace pyrl::kernels {

// The settings a priority update reads (ReplayConfig's priority slots).
struct PrioritySettings {
  double alpha, eps, p_min, p_max;
};

template <typename T>
struct UpdateEntriesBody {
  Ring ring;
  PrioritySettings settings;
  const int64_t* index;       // [count] rows, each in [0, C) (checked by the caller)
  const int64_t* generation;  // [count]
  const T* td_abs;            // [count, heads]
  int64_t count, heads;
  bool* applied;     // [count] out
  double* priority;  // [count] out: the clipped priority of an applied entry

  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    const int64_t row = index[j];
    const int64_t id = generation[j];
    bool live = id >= 0 && ring.row_episode[row] == id;
    if (live) {
      const int64_t* record = ring.episode(id);
      live = ring.step_of(row, record) < record[kEpisodeLength];
    }
    applied[j] = live;
    double mean = 0.0;
    for (int64_t h = 0; h < heads; ++h) mean += static_cast<double>(td_abs[j * heads + h]);
    mean /= static_cast<double>(heads);
    priority[j] = live ? clip_priority(mean, settings.eps, settings.p_min, settings.p_max) : 0.0;
  }
};

// Also tree_update's leaves: alpha 1 (the leaves as given, priority_leaf passes them through)
// and no `applied` (every entry applies).
struct UpdateLeavesBody {
  TreeLayout layout;
  double* sum_tree;
  double* min_tree;
  double alpha;
  const int64_t* index;
  const bool* applied;  // or null: all
  const double* priority;
  int64_t count;

  PYRL_HD bool applies(int64_t j) const { return applied == nullptr || applied[j]; }
  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    if (!applies(j)) return;
    for (int64_t later = j + 1; later < count; ++later) {
      if (applies(later) && index[later] == index[j]) return;  // the last write wins
    }
    const double leaf = priority_leaf(priority[j], alpha);
    sum_tree[layout.leaf_offset() + index[j]] = leaf;
    min_tree[layout.leaf_offset() + index[j]] = tree_min_leaf(leaf);
  }
};

struct UpdateTotalsBody {
  double* max_priority;
  int64_t* counters;
  const bool* applied;
  const double* priority;
  int64_t count;

  PYRL_HD int64_t threads() const { return 1; }
  PYRL_HD void operator()(int64_t) const {
    double highest = *max_priority;
    int64_t taken = 0;
    for (int64_t j = 0; j < count; ++j) {
      if (!applied[j]) continue;
      highest = priority[j] > highest ? priority[j] : highest;
      ++taken;
    }
    *max_priority = highest;
    counters[kUpdatesApplied] += taken;
    counters[kUpdatesDropped] += count - taken;
  }
};

struct RefreshAncestorsBody {
  TreeLayout layout;
  double* sum_tree;
  double* min_tree;
  const int64_t* index;
  const bool* applied;  // or null: all (tree_update)
  int64_t count;
  int level;  // the level refreshed: its nodes are recomputed from level + 1

  PYRL_HD bool applies(int64_t j) const { return applied == nullptr || applied[j]; }
  PYRL_HD int64_t threads() const { return count; }
  PYRL_HD void operator()(int64_t j) const {
    if (!applies(j)) return;
    const int shift = 3 * (layout.leaf_level() - level);
    const int64_t node = index[j] >> shift;
    for (int64_t earlier = 0; earlier < j; ++earlier) {
      if (applies(earlier) && (index[earlier] >> shift) == node) return;  // its thread does it
    }
    tree_refresh_node(layout, sum_tree, min_tree, level, node);
  }
};

// The update as its launches, in order: `launch(body)` runs one body over its grid (the CPU grid
// runner, or a CUDA launch on the current stream). `priority` is [count] scratch.
template <typename T, typename Launch>
void update_priorities_in_phases(const Ring& ring, const PrioritySettings& settings,
                                 const int64_t* index, const int64_t* generation, const T* td_abs,
                                 int64_t count, int64_t heads, bool* applied, double* priority,
                                 const Launch& launch) {
  launch(UpdateEntriesBody<T>{ring, settings, index, generation, td_abs, count, heads, applied,
                              priority});
  launch(UpdateLeavesBody{ring.layout, ring.sum_tree, ring.min_tree, settings.alpha, index, applied,
                          priority, count});
  launch(UpdateTotalsBody{ring.max_priority, ring.counters, applied, priority, count});
  for (int level = ring.layout.leaf_level() - 1; level >= 0; --level) {
    launch(RefreshAncestorsBody{ring.layout, ring.sum_tree, ring.min_tree, index, applied, count,
                                level});
  }
}

// tree_update as its launches: `leaves` is the checked call (UpdateLeavesBody with alpha 1 and
// no applied mask, its `priority` the leaves).
template <typename Launch>
void tree_update_in_phases(const UpdateLeavesBody& leaves, const Launch& launch) {
  launch(leaves);
  for (int level = leaves.layout.leaf_level() - 1; level >= 0; --level) {
    launch(RefreshAncestorsBody{leaves.layout, leaves.sum_tree, leaves.min_tree, leaves.index,
                                nullptr, leaves.count, level});
  }
}

}  // namespace pyrl::kernels
