// The replay buffer's rules on the CPU (see replay.h): staging, committing, the fused sample,
// priority updates and the invariant check.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "draws.h"
#include "replay.h"
#include "replay_sample.h"
#include "window.h"

namespace pyrl::kernels {
namespace {

// Copies a row of `n` bytes with fixed-size moves, two overlapping ones for n up to 128 (a
// column's rows are all one size, so the branches predict): a libc memcpy call per small row
// cost more than the copy.
template <int64_t kWidth>
inline void copy_ends(uint8_t* dst, const uint8_t* src, int64_t n) {
  uint8_t head[kWidth], tail[kWidth];
  std::memcpy(head, src, kWidth);
  std::memcpy(tail, src + n - kWidth, kWidth);
  std::memcpy(dst, head, kWidth);
  std::memcpy(dst + n - kWidth, tail, kWidth);
}

inline void copy_row(uint8_t* dst, const uint8_t* src, int64_t n) {
  if (n > 128) {
    std::memcpy(dst, src, static_cast<size_t>(n));
  } else if (n > 64) {
    copy_ends<64>(dst, src, n);
  } else if (n > 32) {
    copy_ends<32>(dst, src, n);
  } else if (n > 16) {
    copy_ends<16>(dst, src, n);
  } else if (n >= 8) {
    copy_ends<8>(dst, src, n);
  } else if (n >= 4) {
    copy_ends<4>(dst, src, n);
  } else {
    for (int64_t b = 0; b < n; ++b) dst[b] = src[b];
  }
}

// Columns smaller than this are read without prefetching: they stay in the caches, where a
// prefetch is an instruction that buys nothing.
constexpr int64_t kPrefetchColumnsFrom = int64_t{4} << 20;

// Copies rows[0..count) of column i to dst, back to back.
void gather_rows(const Columns& columns, int64_t i, const int64_t* rows, int64_t count,
                 uint8_t* dst, int64_t capacity) {
  const int64_t rb = columns.row_bytes[i];
  if (rb == 0) return;
  const uint8_t* base = columns.data[i];
  const int64_t stride = columns.stride[i];
  if (capacity * stride < kPrefetchColumnsFrom) {
    for (int64_t j = 0; j < count; ++j) copy_row(dst + j * rb, base + rows[j] * stride, rb);
    return;
  }
  for (int64_t j = 0; j < std::min(count, kPrefetchAhead); ++j) {
    prefetch_bytes(base + rows[j] * stride, rb);
  }
  for (int64_t j = 0; j < count; ++j) {
    if (j + kPrefetchAhead < count) prefetch_bytes(base + rows[j + kPrefetchAhead] * stride, rb);
    copy_row(dst + j * rb, base + rows[j] * stride, rb);
  }
}

// Gives `rows` the priorities of absolute TD errors `td_abs` (clipped, leaf priority^alpha; of
// repeated rows the last wins) and raises max_priority to the largest: the one rule both
// priority updates and an episode's initial priorities follow.
void set_priorities(const Ring& ring, const ReplayConfig& config, const int64_t* rows,
                    const double* td_abs, int64_t count) {
  thread_local std::vector<double> leaves;  // scratch reused across calls
  leaves.resize(static_cast<size_t>(count));
  double highest = *ring.max_priority;
  for (int64_t j = 0; j < count; ++j) {
    const double p = clip_priority(td_abs[j], config.eps, config.p_min, config.p_max);
    highest = std::max(highest, p);
    leaves[j] = priority_leaf(p, config.alpha);
  }
  tree_set_leaves(ring.layout, ring.sum_tree, ring.min_tree, rows, leaves.data(), count);
  *ring.max_priority = highest;
}

// A uniform buffer (alpha 0: every transition row has leaf 1) draws rows directly: a row drawn
// uniformly from the ring, drawn again while it is not a transition, is uniform over the
// transitions, without a tree descent. A sample that finds none in kDirectTries attempts
// falls back to the stratified descent with its first uniform; a ring less than
// 1/kDirectMinFill full (where most attempts miss) descends for every sample.
void direct_uniform_rows(const Ring& ring, uint64_t key, int64_t count, int64_t* index) {
  const double* leaves = ring.sum_tree + ring.layout.leaf_offset();
  const double capacity = static_cast<double>(ring.capacity);
  const double total = ring.sum_tree[0];
  auto descend = [&](int64_t j) {
    const double u = counter_uniform(key, kDrawRow, j);
    const double mass = (static_cast<double>(j) + u) * total / static_cast<double>(count);
    return tree_descend(ring.layout, ring.sum_tree, std::min(mass, std::nextafter(total, 0.0)));
  };
  if (total * static_cast<double>(kDirectMinFill) < capacity) {
    thread_local std::vector<double> uniform;  // scratch reused across calls
    uniform.resize(static_cast<size_t>(count));
    for (int64_t j = 0; j < count; ++j) uniform[j] = counter_uniform(key, kDrawRow, j);
    tree_sample_stratified(ring.layout, ring.sum_tree, nullptr, uniform.data(), count, index);
    return;
  }
  auto row_of = [&](double u) {
    return std::min(static_cast<int64_t>(u * capacity), ring.capacity - 1);
  };
  for (int64_t j = 0; j < count; ++j) {  // first attempts, their leaves fetched together
    index[j] = row_of(counter_uniform(key, kDrawRow, j));
    __builtin_prefetch(leaves + index[j]);
  }
  for (int64_t j = 0; j < count; ++j) {
    int64_t attempt = 1;
    while (leaves[index[j]] <= 0.0 && attempt < kDirectTries) {
      index[j] = row_of(counter_uniform(key, kDrawRow, attempt * count + j));
      ++attempt;
    }
    if (leaves[index[j]] <= 0.0) index[j] = descend(j);
  }
}

}  // namespace

ReplayConfig replay_config(const double* values, int64_t count) {
  ReplayConfig config;
  config.alpha = values[kConfigAlpha];
  config.eps = values[kConfigEps];
  config.p_min = values[kConfigPMin];
  config.p_max = values[kConfigPMax];
  config.beta = values[kConfigBeta];
  config.beta_steps = static_cast<int64_t>(values[kConfigBetaSteps]);
  config.batch_max = values[kConfigBatchMax] != 0.0;
  config.n = static_cast<int64_t>(values[kConfigN]);
  config.gamma = values[kConfigGamma];
  config.floating = values[kConfigFloating] != 0.0;
  config.obs_columns = static_cast<int64_t>(values[kConfigObsColumns]);
  config.episode_select = static_cast<int64_t>(values[kConfigEpisodeSelect]);
  config.episode_max_draw = static_cast<int64_t>(values[kConfigEpisodeMaxDraw]);
  HerConfig& her = config.her;
  her.strategy = static_cast<int>(values[kConfigHerStrategy]);
  her.ratio = values[kConfigHerRatio];
  her.reward = static_cast<int>(values[kConfigHerReward]);
  her.achieved_column = static_cast<int64_t>(values[kConfigAchievedGoal]);
  her.desired_column = static_cast<int64_t>(values[kConfigDesiredGoal]);
  her.recompute = values[kConfigHerRecompute] != 0.0;
  her.terminal_on_success = values[kConfigHerTerminalOnSuccess] != 0.0;
  her.num_params = static_cast<int>(std::min<int64_t>(count - kConfigSlots, kHerMaxParams));
  std::copy(values + kConfigSlots, values + kConfigSlots + her.num_params, her.params);
  return config;
}

// ---- adding -----------------------------------------------------------------------------------

int64_t replay_add_step(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                        const Stage& stage, const StepInput& input) {
  const double leaf = priority_leaf(*ring.max_priority, config.alpha);
  int64_t cut = 0;
  for (int64_t e = 0; e < stage.envs; ++e) {
    if (input.skip != nullptr && input.skip[e]) continue;
    const int64_t t = stage.length[e];
    for (int64_t i = 0; i < columns.count; ++i) {
      const int64_t rb = columns.row_bytes[i];
      std::memcpy(stage.data[i] + (e * stage.horizon + t) * rb, input.step[i] + e * rb,
                  static_cast<size_t>(rb));
    }
    const bool terminated = input.terminated[e];
    // A full stage commits the episode so far as truncated: it bootstraps from the step's next
    // observation, and the environment's next step starts a new episode there.
    if (!terminated && !input.truncated[e] && t + 1 < stage.horizon) {
      stage.length[e] = t + 1;
      continue;
    }
    cut += !terminated && !input.truncated[e];
    commit_staged_episode(ring, leaf, columns, stage.data, stage.horizon, input.final_obs, e, t + 1,
                          terminated);
    stage.length[e] = 0;
  }
  return cut;
}

void replay_add_episode(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                        const uint8_t* const* values, int64_t steps, bool terminated,
                        const double* td_abs) {
  const double leaf = priority_leaf(*ring.max_priority, config.alpha);
  const int64_t start = ring_claim_episode(ring, steps, terminated, leaf);
  for (int64_t i = 0; i < columns.count; ++i) {
    const int64_t rb = columns.row_bytes[i];
    const bool obs = i < columns.obs;
    ring_write_rows(columns.data[i], rb, columns.stride[i], ring.capacity, start, values[i],
                    obs ? steps + 1 : steps);
    if (!obs)
      std::memset(columns.at(i, (start + steps) % ring.capacity), 0, static_cast<size_t>(rb));
  }
  if (td_abs == nullptr) return;
  thread_local std::vector<int64_t> rows;  // scratch reused across calls
  rows.resize(static_cast<size_t>(steps));
  for (int64_t t = 0; t < steps; ++t) rows[t] = (start + t) % ring.capacity;
  set_priorities(ring, config, rows.data(), td_abs, steps);
}

int64_t replay_end_episodes(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                            const Stage& stage) {
  int64_t stored = 0;
  std::vector<const uint8_t*> values(static_cast<size_t>(columns.count));
  for (int64_t e = 0; e < stage.envs; ++e) {
    const int64_t length = stage.length[e];
    stage.length[e] = 0;
    if (length < 2) continue;
    // The staged observations o_0 .. o_{T-1} are the episode's T rows; its last step is dropped.
    for (int64_t i = 0; i < columns.count; ++i) {
      values[i] = stage.data[i] + e * stage.horizon * columns.row_bytes[i];
    }
    replay_add_episode(ring, config, columns, values.data(), length - 1, false, nullptr);
    ++stored;
  }
  return stored;
}

// ---- sampling ---------------------------------------------------------------------------------

void episode_rows(const Ring& ring, int64_t seed, int64_t call, const ReplayConfig& config,
                  int64_t count, int64_t* rows) {
  const uint64_t key = draw_key(static_cast<uint64_t>(seed), static_cast<uint64_t>(call));
  uint64_t stream = kDrawStreams;
  std::vector<double> uniform;
  const auto draw = [&](int64_t n) {
    uniform.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) uniform[j] = counter_uniform(key, stream, j);
    ++stream;
  };
  std::vector<int64_t> drawn, episodes, order;
  int64_t have = 0;
  while (have < count) {
    const int64_t select = config.episode_select;
    draw(select);
    drawn.resize(static_cast<size_t>(select));
    tree_sample_stratified(ring.layout, ring.sum_tree, nullptr, uniform.data(), select,
                           drawn.data());
    episodes.clear();
    for (int64_t row : drawn) episodes.push_back(ring.row_episode[row]);
    std::sort(episodes.begin(), episodes.end());
    episodes.erase(std::unique(episodes.begin(), episodes.end()), episodes.end());
    draw(static_cast<int64_t>(episodes.size()));
    const std::vector<double> counts = uniform;
    for (size_t i = 0; i < episodes.size(); ++i) {
      const int64_t* record = ring.episode(episodes[i]);
      const int64_t start = record[kEpisodeStart], length = record[kEpisodeLength];
      const int64_t take =
          1 + static_cast<int64_t>(counts[i] *
                                   static_cast<double>(std::min(length, config.episode_max_draw)));
      // `take` distinct steps: the first of the steps ordered by a uniform each.
      draw(length);
      order.resize(static_cast<size_t>(length));
      for (int64_t t = 0; t < length; ++t) order[t] = t;
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return uniform[a] < uniform[b]; });
      for (int64_t t = 0; t < take && have < count; ++t) {
        rows[have++] = (start + order[t]) % ring.capacity;
      }
    }
  }
}

