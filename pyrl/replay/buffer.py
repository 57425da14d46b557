"""ReplayBuffer: episodes in a ring of tensor columns, sampled uniformly or by priority.

Storage follows SPEC 1.2. An episode of T transitions fills T + 1 consecutive rows of the ring
(modulo the capacity): rows o_0 .. o_{T-1} carry the step's fields (observation, action, reward,
...), and row T holds only the final observation, which is what ``next_obs`` of the last step
is read from. Episodes are committed whole: ``add`` stages each environment's steps until its
episode ends (``terminated`` or ``truncated``) and then writes it to the ring in one piece, so a
sampled transition can always look ahead in its own episode (n-step, HER). Writing over an old
episode evicts all of it; an episode may wrap around the end of the ring.

Every bit of state is a tensor this object owns (columns, episode table, sum and min trees,
counters, the torch.Generator); the compiled ops in ``torch.ops.pyrl`` read and update them, one
op call per ``add``, ``sample`` and ``update_priorities``. A lock serialises those calls, so one
thread may add while another samples and updates priorities.
"""

import threading
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor

from pyrl import _C, _ops
from pyrl.replay.settings import (HER, EpisodeMode, NStep, PER, PerDim, SparseL2, per_dim,
                                  sparse_l2)

# Ring counters and episode table columns, as csrc/kernels/ring.h lays them out.
CURSOR, NEXT_EPISODE, OLDEST_EPISODE, TRANSITIONS, TERMINATED_EPISODES = range(5)
HER_STRATEGY_CODES = {"future": 0, "final": 1, "episode": 2, "random": 3}
GOAL_ENV_KEYS = ("observation", "achieved_goal", "desired_goal")  # gymnasium-robotics dicts
EPISODE_FIELDS = ("start", "length", "terminated")

# Names the sampled batch uses for its own outputs, so no spec field may take them.
RESERVED = frozenset({"next_obs", "discount", "weight", "index", "generation", "boot",
                      "terminated", "truncated", "her_row", "is_her"})


@dataclass(frozen=True)
class Field:
    """One stored column: ``shape`` per row, ``dtype``."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype


class Batch(dict):
    """A sampled batch: a dict whose keys are also attributes (``batch.obs``, ``batch.weight``).

    Keys: every spec field at the sampled rows (``obs``, ``action``, ...; ``obs`` is a dict when
    the buffer stores several observation keys), ``next_obs`` (at the bootstrap row), ``reward``
    (the n-step return R, ``[B]`` or ``[B, m]``), ``discount`` (gamma^k, 0 after a true terminal),
    ``weight`` (importance weights, 1 when uniform), ``index`` and ``generation`` (pass both to
    ``update_priorities``) and ``boot`` (the bootstrap row).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"Batch has no field {name!r}; it has {sorted(self)}") from None


def parse_spec(spec: Mapping[str, Any]) -> dict[str, Field]:
    """``{"obs": (17,), "action": ((6,), torch.float32)}`` -> Fields (float32 unless given)."""
    fields = {}
    for name, entry in spec.items():
        if name in RESERVED:
            raise ValueError(f"spec: {name!r} is reserved for sampled batches; rename the field")
        shape, dtype = entry, torch.float32
        if (isinstance(entry, (tuple, list)) and len(entry) == 2
                and isinstance(entry[1], torch.dtype)):
            shape, dtype = entry
        if isinstance(shape, int):
            shape = (shape,)
        if not (isinstance(shape, (tuple, list, torch.Size))
                and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"spec: {name!r} should be a shape tuple or (shape, dtype), got {entry!r}")
        if dtype.is_complex:
            raise ValueError(f"spec: {name!r} has unsupported dtype {dtype}")
        fields[name] = Field(name, tuple(shape), dtype)
    return fields


