"""ReplayBuffer: episodes in a ring of tensor columns, sampled uniformly or by priority.

Storage follows SPEC 1.2. An episode of T transitions fills T + 1 consecutive rows of the ring
(modulo the capacity): rows o_0 .. o_{T-1} carry the step's fields (observation, action, reward,
...), and row T holds only the final observation, which is what ``next_obs`` of the last step
is read from. Episodes are committed whole: ``add`` stages each environment's steps until its
episode ends (``terminated`` or ``truncated``) and then writes it to the ring in one piece, so a
sampled transition can always look ahead in its own episode (n-step, HER). Writing over an old
episode evicts all of it; an episode may wrap around the end of the ring.

Three parts: :class:`~pyrl.replay.storage.ReplayStorage` holds every tensor (and saves and
restores them) with the compiled host that runs the ops on them, :mod:`~pyrl.replay.inputs`
checks settings and turns what a caller passes into the tensors the ops take, and this facade
makes one compiled call per ``add``, ``sample`` and ``update_priorities``. The host's mutex
serialises those calls and covers only the compiled work (inputs are converted before it is
taken), so one thread may add while another samples. It is waited for only with the GIL
released and never held while waiting for the GIL; Python sections that need the state
unchanged (snapshots, the episode table) hold the buffer between two calls instead
(``_locked``), which other threads' calls wait on with the GIL released too.
"""

import math
import os
import warnings
from dataclasses import asdict
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch import Tensor

from pyrl import _C, _ops
from pyrl._io import atomic_save, load_data
from pyrl.replay.inputs import (Field, Inputs, check_goal_fields, default_obs_keys, parse_spec)
from pyrl.replay.layout import (DRAW_STREAMS, EPISODE_SLOTS, INVARIANTS, MAX_CAPACITY, named,
                               picker, tree_leaf_offset)
from pyrl.replay.recurrent import Encoder, Recurrent, encoder_states
from pyrl.replay.settings import (HER, EpisodeMode, MemoryMapped, NStep, PER, PerDim, SparseL2,
                                  per_dim, sparse_l2)
from pyrl.replay.storage import ReplayStorage, config_values, fresh_seed

TD_ABS = Field("td_abs", (), torch.float64)  # add_episode's initial priorities, as the op takes them

__all__ = ["Batch", "Field", "InvariantError", "ReplayBuffer"]

# autoreset_mode names (also gymnasium's AutoresetMode values, lower-cased without "_").
AUTORESET_MODES = {"samestep": "same_step", "nextstep": "next_step", "disabled": "disabled"}


# The fused sample's outputs, found by name in its schema (pyrl.replay.layout.OUTPUTS).
_SAMPLE_OUTPUTS = picker("replay_sample", "fields", "next_obs", "her_row", "reward", "discount",
                         "weight", "index", "generation", "boot", "k", "terminated")

class InvariantError(ValueError):
    """A buffer's state breaks one of its invariants (:meth:`ReplayBuffer.check`)."""