template <typename T>
int64_t replay_sample(const Ring& ring, int64_t seed, int64_t call, const ReplayConfig& config,
                      const Columns& columns, int64_t count, const int64_t* given_rows,
                      const SampleOut<T>& out) {
  const uint64_t key = draw_key(static_cast<uint64_t>(seed), static_cast<uint64_t>(call));
  if (given_rows != nullptr) {
    std::copy(given_rows, given_rows + count, out.index);
  } else if (config.alpha == 0.0) {
    direct_uniform_rows(ring, key, count, out.index);
  } else {
    thread_local std::vector<double> uniform;  // scratch reused across calls
    uniform.resize(static_cast<size_t>(count));
    for (int64_t j = 0; j < count; ++j) uniform[j] = counter_uniform(key, kDrawRow, j);
    tree_sample_stratified(ring.layout, ring.sum_tree, ring.min_tree, uniform.data(), count,
                           out.index);
  }
  const int64_t reward_column = columns.count - 1;
  const T* reward = reinterpret_cast<const T*>(columns.data[reward_column]);
  const int64_t heads = columns.row_bytes[reward_column] / static_cast<int64_t>(sizeof(T));
  const int64_t reward_stride = columns.stride[reward_column] / static_cast<int64_t>(sizeof(T));
  // The sampled row's record and a few of the window's next ones; a long window is read as it
  // goes (prefetching all of it would make each sample O(n)).
  const int64_t window_bytes = std::min<int64_t>(config.n, 4) * columns.stride[reward_column];
  for (int64_t j = 0; j < count + kPrefetchAhead; ++j) {
    if (j < count) {
      const int64_t row = out.index[j];
      if (row < 0 || row >= ring.capacity) return j;
      __builtin_prefetch(ring.row_episode + row);
      prefetch_bytes(reward + row * reward_stride, window_bytes);
    }
    const int64_t behind = j - kPrefetchAhead;
    if (behind >= 0) {
      out.generation[behind] = ring.row_episode[out.index[behind]];
      if (out.generation[behind] < 0) return behind;
      __builtin_prefetch(ring.episode(out.generation[behind]));
    }
  }

  const double beta = given_rows != nullptr ? 0.0 : beta_at(config, call);
  tree_is_weights(ring.layout, ring.sum_tree, ring.min_tree, out.index, count, beta,
                  config.batch_max, out.weight);

  const HerConfig& her = config.her;
  const bool relabels = her.strategy != kHerOff && her.ratio > 0.0;
  // The goal columns' rows, in bytes (goals are of any dtype and shape).
  const uint8_t* achieved = relabels ? columns.data[her.achieved_column] : nullptr;
  const int64_t achieved_stride = relabels ? columns.stride[her.achieved_column] : 0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = out.index[j];
    const int64_t* record = ring.episode(out.generation[j]);
    const int64_t t = ring.step_of(row, record);
    if (t >= record[kEpisodeLength]) return j;  // only transition rows carry priority
    int64_t k =
        config.floating ? floating_k(counter_uniform(key, kDrawLookahead, j), config.n) : config.n;
    int64_t her_row = -1;
    if (relabels && counter_uniform(key, kDrawRelabel, j) < her.ratio) {
      const double u = counter_uniform(key, kDrawGoal, j);
      her_row = her.strategy == kHerRandom
                    ? random_stored_row(ring, u)
                    : (record[kEpisodeStart] +
                       her_goal_step(her.strategy, t, record[kEpisodeLength], u)) %
                          ring.capacity;
      // Later actions were chosen for another goal (SPEC 2.3): one step, unless the window's
      // rewards are recomputed under the new goal.
      if (her_row >= 0 && !her.recompute) k = 1;
    }
    out.her_row[j] = her_row;
    const RingWindow w = ring_window(ring, row, t, record, k, config.gamma);
    out.boot[j] = w.boot;
    out.discount[j] = static_cast<T>(w.discount);
    out.steps[j] = w.steps;
    out.terminal[j] = w.terminal;
    if (her_row >= 0 && her.reward != kRewardStored) {
      __builtin_prefetch(achieved + w.boot * achieved_stride);
      __builtin_prefetch(achieved + her_row * achieved_stride);
    }
  }
  // The window returns, in a pass of their own so the goal rows prefetched above have arrived.
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = out.index[j];
    const int64_t boot = out.boot[j];
    T* ret = out.reward + j * heads;
    const uint8_t* goal = out.her_row[j] >= 0 && her.reward != kRewardStored
                              ? achieved + out.her_row[j] * achieved_stride
                              : nullptr;
    const int64_t ended = window_return(ring, config, reward, reward_stride, heads, achieved,
                                        achieved_stride, goal, row, boot, ret);
    if (ended >= 0) {  // reaching the new goal ends the window: a true terminal there
      const int64_t end = row + ended;
      out.boot[j] = end >= ring.capacity ? end - ring.capacity : end;
      out.discount[j] = T(0);
      out.steps[j] = ended;
      out.terminal[j] = true;
    }
  }
  // The gathers: every field at the sampled rows, observations also at the bootstrap rows; a
  // pass per column, each prefetching the rows it will copy a few samples ahead.
  for (int64_t i = 0; i < reward_column; ++i) {
    gather_rows(columns, i, out.index, count, out.fields[i], ring.capacity);
    if (i < columns.obs) gather_rows(columns, i, out.boot, count, out.next_obs[i], ring.capacity);
  }
  if (relabels) {
    // Relabeled samples see the new goal, at their own step and at the bootstrap step.
    const int64_t goal_bytes = columns.row_bytes[her.achieved_column];
    for (uint8_t* goals : {out.fields[her.desired_column], out.next_obs[her.desired_column]}) {
      for (int64_t j = 0; j < count; ++j) {
        if (out.her_row[j] < 0) continue;
        std::memcpy(goals + j * goal_bytes, achieved + out.her_row[j] * achieved_stride,
                    static_cast<size_t>(goal_bytes));
      }
    }
  }
  return -1;
}