def check_goal_fields(fields: dict, obs_keys: tuple, her: HER) -> None:
    missing = [key for key in ("achieved_goal", "desired_goal") if key not in obs_keys]
    if missing:
        raise ValueError(f"ReplayBuffer: HER needs observation fields 'achieved_goal' and "
                         f"'desired_goal' (in spec and obs_keys); missing {missing} from obs_keys "
                         f"{obs_keys}")
    achieved, desired = fields["achieved_goal"], fields["desired_goal"]
    if achieved.shape != desired.shape or len(achieved.shape) != 1:
        raise ValueError(f"ReplayBuffer: achieved_goal and desired_goal should both be [g], got "
                         f"{list(achieved.shape)} and {list(desired.shape)}")
    if achieved.dtype != torch.float32 or desired.dtype != torch.float32:
        raise ValueError(f"ReplayBuffer: goal fields should be float32, got {achieved.dtype} and "
                         f"{desired.dtype}")
    reward = fields["reward"].shape
    if isinstance(her.reward, SparseL2) and reward != ():
        raise ValueError(f"ReplayBuffer: sparse_l2 gives one reward per step; reward should be [], "
                         f"got {list(reward)}")
    if isinstance(her.reward, PerDim) and reward != achieved.shape:
        raise ValueError(f"ReplayBuffer: per_dim gives one reward per goal dimension; reward should "
                         f"be {list(achieved.shape)}, got {list(reward)}")


def describe_her(her: Optional[HER]) -> Optional[dict]:
    """HER settings as plain values; Python callables are named, not saved."""
    if her is None:
        return None
    if isinstance(her.reward, SparseL2):
        reward = {"sparse_l2": her.reward.eps}
    elif isinstance(her.reward, PerDim):
        reward = {"per_dim": [list(her.reward.thresholds), list(her.reward.values)]}
    else:
        reward = "callable"
    return {"strategy": her.strategy, "k": her.k, "reward": reward,
            "terminal": "callable" if her.terminal is not None else None}


def her_from_description(described: dict) -> HER:
    reward = described["reward"]
    if reward == "callable" or described["terminal"] is not None:
        raise ValueError("ReplayBuffer.load: the saved buffer relabels with Python callables, "
                         "which are not saved; pass her=replay.HER(...) to load()")
    kind = (sparse_l2(reward["sparse_l2"]) if "sparse_l2" in reward
            else per_dim(*reward["per_dim"]))
    return HER(described["strategy"], described["k"], kind)


def all_tensors(values: list) -> bool:
    # A plain loop: all() over a generator costs three times as much on add()'s per-step path.
    for value in values:
        if type(value) is not Tensor:
            return False
    return True


def _castable(source: torch.dtype, target: torch.dtype) -> bool:
    """Values convert to a column only within their kind: no float into an integer column."""
    if source.is_complex:
        return False
    if target.is_floating_point:
        return True
    if target == torch.bool:
        return source == torch.bool
    return not source.is_floating_point


