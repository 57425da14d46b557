"""Stable-Baselines3 replay buffers backed by pyrl's compiled replay, and prioritized replay
for SB3's DQN and TD3.

The buffers are subclasses of SB3's classes with SB3's constructor, ``add`` and ``sample``
signatures and sample types, so SB3's off-policy algorithms (TD3, SAC, DDPG, DQN) take them as
``replay_buffer_class``::

    from stable_baselines3 import TD3
    from pyrl.compat.sb3 import HerReplayBuffer

    model = TD3("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"))

    from pyrl.compat.sb3 import PrioritizedDQN
    model = PrioritizedDQN("MlpPolicy", "CartPole-v1")   # PER: IS weights and priority updates

What differs from SB3's buffers, on purpose:

- Each observation is stored once, plus one row per episode for its final observation (SB3
  stores ``obs`` and ``next_obs`` for every transition): ``buffer_size`` counts those rows.
  Float observations are stored, and sampled, as float32.
- Steps are staged per environment and stored when their episode ends; while the staged steps
  would outnumber the stored ones (the first episode, say), they are stored as a cut episode at
  once, so sampling can start as early as with SB3's buffer. One-step targets are unchanged by a
  cut (it bootstraps from the same next observation); an n-step window stops there.
- ``n_steps`` and ``gamma`` (as SB3's ``NStepReplayBuffer`` takes them) give n-step returns with
  ``discounts`` in the samples; ``prioritized=replay.PER(...)`` gives prioritized samples
  (:class:`PrioritizedReplayBufferSamples`) for :class:`PrioritizedDQN` and
  :class:`PrioritizedTD3`.
- The HER buffer relabels inside the compiled sample; its rewards come from the env's
  ``compute_reward`` (as SB3's do) or, faster, from ``compute_reward=replay.sparse_l2(eps)``.
  With ``copy_info_dict=True`` each step's info dict is kept beside its row and passed, copied,
  to ``compute_reward`` for the relabeled samples, as SB3 does.
"""

import copy
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

try:
    from gymnasium import spaces
    from stable_baselines3 import DQN, TD3
    from stable_baselines3.common import buffers as sb3_buffers
    from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
    from stable_baselines3.common.utils import polyak_update
    from stable_baselines3.her.goal_selection_strategy import GoalSelectionStrategy
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer as _SB3HerReplayBuffer
except ImportError as err:  # pragma: no cover - exercised only without SB3
    raise ImportError(
        f"pyrl.compat.sb3 needs Stable-Baselines3 ({err}); install it with "
        f"pip install 'pyrl[sb3]' (stable-baselines3==2.9.2)"
    ) from None

from pyrl import replay
from pyrl.replay.layout import EPISODE_SLOTS