// ---- priority updates -------------------------------------------------------------------------

template <typename T>
int64_t first_bad_priority(const T* td_abs, int64_t count) {
  for (int64_t j = 0; j < count; ++j) {
    if (!(td_abs[j] >= T(0))) return j;  // also catches NaN
  }
  return -1;
}

template <typename T>
void replay_update_priorities(Ring& ring, const ReplayConfig& config, const int64_t* index,
                              const int64_t* generation, const T* td_abs, int64_t count,
                              int64_t heads, bool* applied) {
  thread_local std::vector<int64_t> rows;  // scratch reused across calls
  thread_local std::vector<double> means;
  rows.clear();
  means.clear();
  for (int64_t j = 0; j < count; ++j) {
    const int64_t row = index[j];
    const int64_t id = generation[j];
    // Only a transition row still owned by the sampled generation takes a priority: not a free
    // row (-1), not an episode's final-observation row, not a row overwritten since.
    bool live = id >= 0 && ring.row_episode[row] == id;
    if (live) {
      const int64_t* record = ring.episode(id);
      live = ring.step_of(row, record) < record[kEpisodeLength];
    }
    applied[j] = live;
    if (!live) continue;
    double mean = 0.0;
    for (int64_t h = 0; h < heads; ++h) mean += static_cast<double>(td_abs[j * heads + h]);
    mean /= static_cast<double>(heads);
    rows.push_back(row);
    means.push_back(mean);
  }
  set_priorities(ring, config, rows.data(), means.data(), static_cast<int64_t>(rows.size()));
  ring.counters[kUpdatesApplied] += static_cast<int64_t>(rows.size());
  ring.counters[kUpdatesDropped] += count - static_cast<int64_t>(rows.size());
}