class ReplayBuffer:
    """Episode replay with uniform or prioritized sampling and n-step returns, compiled ops inside.

    Args:
        capacity: rows in the ring (transitions plus one final-observation row per episode).
        spec: the stored fields, ``{name: shape}`` or ``{name: (shape, dtype)}``; float32 unless
            given. ``reward`` defaults to a scalar float32 per step; give ``"reward": (m,)`` for
            m reward heads.
        device: where every tensor of the buffer lives.
        prioritized: a :class:`PER`, or None to sample uniformly.
        nstep: an :class:`NStep`; None means one-step returns with gamma 0.99.
        seed: seeds the buffer's torch.Generator; the same seed and the same adds give the same
            batches.
        obs_keys: the observation fields, whose final value comes from ``next_obs``; dict
            observations name one field per key. By default ``obs`` (or ``observation``) and
            whichever of ``achieved_goal`` and ``desired_goal`` the spec has.
        max_episode_steps: steps staged per environment before an episode still running is
            committed as truncated (it then continues as a new episode from its next
            observation); at most ``capacity - 1``.
        episode_mode: an :class:`EpisodeMode` to sample whole-episode groups of steps instead of
            single transitions (weights are then 1); None samples transitions.
        her: a :class:`HER` to relabel goals at sample time. The buffer then needs observation
            fields ``achieved_goal`` and ``desired_goal`` (float32 ``[g]``), as goal-env dict
            observations (``observation``, ``achieved_goal``, ``desired_goal``) have.

    Example::

        buf = ReplayBuffer(100_000, {"obs": (17,), "action": (6,)}, prioritized=PER())
        buf.add(obs=o, action=a, reward=r, next_obs=o2, terminated=term, truncated=trunc)
        batch = buf.sample(256)
        loss = (batch.weight * (q - target) ** 2).mean()
        buf.update_priorities(batch.index, batch.generation, (q - target).abs())
    """

    def __init__(self, capacity: int, spec: Mapping[str, Any], device: Union[str, torch.device] = "cpu",
                 prioritized: Optional[PER] = None, nstep: Optional[NStep] = None,
                 seed: Optional[int] = None, obs_keys: Optional[tuple[str, ...]] = None,
                 max_episode_steps: int = 1000, episode_mode: Optional[EpisodeMode] = None,
                 her: Optional[HER] = None):
        if not (isinstance(capacity, int) and capacity >= 2):
            raise ValueError(f"ReplayBuffer: capacity should be an int >= 2 (an episode needs "
                             f"2 rows), got {capacity!r}")
        if prioritized is not None and not isinstance(prioritized, PER):
            raise ValueError(f"ReplayBuffer: prioritized should be a replay.PER or None, got {prioritized!r}")
        if nstep is not None and not isinstance(nstep, NStep):
            raise ValueError(f"ReplayBuffer: nstep should be a replay.NStep or None, got {nstep!r}")
        if episode_mode is not None and not isinstance(episode_mode, EpisodeMode):
            raise ValueError(f"ReplayBuffer: episode_mode should be a replay.EpisodeMode or None, "
                             f"got {episode_mode!r}")
        if not (isinstance(max_episode_steps, int) and max_episode_steps >= 1):
            raise ValueError(f"ReplayBuffer: max_episode_steps should be an int >= 1, got {max_episode_steps!r}")
        self.device = torch.device(device)
        if self.device.type != "cpu":
            raise ValueError(f"ReplayBuffer: device {self.device} is not supported yet; the replay "
                             f"ops are built for the CPU only (CUDA replay is planned)")
        fields = parse_spec(spec)
        fields.setdefault("reward", Field("reward", (), torch.float32))
        if len(fields["reward"].shape) > 1 or not fields["reward"].dtype.is_floating_point:
            raise ValueError(f"spec: reward should be float [] or [m] per step, got "
                             f"{fields['reward'].shape} {fields['reward'].dtype}")
        if obs_keys is None:  # goal fields are observations too: o_T's goals come from next_obs
            goals = tuple(key for key in GOAL_ENV_KEYS[1:] if key in fields)
            obs_keys = (("obs",) if "obs" in fields or "observation" not in fields
                        else ("observation",)) + goals
        obs_keys = tuple(obs_keys)
        missing = [k for k in obs_keys if k not in fields]
        if not obs_keys or missing or "reward" in obs_keys:
            raise ValueError(f"ReplayBuffer: obs_keys {obs_keys} should name observation fields "
                             f"of the spec {sorted(fields)}")

        if her is not None and not isinstance(her, HER):
            raise ValueError(f"ReplayBuffer: her should be a replay.HER or None, got {her!r}")
        if her is not None:
            check_goal_fields(fields, obs_keys, her)

        self.capacity = capacity
        self.prioritized = prioritized
        self.her = her
        self.nstep = nstep if nstep is not None else NStep()
        self.episode_mode = episode_mode
        self.obs_keys = obs_keys
        self.max_episode_steps = min(max_episode_steps, capacity - 1)
        self.seed = seed
        # Column order: observation fields, the other fields, reward last (the ops rely on it).
        others = [name for name in fields if name not in obs_keys and name != "reward"]
        self.fields = [fields[name] for name in (*obs_keys, *others, "reward")]
        self._lock = threading.Lock()

        def zeros(*shape, dtype=torch.int64, fill=0.0):
            return torch.full(shape, fill, dtype=dtype, device=self.device)

        self._columns = [zeros(capacity, *f.shape, dtype=f.dtype) for f in self.fields]
        self._sample_columns = self._columns[:-1]  # the reward column goes in on its own
        tree_size = _C.tree_size(capacity)
        self._row_episode = zeros(capacity, fill=-1)
        self._episodes = zeros(capacity // 2 + 1, len(EPISODE_FIELDS))
        self._counters = zeros(5)
        self._sum_tree = zeros(tree_size, dtype=torch.float64)
        self._min_tree = zeros(tree_size, dtype=torch.float64, fill=float("inf"))
        self._max_priority = torch.ones(1, dtype=torch.float64, device=self.device)
        self._ring = (self._row_episode, self._episodes, self._counters, self._sum_tree,
                      self._min_tree)
        self._ops = _ops.replay_ops(self.device)
        self._alpha = prioritized.alpha if prioritized is not None else 0.0  # uniform: leaves of 1
        self._other_names = tuple(f.name for f in self.fields[len(obs_keys):-1])
        # Per-environment staging of episodes in progress, allocated at the first add().
        self._stage: Optional[list[Tensor]] = None
        self._stage_length: Optional[Tensor] = None
        self._generator = torch.Generator(device=self.device)
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)
        self._sample_calls = 0
        self._her_args = self._her_op_args()
        self._warned_terminal = False
        self._has_data = False  # never empty again once an episode is in: adds only evict to write

    # ---- adding --------------------------------------------------------------------------------

    def add(self, obs, next_obs, reward, terminated, truncated, **fields) -> None:
        """Adds one step of N environments; an environment's episode is stored when it ends.

        Args:
            obs: ``[N, *shape]`` (a dict of them with several ``obs_keys``).
            next_obs: the observations after the step, same layout; only read where the episode
                ends, as its final observation (autoreset envs: pass the final observation).
            reward: ``[N]`` or ``[N, m]``.
            terminated: ``[N]`` bools, the episode reached a terminal state (no bootstrap).
            truncated: ``[N]`` bools, the episode was cut (bootstrap from next_obs).
            **fields: every other spec field, ``[N, *shape]`` (``action=...``).

        Tensors, numpy arrays and lists are accepted and converted to the field's dtype within
        their kind (floats or ints into float columns, ints into int columns, bools into bool
        columns). Bad input raises ValueError and leaves the buffer unchanged.
        """
        with self._lock:
            if self._stage is not None and len(fields) == len(self._other_names):
                try:  # the C++ op checks every argument before it writes anything
                    if self.obs_keys == ("obs",):
                        step, final_obs = [obs], [next_obs]
                    else:
                        step = [obs[key] for key in self.obs_keys]
                        final_obs = [next_obs[key] for key in self.obs_keys]
                    for name in self._other_names:
                        step.append(fields[name])
                    step.append(reward)
                    # Only tensors: pybind11's message for a rejected argument reprs every
                    # argument, the storage columns included (milliseconds).
                    if (all_tensors(step) and all_tensors(final_obs) and type(terminated) is Tensor
                            and type(truncated) is Tensor):
                        self._add_step(step, final_obs, terminated, truncated)
                        return
                except (TypeError, ValueError, RuntimeError, KeyError, IndexError):
                    pass  # not tensors of the right kind: convert and check, below
            envs = self._leading_size("add", obs)
            step = self._values("add", obs, reward, fields, envs, envs)
            final_obs = [self._rows("add", "next_obs", f, v, (envs,))
                         for f, v in zip(self.fields, self._obs_values("add", "next_obs", next_obs))]
            term = self._flags("terminated", terminated, envs)
            trunc = self._flags("truncated", truncated, envs)
            if self._stage is None:
                self._stage = [torch.zeros((envs, self.max_episode_steps, *f.shape), dtype=f.dtype,
                                           device=self.device) for f in self.fields]
                self._stage_length = torch.zeros(envs, dtype=torch.int64, device=self.device)
            elif envs != self._stage_length.shape[0]:
                raise ValueError(f"ReplayBuffer.add: obs has {envs} environments, but earlier "
                                 f"steps had {self._stage_length.shape[0]}")
            self._add_step(step, final_obs, term, trunc)

    def _add_step(self, step: list, final_obs: list, terminated, truncated) -> None:
        self._ops.add(*self._ring, self._max_priority, self._columns, self._stage,
                      self._stage_length, step, final_obs, terminated, truncated, self._alpha)
        if not self._has_data:
            self._has_data = bool(self._counters[TRANSITIONS] > 0)

    def add_episode(self, obs, reward, terminated: bool = False, **fields) -> None:
        """Adds a whole episode of T transitions.

        Args:
            obs: ``[T + 1, *shape]``: every observation including the final one (a dict of them
                with several ``obs_keys``).
            reward: ``[T]`` or ``[T, m]``.
            terminated: True if the episode ended in a terminal state (no bootstrap from the
                final observation); False for a cut (truncated) episode.
            **fields: every other spec field, ``[T, *shape]``.
        """
        with self._lock:
            rows = self._leading_size("add_episode", obs)
            steps = rows - 1
            if steps < 1:
                raise ValueError(f"ReplayBuffer.add_episode: an episode needs at least 1 transition "
                                 f"(obs with 2 rows), got obs with {rows} rows")
            if rows > self.capacity:
                raise ValueError(f"ReplayBuffer.add_episode: an episode of {steps} transitions needs "
                                 f"{rows} rows, more than the capacity {self.capacity}")
            values = self._values("add_episode", obs, reward, fields, rows, steps)
            self._ops.add_episode(*self._ring, self._max_priority, self._columns, values,
                                  len(self.obs_keys), bool(terminated), self._alpha)
            self._has_data = True

    # ---- sampling ------------------------------------------------------------------------------

    def sample(self, batch_size: int) -> Batch:
        """Draws ``batch_size`` transitions (with replacement), stratified over the priority mass,
        or, with ``episode_mode``, groups of steps of the episodes drawn.

        Returns:
            A :class:`Batch`. Draws come from the buffer's generator, so a seed reproduces them.
        """
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"ReplayBuffer.sample: batch_size should be an int >= 1, got {batch_size!r}")
        with self._lock:
            if not self._has_data:
                raise ValueError("ReplayBuffer.sample: the buffer is empty (an episode is stored "
                                 "once it ends; no episode has ended yet)")
            per, nstep = self.prioritized, self.nstep
            beta = per.beta_at(self._sample_calls) if per is not None else 0.0
            # One draw for all of the batch's uniforms, in the order: rows (transition mode),
            # HER (relabel, goal row), floating k. Same values as separate draws in that order.
            relabel = self.her is not None and self.her.k > 0
            floats = nstep.floating and nstep.n > 1
            rows = self._episode_rows(batch_size) if self.episode_mode is not None else None
            count = (rows is None) + 2 * relabel + floats
            draws = torch.rand(count, batch_size, dtype=torch.float64, generator=self._generator,
                               device=self.device) if count else None
            uniform = draws[0] if rows is None else None
            her_uniform = draws[(rows is None):(rows is None) + 2] if relabel else None
            floating = draws[-1] if floats else None
            (index, generation, weight, ret, discount, boot, her_row, fields,
             next_obs) = self._ops.sample(
                *self._ring, self._columns[-1], self._sample_columns, len(self.obs_keys), uniform,
                rows, floating, nstep.n, nstep.gamma, beta,
                per is not None and per.weight_norm == "batch", her_uniform, *self._her_args)
            self._sample_calls += 1
        batch = Batch((f.name, value) for f, value in zip(self.fields, fields))
        if self.obs_keys == ("obs",):
            batch["next_obs"] = next_obs[0]
        else:
            batch["obs"] = {key: batch.pop(key) for key in self.obs_keys}
            batch["next_obs"] = dict(zip(self.obs_keys, next_obs))
        batch.update(reward=ret, discount=discount, weight=weight, index=index,
                     generation=generation, boot=boot)
        if self.her is not None:
            self._finish_relabeling(batch, her_row)
        return batch

    def _her_op_args(self) -> tuple:
        """her_strategy, her_ratio, achieved_goal, desired_goal, her_reward, her_params."""
        her = self.her
        if her is None:
            return (0, 0.0, -1, -1, 0, [])
        column = {f.name: i for i, f in enumerate(self.fields)}
        kind, params = 0, []
        if isinstance(her.reward, SparseL2):
            kind, params = 1, [her.reward.eps]
        elif isinstance(her.reward, PerDim):
            kind, params = 2, [*her.reward.thresholds, *her.reward.values]
        return (HER_STRATEGY_CODES[her.strategy], her.ratio, column["achieved_goal"],
                column["desired_goal"], kind, params)

    def _finish_relabeling(self, batch: Batch, her_row: Tensor) -> None:
        """Python reward and terminal callables for the relabeled samples; the warning about
        relabeled terminated episodes."""
        her = self.her
        batch["her_row"], batch["is_her"] = her_row, her_row >= 0
        relabeled = batch["is_her"]
        callable_reward = not isinstance(her.reward, (SparseL2, PerDim))
        if (callable_reward or her.terminal is not None) and bool(relabeled.any()):
            # Relabeled samples take one step: next_obs is o_{t+1}, obs's desired goal the new one.
            reached = batch.next_obs["achieved_goal"][relabeled]
            goal = batch.obs["desired_goal"][relabeled]
            if callable_reward:
                reward = torch.as_tensor(her.reward(reached, goal), dtype=batch.reward.dtype)
                batch.reward[relabeled] = reward.reshape(batch.reward[relabeled].shape)
            if her.terminal is not None:
                ends = torch.as_tensor(her.terminal(reached, goal), dtype=torch.bool).reshape(-1)
                batch.discount[relabeled] = torch.where(ends, 0.0, self.nstep.gamma).to(
                    batch.discount.dtype)
        if (her.terminal is None and not self._warned_terminal
                and self._counters[TERMINATED_EPISODES].item() > 0):
            self._warned_terminal = True
            warnings.warn("ReplayBuffer: HER relabels terminated episodes without a terminal "
                          "function; the stored termination is kept under the new goals, which is "
                          "only right if termination does not depend on the goal. Pass "
                          "HER(terminal=...) to recompute it.", stacklevel=3)

    def _episode_rows(self, batch_size: int) -> Tensor:
        """Episode mode (SPEC 1.2): rounds of select_count draws by priority, their distinct
        episodes, and m ~ U{1..min(T, max_ep_draw)} distinct steps of each, until the batch is
        full; then cut to batch_size."""
        mode, g = self.episode_mode, self._generator
        rows, have = [], 0
        while have < batch_size:
            uniform = torch.rand(mode.select_count, dtype=torch.float64, generator=g)
            drawn, _ = _ops.tree_sample(self._sum_tree, self._min_tree, self.capacity, uniform,
                                        0.0, False)
            for episode in torch.unique(self._row_episode[drawn]).tolist():
                start, length, _ = self._episodes[episode % self._episodes.shape[0]].tolist()
                count = 1 + int(float(torch.rand(1, dtype=torch.float64, generator=g))
                                * min(length, mode.max_ep_draw))
                steps = torch.randperm(length, generator=g)[:count]
                rows.append((start + steps) % self.capacity)
                have += count
        return torch.cat(rows)[:batch_size].to(self.device)

    def update_priorities(self, index: Tensor, generation: Tensor, td_abs) -> None:
        """Sets the priority of sampled rows from their absolute TD errors.

        Rows overwritten since they were sampled (their generation changed) are skipped.
        ``td_abs`` is ``[B]``, or ``[B, m]`` averaged over the m heads; NaN or negative values
        raise ValueError and nothing is updated.
        """
        per = self.prioritized
        if per is None:
            raise ValueError("ReplayBuffer.update_priorities: this buffer samples uniformly "
                             "(prioritized=None); create it with prioritized=replay.PER(...)")
        if not isinstance(td_abs, Tensor):
            td_abs = torch.as_tensor(td_abs)
        td_abs = td_abs.detach()
        if td_abs.device != self.device:
            td_abs = td_abs.to(self.device)
        with self._lock:
            self._ops.update_priorities(*self._ring, self._max_priority, index, generation, td_abs,
                                        per.alpha, per.eps, per.p_min, per.p_max)

    # ---- inspection ----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Transitions that can be sampled (staged steps of running episodes not included)."""
        return int(self._counters[TRANSITIONS])

    @property
    def num_episodes(self) -> int:
        return int(self._counters[NEXT_EPISODE] - self._counters[OLDEST_EPISODE])

    @property
    def pending_steps(self) -> int:
        """Steps staged for episodes still running."""
        return 0 if self._stage_length is None else int(self._stage_length.sum())

    def episodes(self) -> dict[str, Tensor]:
        """The episode table: id, start row, length T and terminated of every stored episode."""
        with self._lock:
            first, end = int(self._counters[OLDEST_EPISODE]), int(self._counters[NEXT_EPISODE])
            ids = torch.arange(first, end, dtype=torch.int64, device=self.device)
            rows = self._episodes[ids % self._episodes.shape[0]]
        return {"id": ids, "start": rows[:, 0], "length": rows[:, 1], "terminated": rows[:, 2].bool()}

    def priorities(self) -> Tensor:
        """The leaf of every row: priority^alpha (1 when uniform), 0 where no transition starts."""
        first = _C.tree_leaf_offset(self.capacity)
        return self._sum_tree[first:first + self.capacity].clone()

    # ---- save and restore ----------------------------------------------------------------------

    def config(self) -> dict:
        """The constructor arguments, as plain Python values."""
        return {
            "capacity": self.capacity,
            "spec": {f.name: (list(f.shape), str(f.dtype).removeprefix("torch."))
                     for f in self.fields},
            "device": str(self.device),
            "prioritized": asdict(self.prioritized) if self.prioritized is not None else None,
            "nstep": asdict(self.nstep),
            "seed": self.seed,
            "obs_keys": list(self.obs_keys),
            "max_episode_steps": self.max_episode_steps,
            "episode_mode": asdict(self.episode_mode) if self.episode_mode is not None else None,
            "her": describe_her(self.her),
        }

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this buffer is.

        Like ``nn.Module.state_dict``, the tensors are the buffer's own (no copy): save them or
        clone them before adding more.
        """
        with self._lock:
            return {
                "config": self.config(),
                "columns": {f.name: c for f, c in zip(self.fields, self._columns)},
                "row_episode": self._row_episode,
                "episodes": self._episodes,
                "counters": self._counters,
                "sum_tree": self._sum_tree,
                "min_tree": self._min_tree,
                "max_priority": self._max_priority,
                "stage": (None if self._stage is None else
                          {f.name: s for f, s in zip(self.fields, self._stage)}),
                "stage_length": self._stage_length,
                "generator": self._generator.get_state(),
                "sample_calls": self._sample_calls,
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores a state from :meth:`state_dict` of a buffer built with the same layout.

        The seed and device may differ: the generator state is restored too.
        """
        ours, theirs = self.config(), dict(state["config"])
        for key in ("seed", "device"):
            ours.pop(key), theirs.pop(key, None)
        if theirs != ours:
            raise ValueError(f"ReplayBuffer.load_state_dict: the state was saved from a buffer with "
                             f"{theirs}, this one has {ours}")
        own = self._tensors()
        expected = {name: (t.shape, t.dtype) for name, t in own.items()}
        given = {name: state[name] for name in own if not name.startswith("columns.")}
        given.update({f"columns.{k}": v for k, v in state["columns"].items()})
        if state["stage"] is not None:
            stage_length = state["stage_length"]
            envs = stage_length.shape[0] if isinstance(stage_length, Tensor) else -1
            expected["stage_length"] = ((envs,), torch.int64)
            given["stage_length"] = stage_length
            for f in self.fields:
                expected[f"stage.{f.name}"] = ((envs, self.max_episode_steps, *f.shape), f.dtype)
            given.update({f"stage.{k}": v for k, v in state["stage"].items()})
        if set(given) != set(expected):
            raise ValueError(f"ReplayBuffer.load_state_dict: expected tensors {sorted(expected)}, "
                             f"got {sorted(given)}")
        for name, (shape, dtype) in expected.items():  # check everything before changing anything
            tensor = given[name]
            if not isinstance(tensor, Tensor) or tensor.shape != shape or tensor.dtype != dtype:
                got = (list(tensor.shape), tensor.dtype) if isinstance(tensor, Tensor) else type(tensor)
                raise ValueError(f"ReplayBuffer.load_state_dict: {name} should be {list(shape)} "
                                 f"{dtype}, got {got}")
        with self._lock:
            for name, tensor in own.items():
                tensor.copy_(given[name])
            if state["stage"] is None:
                self._stage = self._stage_length = None
            else:
                self._stage = [given[f"stage.{f.name}"].to(self.device, copy=True)
                               for f in self.fields]
                self._stage_length = given["stage_length"].to(self.device, copy=True)
            self._generator.set_state(state["generator"])
            self._sample_calls = int(state["sample_calls"])
            self._has_data = bool(self._counters[TRANSITIONS] > 0)

    def _tensors(self) -> dict[str, Tensor]:
        named = {"row_episode": self._row_episode, "episodes": self._episodes,
                 "counters": self._counters, "sum_tree": self._sum_tree,
                 "min_tree": self._min_tree, "max_priority": self._max_priority}
        named.update({f"columns.{f.name}": c for f, c in zip(self.fields, self._columns)})
        return named

    def save(self, path) -> None:
        """Writes the buffer to `path` (torch.save format; tensors are written, not copied)."""
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path, her: Optional[HER] = None) -> "ReplayBuffer":
        """Rebuilds a buffer written by :meth:`save`; it samples what the saved one would have.

        A HER setting with built-in rewards is restored from the file; one with Python callables
        (which are not saved) must be passed again as `her`.
        """
        # mmap: the file's tensors are paged in while copying, never held twice in memory.
        state = torch.load(path, weights_only=True, mmap=True)
        config = dict(state["config"])
        spec = {name: (tuple(shape), getattr(torch, dtype)) for name, (shape, dtype)
                in config.pop("spec").items()}
        prioritized, episode_mode = config.pop("prioritized"), config.pop("episode_mode")
        saved_her = config.pop("her")
        if her is None and saved_her is not None:
            her = her_from_description(saved_her)
        buf = cls(spec=spec, prioritized=PER(**prioritized) if prioritized else None,
                  episode_mode=EpisodeMode(**episode_mode) if episode_mode else None, her=her,
                  nstep=NStep(**config.pop("nstep")), obs_keys=tuple(config.pop("obs_keys")),
                  **config)
        buf.load_state_dict(state)
        return buf

    # ---- input checks --------------------------------------------------------------------------

    def _obs_values(self, where: str, name: str, obs) -> list:
        if self.obs_keys == ("obs",):
            return [obs]
        if not isinstance(obs, Mapping) or set(obs) != set(self.obs_keys):
            got = sorted(obs) if isinstance(obs, Mapping) else type(obs).__name__
            raise ValueError(f"ReplayBuffer.{where}: {name} should be a dict with keys "
                             f"{sorted(self.obs_keys)}, got {got}")
        return [obs[key] for key in self.obs_keys]

    def _leading_size(self, where: str, obs) -> int:
        first = self._obs_values(where, "obs", obs)[0]
        shape = first.shape if hasattr(first, "shape") else torch.as_tensor(first).shape
        if len(shape) == 0:
            raise ValueError(f"ReplayBuffer.{where}: obs should have a leading dimension, got a scalar")
        return shape[0]

    def _values(self, where: str, obs, reward, fields: dict, obs_rows: int, rows: int) -> list:
        expected = {f.name for f in self.fields[len(self.obs_keys):-1]}
        if set(fields) != expected:
            missing, extra = sorted(expected - set(fields)), sorted(set(fields) - expected)
            raise ValueError(f"ReplayBuffer.{where}: fields should be {sorted(expected)}; "
                             f"missing {missing}, unexpected {extra}")
        values = self._obs_values(where, "obs", obs) + [fields[f.name] for f in
                                                        self.fields[len(self.obs_keys):-1]]
        values.append(reward)
        out = []
        for i, (field, value) in enumerate(zip(self.fields, values)):
            out.append(self._rows(where, field.name, field, value,
                                  (obs_rows if i < len(self.obs_keys) else rows,)))
        return out

    def _rows(self, where: str, name: str, field: Field, value, leading: tuple) -> Tensor:
        if not isinstance(value, Tensor):
            try:
                value = torch.as_tensor(value)
            except (TypeError, RuntimeError, ValueError) as err:
                raise ValueError(f"ReplayBuffer.{where}: {name} should be {field.dtype} values of "
                                 f"shape {list((*leading, *field.shape))}, got {value!r} ({err})") from None
        if value.dtype != field.dtype:
            if not _castable(value.dtype, field.dtype):
                raise ValueError(f"ReplayBuffer.{where}: {name} should be {field.dtype} "
                                 f"(or convert to it within its kind), got {value.dtype}")
            value = value.to(field.dtype)
        shape = (*leading, *field.shape)
        if value.shape != shape:
            raise ValueError(f"ReplayBuffer.{where}: {name} should have shape {list(shape)}, "
                             f"got {list(value.shape)}")
        if value.device != self.device:
            value = value.to(self.device)
        return value

    def _flags(self, name: str, flags, envs: int) -> Tensor:
        flags = torch.as_tensor(flags, device=self.device)
        if flags.shape != (envs,) or flags.dtype.is_floating_point or flags.dtype.is_complex:
            raise ValueError(f"ReplayBuffer.add: {name} should be {envs} bools [N], got "
                             f"{list(flags.shape)} {flags.dtype}")
        return flags if flags.dtype == torch.bool else flags != 0
