#pragma once
// The replay buffer's rules on plain structs and pointers: staging and committing episodes, the
// fused sample (draws, descent, windows, HER, weights, gathers), priority updates and the
// invariant check. csrc/torch/replay.cpp only checks arguments and extracts pointers, so a CUDA
// port mirrors exactly this file. Storage and bookkeeping layout: ring.h; HER: her.h; windows:
// window.h; draws: draws.h.
//
// Every layout fact Python needs (state slots, counter slots, config slots, episode fields, HER
// codes, invariant names, the column order) is an enum here or in ring.h / her.h, exported once
// by pyrl._C.layout().
//
// Columns are [C, *shape] arrays copied as bytes, each row contiguous and rows `stride` bytes
// apart: a buffer keeps all its fields in one row record (so a sampled row's fields share one or
// two cache lines), and each column is a strided view of it. Their order:
//   observation columns (obs_columns of them; their final row holds o_T), other fields, reward.
// The reward column is last and typed (float or double, [C] or [C, heads]).
#include <cstdint>

#include "her.h"
#include "ring.h"

namespace pyrl::kernels {

// The state tensors of a buffer, one list in this order; the stage columns follow the fixed
// slots, one per column in column order ([N, horizon, *row]: the running episodes).
enum StateSlot : int {
  kStateRowEpisode = 0,
  kStateEpisodes,
  kStateCounters,
  kStateSumTree,
  kStateMinTree,
  kStateMaxPriority,
  kStateDraws,        // [2] int64: the seed and the count of sample calls (DrawCounter)
  kStateStageLength,  // [N] int64: steps staged per environment; [0] before the first add
  kStateSlots
};

// The draw counter: a sample is keyed by (seed, calls) and advances calls (draws.h).
enum DrawCounter : int { kDrawSeed = 0, kDrawCalls, kDrawCounters };

// A buffer's settings, one float list in this order (ints and flags as exact small doubles);
// the per_dim thresholds and values follow the fixed slots.
enum ConfigSlot : int {
  kConfigAlpha = 0,  // 0 for uniform buffers: every transition leaf is 1
  kConfigEps,
  kConfigPMin,
  kConfigPMax,
  kConfigBeta,       // IS exponent at the first sample call
  kConfigBetaSteps,  // calls over which beta rises linearly to 1; 0 keeps it fixed
  kConfigBatchMax,   // 1: weights over the batch maximum; 0: over the least likely row
  kConfigN,          // the n-step lookahead
  kConfigGamma,
  kConfigFloating,  // 1: k ~ U{1..n} per sample
  kConfigObsColumns,
  kConfigHerStrategy,  // HerStrategy; kHerOff without HER
  kConfigHerRatio,
  kConfigHerReward,     // HerReward
  kConfigAchievedGoal,  // column of the achieved goal
  kConfigDesiredGoal,   // column of the desired goal
  kConfigHerRecompute,  // 1: relabeled windows keep their k, rewards recomputed under the goal
  kConfigHerTerminalOnSuccess,  // 1: reaching the new goal ends a relabeled window, terminal
  kConfigEpisodeSelect,   // episode mode (SPEC 1.2): rows drawn per round; 0 samples transitions
  kConfigEpisodeMaxDraw,  // episode mode: at most this many steps of one episode per round
  kConfigHerParams,       // how many reward parameters follow the fixed slots
  kConfigSlots
};

// The config slots' names, in slot order: what pyrl._C.layout() exports and messages say.
constexpr const char* kConfigNames[kConfigSlots] = {"alpha",          "eps",
                                                    "p_min",          "p_max",
                                                    "beta",           "beta_steps",
                                                    "batch_max",      "n",
                                                    "gamma",          "floating",
                                                    "obs_columns",    "her_strategy",
                                                    "her_ratio",      "her_reward",
                                                    "achieved_goal",  "desired_goal",
                                                    "her_recompute",  "her_terminal_on_success",
                                                    "episode_select", "episode_max_draw",
                                                    "her_params"};
static_assert(kConfigNames[kConfigSlots - 1] != nullptr, "a config slot without a name");

struct ReplayConfig {
  double alpha = 0.0, eps = 0.0, p_min = 1.0, p_max = 1.0;
  double beta = 0.0;
  int64_t beta_steps = 0;
  bool batch_max = false;
  int64_t n = 1;
  double gamma = 0.99;
  bool floating = false;
  int64_t obs_columns = 1;
  int64_t episode_select = 0, episode_max_draw = 0;
  HerConfig her;
};

// Reads the float list (validated by the caller: sizes and ranges).
ReplayConfig replay_config(const double* values, int64_t count);

// The IS exponent of the sample call after `calls` earlier ones.
PYRL_HD inline double beta_at(const ReplayConfig& config, int64_t calls) {
  if (config.beta_steps <= 0) return config.beta;
  const double progress = static_cast<double>(calls) / static_cast<double>(config.beta_steps);
  return config.beta + (1.0 - config.beta) * (progress < 1.0 ? progress : 1.0);
}

struct Columns {
  int64_t count;
  int64_t obs;               // the first `obs` columns are observations
  uint8_t* const* data;      // [count] column bases (row 0)
  const int64_t* row_bytes;  // [count] bytes of one row's value
  const int64_t* stride;     // [count] bytes from one row to the next