// ---- invariants -------------------------------------------------------------------------------

namespace {

// The counters and the episode table, read only through values already checked; fills the
// owner of every row.
InvariantReport check_table(const Ring& ring, std::vector<int64_t>& owner) {
  const int64_t capacity = ring.capacity;
  const int64_t* c = ring.counters;
  for (int slot = 0; slot < kRingCounters; ++slot) {
    if (c[slot] < 0) return {kInvariantCounters, slot};
  }
  const int64_t alive = c[kNextEpisode] - c[kOldestEpisode];
  if (c[kCursor] >= capacity) return {kInvariantCounters, kCursor};
  if (alive < 0 || alive > capacity / 2) return {kInvariantCounters, kOldestEpisode};
  if (!(std::isfinite(*ring.max_priority) && *ring.max_priority > 0.0 &&
        *ring.max_priority <= 1e100)) {
    return {kInvariantCounters, -1};  // max_priority
  }
  // Back to back from the oldest, ending at the cursor.
  owner.assign(static_cast<size_t>(capacity), -1);
  int64_t transitions = 0, rows = 0, terminated = 0;
  int64_t expected_start = -1;
  for (int64_t id = c[kOldestEpisode]; id < c[kNextEpisode]; ++id) {
    const int64_t* record = ring.episode(id);
    const int64_t start = record[kEpisodeStart], length = record[kEpisodeLength];
    const bool sane = start >= 0 && start < capacity && length >= 1 && length < capacity &&
                      (record[kEpisodeTerminated] == 0 || record[kEpisodeTerminated] == 1) &&
                      (expected_start < 0 || start == expected_start);
    rows += sane ? length + 1 : 0;
    if (!sane || rows > capacity) return {kInvariantEpisodeTable, id};
    for (int64_t i = 0; i <= length; ++i) owner[(start + i) % capacity] = id;
    transitions += length;
    terminated += record[kEpisodeTerminated];
    expected_start = (start + length + 1) % capacity;
  }
  if (alive > 0 && expected_start != c[kCursor]) {
    return {kInvariantEpisodeTable, c[kNextEpisode] - 1};
  }
  if (transitions != c[kTransitions]) return {kInvariantCounters, kTransitions};
  if (terminated > c[kTerminatedEpisodes]) return {kInvariantCounters, kTerminatedEpisodes};
  return {kInvariantOk, -1};
}

bool is_transition(const Ring& ring, const std::vector<int64_t>& owner, int64_t row) {
  if (row >= ring.capacity || owner[row] < 0) return false;
  const int64_t* record = ring.episode(owner[row]);
  return ring.step_of(row, record) < record[kEpisodeLength];
}

}  // namespace

