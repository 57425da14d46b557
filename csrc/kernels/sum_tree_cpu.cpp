// Batched sum/min tree updates and stratified draws on the CPU (layout in sum_tree.h).
#include <algorithm>
#include <cmath>

#include "sum_tree.h"

namespace pyrl::kernels {
namespace {

// Samples descend together, one level at a time, so the cache misses of a batch overlap instead
// of queueing behind each other (DESIGN.md: 8-ary tree, level-synchronous descent).
constexpr int64_t kDescentChunk = 256;

}  // namespace

void tree_set_leaves(const TreeLayout& layout, double* sum, double* mn, const int64_t* index,
                     const double* leaf, int64_t count) {
  const int64_t leaves = layout.leaf_offset();
  for (int64_t j = 0; j < count; ++j) {  // in order: of repeated rows, the last write wins
    sum[leaves + index[j]] = leaf[j];
    mn[leaves + index[j]] = tree_min_leaf(leaf[j]);
  }
  for (int level = layout.leaf_level() - 1; level >= 0; --level) {
    const int shift = 3 * (layout.leaf_level() - level);
    int64_t previous = -1;
    for (int64_t j = 0; j < count; ++j) {
      const int64_t node = index[j] >> shift;
      if (node == previous) continue;  // runs of neighbouring rows share their ancestors
      tree_refresh_node(layout, sum, mn, level, node);
      previous = node;
    }
  }
}

void tree_sample_stratified(const TreeLayout& layout, const double* sum, const double* mn,
                            const double* uniform, int64_t count, int64_t* index) {
  const double total = sum[0];
  const double below_total = std::nextafter(total, 0.0);
  const double stratum = total / static_cast<double>(count);
  double mass[kDescentChunk];
  int64_t node[kDescentChunk];
  for (int64_t base = 0; base < count; base += kDescentChunk) {
    const int64_t chunk = std::min(kDescentChunk, count - base);
    for (int64_t j = 0; j < chunk; ++j) {
      const double u = (static_cast<double>(base + j) + uniform[base + j]) * stratum;
      mass[j] = std::min(u, below_total);
      node[j] = 0;
    }
    for (int level = 0; level < layout.leaf_level(); ++level) {
      const double* children = sum + layout.offset[level + 1];
      const bool prefetch = level + 2 < layout.levels;
      for (int64_t j = 0; j < chunk; ++j) {
        node[j] = tree_in_level(layout, level, node[j]);
        node[j] =
            kTreeFanout * node[j] + tree_pick_child(children + kTreeFanout * node[j], mass[j]);
        if (!prefetch) continue;
        const int64_t grandchildren = layout.offset[level + 2] + kTreeFanout * node[j];
        __builtin_prefetch(sum + grandchildren);
        // A priority update of the drawn rows usually follows and refreshes this same path in
        // the min tree too: fetching it now overlaps those misses with the descent's own.
        if (mn != nullptr) __builtin_prefetch(mn + grandchildren);
      }
    }
    std::copy(node, node + chunk, index + base);
  }
}

void tree_is_weights(const TreeLayout& layout, const double* sum, const double* mn,
                     const int64_t* index, int64_t count, double beta, bool batch_max,
                     float* weight) {
  const double* leaves = sum + layout.leaf_offset();
  const double smallest = mn[0];
  float largest = 0.0f;
  for (int64_t j = 0; j < count; ++j) {
    // In float: the weights are float32 anyway, and powf costs a third of pow; none at beta 0
    // or 1 (where an annealed beta ends), whose powers are exact.
    const float ratio = static_cast<float>(smallest / leaves[index[j]]);
    weight[j] = beta == 0.0   ? 1.0f
                : beta == 1.0 ? ratio
                              : std::pow(ratio, static_cast<float>(beta));
    largest = std::max(largest, weight[j]);
  }
  if (batch_max && largest > 0.0f) {
    for (int64_t j = 0; j < count; ++j) weight[j] /= largest;
  }
}

}  // namespace pyrl::kernels
