#pragma once
// Sum and min trees over the leaves of a prioritized replay buffer, 8-ary, float64.
//
//   level 0   [ S  . . . . . . . ]                      root (padded to 8 like every level)
//   level 1   [ s0 s1 s2 s3 s4 s5 s6 s7 ]               node i at level l has the 8 children
//   level 2   [ s00 .. s07 | s10 .. s17 | ... ]          8i .. 8i+7 at level l+1
//   ...
//   leaves    [ p0 p1 ... p_{C-1} 0 0 ]                 p = priority^alpha, 0 for rows that
//                                                       cannot be sampled
//
// All levels live in one flat array, root first; every level is padded to a multiple of 8, so the
// 8 children of a node fill one 64-byte cache line and a 2^20-leaf tree is 8 levels deep instead
// of 21 (DESIGN.md, performance notes). The min tree has the same layout; its empty leaves hold
// +inf, so its root is the smallest non-zero priority.
//
// A parent is always recomputed from its 8 children, left to right, never updated by deltas:
// sums do not drift, and a descent that accumulates the same children in the same order reaches
// exactly the parent's value, so a draw below the root always lands on a non-zero leaf.
#include <cstdint>

#include "macros.h"

namespace pyrl::kernels {

constexpr int kTreeFanout = 8;
constexpr int kTreeMaxLevels = 24;  // 8^23 leaves: far beyond any int64 capacity in practice

struct TreeLayout {
  int64_t capacity = 0;                 // leaves in use (buffer rows)
  int levels = 0;                       // including the root level and the leaf level
  int64_t offset[kTreeMaxLevels] = {};  // start of each level in the flat array
  int64_t width[kTreeMaxLevels] = {};   // nodes in each level (a multiple of 8)
  int64_t size = 0;                     // total length of the flat array

  PYRL_HD int leaf_level() const { return levels - 1; }
  PYRL_HD int64_t leaf_offset() const { return offset[levels - 1]; }
};

inline int64_t round_up8(int64_t n) { return (n + kTreeFanout - 1) / kTreeFanout * kTreeFanout; }

inline TreeLayout tree_layout(int64_t capacity) {
  // Widths bottom-up: the leaves, then ceil(width / 8) parents per level, until one node.
  int64_t widths[kTreeMaxLevels];
  int n = 0;
  int64_t width = round_up8(capacity < 1 ? 1 : capacity);
  widths[n++] = width;
  while (width > kTreeFanout) {
    width = round_up8((width + kTreeFanout - 1) / kTreeFanout);
    widths[n++] = width;
  }
  widths[n++] = kTreeFanout;  // the root level: one node, padded
  TreeLayout layout;
  layout.capacity = capacity;
  layout.levels = n;
  int64_t offset = 0;
  for (int l = 0; l < n; ++l) {
    layout.width[l] = widths[n - 1 - l];
    layout.offset[l] = offset;
    offset += layout.width[l];
  }
  layout.size = offset;
  return layout;
}

PYRL_HD inline double min2(double a, double b) { return b < a ? b : a; }

// A min-tree leaf: the leaf itself, or +inf for a row without priority (never the minimum).
PYRL_HD inline double tree_min_leaf(double leaf) {
  return leaf > 0.0 ? leaf : __builtin_huge_val();
}

// Recomputes node `node` of `level` (not the leaf level) from its 8 children, in both trees.
PYRL_HD inline void tree_refresh_node(const TreeLayout& layout, double* sum, double* mn, int level,
                                      int64_t node) {
  const int64_t first = layout.offset[level + 1] + kTreeFanout * node;
  double s = 0.0;
  double m = __builtin_huge_val();  // +inf, on the host and the device alike
  for (int k = 0; k < kTreeFanout; ++k) {
    s += sum[first + k];
    m = min2(m, mn[first + k]);
  }
  sum[layout.offset[level] + node] = s;
  mn[layout.offset[level] + node] = m;
}

// One descent step: given the mass `u` (0 <= u < node's sum) and the node's 8 children, returns
// the child holding u and leaves in u the mass left inside that child.
PYRL_HD inline int tree_pick_child(const double* children, double& u) {
  double before = 0.0;
  int pick = 0;
  double acc = 0.0;
  for (int k = 0; k < kTreeFanout; ++k) {
    acc += children[k];
    // The first k whose running sum passes u; zero children never pass it.
    const bool past = acc <= u;
    pick += past;
    before = past ? acc : before;
  }
  if (pick >= kTreeFanout) pick = kTreeFanout - 1;  // unreachable while u < the parent's sum
  double rest = u - before;
  // Subtraction can round up to the child's own sum; keep the draw strictly inside the child.
  if (rest >= children[pick]) rest = children[pick] * (1.0 - 0x1p-52);
  u = rest;
  return pick;
}

// `node` of `level`, kept to a node whose 8 children exist at level + 1. A consistent tree never
// needs it (padding nodes hold 0 and are never picked); a tree whose parents do not match their
// children (a caller's tensor) could otherwise lead a descent past the end of the next level.
PYRL_HD inline int64_t tree_in_level(const TreeLayout& layout, int level, int64_t node) {
  const int64_t last = layout.width[level + 1] / kTreeFanout - 1;
  return node < last ? node : last;
}

// The leaf holding the mass `mass` (0 <= mass < the root's sum): one descent.
PYRL_HD inline int64_t tree_descend(const TreeLayout& layout, const double* sum, double mass) {
  int64_t node = 0;
  for (int level = 0; level < layout.leaf_level(); ++level) {
    node = tree_in_level(layout, level, node);
    node = kTreeFanout * node +
           tree_pick_child(sum + layout.offset[level + 1] + kTreeFanout * node, mass);
  }
  return node;
}

// Sets leaves [first, first + count) to `leaf` (no wrap) and refreshes their ancestors.
PYRL_HD inline void tree_fill_range(const TreeLayout& layout, double* sum, double* mn,
                                    int64_t first, int64_t count, double leaf) {
  if (count <= 0) return;
  const int64_t leaves = layout.leaf_offset();
  for (int64_t row = first; row < first + count; ++row) {
    sum[leaves + row] = leaf;
    mn[leaves + row] = tree_min_leaf(leaf);
  }
  int64_t lo = first;
  int64_t hi = first + count - 1;
  for (int level = layout.leaf_level() - 1; level >= 0; --level) {
    lo >>= 3;
    hi >>= 3;
    for (int64_t node = lo; node <= hi; ++node) tree_refresh_node(layout, sum, mn, level, node);
  }
}

// Batched CPU entry points (sum_tree_cpu.cpp). `leaf` values are already priority^alpha.
void tree_set_leaves(const TreeLayout& layout, double* sum, double* mn, const int64_t* index,
                     const double* leaf, int64_t count);
// Stratified proportional draw: sample j takes the mass (j + uniform[j]) * S / count. With `mn`
// given, the min tree's nodes along each path are prefetched for a priority update to come.
void tree_sample_stratified(const TreeLayout& layout, const double* sum, const double* mn,
                            const double* uniform, int64_t count, int64_t* index);
// Importance weights of drawn leaves: (P_min / P)^beta = (min leaf / leaf)^beta, or divided by
// the batch's largest weight with `batch_max`.
void tree_is_weights(const TreeLayout& layout, const double* sum, const double* mn,
                     const int64_t* index, int64_t count, double beta, bool batch_max,
                     float* weight);

}  // namespace pyrl::kernels