InvariantReport replay_check(const Ring& ring) {
  std::vector<int64_t> owner;
  const InvariantReport table = check_table(ring, owner);
  if (table.invariant != kInvariantOk) return table;
  for (int64_t row = 0; row < ring.capacity; ++row) {
    if (ring.row_episode[row] != owner[row]) return {kInvariantRowOwner, row};
  }
  // Leaves: priority on transition rows only; the padding past the capacity is empty too.
  const TreeLayout& layout = ring.layout;
  const double* sum_leaves = ring.sum_tree + layout.leaf_offset();
  const double* min_leaves = ring.min_tree + layout.leaf_offset();
  const double inf = __builtin_huge_val();
  double total = 0.0;
  for (int64_t row = 0; row < layout.width[layout.leaf_level()]; ++row) {
    const double leaf = sum_leaves[row];
    const bool ok = is_transition(ring, owner, row)
                        ? (std::isfinite(leaf) && leaf > 0.0 && min_leaves[row] == leaf)
                        : (leaf == 0.0 && min_leaves[row] == inf);
    if (!ok) return {kInvariantLeaf, row};
    total += leaf;
  }
  // Parents, recomputed exactly as the updates compute them (left to right over 8 children).
  for (int level = layout.leaf_level() - 1; level >= 0; --level) {
    const int64_t parents = layout.width[level + 1] / kTreeFanout;
    for (int64_t node = 0; node < layout.width[level]; ++node) {
      double s = 0.0, m = inf;
      if (node < parents) {
        const int64_t first = layout.offset[level + 1] + kTreeFanout * node;
        for (int k = 0; k < kTreeFanout; ++k) {
          s += ring.sum_tree[first + k];
          m = min2(m, ring.min_tree[first + k]);
        }
      }
      const int64_t flat = layout.offset[level] + node;
      if (ring.sum_tree[flat] != s) return {kInvariantSumParent, flat};
      if (ring.min_tree[flat] != m) return {kInvariantMinParent, flat};
    }
  }
  if (std::fabs(ring.sum_tree[0] - total) > 1e-9 * std::max(1.0, total)) return {kInvariantRoot, 0};
  return {kInvariantOk, -1};
}