class Batch(dict):
    """A sampled batch: a dict whose keys are also attributes (``batch.obs``, ``batch.weight``).

    Keys: every spec field at the sampled rows (``obs``, ``action``, ...; ``obs`` is a dict when
    the buffer stores several observation keys), ``next_obs`` (at the bootstrap row), ``reward``
    (the n-step return R, ``[B]`` or ``[B, m]``), ``terminated`` (the window reaches a true
    terminal: nothing to bootstrap), ``k`` (steps in the window, 1 without n-step),
    ``discount`` (``gamma^k``, 0 after a true terminal: only when the buffer was given a gamma,
    ``nstep=NStep(n, gamma)``; otherwise form ``gamma ** k * ~terminated`` with yours),
    ``weight`` (importance weights, 1 when uniform), ``index`` and ``generation`` (pass both to
    ``update_priorities``) and ``boot`` (the bootstrap row); with HER also ``her_row`` (the row
    whose achieved goal is the new goal, -1 if not relabeled) and ``is_her``; with
    ``recurrent``, ``hidden`` and ``next_hidden`` (the stored states at the row and at the
    bootstrap row).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name == "discount":
                raise AttributeError("Batch has no discount: the buffer was made without a gamma "
                                     "(nstep=None). Use gamma ** batch.k * ~batch.terminated with "
                                     "your gamma, or make it with nstep=replay.NStep(n, gamma)") from None
            raise AttributeError(f"Batch has no field {name!r}; it has {sorted(self)}") from None


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
            "terminal": "callable" if her.terminal is not None else None, "nstep": her.nstep,
            "terminal_on_success": her.terminal_on_success}


def her_from_description(described: dict) -> HER:
    reward = described["reward"]
    if reward == "callable" or described["terminal"] is not None:
        raise ValueError("ReplayBuffer.load: the saved buffer relabels with Python callables, "
                         "which are not saved; pass her=replay.HER(...) to load()")
    kind = (sparse_l2(reward["sparse_l2"]) if "sparse_l2" in reward
            else per_dim(*reward["per_dim"]))
    return HER(described["strategy"], described["k"], kind,
               nstep=described.get("nstep", "one_step"),
               terminal_on_success=described.get("terminal_on_success", False))


def settings_from_file(where: str, state: Any, her: Optional[HER], directory: str) -> dict:
    """The constructor arguments a saved state describes, checked against the tensors it holds
    before anything is allocated (a small file must not make the loader allocate gigabytes).
    A memory-mapped buffer's column directory is relative to the file's `directory`."""
    if not isinstance(state, Mapping) or not isinstance(state.get("config"), Mapping):
        raise ValueError(f"{where} holds no buffer state (no 'config' entry)")
    config = dict(state["config"])
    try:
        spec = {}
        for name, (shape, dtype) in config.pop("spec").items():
            kind = getattr(torch, dtype, None) if isinstance(dtype, str) else None
            if not isinstance(kind, torch.dtype):
                raise ValueError(f"field {name!r} has dtype {dtype!r}")
            spec[name] = (tuple(shape), kind)
        prioritized, episode_mode = config.pop("prioritized"), config.pop("episode_mode")
        saved_her = config.pop("her")
        recurrent = config.pop("recurrent", None)
        mapped = config.pop("storage", None)
        if mapped is not None:
            columns_dir = mapped["memory_mapped"]
            if not isinstance(columns_dir, str):
                raise ValueError(f"storage should name the column directory, got {columns_dir!r}")
            config["storage"] = MemoryMapped(os.path.join(directory, columns_dir), reopen=True)
        if recurrent is not None:
            config["recurrent"] = Recurrent.from_description(recurrent)
        if her is None and saved_her is not None:
            her = her_from_description(saved_her)
        kwargs = dict(spec=spec, prioritized=PER(**prioritized) if prioritized else None,
                      episode_mode=EpisodeMode(**episode_mode) if episode_mode else None, her=her,
                      nstep=NStep(**nstep) if (nstep := config.pop("nstep")) is not None else None,
                      obs_keys=tuple(config.pop("obs_keys")),
                      **config)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{where}: its config is not a buffer's ({err})") from None
    capacity = kwargs.get("capacity")
    if not (type(capacity) is int and 2 <= capacity <= MAX_CAPACITY):
        raise ValueError(f"{where}: capacity should be an int in [2, 2^48], got {capacity!r}")
    columns = state.get("columns")
    row_episode = state.get("row_episode")
    if not (isinstance(row_episode, Tensor) and row_episode.shape == (capacity,)):
        raise ValueError(f"{where}: row_episode should hold the capacity's {capacity} rows")
    if kwargs.get("storage") is not None and columns is None:
        return kwargs  # memory-mapped: the column files are checked when they are mapped
    if not isinstance(columns, Mapping):
        raise ValueError(f"{where}: columns should be a dict of tensors")
    for name, (shape, _) in spec.items():
        column = columns.get(name)
        if not (isinstance(column, Tensor) and tuple(column.shape) == (capacity, *shape)):
            got = list(column.shape) if isinstance(column, Tensor) else type(column).__name__
            raise ValueError(f"{where}: column {name!r} should be {[capacity, *shape]}, got {got}")
    return kwargs


def _rebuild(arguments: dict, state: Mapping[str, Any]) -> "ReplayBuffer":
    buf = ReplayBuffer(**arguments)
    buf.load_state_dict(state)
    return buf


class ReplayBuffer:
    """Episode replay with uniform or prioritized sampling and n-step returns, compiled ops inside.

    Args:
        capacity: rows in the ring (transitions plus one final-observation row per episode).
        spec: the stored fields, ``{name: shape}`` or ``{name: (shape, dtype)}``; float32 unless
            given. ``reward`` defaults to a scalar float32 per step; give ``"reward": (m,)`` for
            m reward heads.
        device: where every tensor of the buffer lives.
        prioritized: a :class:`PER`, or None to sample uniformly.
        nstep: an :class:`NStep` (its gamma gives batches their ``discount``); None means
            one-step returns, and batches without ``discount`` (``terminated`` and ``k`` are
            always there).
        seed: the seed of the sample draws; the same seed and the same adds give the same
            batches, whatever the thread count. None draws one from the OS.
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
        recurrent: a :class:`Recurrent` to store the encoder state of every step.
        storage: a :class:`MemoryMapped` to keep the columns in files (buffers larger than
            RAM); None keeps them in memory.

    Example::

        buf = ReplayBuffer(100_000, {"obs": (17,), "action": (6,)}, prioritized=PER())
        buf.add(obs=o, action=a, reward=r, next_obs=o2, terminated=term, truncated=trunc)
        batch = buf.sample(256)
        loss = (batch.weight * (q - target) ** 2).mean()
        buf.update_priorities(batch.index, batch.generation, (q - target).abs())
    """

    def __init__(self, capacity: int, spec: Mapping[str, Any], *positional,
                 device: Union[str, torch.device] = "cpu",
                 prioritized: Optional[PER] = None, nstep: Optional[NStep] = None,
                 seed: Optional[int] = None, obs_keys: Optional[tuple[str, ...]] = None,
                 max_episode_steps: int = 1000, episode_mode: Optional[EpisodeMode] = None,
                 her: Optional[HER] = None, recurrent: Optional[Recurrent] = None,
                 storage: Optional[MemoryMapped] = None):
        if positional or _is_space(spec):  # a Stable-Baselines3-style call
            raise ValueError(
                f"ReplayBuffer(capacity, spec, **settings) takes a spec dict and keyword settings, "
                f"got spec={type(spec).__name__} and {len(positional)} more positional argument(s); "
                f"from gymnasium spaces: ReplayBuffer.from_spaces(capacity, observation_space, "
                f"action_space, nstep=..., prioritized=...)")
        self._arguments = dict(capacity=capacity, spec=spec, device=device, prioritized=prioritized,
                               nstep=nstep, seed=seed, obs_keys=obs_keys,
                               max_episode_steps=max_episode_steps, episode_mode=episode_mode,
                               her=her, recurrent=recurrent,
                               storage=storage)  # copies and pickles rebuild from these
        if not (type(capacity) is int and 2 <= capacity <= MAX_CAPACITY):
            raise ValueError(f"ReplayBuffer: capacity should be an int >= 2 (an episode needs 2 "
                             f"rows) and at most 2^48, got {capacity!r}")
        for name, value, kind in (("prioritized", prioritized, PER), ("nstep", nstep, NStep),
                                  ("episode_mode", episode_mode, EpisodeMode), ("her", her, HER),
                                  ("recurrent", recurrent, Recurrent),
                                  ("storage", storage, MemoryMapped)):
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"ReplayBuffer: {name} should be a replay.{kind.__name__} or "
                                 f"None, got {value!r}")
        if not (type(max_episode_steps) is int and max_episode_steps >= 1):
            raise ValueError(f"ReplayBuffer: max_episode_steps should be an int >= 1, got {max_episode_steps!r}")
        if seed is not None and not (type(seed) is int and 0 <= seed < 2 ** 63):
            raise ValueError(f"ReplayBuffer: seed should be an int in [0, 2^63) or None, got {seed!r}")
        try:
            self.device = torch.device(device)
        except (TypeError, RuntimeError) as err:
            raise ValueError(f"ReplayBuffer: device should name a torch device, got {device!r} "
                             f"({err})") from None
        if self.device.type != "cpu":
            raise ValueError(f"ReplayBuffer: device {self.device} is not supported yet; the replay "
                             f"ops are built for the CPU only (CUDA replay is planned)")
        fields = parse_spec(spec)
        fields.setdefault("reward", Field("reward", (), torch.float32))
        if len(fields["reward"].shape) > 1 or not fields["reward"].dtype.is_floating_point:
            raise ValueError(f"spec: reward should be float [] or [m] per step, got "
                             f"{fields['reward'].shape} {fields['reward'].dtype}")
        obs_keys = tuple(obs_keys) if obs_keys is not None else default_obs_keys(fields)
        missing = [k for k in obs_keys if k not in fields]
        if not obs_keys or missing or "reward" in obs_keys:
            raise ValueError(f"ReplayBuffer: obs_keys {obs_keys} should name observation fields "
                             f"of the spec {sorted(fields)}")
        if her is not None:
            check_goal_fields(fields, obs_keys, her)
        # The stored state is one more observation column: it has a value at the final row.
        column_keys = obs_keys
        if recurrent is not None:
            encoded = recurrent.key if recurrent.key is not None else obs_keys[0]
            if encoded not in obs_keys or len(fields[encoded].shape) != 1 \
                    or not fields[encoded].dtype.is_floating_point:
                raise ValueError(f"ReplayBuffer: Recurrent.key should name a float [d_o] "
                                 f"observation field of {obs_keys}, got {encoded!r}")
            fields["hidden"] = Field("hidden", recurrent.hidden, recurrent.dtype)
            column_keys = (*obs_keys, "hidden")
            self._encoded = encoded

        self.capacity = capacity
        self.prioritized = prioritized
        self.her = her
        self.recurrent = recurrent
        self.nstep = nstep
        # The windows the ops read: a buffer without a gamma samples one step with gamma 1,
        # so its discount is exactly 0 (terminal) or 1, and only terminated and k are shown.
        self._steps = nstep if nstep is not None else NStep(1, 1.0)
        self.episode_mode = episode_mode
        self.obs_keys = obs_keys
        self.max_episode_steps = min(max_episode_steps, capacity - 1)
        self.seed = seed
        # Column order (the ops rely on it): observation fields, the other fields, reward last.
        others = [name for name in fields if name not in column_keys and name != "reward"]
        self.fields = [fields[name] for name in (*column_keys, *others, "reward")]
        self._column_keys = column_keys
        self._config = config_values(prioritized, self._steps, her, self.fields, column_keys)
        self.storage = ReplayStorage(capacity, self.fields, self.device,
                                     seed if seed is not None else fresh_seed(), self._config,
                                     len(column_keys), self.max_episode_steps, mapped=storage)
        self.inputs = Inputs(self.fields, column_keys, self.device)
        self._host = self.storage.host
        self._warned_terminal = False
        self._warned_cut = False  # add() warns once when a stage fills up without flags
        # Autoreset handling (add with infos): the mode once given or detected, and under
        # NEXT_STEP the envs that ended at the previous add (their next step is a reset).
        self._autoreset: Optional[str] = None
        self._after_end: Optional[np.ndarray] = None
        # Per episode slot: the id last refreshed there and the sample call it was refreshed at
        # (recalc_delta); not saved: after a load every episode is due once.
        slots = self.storage.episodes.shape[0]
        self._refreshed_id = torch.full((slots,), -1, dtype=torch.int64)
        self._refreshed_at = torch.zeros(slots, dtype=torch.int64)

    def __reduce__(self):
        # The compiled host holds nothing beyond the settings and the state: copy.deepcopy and
        # pickle rebuild the buffer from them.
        return (_rebuild, (self._arguments, self.state_dict()))

    @classmethod
    def from_spaces(cls, capacity: int, observation_space, action_space, **settings) -> "ReplayBuffer":
        """A buffer for a gymnasium env's spaces: ``obs`` (a Box, or a Discrete index as int64),
        or one field per key of a Dict (goal dicts keep ``observation``, ``achieved_goal`` and
        ``desired_goal``), and ``action`` (a Box as float32, a Discrete or MultiDiscrete as
        int64). Float observations are stored as float32, integer ones (images) as they are.
        ``settings`` are the constructor's keywords.

        Example::

            env = gymnasium.make("CartPole-v1")
            buf = ReplayBuffer.from_spaces(100_000, env.observation_space, env.action_space,
                                           nstep=NStep(3, gamma=0.99))
        """
        spec = {}
        if isinstance(observation_space, _spaces().Dict):
            for key, space in observation_space.spaces.items():
                spec[key] = _space_field("observation_space", key, space)
        else:
            spec["obs"] = _space_field("observation_space", "obs", observation_space)
        spec["action"] = _space_field("action_space", "action", action_space)
        return cls(capacity, spec, **settings)

    # ---- adding --------------------------------------------------------------------------------

    def add(self, obs, next_obs, reward, terminated, truncated, infos=None, autoreset_mode=None,
            **fields) -> None:
        """Adds one step of N environments; an environment's episode is stored when it ends.

        Args:
            obs: ``[N, *shape]`` (a dict of them with several ``obs_keys``).
            next_obs: the observations after the step, same layout; only read where the episode
                ends, as its final observation (autoreset envs: pass the final observation, or
                pass ``infos``).
            reward: ``[N]`` or ``[N, m]``.
            terminated: ``[N]`` bools, the episode reached a terminal state (no bootstrap).
            truncated: ``[N]`` bools, the episode was cut (bootstrap from next_obs). An episode
                that reaches ``max_episode_steps`` with neither flag is stored as truncated,
                with a warning the first time (a loop that does not pass ``truncated``).
            infos: the info dict of a gymnasium 1.x vector env's step: with it the buffer
                handles autoreset itself. Under ``SAME_STEP`` the final observations come from
                ``infos["final_obs"]``; under ``NEXT_STEP`` (gymnasium's default: no
                ``final_obs`` at an episode end, so it is detected, with a warning the first
                time) the reset step that follows each end is not stored, since it is no
                transition. Detection never looks at observation values.
            autoreset_mode: ``"same_step"``, ``"next_step"`` or ``"disabled"`` (or gymnasium's
                ``AutoresetMode``), to say it instead of detecting it; ``"disabled"``: you
                reset envs yourself and pass true next observations.
            **fields: every other spec field, ``[N, *shape]`` (``action=...``); a recurrent
                buffer also takes ``hidden`` (the state fed into this step) and ``next_hidden``
                (the state after it: stored as the final row's where the episode ends).

        Tensors, numpy arrays and lists are accepted and converted to the field's dtype within
        their kind (floats or ints into float columns, ints into int columns, bools into bool
        columns). Bad input raises ValueError and leaves the buffer unchanged.
        """
        skip = None
        if infos is not None or autoreset_mode is not None or self._autoreset is not None:
            next_obs, skip = self._autoreset_step(next_obs, terminated, truncated, infos,
                                                  autoreset_mode)
        if self.recurrent is not None:
            obs = self._with_hidden("add", "hidden", obs, fields)
            next_obs = self._with_hidden("add", "next_hidden", next_obs, fields)
        if self._host.add(obs, next_obs, reward, terminated, truncated, fields, skip) \
                and not self._warned_cut:
            self._warned_cut = True
            warnings.warn(f"ReplayBuffer.add: an episode reached max_episode_steps="
                          f"{self.max_episode_steps} steps with neither terminated nor truncated "
                          f"set, and was stored as truncated there. If the env has a time limit, "
                          f"pass its truncated flags (from gymnasium's step); if its episodes are "
                          f"this long, raise max_episode_steps", stacklevel=2)

    def add_episode(self, obs, reward, terminated: bool = False, td_abs=None, **fields) -> None:
        """Adds a whole episode of T transitions.

        Args:
            obs: ``[T + 1, *shape]``: every observation including the final one (a dict of them
                with several ``obs_keys``).
            reward: ``[T]`` or ``[T, m]``.
            terminated: True if the episode ended in a terminal state (no bootstrap from the
                final observation); False for a cut (truncated) episode.
            td_abs: prioritized buffers: ``[T]`` absolute TD errors of the transitions, which
                then enter at the priorities :meth:`update_priorities` would give them (an
                actor's initial priorities, as in Ape-X) instead of the largest priority so
                far. They are not counted in :attr:`priority_updates`.
            **fields: every other spec field, ``[T, *shape]``; a recurrent buffer also takes
                ``hidden``, ``[T + 1, d]``: the state fed into every step, and the final one.
        """
        if self.recurrent is not None:
            obs = self._with_hidden("add_episode", "hidden", obs, fields)
        if not isinstance(terminated, bool):
            raise ValueError(f"ReplayBuffer.add_episode: terminated should be a bool, got {terminated!r}")
        rows = self.inputs.leading_size("add_episode", self.inputs.obs_values("add_episode", "obs", obs)[0])
        if rows < 2:
            raise ValueError(f"ReplayBuffer.add_episode: an episode needs at least 1 transition "
                             f"(obs with 2 rows), got obs with {rows} rows")
        if rows > self.capacity:
            raise ValueError(f"ReplayBuffer.add_episode: an episode of {rows - 1} transitions needs "
                             f"{rows} rows, more than the capacity {self.capacity}")
        _, values = self.inputs.columns("add_episode", obs, reward, fields, rows, rows - 1)
        if td_abs is not None:
            if self.prioritized is None:
                raise ValueError("ReplayBuffer.add_episode: td_abs needs a prioritized buffer "
                                 "(prioritized=replay.PER(...)); this one samples uniformly")
            td_abs = self.inputs.rows("add_episode", "td_abs", TD_ABS, td_abs, rows - 1)
        self._host.add_episode(values, terminated, td_abs)

    def end_running_episodes(self) -> int:
        """Stores every running episode now, as truncated at its newest observation, and drops
        its newest step (whose next observation has not come yet); the next ``add`` of each
        environment starts a new episode. For a loop that stops or switches envs mid-episode
        (Stable-Baselines3's ``truncate_last_trajectory``). Returns the episodes stored; a
        running episode of one step is dropped whole."""

        def end() -> int:
            staged = self._host.stage()
            if staged is None:
                return 0
            stage, lengths = staged
            stored = 0
            obs_columns = len(self._column_keys)
            for env, length in enumerate(lengths.tolist()):
                if length >= 2:
                    values = [column[env, :length if i < obs_columns else length - 1].clone()
                              for i, column in enumerate(stage)]
                    self._host.add_episode(values, False, None)
                    stored += 1
            lengths.zero_()
            if self._after_end is not None:
                self._after_end[:] = False  # no reset step follows a cut
            return stored

        return self._locked(end)

    def _autoreset_step(self, next_obs, terminated, truncated, infos, mode):
        """(next_obs with final observations put back, the envs whose step is not stored) for
        one step of a gymnasium autoreset vector env (see ``add``)."""
        if infos is not None and not isinstance(infos, Mapping):
            raise ValueError(f"ReplayBuffer.add: infos should be the info dict of a gymnasium "
                             f"vector env's step, got {type(infos).__name__}")
        if mode is not None:
            name = str(getattr(mode, "value", mode)).replace("_", "").lower()
            if name not in AUTORESET_MODES:
                raise ValueError(f"ReplayBuffer.add: autoreset_mode should be 'same_step', "
                                 f"'next_step' or 'disabled' (or gymnasium's AutoresetMode), got {mode!r}")
            self._autoreset = AUTORESET_MODES[name]
        try:
            done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        except (TypeError, ValueError):
            return next_obs, None  # the host names the bad flags
        infos = infos if infos is not None else {}
        if self._autoreset is None and done.any():
            self._autoreset = "same_step" if "final_obs" in infos else "next_step"
            if self._autoreset == "next_step":
                warnings.warn("ReplayBuffer.add: an episode ended and infos has no 'final_obs': "
                              "treating the env as gymnasium's NEXT_STEP autoreset, so the reset "
                              "step each env returns next is not stored (it is no transition). "
                              "Pass autoreset_mode='disabled' if you reset envs yourself, or "
                              "'next_step' to say so and silence this.", stacklevel=3)
        skip = None
        if self._autoreset == "same_step" and done.any():
            if "final_obs" not in infos:
                raise ValueError("ReplayBuffer.add: autoreset_mode is 'same_step' but infos has no "
                                 "'final_obs' at an episode end; pass the step's infos (or use "
                                 "autoreset_mode='next_step' for gymnasium's default)")
            from pyrl.envs import final_observations

            next_obs = final_observations(next_obs, infos, done)
        elif self._autoreset == "next_step":
            if self._after_end is not None and self._after_end.shape == done.shape \
                    and self._after_end.any():
                skip = torch.from_numpy(self._after_end)
                done = done & ~self._after_end
            self._after_end = done
        return next_obs, skip

    def _with_hidden(self, where: str, name: str, obs, fields: dict) -> dict:
        """obs with the recurrent state `name` (popped from fields) as its "hidden" entry."""
        if name not in fields:
            raise ValueError(f"ReplayBuffer.{where}: this buffer stores recurrent states; pass "
                             f"{name}=[..., {self.recurrent.hidden[0]}] tensors")
        hidden = fields.pop(name)
        if self.obs_keys == ("obs",) and not isinstance(obs, Mapping):
            return {"obs": obs, "hidden": hidden}
        if not isinstance(obs, Mapping):
            raise ValueError(f"ReplayBuffer.{where}: obs should be a dict with keys "
                             f"{sorted(self.obs_keys)}, got {type(obs).__name__}")
        return {**obs, "hidden": hidden}

    # ---- sampling ------------------------------------------------------------------------------

    def sample(self, batch_size: int) -> Batch:
        """Draws ``batch_size`` transitions (with replacement), stratified over the priority mass,
        or, with ``episode_mode``, groups of steps of the episodes drawn.

        Returns:
            A :class:`Batch`. Its draws are a function of the seed and the number of earlier
            sample calls (:meth:`next_uniforms`), so a seed reproduces every batch.
        """
        if not (type(batch_size) is int and batch_size >= 1):
            raise ValueError(f"ReplayBuffer.sample: batch_size should be an int >= 1, got {batch_size!r}")
        if self.episode_mode is None:
            drawn = self._host.sample(batch_size, None)
        else:  # the rows are drawn in Python: held, so no add evicts them before the sample
            drawn = self._locked(lambda: self._host.sample(batch_size, self._episode_rows(batch_size)))
        (fields, next_obs, her_row, reward, discount, weight, index, generation, boot, k,
         terminated) = _SAMPLE_OUTPUTS(drawn)
        batch = Batch(zip(self.storage.names, fields))
        if self.obs_keys == ("obs",):
            batch["next_obs"] = next_obs[0]
        else:
            batch["obs"] = {key: batch.pop(key) for key in self.obs_keys}
            batch["next_obs"] = dict(zip(self.obs_keys, next_obs))
        if self.recurrent is not None:
            batch["next_hidden"] = next_obs[len(self.obs_keys)]
        batch.update(reward=reward, discount=discount, weight=weight, index=index,
                     generation=generation, boot=boot, k=k, terminated=terminated)
        if self.her is not None:
            self._finish_relabeling(batch, her_row)
        if self.nstep is None:
            del batch["discount"]
        return batch

    def next_uniforms(self, batch_size: int) -> dict[str, Tensor]:
        """The uniforms the next ``sample(batch_size)`` will draw, by purpose: ``row`` (the
        position inside each sample's stratum), ``relabel`` and ``goal`` (HER), ``lookahead``
        (floating k). A hook for tests and reproducibility: ``pyrl.reference.counter_uniforms``
        computes the same values from the seed and the call count."""
        seed, call = self._host.draws()
        return {name: torch.tensor(_C.counter_uniforms(seed, call, stream, batch_size),
                                   dtype=torch.float64)
                for name, stream in DRAW_STREAMS.items()}

    @property
    def op_config(self) -> list[float]:
        """The settings list the replay ops take (``pyrl.replay.layout.CONFIG`` names its
        slots); with ``storage.state`` and ``storage.columns`` it calls an op by hand."""
        return list(self._config)

    @property
    def sample_calls(self) -> int:
        """Sample calls made so far (the counter of the draws; saved with the state)."""
        return self.storage.calls

    def _finish_relabeling(self, batch: Batch, her_row: Tensor) -> None:
        """Python reward and terminal callables for the relabeled samples; the warning about
        relabeled terminated episodes."""
        her = self.her
        batch["her_row"], batch["is_her"] = her_row, her_row >= 0
        relabeled = batch["is_her"]
        callable_reward = not isinstance(her.reward, (SparseL2, PerDim))
        if her.nstep == "recompute":
            if (callable_reward or her.terminal is not None) and bool(relabeled.any()):
                self._recompute_windows(batch, relabeled)
        elif (callable_reward or her.terminal is not None) and bool(relabeled.any()):
            # Relabeled samples take one step: next_obs is o_{t+1}, obs's desired goal the new one.
            reached = batch.next_obs["achieved_goal"][relabeled]
            goal = batch.obs["desired_goal"][relabeled]
            if callable_reward:
                reward = torch.as_tensor(her.reward(reached, goal), dtype=batch.reward.dtype)
                expected = batch.reward[relabeled].shape
                if reward.numel() != expected.numel():
                    raise ValueError(f"ReplayBuffer.sample: the HER reward callable should return "
                                     f"{list(expected)} rewards, got shape {list(reward.shape)}")
                batch.reward[relabeled] = reward.reshape(expected)
            if her.terminal is not None:
                ends = torch.as_tensor(her.terminal(reached, goal), dtype=torch.bool).reshape(-1)
                if ends.shape[0] != int(relabeled.sum()):
                    raise ValueError(f"ReplayBuffer.sample: the HER terminal callable should "
                                     f"return {int(relabeled.sum())} flags, got {ends.shape[0]}")
                batch.discount[relabeled] = torch.where(ends, 0.0, self._steps.gamma).to(
                    batch.discount.dtype)
                batch.terminated[relabeled] = ends
        if (her.terminal is None and not self._warned_terminal
                and self.storage.counter("terminated_episodes") > 0):
            self._warned_terminal = True
            warnings.warn("ReplayBuffer: HER relabels terminated episodes without a terminal "
                          "function; the stored termination is kept under the new goals, which is "
                          "only right if termination does not depend on the goal. Pass "
                          "HER(terminal=...) to recompute it.", stacklevel=3)

    def _recompute_windows(self, batch: Batch, relabeled: Tensor) -> None:
        """HER(nstep="recompute") with a Python reward or terminal callable: the rewards of each
        relabeled window (its k drawn steps, reaching o_{t+1} .. o_{t+k}) recomputed under the
        new goal, batched over every window step; a terminal callable ends a window at its first
        True, as a true terminal (it takes precedence over the stored termination)."""
        her, storage, capacity = self.her, self.storage, self.capacity
        index, boot = batch.index[relabeled], batch.boot[relabeled]
        steps = (boot - index) % capacity
        offsets = torch.arange(1, int(steps.max()) + 1)
        valid = offsets[None, :] <= steps[:, None]                       # [b, n]
        rows = (index[:, None] + offsets[None, :]) % capacity
        reached = storage.column("achieved_goal")[rows]                   # [b, n, g]
        goal = batch.obs["desired_goal"][relabeled][:, None, :].expand_as(reached)
        cut = steps.clone()
        ended = torch.zeros_like(steps, dtype=torch.bool)
        if her.terminal is not None:
            flags = torch.zeros(valid.shape, dtype=torch.bool)
            flags[valid] = torch.as_tensor(her.terminal(reached[valid], goal[valid]),
                                           dtype=torch.bool).reshape(-1)
            first = torch.where(flags.any(1), flags.int().argmax(1), steps)
            ended = flags.any(1)
            cut = torch.where(ended, first + 1, steps)
        kept = offsets[None, :] <= cut[:, None]
        heads = batch.reward.shape[1:]
        rewards = torch.zeros((*valid.shape, *heads), dtype=torch.float64)
        values = torch.as_tensor(her.reward(reached[kept], goal[kept]), dtype=torch.float64)
        if values.numel() != int(kept.sum()) * max(1, math.prod(heads)):
            raise ValueError(f"ReplayBuffer.sample: the HER reward callable should return one "
                             f"reward per step {list(heads)}, got shape {list(values.shape)}")
        rewards[kept] = values.reshape(-1, *heads)
        weights = self._steps.gamma ** torch.arange(valid.shape[1], dtype=torch.float64)
        weights = weights.reshape(1, -1, *([1] * len(heads)))
        batch.reward[relabeled] = (rewards * weights).sum(1).to(batch.reward.dtype)
        if her.terminal is not None:
            discount = torch.where(ended, 0.0, self._steps.gamma ** cut.double())
            batch.discount[relabeled] = discount.to(batch.discount.dtype)
            batch.terminated[relabeled] = ended
            batch.k[relabeled] = cut
        moved = cut < steps
        if bool(moved.any()):  # the window ends earlier: its bootstrap row is earlier too
            where = relabeled.nonzero()[:, 0][moved]
            new_boot = (batch.index[where] + cut[moved]) % capacity
            batch.boot[where] = new_boot
            for key in self.obs_keys:
                if key != "desired_goal":
                    batch.next_obs[key][where] = storage.column(key)[new_boot]
            if self.recurrent is not None:
                batch.next_hidden[where] = storage.column("hidden")[new_boot]

    def _episode_rows(self, batch_size: int) -> Tensor:
        """Episode mode (SPEC 1.2): rounds of select_count draws by priority, their distinct
        episodes, and m ~ U{1..min(T, max_ep_draw)} distinct steps of each, until the batch is
        full; then cut to batch_size. Draws come from the counter generator, on streams past the
        fused sample's own."""
        mode, storage = self.episode_mode, self.storage
        seed, call = self._host.draws()
        if storage.sum_tree[0] <= 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty (an episode is stored once "
                             "it ends; no episode has ended yet)")
        stream = len(DRAW_STREAMS)

        def uniforms(count):
            nonlocal stream
            stream += 1
            return torch.tensor(_C.counter_uniforms(seed, call, stream - 1, count),
                                dtype=torch.float64)

        slots = storage.episodes.shape[0]
        rows, have = [], 0
        while have < batch_size:
            drawn, _ = _ops.tree_sample(storage.sum_tree, storage.min_tree, self.capacity,
                                        uniforms(mode.select_count), 0.0, False)
            episodes = torch.unique(storage.row_episode[drawn]).tolist()
            counts = uniforms(len(episodes))
            for episode, u in zip(episodes, counts.tolist()):
                entry = storage.episodes[episode % slots]
                start = int(entry[EPISODE_SLOTS["start"]])
                length = int(entry[EPISODE_SLOTS["length"]])
                count = 1 + int(u * min(length, mode.max_ep_draw))
                steps = torch.argsort(uniforms(length))[:count]
                rows.append((start + steps) % self.capacity)
                have += count
        return torch.cat(rows)[:batch_size].to(self.device)

    # ---- recurrent replay (SPEC 5) ------------------------------------------------------------

    def _require_recurrent(self, where: str) -> Recurrent:
        if self.recurrent is None:
            raise ValueError(f"ReplayBuffer.{where}: this buffer stores no hidden states; create "
                             f"it with recurrent=replay.Recurrent(hidden=(d,))")
        return self.recurrent

    def _episode_ids(self, where: str, episodes) -> Tensor:
        if episodes is None:
            return self._locked(lambda: torch.arange(self.storage.counter("oldest_episode"),
                                                     self.storage.counter("next_episode")))
        try:
            ids = torch.as_tensor(episodes)
        except (TypeError, RuntimeError, ValueError):
            ids = None
        if ids is None or ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"ReplayBuffer.{where}: episodes should be a 1-D list or tensor of "
                             f"episode ids (episodes()['id']), got {episodes!r:.80}")
        return ids.to(torch.int64).contiguous()

    def gather_sequences(self, episodes=None, key: Optional[str] = None,
                         positions: Optional[int] = None) -> tuple[Tensor, Tensor]:
        """The observation sequences of stored episodes, for a recurrent encoder (SPEC 5.2).

        Args:
            episodes: episode ids (``episodes()["id"]``); None: every stored episode.
            key: the observation field (default: the one the encoder reads).
            positions: how many positions to return (default: the longest sequence's).

        Returns:
            ``(sequences [E, positions, d_o], lengths [E])``: each episode's observations
            ``o_0 .. o_T`` after ``n_history - 1`` zero pads, zeros after the end; ``lengths``
            is ``n_history - 1 + T + 1``, or 0 for an id no longer stored.
        """
        recurrent = self._require_recurrent("gather_sequences")
        ids = self._episode_ids("gather_sequences", episodes)
        column = self.storage.column(key if key is not None else self._encoded)
        pad = recurrent.n_history - 1

        def gather():
            wanted = positions
            if wanted is None:
                wanted = pad + 1 + int(self._lengths(ids).max()) if ids.numel() else 0
            return _ops.replay_gather_episodes(self.storage.state, column, ids, pad, wanted)

        return self._locked(gather)

    def _lengths(self, ids: Tensor) -> Tensor:
        """T of each alive id, 0 for the others (call with the lock held)."""
        storage = self.storage
        alive = (ids >= storage.counter("oldest_episode")) & (ids < storage.counter("next_episode"))
        slots = storage.episodes.shape[0]
        return torch.where(alive, storage.episodes[ids % slots, EPISODE_SLOTS["length"]], 0)

    def recompute_hidden(self, encoder: Encoder, episodes=None, chunk: int = 2048) -> dict[str, int]:
        """Refreshes the stored states of every episode, or of the ones given, with `encoder`
        (under no_grad; pass the target encoder if the agent has one).

        Episodes are run in batched calls of up to `chunk` episodes, grouped by length so
        padding stays small. Each runs from its stored first state, which is zero for an episode
        that began at a reset (what acting fed in) and the actor's carried state for a piece
        continuing an episode cut by ``max_episode_steps``; every later state is rewritten
        (``hidden_in[t]`` = the state after padded position ``t - 1``, SPEC 5.1). The buffer's
        lock is held only to gather and to write back: other threads keep adding meanwhile, and
        an episode evicted in between is skipped (its id is its generation).

        Args:
            encoder: a ``torch.nn.GRU``/``LSTM`` (batch_first) or a callable
                ``encoder(x [E, L, d_o], h0 [E, d]) -> states [E, L, d]``
                (see :mod:`pyrl.replay.recurrent`).
            episodes: episode ids; None refreshes every stored episode.
            chunk: episodes per encoder call.

        Returns:
            ``{"episodes": refreshed episodes, "rows": rows rewritten}``.
        """
        recurrent = self._require_recurrent("recompute_hidden")
        if not (type(chunk) is int and chunk >= 1):
            raise ValueError(f"ReplayBuffer.recompute_hidden: chunk should be an int >= 1, got {chunk!r}")
        ids = self._episode_ids("recompute_hidden", episodes)
        storage, pad = self.storage, recurrent.n_history - 1
        observations, hidden = storage.column(self._encoded), storage.column("hidden")
        lengths = self._locked(lambda: self._lengths(ids))
        order = torch.argsort(lengths, descending=True, stable=True)
        ids, lengths = ids[order], lengths[order]
        ids, lengths = ids[lengths > 0], lengths[lengths > 0]
        refreshed, rows = 0, 0
        for first in range(0, ids.numel(), chunk):
            part, steps = ids[first:first + chunk], int(lengths[first])

            def gather():
                seq, _ = _ops.replay_gather_episodes(storage.state, observations, part, pad, steps)
                h0, _ = _ops.replay_gather_episodes(storage.state, hidden, part, 0, 1)
                return seq, h0[:, 0]

            seq, h0 = self._locked(gather)
            with torch.no_grad():
                states = encoder_states(encoder, seq, h0).contiguous()
            if not bool(torch.isfinite(states).all()):
                raise ValueError(f"ReplayBuffer.recompute_hidden: the encoder returned states that "
                                 f"are not finite (NaN or inf) for episodes {part.tolist()[:8]}; "
                                 f"nothing of them was written")
            applied = self._locked(lambda: _ops.replay_scatter_episodes(
                storage.state, hidden, part, states, 1))
            refreshed += int(applied.sum())
            rows += int(lengths[first:first + chunk][applied].sum())
            done = part[applied]
            slot = done % self._refreshed_id.shape[0]
            self._refreshed_id[slot] = done
            self._refreshed_at[slot] = self.storage.calls
        return {"episodes": refreshed, "rows": rows}

    def episodes_due(self, episodes, recalc_delta: int) -> Tensor:
        """Of the given episode ids, the distinct ones whose states were last refreshed at least
        `recalc_delta` sample calls ago, or never (SPEC 5.1's ``recalc_delta`` rule)."""
        ids = torch.unique(self._episode_ids("episodes_due", episodes))
        slot = ids % self._refreshed_id.shape[0]
        never = self._refreshed_id[slot] != ids
        stale = self.storage.calls - self._refreshed_at[slot] >= recalc_delta
        return ids[never | stale]

    def sample_sequences(self, batch_size: int, length: int, burn_in: int = 0,
                         encoder: Optional[Encoder] = None) -> Batch:
        """Draws ``batch_size`` windows of ``burn_in + length`` consecutive steps, each inside one
        episode, by the priority of its first step (see :meth:`update_sequence_priorities`:
        R2D2's sequence priority) or uniformly.

        Returns a :class:`Batch` with ``W = burn_in + length``:
            ``obs`` (``[B, W + 1, ...]``: o_t .. o_{t+W}; a dict with several observation
            fields), every other field ``[B, W, ...]``, ``hidden`` (``[B, d]``: the stored state
            at the first step), ``mask`` (``[B, W]``: the step is inside the episode; windows
            cut by an episode's end are zero past it), ``reward`` (``[B, W]`` n-step returns,
            or ``[B, W, m]``), ``terminated`` (the step's window reaches a terminal state),
            ``discount`` (gamma^k, 0 where terminated; only with a gamma, as in ``sample``), ``k`` (step j bootstraps from position j + k, which stays inside the
            window: its n-step window is cut at the window's end), ``weight`` (importance
            weights), ``index`` and ``generation`` (for priority updates and
            :meth:`store_hidden`), ``burn_in``.

        With ``encoder`` and ``Recurrent(recalc_delta=...)``, the sampled episodes that are due
        are recomputed first and ``hidden`` is read after the refresh. HER does not relabel
        sequences (their goals are the stored ones).
        """
        recurrent = self._require_recurrent("sample_sequences")
        for name, value, low in (("batch_size", batch_size, 1), ("length", length, 1),
                                 ("burn_in", burn_in, 0)):
            if not (type(value) is int and value >= low):
                raise ValueError(f"ReplayBuffer.sample_sequences: {name} should be an int >= "
                                 f"{low}, got {value!r}")
        if "mask" in self.storage.names:
            raise ValueError("ReplayBuffer.sample_sequences: the spec has a field 'mask', which "
                             "sequence batches use for their validity mask; rename the field")
        steps = burn_in + length
        if steps > self.capacity - 1:
            raise ValueError(f"ReplayBuffer.sample_sequences: burn_in + length = {steps} should "
                             f"be below the capacity {self.capacity}")
        storage, per = self.storage, self.prioritized
        names = [name for name in storage.names if name != "hidden"]
        columns = [storage.column(name) for name in names]
        # One compiled call draws the start rows, their weights and stored states, and the
        # windows; only the first step's stored state is read: the rest are the learner's.
        out = named("replay_sample_windows", self._host.sample_windows(
            columns, storage.column("hidden"), batch_size, steps, len(self.obs_keys), self._steps.n,
            self._steps.gamma, per.beta_at(storage.calls) if per is not None else 0.0,
            per is not None and per.weight_norm == "batch"))
        rows, hidden, generation = out["index"], out["hidden_first"], out["generation"]
        batch = Batch(zip(names, out["fields"]))
        if not self.obs_keys == ("obs",):
            batch["obs"] = {key: batch.pop(key) for key in self.obs_keys}
        if encoder is not None and recurrent.recalc_delta is not None:
            due = self.episodes_due(generation, recurrent.recalc_delta)
            if due.numel():
                self.recompute_hidden(encoder, due)
                hidden = self._locked(lambda: torch.where(
                    (storage.row_episode[rows] == generation)[:, None],
                    storage.column("hidden")[rows], hidden))
        batch.update({key: out[key] for key in ("mask", "reward", "discount", "k", "terminated",
                                                "weight", "index", "generation")},
                     hidden=hidden, burn_in=burn_in)
        if self.nstep is None:
            del batch["discount"]
        return batch

    def update_sequence_priorities(self, index, generation, td_abs, mask=None,
                                   eta: float = 0.9) -> Tensor:
        """Sets each sampled window's priority from the absolute TD errors of its steps, as R2D2
        does: ``eta * max + (1 - eta) * mean`` over the steps in `mask` (``eta=0`` is the mean,
        1 the max). The priority is its first row's, which is what ``sample_sequences`` draws
        by. Returns :meth:`update_priorities`' applied mask.

        Args:
            index, generation: ``[B]``, from the batch.
            td_abs: ``[B, W]`` absolute TD errors (>= 0).
            mask: ``[B, W]`` bools, the steps to count (the batch's ``mask``, with burn-in
                steps removed); None counts every step.
        """
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise ValueError(f"ReplayBuffer.update_sequence_priorities: eta should be in [0, 1], "
                             f"got {eta!r}")
        td = torch.as_tensor(td_abs).detach().double()
        if td.dim() != 2:
            raise ValueError(f"ReplayBuffer.update_sequence_priorities: td_abs should be [B, W], "
                             f"got shape {list(td.shape)}")
        keep = torch.ones_like(td, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
        if keep.shape != td.shape or keep.dtype != torch.bool:
            raise ValueError(f"ReplayBuffer.update_sequence_priorities: mask should be [B, W] "
                             f"bools like td_abs {list(td.shape)}, got {keep.dtype} "
                             f"{list(keep.shape)}")
        counted = keep.sum(1).clamp(min=1)
        mean = torch.where(keep, td, 0.0).sum(1) / counted
        peak = torch.where(keep, td, 0.0).amax(1)
        return self.update_priorities(index, generation, eta * peak + (1 - eta) * mean)

    def store_hidden(self, index, generation, states, offset: int = 0) -> Tensor:
        """Writes states back at row ``index + offset`` of each sampled window (the state the
        burn-in reached, say: the refresh no other library does), where that row still belongs
        to the episode of `generation`. Returns a ``[B]`` bool mask of the rows written."""
        self._require_recurrent("store_hidden")
        if not (type(offset) is int and 0 <= offset < self.capacity):
            raise ValueError(f"ReplayBuffer.store_hidden: offset should be an int in [0, "
                             f"{self.capacity}), got {offset!r}")
        index = self.inputs.index("index", index, where="store_hidden")
        generation = self.inputs.index("generation", generation, index.shape[0], "store_hidden")
        hidden = self.storage.column("hidden")
        values = self.inputs.rows("store_hidden", "states", self.fields[len(self.obs_keys)],
                                  states, index.shape[0]).contiguous()
        # The op checks index as update_priorities does (in [0, C)) and adds the offset itself.
        return self._locked(lambda: _ops.replay_write_rows(self.storage.state, hidden, index,
                                                           generation, values, offset))

    # ---- priorities ----------------------------------------------------------------------------

    def update_priorities(self, index, generation, td_abs) -> Tensor:
        """Sets the priority of sampled rows from their absolute TD errors.

        Args:
            index, generation: ``[B]`` int64, as a batch gives them.
            td_abs: ``[B]``, or ``[B, m]`` averaged over the m heads; >= 0, not NaN.

        Returns:
            A ``[B]`` bool mask: True where the entry was applied (its row is a stored
            transition still of the sampled generation; of repeated rows the last write wins),
            False where it was dropped (the row was overwritten or evicted since it was
            sampled, is free, or is an episode's final-observation row). Dropped entries are
            the stale updates asynchronous learners send (ray-project/ray#6534).

        An index outside the buffer, a wrong dtype or shape, NaN or a negative td_abs raises
        ValueError, and nothing is updated.
        """
        if self.prioritized is None:
            raise ValueError("ReplayBuffer.update_priorities: this buffer samples uniformly "
                             "(prioritized=None); create it with prioritized=replay.PER(...)")
        index = self.inputs.index("index", index)
        generation = self.inputs.index("generation", generation, index.shape[0])
        if not (type(td_abs) is Tensor and td_abs.device == self.device):
            try:
                td_abs = torch.as_tensor(td_abs, device=self.device)
            except (TypeError, RuntimeError, ValueError):
                raise ValueError(f"ReplayBuffer.update_priorities: td_abs should be a float [B] "
                                 f"tensor, got {type(td_abs).__name__}") from None
        if td_abs.requires_grad:
            td_abs = td_abs.detach()
        applied = torch.empty(index.shape[0], dtype=torch.bool, device=self.device)
        self._host.update_priorities(index, generation, td_abs, applied)
        return applied

    @property
    def priority_updates(self) -> dict[str, int]:
        """``{"applied": int, "dropped": int}``: priority-update entries since construction."""
        return {"applied": self.storage.counter("updates_applied"),
                "dropped": self.storage.counter("updates_dropped")}

    # ---- inspection ----------------------------------------------------------------------------

    @property
    def memory_mapped(self) -> Optional[MemoryMapped]:
        """Where the columns' files are (:class:`MemoryMapped`), or None for columns in memory."""
        return self.storage.mapped

    def __len__(self) -> int:
        """Transitions that can be sampled (staged steps of running episodes not included)."""
        return self.storage.counter("transitions")

    @property
    def num_episodes(self) -> int:
        return self.storage.counter("next_episode") - self.storage.counter("oldest_episode")

    @property
    def pending_steps(self) -> int:
        """Steps staged for episodes still running."""
        length = self.storage.stage_length
        return 0 if length is None else int(length.sum())

    def episodes(self) -> dict[str, Tensor]:
        """The episode table: id, start row, length T and terminated of every stored episode."""
        storage = self.storage

        def read():
            first, end = storage.counter("oldest_episode"), storage.counter("next_episode")
            ids = torch.arange(first, end, dtype=torch.int64, device=self.device)
            return ids, storage.episodes[ids % storage.episodes.shape[0]]

        ids, rows = self._locked(read)
        table = {"id": ids, **{name: rows[:, slot] for name, slot in EPISODE_SLOTS.items()}}
        table["terminated"] = table["terminated"].bool()
        return table

    def priorities(self) -> Tensor:
        """The leaf of every row: priority^alpha (1 when uniform), 0 where no transition starts."""
        first = tree_leaf_offset(self.capacity)
        return self.storage.sum_tree[first:first + self.capacity].clone()

    def check(self) -> None:
        """Verifies every invariant of the buffer's state: each tree parent is the sum (or min)
        of its children, the root equals the leaves' total, the episode table matches the row
        owners and the counters, and only transition rows carry priority.

        Returns None on a healthy buffer; raises :class:`InvariantError` (a ValueError) naming
        the broken invariant and the first bad index otherwise.
        """
        code, index = self._host.check().tolist()
        if code != 0:
            raise InvariantError(f"ReplayBuffer.check: invariant '{INVARIANTS[code]}' is broken "
                                 f"at index {index}")

    def close(self, remove_new_files: bool = False) -> None:
        """A :class:`MemoryMapped` buffer: flushes its files and releases its column directory,
        so another buffer may open it (``ReplayBuffer.load`` of its checkpoint, say); the buffer
        is not to be used afterwards. Garbage collection and the process's end release it too.
        ``remove_new_files`` deletes the files this buffer created instead (and the directory,
        if it made it), as after a failed load; files it reopened stay. Nothing to do for a
        buffer in memory."""
        self._locked(lambda: self.storage.close(remove_new_files))

    def _locked(self, fn):
        """fn() with the buffer held: other threads' calls wait until it returns (with the GIL
        released, so fn runs Python freely; see csrc/replay_host.cpp). Returns its value."""
        self._host.hold()
        try:
            return fn()
        finally:
            self._host.release()

    # ---- save and restore ----------------------------------------------------------------------

    def config(self) -> dict:
        """The constructor arguments, as plain Python values."""
        return {
            "capacity": self.capacity,
            "spec": {f.name: (list(f.shape), str(f.dtype).removeprefix("torch."))
                     for f in self.fields if f.name != "hidden" or self.recurrent is None},
            "device": str(self.device),
            "prioritized": asdict(self.prioritized) if self.prioritized is not None else None,
            "nstep": asdict(self.nstep) if self.nstep is not None else None,
            "seed": self.seed,
            "obs_keys": list(self.obs_keys),
            "max_episode_steps": self.max_episode_steps,
            "episode_mode": asdict(self.episode_mode) if self.episode_mode is not None else None,
            "her": describe_her(self.her),
            # Only where set, so files saved before recurrent replay existed still load.
            **({"recurrent": self.recurrent.describe()} if self.recurrent is not None else {}),
            **({"storage": {"memory_mapped": self.memory_mapped.path}}
               if self.memory_mapped is not None else {}),
        }

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this buffer is (the draws' seed and call
        counter included).

        Like ``nn.Module.state_dict``, the tensors are the buffer's own (no copy): save them or
        clone them before adding more. A :class:`MemoryMapped` buffer's state leaves the columns
        out: its files hold them (see ``save``).
        """
        columns = self.memory_mapped is None
        return self._locked(lambda: {"config": self.config(), **self.storage.state_dict(columns)})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores a state from :meth:`state_dict` of a buffer built with the same layout.

        The seed and device may differ: the draws continue from the saved seed and call count.
        Every tensor is checked before anything changes.
        """
        if not isinstance(state, Mapping) or not isinstance(state.get("config"), Mapping):
            raise ValueError("ReplayBuffer.load_state_dict: state should be a dict from "
                             "state_dict(), with a 'config' entry")
        ours, theirs = self.config(), dict(state["config"])
        for key in ("seed", "device"):
            ours.pop(key), theirs.pop(key, None)
        # Where the column files are is this buffer's own setting (a copied run's directory);
        # only whether there are files must match.
        ours["storage"] = "storage" in ours
        theirs["storage"] = "storage" in theirs
        if theirs != ours:
            raise ValueError(f"ReplayBuffer.load_state_dict: the state was saved from a buffer with "
                             f"{theirs}, this one has {ours}")
        given = self.storage.check_state(state)
        self._locked(lambda: self.storage.load(given))

    def save(self, path) -> None:
        """Writes the buffer to `path` (torch.save format), atomically: a consistent snapshot is
        written to a temporary file beside `path`, flushed to disk, then renamed over it, so a
        process killed mid-save leaves the previous file intact. A :class:`MemoryMapped`
        buffer's columns are flushed to their files and referred to, not copied."""
        # The snapshot is taken and written under the buffer's mutex: no add or update can tear it.
        # A memory-mapped buffer's columns are flushed to their files in place and referred to.
        mapped = self.memory_mapped is not None

        def snapshot():
            config = self.config()
            if mapped:
                self.storage.flush()
                # Relative to the checkpoint: a copied run (cp -r) maps its own copy of the files.
                where = os.path.dirname(os.path.abspath(os.fspath(path)))
                config["storage"] = {"memory_mapped": os.path.relpath(self.memory_mapped.path, where)}
            return {"config": config, **self.storage.state_dict(not mapped)}

        atomic_save(snapshot, path, under=self._locked, where="ReplayBuffer.save")

    @classmethod
    def load(cls, path, her: Optional[HER] = None) -> "ReplayBuffer":
        """Rebuilds a buffer written by :meth:`save`; it samples what the saved one would have.

        A HER setting with built-in rewards is restored from the file; one with Python callables
        (which are not saved) must be passed again as `her`.
        """
        where = f"ReplayBuffer.load: {os.fspath(path)!r}"
        # mmap: the file's tensors are paged in while copying, never held twice in memory.
        state = load_data(path, "ReplayBuffer.load")
        kwargs = settings_from_file(where, state, her, os.path.dirname(os.path.abspath(os.fspath(path))))
        buf = cls(**kwargs)
        buf.load_state_dict(state)
        return buf


def _spaces():
    import gymnasium
    return gymnasium.spaces


def _is_space(value) -> bool:
    try:
        return isinstance(value, _spaces().Space)
    except ImportError:
        return False


def _space_field(argument: str, name: str, space) -> tuple:
    """The spec entry ``(shape, dtype)`` of one gymnasium space."""
    spaces = _spaces()
    if isinstance(space, spaces.Box):
        dtype = torch.float32 if space.dtype.kind == "f" else getattr(torch, str(space.dtype))
        return tuple(space.shape), dtype
    if isinstance(space, spaces.Discrete):
        return (), torch.int64
    if isinstance(space, spaces.MultiDiscrete):
        return tuple(space.shape), torch.int64
    if isinstance(space, spaces.MultiBinary):
        return tuple(space.shape), torch.bool
    raise ValueError(f"ReplayBuffer.from_spaces: {argument} ({name}) should be a Box, Discrete, "
                     f"MultiDiscrete or MultiBinary space (or a Dict of them), got {space}")