  PYRL_HD uint8_t* at(int64_t i, int64_t row) const { return data[i] + row * stride[i]; }
};

// Episodes in progress, one per environment: `length[e]` steps staged so far.
struct Stage {
  int64_t envs;
  int64_t horizon;       // steps staged before an episode is committed as truncated
  uint8_t* const* data;  // per column, [envs, horizon, row]
  int64_t* length;       // [envs]
};

// One step of every environment.
struct StepInput {
  const uint8_t* const* step;       // per column, [envs, row]
  const uint8_t* const* final_obs;  // per observation column, [envs, row]: o_T where it ends
  const bool* terminated;           // [envs]
  const bool* truncated;            // [envs]
  const bool* skip;                 // [envs], or null: steps not stored at all (the reset step
                                    // that gymnasium's NEXT_STEP autoreset returns after an end)
};

// Commits env e's staged episode of `steps` transitions, its final observation from the step's
// `final_obs`: the claim, the rows, the final row. The CPU add and its kernel body
// (replay_add.h) both run it; `Cols` is Columns or its by-value copy.
template <typename Cols, typename StageData, typename FinalObs>
PYRL_HD inline void commit_staged_episode(const Ring& ring, double leaf, const Cols& columns,
                                          const StageData& stage_data, int64_t horizon,
                                          const FinalObs& final_obs, int64_t e, int64_t steps,
                                          bool terminated) {
  const int64_t start = ring_claim_episode(ring, steps, terminated, leaf);
  const int64_t final_row = (start + steps) % ring.capacity;
  for (int64_t i = 0; i < columns.count; ++i) {
    const int64_t rb = columns.row_bytes[i];
    ring_write_rows(columns.data[i], rb, columns.stride[i], ring.capacity, start,
                    stage_data[i] + e * horizon * rb, steps);
    uint8_t* final_slot = columns.at(i, final_row);
    if (i < columns.obs) {
      ::memcpy(final_slot, final_obs[i] + e * rb, static_cast<size_t>(rb));
    } else {
      ::memset(final_slot, 0, static_cast<size_t>(rb));  // no action or reward at o_T
    }
  }
}

// Stages the step of each environment; an environment whose episode ends (or whose stage is
// full: the piece is committed as truncated and the next step starts a new episode) has its
// episode written to the ring. Transitions enter at leaf max_priority^alpha. Returns the pieces
// committed because their stage was full, neither flag set (a loop that never truncates).
int64_t replay_add_step(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                        const Stage& stage, const StepInput& input);

// Writes one episode of `steps` transitions: `values[i]` holds steps + 1 rows for observation
// columns and `steps` rows for the others. Its transitions enter at leaf max_priority^alpha, or,
// with `td_abs` ([steps], >= 0, checked by the caller; null for none), at the priorities an
// update with them would set (an actor's initial priorities, Ape-X): these are not counted as
// updates.
void replay_add_episode(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                        const uint8_t* const* values, int64_t steps, bool terminated,
                        const double* td_abs);

// Stores every running episode as truncated at its newest observation, dropping its newest step
// (whose next observation has not come), and empties every stage; a running episode of one step
// is dropped whole. Returns the episodes stored.
int64_t replay_end_episodes(const Ring& ring, const ReplayConfig& config, const Columns& columns,
                            const Stage& stage);

// Episode mode (SPEC 1.2): the rows of one sample call. Rounds of episode_select stratified
// draws by priority, their distinct episodes (ascending ids), and m ~ U{1..min(T, max_ep_draw)}
// distinct steps of each, until `count` rows are drawn; `rows` gets the first `count`. Uniforms
// come from the streams past the fused sample's own, one stream per draw of the call.
void episode_rows(const Ring& ring, int64_t seed, int64_t call, const ReplayConfig& config,
                  int64_t count, int64_t* rows);

template <typename T>
struct SampleOut {
  int64_t* index;
  int64_t* generation;
  float* weight;
  int64_t* boot;             // the bootstrap row: next_obs is read there
  int64_t* her_row;          // the row whose achieved goal relabels the sample, -1 if none
  T* reward;                 // [count, heads] window returns
  T* discount;               // [count] gamma^k, 0 after a true terminal
  uint8_t* const* fields;    // per column except the reward, [count, row]
  uint8_t* const* next_obs;  // per observation column, [count, row]
  int64_t* steps;            // [count] k: the window's steps (boot - index, mod C)
  bool* terminal;            // [count] the window reaches a true terminal
};

// Draws `count` transitions and fills `out`; with `given_rows` the rows are read as given
// (episode mode: weights 1). Uniforms come from draws.h, keyed by the buffer's seed and its
// count of earlier sample calls `call` (which also sets beta); the ring is only read. Returns -1,
// or the first sample whose drawn row is not a stored transition (a tree inconsistent with the
// episode table): nothing past the descent is read then.
template <typename T>
int64_t replay_sample(const Ring& ring, int64_t seed, int64_t call, const ReplayConfig& config,
                      const Columns& columns, int64_t count, const int64_t* given_rows,
                      const SampleOut<T>& out);

// Index of the first td_abs entry that is NaN, negative or infinite, or -1.
template <typename T>
int64_t first_bad_priority(const T* td_abs, int64_t count);

// Sets the priority of every entry whose row is a transition still owned by the generation it
// was sampled with (td_abs is [count, heads], averaged over heads; of repeated rows the last
// write wins). applied[j] says which entries were applied; the counters count both kinds.
template <typename T>
void replay_update_priorities(Ring& ring, const ReplayConfig& config, const int64_t* index,
                              const int64_t* generation, const T* td_abs, int64_t count,
                              int64_t heads, bool* applied);

// ---- invariants -------------------------------------------------------------------------------

enum Invariant : int {
  kInvariantOk = 0,
  kInvariantCounters,      // cursor, ids and counts in range, transitions = sum of lengths
  kInvariantEpisodeTable,  // alive episodes back to back, ending at the cursor, lengths >= 1
  kInvariantRowOwner,      // row_episode matches the episode table (index: the row)
  kInvariantLeaf,          // only transition rows carry priority, finite and > 0 (index: the row)
  kInvariantSumParent,     // every sum-tree parent is the sum of its 8 children (index: flat node)
  kInvariantMinParent,     // every min-tree parent is the min of its 8 children (index: flat node)
  kInvariantRoot,          // the root equals the leaves' total
  kInvariants
};

// Their names, in enum order (pyrl._C.layout()["invariants"] and error messages).
constexpr const char* kInvariantNames[kInvariants] = {
    "ok",     "counters",         "episode table",    "row owners",
    "leaves", "sum tree parents", "min tree parents", "root"};

struct InvariantReport {
  int invariant;
  int64_t index;
};

// Checks every invariant in an order that never reads through an unchecked value.
InvariantReport replay_check(const Ring& ring);

// State from outside (a file, load_state_dict): validates the counters and the episode table
// (returning the first broken one, changing nothing), then rebuilds everything derived from them
// instead of trusting the stored copies: the row owners, the leaf mask (only transition rows
// keep a priority; one that is not finite and > 0 takes max_priority^alpha), the min-tree leaves
// and every parent of both trees.
InvariantReport replay_rebuild(Ring& ring, double alpha);

}  // namespace pyrl::kernels