InvariantReport replay_rebuild(Ring& ring, double alpha) {
  std::vector<int64_t> owner;
  const InvariantReport table = check_table(ring, owner);
  if (table.invariant != kInvariantOk) return table;
  std::copy(owner.begin(), owner.end(), ring.row_episode);
  const TreeLayout& layout = ring.layout;
  double* sum_leaves = ring.sum_tree + layout.leaf_offset();
  double* min_leaves = ring.min_tree + layout.leaf_offset();
  const double fresh = priority_leaf(*ring.max_priority, alpha);
  for (int64_t row = 0; row < layout.width[layout.leaf_level()]; ++row) {
    double leaf = 0.0;
    if (is_transition(ring, owner, row)) {
      leaf = sum_leaves[row];
      if (!(std::isfinite(leaf) && leaf > 0.0 && leaf <= 1e100)) leaf = fresh;
    }
    sum_leaves[row] = leaf;
    min_leaves[row] = leaf > 0.0 ? leaf : __builtin_huge_val();
  }
  for (int level = layout.leaf_level() - 1; level >= 0; --level) {
    const int64_t parents = layout.width[level + 1] / kTreeFanout;
    for (int64_t node = 0; node < layout.width[level]; ++node) {
      if (node < parents) {
        tree_refresh_node(layout, ring.sum_tree, ring.min_tree, level, node);
      } else {
        ring.sum_tree[layout.offset[level] + node] = 0.0;
        ring.min_tree[layout.offset[level] + node] = __builtin_huge_val();
      }
    }
  }
  return {kInvariantOk, -1};
}

#define PYRL_INSTANTIATE(T)                                                                        \
  template int64_t replay_sample<T>(const Ring&, int64_t, int64_t, const ReplayConfig&,            \
                                    const Columns&, int64_t, const int64_t*, const SampleOut<T>&); \
  template int64_t first_bad_priority<T>(const T*, int64_t);                                       \
  template void replay_update_priorities<T>(Ring&, const ReplayConfig&, const int64_t*,            \
                                            const int64_t*, const T*, int64_t, int64_t, bool*);
PYRL_INSTANTIATE(float)
PYRL_INSTANTIATE(double)
#undef PYRL_INSTANTIATE

}  // namespace pyrl::kernels