__all__ = [
    "HerReplayBuffer",
    "PrioritizedDQN",
    "PrioritizedReplayBuffer",
    "PrioritizedReplayBufferSamples",
    "PrioritizedTD3",
    "ReplayBuffer",
]


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3's sample fields, then what prioritized replay adds: ``weights`` (``[B, 1]``
    importance weights) and ``indices`` and ``generations`` (pass both, with the TD errors, to
    the buffer's ``update_priorities``)."""

    observations: Any
    actions: torch.Tensor
    next_observations: Any
    dones: torch.Tensor
    rewards: torch.Tensor
    discounts: Optional[torch.Tensor]
    weights: torch.Tensor
    indices: torch.Tensor
    generations: torch.Tensor


class _CompiledStorage:
    """What the drop-ins share: a pyrl ReplayBuffer behind SB3's ``add`` and ``sample``, and
    SB3's step counters (``pos``, ``full``, ``size()``) kept as SB3 keeps them."""

    _cut_early = True  # store staged steps early while they could outnumber the stored ones

    def _setup(
        self,
        buffer_size,
        observation_space,
        action_space,
        device,
        n_envs,
        optimize_memory_usage,
        handle_timeout_termination,
        n_steps,
        gamma,
        prioritized,
        seed,
        max_episode_steps,
    ):
        where = type(self).__name__
        if optimize_memory_usage:
            raise ValueError(
                f"{where}: optimize_memory_usage=True is not needed: pyrl stores each "
                f"observation once already (one extra row per episode); leave it False"
            )
        if not (type(buffer_size) is int and buffer_size >= 1):
            raise ValueError(f"{where}: buffer_size should be an int >= 1, got {buffer_size!r}")
        if not (type(n_envs) is int and n_envs >= 1):
            raise ValueError(f"{where}: n_envs should be an int >= 1, got {n_envs!r}")
        if gamma is None and n_steps != 1:
            raise ValueError(
                f"{where}: n_steps={n_steps!r} needs the algorithm's gamma: "
                f"replay_buffer_kwargs=dict(n_steps={n_steps!r}, gamma=...)"
            )
        if prioritized is not None and not isinstance(prioritized, replay.PER):
            raise ValueError(
                f"{where}: prioritized should be a pyrl.replay.PER or None, got {prioritized!r}"
            )
        sb3_buffers.BaseBuffer.__init__(
            self, buffer_size, observation_space, action_space, device, n_envs=n_envs
        )
        self.buffer_size = max(buffer_size // n_envs, 1)  # SB3's steps per env, for pos and full
        self.n_steps, self.gamma = n_steps, gamma  # public, as on SB3's NStepReplayBuffer
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self._dict_obs = isinstance(observation_space, spaces.Dict)
        action_dtype = sb3_buffers.ReplayBuffer._maybe_cast_dtype(action_space.dtype)
        self._action_dtype = torch.from_numpy(np.empty(0, dtype=action_dtype)).dtype
        # Drawn from numpy's global generator, which SB3 seeds before it makes the buffer, so a
        # seeded model samples the same batches run after run.
        if seed is None:
            seed = int(np.random.randint(0, 2**62))
        self._settings = dict(
            # A transition needs two rows (its observation and the next); buffer_size=1, SB3's
            # way to load a model for evaluation, holds one.
            capacity=max(buffer_size, 2),
            device="cpu",
            prioritized=prioritized,
            seed=seed,
            nstep=replay.NStep(n_steps, gamma) if gamma is not None else None,
            max_episode_steps=max_episode_steps,
            obs_keys=tuple(observation_space.spaces) if self._dict_obs else None,
        )
        self._buffer = self._make_buffer()
        self._shapes = {f.name: f.shape for f in self._buffer.fields}
        self._cutting = self._cut_early
        self._cut_episodes: set = set()  # ids of the episodes the early cuts stored

    def _make_buffer(self) -> replay.ReplayBuffer:
        buf = replay.ReplayBuffer.from_spaces(
            self._settings["capacity"],
            self.observation_space,
            self.action_space,
            her=self._her(),
            **{k: v for k, v in self._settings.items() if k != "capacity"},
        )
        # SB3's loop always passes time limits (infos' TimeLimit.truncated): an episode cut at
        # max_episode_steps is one longer than that, not a missing flag.
        buf._warned_cut = True
        # SB3's HER keeps the stored dones under relabeled goals; so does the drop-in unless
        # given HerReplayBuffer(terminal=...), without the pyrl buffer's warning about it.
        buf._warned_terminal = True
        return buf

    def _her(self) -> Optional[replay.HER]:
        return None

    @property
    def replay(self) -> replay.ReplayBuffer:
        """The pyrl buffer underneath (its ``priority_updates``, ``save``, ``check``...)."""
        return self._buffer

    # ---- SB3's interface -----------------------------------------------------------------------

    def add(self, obs, next_obs, action, reward, done, infos) -> None:
        """One step of the ``n_envs`` environments, as SB3's off-policy loop gives it:
        ``next_obs`` already holds the final observation where an episode ended, and a time
        limit is read from ``infos[i]["TimeLimit.truncated"]``."""
        done = np.asarray(done, dtype=bool).reshape(self.n_envs)
        timeout = np.array([bool(info.get("TimeLimit.truncated", False)) for info in infos])
        if timeout.shape != done.shape:
            raise ValueError(
                f"{type(self).__name__}.add: infos should hold one dict per env "
                f"({self.n_envs}), got {len(infos)}"
            )
        if self.handle_timeout_termination:
            terminated, truncated = done & ~timeout, done & timeout
        else:
            terminated, truncated = done, np.zeros_like(done)
        buf = self._buffer
        cut = None
        if self._cutting:
            stored = len(buf)
            if stored < buf.pending_steps + self.n_envs:
                cut = ~done
                truncated = truncated | ~terminated
            # No stage holds more than max_episode_steps steps: past this, no cut is needed.
            self._cutting = stored < self.n_envs * buf.max_episode_steps
        first = buf.storage.counter("next_episode") if cut is not None else 0
        buf.add(
            obs=self._obs_rows("obs", obs),
            next_obs=self._obs_rows("next_obs", next_obs),
            reward=self._rows("reward", reward, ()),
            terminated=terminated,
            truncated=truncated,
            action=self._rows("action", action, self._shapes["action"]),
        )
        if cut is not None and cut.any():
            # The episodes that ended commit in env order; remember which of them were cuts, so
            # that stored_transitions shows those steps as SB3 stored them (not done).
            ended = np.flatnonzero(terminated | truncated)
            if buf.storage.counter("next_episode") - first == ended.size:
                self._cut_episodes.update(first + i for i, env in enumerate(ended) if cut[env])
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def _obs_rows(self, name: str, obs):
        if self._dict_obs:
            if not isinstance(obs, dict) or set(obs) != set(self._settings["obs_keys"]):
                raise ValueError(
                    f"{type(self).__name__}.add: {name} should be a dict with keys "
                    f"{sorted(self._settings['obs_keys'])}, got {type(obs).__name__}"
                )
            return {
                key: self._rows(f"{name}[{key!r}]", value, self._shapes[key])
                for key, value in obs.items()
            }
        return self._rows(name, obs, self._shapes["obs"])

    def _rows(self, name: str, value, shape: tuple) -> np.ndarray:
        """`value` as ``[n_envs, *shape]`` (SB3 gives Discrete observations and actions flat)."""
        if type(value) is np.ndarray and value.shape == (self.n_envs, *shape):
            return value
        value = np.asarray(value)
        if value.size != self.n_envs * int(np.prod(shape)):
            raise ValueError(
                f"{type(self).__name__}.add: {name} should hold {self.n_envs} env(s) "
                f"of shape {list(shape)}, got shape {list(value.shape)}"
            )
        return value.reshape(self.n_envs, *shape)

    def sample(self, batch_size: int, env=None):
        """``batch_size`` transitions as SB3's sample types (``[B, 1]`` dones and rewards; dones
        are true terminals only, as SB3's with ``handle_timeout_termination``); ``env`` (a
        VecNormalize) normalizes observations and rewards as SB3 does."""
        if len(self._buffer) == 0:
            raise RuntimeError(
                f"{type(self).__name__}: nothing to sample yet (episodes are stored "
                f"when they end); choose a learning_starts greater than the "
                f"number of steps in the first episode"
            )
        batch = self._buffer.sample(batch_size)
        self._finish(batch)
        size = batch.reward.shape[0]

        def fit(value: torch.Tensor, shape, dtype=None) -> torch.Tensor:
            if value.shape != shape:
                value = value.reshape(shape)
            if value.device != self.device or (dtype is not None and value.dtype != dtype):
                value = value.to(self.device, dtype)
            return value

        def observations(value):
            if env is not None:
                value = (
                    env.normalize_obs({k: v.numpy() for k, v in value.items()})
                    if self._dict_obs
                    else env.normalize_obs(value.numpy())
                )
                value = (
                    {k: torch.as_tensor(v) for k, v in value.items()}
                    if self._dict_obs
                    else torch.as_tensor(value)
                )
            if self._dict_obs:
                return {key: fit(v, (size, *self.obs_shape[key])) for key, v in value.items()}
            return fit(value, (size, *self.obs_shape))

        reward = batch.reward
        if env is not None:
            reward = torch.as_tensor(env.normalize_reward(reward.numpy()).astype(np.float32))
        column = (size, 1)
        fields = dict(
            observations=observations(batch.obs),
            next_observations=observations(batch.next_obs),
            actions=fit(batch.action, (size, self.action_dim), self._action_dtype),
            dones=fit(batch.terminated, column, torch.float32),
            rewards=fit(reward, column, torch.float32),
            discounts=(
                fit(torch.pow(self._buffer.nstep.gamma, batch.k.double()), column, torch.float32)
                if self._buffer.nstep is not None
                else None
            ),
        )
        if self._buffer.prioritized is not None:
            return PrioritizedReplayBufferSamples(
                **fields,
                weights=fit(batch.weight, column, torch.float32),
                indices=batch.index,
                generations=batch.generation,
            )
        kind = DictReplayBufferSamples if self._dict_obs else ReplayBufferSamples
        return kind(**fields)

    def stored_transitions(self) -> dict:
        """The stored transitions, episode by episode from the oldest, as read-only numpy arrays
        under SB3's names and per-transition shapes: what ``buf.observations[:buf.size()]``
        (and the other arrays) of SB3's buffer holds, flattened over its env axis:
        ``observations`` and ``next_observations`` (dicts for Dict spaces), ``actions``
        ``[N, action_dim]``, ``rewards``, ``dones`` and ``timeouts`` ``[N]`` (float32), as SB3
        set them from ``add``'s ``done`` and time limits (the steps where the drop-in cut the
        first episodes early are not done, as they were not). Running episodes' steps are stored
        when they end (the HER buffer's ``truncate_last_trajectory`` stores them)."""
        stored = self._buffer.transitions()
        size = stored.reward.shape[0]
        cuts = getattr(self, "_cut_episodes", ())  # absent from pickles of earlier versions
        if cuts:
            cut = torch.isin(stored.episode, torch.tensor(sorted(cuts)))
            stored["truncated"] = stored.truncated & ~cut
        if not self.handle_timeout_termination:  # SB3 then keeps no timeouts
            stored["terminated"] = stored.terminated | stored.truncated
            stored["truncated"] = torch.zeros_like(stored.truncated)

        def frozen(value: torch.Tensor, shape=None) -> np.ndarray:
            array = value.cpu().numpy()
            array = array.reshape(shape) if shape is not None else array
            array.flags.writeable = False
            return array

        def observations(value):
            if self._dict_obs:
                return {key: frozen(v) for key, v in value.items()}
            return frozen(value)

        return dict(
            observations=observations(stored.obs),
            next_observations=observations(stored.next_obs),
            actions=frozen(stored.action, (size, self.action_dim)),
            rewards=frozen(stored.reward),
            dones=frozen((stored.terminated | stored.truncated).float()),  # float32, as SB3's
            timeouts=frozen(stored.truncated.float()),
        )

    def update_priorities(self, indices, generations, td_abs) -> torch.Tensor:
        """Sets the sampled rows' priorities from their absolute TD errors (a prioritized
        buffer); returns which entries were applied (rows overwritten since are dropped)."""
        td_abs = torch.as_tensor(td_abs).detach().reshape(-1).to("cpu", torch.float64)
        return self._buffer.update_priorities(indices, generations, td_abs)

    def _get_samples(self, batch_inds, env=None):
        raise NotImplementedError(
            f"{type(self).__name__} samples inside pyrl's compiled op; use sample(batch_size)"
        )

    def reset(self) -> None:
        sb3_buffers.BaseBuffer.reset(self)
        self._buffer = self._make_buffer()
        self._cutting = self._cut_early
        self._cut_episodes = set()

    def _finish(self, batch) -> None:
        """A subclass's last word on a sampled batch (the HER buffer's info-dict rewards)."""

    # ---- pickling (SB3's save_replay_buffer / load_replay_buffer) -------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("env", None)  # as SB3's HER buffer: envs are often not picklable
        state["_buffer"] = _own_storage(self._buffer.state_dict())
        return state

    def __setstate__(self, state: dict) -> None:
        buffer_state = state.pop("_buffer")
        self.__dict__.update(state)
        if isinstance(self, _SB3HerReplayBuffer):
            self.env = None  # SB3 calls set_env after loading
        self._buffer = self._make_buffer()
        self._buffer.load_state_dict(buffer_state)


def _own_storage(state):
    """``state`` with each tensor view (the columns share one row-record storage) copied into a
    storage of its own: pickle writes a tensor's whole storage, once per tensor."""
    if isinstance(state, dict):
        return {key: _own_storage(value) for key, value in state.items()}
    if isinstance(state, torch.Tensor):
        if state.untyped_storage().nbytes() > state.numel() * state.element_size():
            return state.clone()
    return state


class ReplayBuffer(_CompiledStorage, sb3_buffers.ReplayBuffer):
    """SB3's ``ReplayBuffer`` (Box, Discrete or Dict observations) on pyrl's compiled buffer.

    SB3's arguments, and these keywords:

    Args:
        n_steps, gamma: n-step returns (``gamma`` required when ``n_steps > 1``; the samples
            then carry ``discounts``).
        prioritized: a :class:`pyrl.replay.PER` for prioritized samples.
        seed: the sample draws' seed (default: drawn from numpy, which SB3 seeds).
        max_episode_steps: steps staged per env before a running episode is stored as cut.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Union[torch.device, str] = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        n_steps: int = 1,
        gamma: Optional[float] = None,
        prioritized: Optional[replay.PER] = None,
        seed: Optional[int] = None,
        max_episode_steps: int = 1000,
    ):
        self._setup(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
            n_steps,
            gamma,
            prioritized,
            seed,
            max_episode_steps,
        )


class PrioritizedReplayBuffer(ReplayBuffer):
    """:class:`ReplayBuffer` with prioritized replay (``replay.PER()`` unless given), for
    :class:`PrioritizedDQN` and :class:`PrioritizedTD3`."""

    def __init__(self, *args, prioritized: Optional[replay.PER] = None, **kwargs):
        super().__init__(*args, prioritized=prioritized or replay.PER(), **kwargs)


class HerReplayBuffer(_CompiledStorage, _SB3HerReplayBuffer):
    """SB3's ``HerReplayBuffer`` on pyrl's compiled buffer: goals relabeled inside the sample op
    (``future`` draws from the later steps of the episode, the current transition's next
    observation included, as SB3's inclusive ``future``).

    SB3's arguments, and these keywords:

    Args:
        compute_reward: None to recompute relabeled rewards with the env's ``compute_reward``
            (as SB3 does, without infos), or a pyrl HER reward: ``replay.sparse_l2(eps)`` (in
            C++), ``replay.per_dim(...)`` or a callable ``(achieved_goal, desired_goal)``.
        n_steps, gamma, prioritized, seed, max_episode_steps: as :class:`ReplayBuffer`.
    """

    _cut_early = False  # as SB3's: only whole episodes are sampled

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        env,
        device: Union[torch.device, str] = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_sampled_goal: int = 4,
        goal_selection_strategy: Union[GoalSelectionStrategy, str] = "future",
        copy_info_dict: bool = False,
        *,
        compute_reward=None,
        terminal=None,
        n_steps: int = 1,
        gamma: Optional[float] = None,
        prioritized: Optional[replay.PER] = None,
        seed: Optional[int] = None,
        max_episode_steps: int = 1000,
    ):
        if copy_info_dict and compute_reward is not None:
            raise ValueError(
                "HerReplayBuffer: copy_info_dict=True passes the stored infos to the env's "
                "compute_reward; compute_reward= (which takes no infos) cannot take them"
            )
        strategy = goal_selection_strategy
        if isinstance(strategy, GoalSelectionStrategy):
            strategy = strategy.name.lower()
        if strategy not in ("future", "final", "episode"):
            raise ValueError(
                f"HerReplayBuffer: goal_selection_strategy should be 'future', "
                f"'final' or 'episode', got {goal_selection_strategy!r}"
            )
        if not (type(n_sampled_goal) is int and n_sampled_goal >= 0):
            raise ValueError(
                f"HerReplayBuffer: n_sampled_goal should be an int >= 0, got {n_sampled_goal!r}"
            )
        if not isinstance(observation_space, spaces.Dict) or not {
            "achieved_goal",
            "desired_goal",
        } <= set(observation_space.spaces):
            raise ValueError(
                f"HerReplayBuffer: observation_space should be a goal env's Dict "
                f"(achieved_goal, desired_goal, ...), got {observation_space}"
            )
        self.env = env
        self.copy_info_dict = bool(copy_info_dict)
        self.goal_selection_strategy = GoalSelectionStrategy[strategy.upper()]
        self.n_sampled_goal = n_sampled_goal
        self.her_ratio = 1 - (1.0 / (n_sampled_goal + 1))
        self._strategy, self._compute_reward, self._terminal = strategy, compute_reward, terminal
        self._setup(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
            n_steps,
            gamma,
            prioritized,
            seed,
            max_episode_steps,
        )
        self._forget_infos()

    # ---- info dicts (copy_info_dict=True) -------------------------------------------------------

    def _forget_infos(self) -> None:
        # Each row's info dict, and each env's infos of the steps it still stages (its episode
        # runs on); rows are assigned when an episode is stored.
        self._row_infos = [None] * self._settings["capacity"] if self.copy_info_dict else None
        self._staged_infos = [[] for _ in range(self.n_envs)]

    def reset(self) -> None:
        super().reset()
        self._forget_infos()

    def add(self, obs, next_obs, action, reward, done, infos) -> None:
        if getattr(self, "_row_infos", None) is None:  # absent from earlier versions' pickles
            return super().add(obs, next_obs, action, reward, done, infos)
        first = self._buffer.storage.counter("next_episode")
        super().add(obs, next_obs, action, reward, done, infos)
        for env, info in enumerate(infos):
            self._staged_infos[env].append(info)
        self._file_infos(first)

    def _file_infos(self, first: int, dropped: int = 0) -> None:
        """Moves the infos of the episodes stored since episode id `first` to their rows.
        Episodes are stored in env order, one at most per env and call; an env's stored steps
        are its oldest staged ones (`dropped` newest ones were not stored), and it keeps staging
        what the buffer still stages."""
        storage = self._buffer.storage
        end = storage.counter("next_episode")
        staged = storage.stage_length.tolist()
        if end > first:
            stored = [
                e for e in range(self.n_envs) if len(self._staged_infos[e]) - dropped > staged[e]
            ]
            table = storage.episodes[torch.arange(first, end) % storage.episodes.shape[0]]
            starts = table[:, EPISODE_SLOTS["start"]].tolist()
            lengths = table[:, EPISODE_SLOTS["length"]].tolist()
            capacity = len(self._row_infos)
            for index, env in enumerate(stored if len(stored) == end - first else []):
                for t, info in enumerate(self._staged_infos[env][: lengths[index]]):
                    self._row_infos[(starts[index] + t) % capacity] = info
        for env in range(self.n_envs):  # a one-step episode truncate drops stores nothing
            keep = staged[env]
            self._staged_infos[env] = self._staged_infos[env][-keep:] if keep else []

    def _finish(self, batch) -> None:
        if getattr(self, "_row_infos", None) is None or not bool(batch.is_her.any()):
            return
        relabeled = batch.is_her
        infos = [
            copy.deepcopy(self._row_infos[row]) or {} for row in batch.index[relabeled].tolist()
        ]
        reached = batch.next_obs["achieved_goal"][relabeled]
        goal = batch.obs["desired_goal"][relabeled]
        reward = self._env_reward(reached, goal, infos)
        batch.reward[relabeled] = reward.to(batch.reward.dtype).reshape(-1)

    def truncate_last_trajectory(self) -> None:
        """Stores the running episodes as cut at their newest observation (their newest step,
        whose next observation was not stored, is dropped), so a new ``learn`` starts clean."""
        first = self._buffer.storage.counter("next_episode")
        self._buffer.end_running_episodes()
        if getattr(self, "_row_infos", None) is not None:
            self._file_infos(first, dropped=1)  # the newest step of each, as the buffer does

    def _her(self) -> replay.HER:
        reward = self._compute_reward if self._compute_reward is not None else self._env_reward
        if self.copy_info_dict:
            reward = _no_reward  # recomputed with the stored infos in _finish
        return replay.HER(
            self._strategy, self.n_sampled_goal, reward, terminal=getattr(self, "_terminal", None)
        )

    def _env_reward(
        self, achieved_goal: torch.Tensor, desired_goal: torch.Tensor, infos=None
    ) -> torch.Tensor:
        """Relabeled rewards from the env's ``compute_reward``, called as SB3 calls it."""
        if self.env is None:
            raise ValueError(
                "HerReplayBuffer: no env to compute rewards with; call set_env(env) "
                "after loading (SB3's load_replay_buffer does)"
            )
        if infos is None:
            infos = [{} for _ in range(achieved_goal.shape[0])]
        achieved, desired = achieved_goal.numpy(), desired_goal.numpy()
        if hasattr(self.env, "env_method"):  # a VecEnv
            reward = self.env.env_method("compute_reward", achieved, desired, infos, indices=[0])[0]
        else:
            reward = self.env.unwrapped.compute_reward(achieved, desired, infos)
        return torch.as_tensor(np.asarray(reward, dtype=np.float32))


def _no_reward(achieved_goal: torch.Tensor, desired_goal: torch.Tensor) -> torch.Tensor:
    return torch.zeros(achieved_goal.shape[0])


# ---- prioritized replay for SB3's algorithms ----------------------------------------------------


def _prioritized_samples(algorithm, batch_size: int) -> PrioritizedReplayBufferSamples:
    samples = algorithm.replay_buffer.sample(batch_size, env=algorithm._vec_normalize_env)
    if not isinstance(samples, PrioritizedReplayBufferSamples):
        raise ValueError(
            f"{type(algorithm).__name__} needs a prioritized pyrl buffer: "
            f"replay_buffer_class=pyrl.compat.sb3.PrioritizedReplayBuffer (or a pyrl "
            f"buffer with prioritized=replay.PER()), got "
            f"{type(algorithm.replay_buffer).__name__}"
        )
    return samples


class PrioritizedDQN(DQN):
    """SB3's DQN with prioritized replay (Schaul et al. 2016): the Huber loss weighted by the
    importance weights, and the sampled rows' priorities set from ``|TD error|``. Takes DQN's
    arguments; the buffer defaults to :class:`PrioritizedReplayBuffer`."""

    def __init__(self, policy, env, **kwargs):
        kwargs.setdefault("replay_buffer_class", PrioritizedReplayBuffer)
        super().__init__(policy, env, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            data = _prioritized_samples(self, batch_size)
            discounts = data.discounts if data.discounts is not None else self.gamma
            with torch.no_grad():
                next_q = self.q_net_target(data.next_observations).max(dim=1)[0].reshape(-1, 1)
                target = data.rewards + (1 - data.dones) * discounts * next_q
            current = torch.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
            loss = (data.weights * F.smooth_l1_loss(current, target, reduction="none")).mean()
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self.replay_buffer.update_priorities(
                data.indices, data.generations, (current - target).abs()
            )
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))


class PrioritizedTD3(TD3):
    """SB3's TD3 with prioritized replay: each critic's squared error weighted by the importance
    weights, priorities from the first critic's ``|TD error|``. Takes TD3's arguments; the
    buffer defaults to :class:`PrioritizedReplayBuffer` (a :class:`HerReplayBuffer` with
    ``prioritized=replay.PER()`` works too)."""

    def __init__(self, policy, env, **kwargs):
        kwargs.setdefault("replay_buffer_class", PrioritizedReplayBuffer)
        super().__init__(policy, env, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = _prioritized_samples(self, batch_size)
            discounts = data.discounts if data.discounts is not None else self.gamma
            with torch.no_grad():
                noise = data.actions.clone().normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
                next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1)
                next_q = next_q.min(dim=1, keepdim=True)[0]
                target = data.rewards + (1 - data.dones) * discounts * next_q
            current = self.critic(data.observations, data.actions)
            critic_loss = sum((data.weights * (q - target) ** 2).mean() for q in current)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            self.replay_buffer.update_priorities(
                data.indices, data.generations, (current[0] - target).abs()
            )
            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(
                    data.observations, self.actor(data.observations)
                ).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(
                    self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0
                )
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
