"""ReplayBuffer: episodes in a ring of tensor columns, sampled uniformly or by priority.

Storage follows SPEC 1.2. An episode of T transitions fills T + 1 consecutive rows of the ring
(modulo the capacity): rows o_0 .. o_{T-1} carry the step's fields (observation, action, reward,
...), and row T holds only the final observation, which is what ``next_obs`` of the last step
is read from. Episodes are committed whole: ``add`` stages each environment's steps until its
episode ends (``terminated`` or ``truncated``) and then writes it to the ring in one piece, so a
sampled transition can always look ahead in its own episode (n-step, HER). Writing over an old
episode evicts all of it; an episode may wrap around the end of the ring.

The parts: :class:`~pyrl.replay.storage.ReplayStorage` holds every tensor (and saves and
restores them) with the compiled host that runs the ops on them, :mod:`~pyrl.replay.inputs`
checks settings and turns what a caller passes into the tensors the ops take, and this facade
makes one compiled call per ``add``, ``sample`` and ``update_priorities``. Capabilities live in
their own modules, mixed in: recurrent replay (:mod:`~pyrl.replay.sequences`), HER's Python
callables (:mod:`~pyrl.replay.relabeling`), saving and loading
(:mod:`~pyrl.replay.persistence`); :mod:`~pyrl.replay.autoreset` handles gymnasium's
autoreset steps and :mod:`~pyrl.replay.spaces` specs from spaces. The host's mutex
serialises those calls and covers only the compiled work (inputs are converted before it is
taken), so one thread may add while another samples. It is waited for only with the GIL
released and never held while waiting for the GIL; Python sections that need the state
unchanged (snapshots, the episode table) hold the buffer between two calls instead
(``_locked``), which other threads' calls wait on with the GIL released too.
"""

import warnings
from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor

from pyrl import _C
from pyrl.replay.autoreset import Autoreset
from pyrl.replay.batch import Batch, InvariantError
from pyrl.replay.inputs import Field, Inputs, check_goal_fields, default_obs_keys, parse_spec
from pyrl.replay.layout import (
    DRAW_STREAMS,
    EPISODE_SLOTS,
    INVARIANTS,
    MAX_CAPACITY,
    OUTPUTS,
    tree_leaf_offset,
)
from pyrl.replay.persistence import Persistence
from pyrl.replay.recurrent import Recurrent
from pyrl.replay.relabeling import HerFinishing
from pyrl.replay.sequences import SequenceReplay
from pyrl.replay.settings import HER, EpisodeMode, MemoryMapped, NStep, PER
from pyrl.replay.spaces import is_space, spec_from_spaces
from pyrl.replay.storage import ReplayStorage, config_values, fresh_seed

TD_ABS = Field(
    "td_abs", (), torch.float64
)  # add_episode's initial priorities, as the op takes them

__all__ = ["Batch", "Field", "InvariantError", "ReplayBuffer"]


def _rebuild(arguments: dict, state: Mapping[str, Any]) -> "ReplayBuffer":
    """copy.deepcopy and pickle (ReplayBuffer.__reduce__): a buffer from its arguments and state."""
    buf = ReplayBuffer(**arguments)
    buf.load_state_dict(state)
    return buf


class ReplayBuffer(SequenceReplay, HerFinishing, Persistence):
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
            fields ``achieved_goal`` and ``desired_goal`` of one shape and dtype, as goal-env
            dict observations (``observation``, ``achieved_goal``, ``desired_goal``) have: any
            shape (``sparse_l2`` measures the flattened goal; ``per_dim`` gives a reward head
            per element) of float32, float64, an integer dtype or bool (MultiBinary bits,
            images, Discrete indices).
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

    def __init__(
        self,
        capacity: int,
        spec: Mapping[str, Any],
        *positional,
        device: Union[str, torch.device] = "cpu",
        prioritized: Optional[PER] = None,
        nstep: Optional[NStep] = None,
        seed: Optional[int] = None,
        obs_keys: Optional[tuple[str, ...]] = None,
        max_episode_steps: int = 1000,
        episode_mode: Optional[EpisodeMode] = None,
        her: Optional[HER] = None,
        recurrent: Optional[Recurrent] = None,
        storage: Optional[MemoryMapped] = None,
    ):
        if positional or is_space(spec):  # a Stable-Baselines3-style call
            raise ValueError(
                f"ReplayBuffer(capacity, spec, **settings) takes a spec dict and keyword settings, "
                f"got spec={type(spec).__name__} and {len(positional)} more positional "
                "argument(s); "
                f"from gymnasium spaces: ReplayBuffer.from_spaces(capacity, observation_space, "
                f"action_space, nstep=..., prioritized=...)"
            )
        self._arguments = dict(
            capacity=capacity,
            spec=spec,
            device=device,
            prioritized=prioritized,
            nstep=nstep,
            seed=seed,
            obs_keys=obs_keys,
            max_episode_steps=max_episode_steps,
            episode_mode=episode_mode,
            her=her,
            recurrent=recurrent,
            storage=storage,
        )  # copies and pickles rebuild from these
        if not (type(capacity) is int and 2 <= capacity <= MAX_CAPACITY):
            raise ValueError(
                f"ReplayBuffer: capacity should be an int >= 2 (an episode needs 2 "
                f"rows) and at most 2^48, got {capacity!r}"
            )
        for name, value, kind in (
            ("prioritized", prioritized, PER),
            ("nstep", nstep, NStep),
            ("episode_mode", episode_mode, EpisodeMode),
            ("her", her, HER),
            ("recurrent", recurrent, Recurrent),
            ("storage", storage, MemoryMapped),
        ):
            if value is not None and not isinstance(value, kind):
                raise ValueError(
                    f"ReplayBuffer: {name} should be a replay.{kind.__name__} or "
                    f"None, got {value!r}"
                )
        if not (type(max_episode_steps) is int and max_episode_steps >= 1):
            raise ValueError(
                f"ReplayBuffer: max_episode_steps should be an int >= 1, got {max_episode_steps!r}"
            )
        if seed is not None and not (type(seed) is int and 0 <= seed < 2**63):
            raise ValueError(
                f"ReplayBuffer: seed should be an int in [0, 2^63) or None, got {seed!r}"
            )
        try:
            self.device = torch.device(device)
        except (TypeError, RuntimeError) as err:
            raise ValueError(
                f"ReplayBuffer: device should name a torch device, got {device!r} ({err})"
            ) from None
        if self.device.type != "cpu":
            raise ValueError(
                f"ReplayBuffer: device {self.device} is not supported yet; the replay "
                f"ops are built for the CPU only (CUDA replay is planned)"
            )
        fields = parse_spec(spec)
        fields.setdefault("reward", Field("reward", (), torch.float32))
        if len(fields["reward"].shape) > 1 or not fields["reward"].dtype.is_floating_point:
            raise ValueError(
                f"spec: reward should be float [] or [m] per step, got "
                f"{fields['reward'].shape} {fields['reward'].dtype}"
            )
        obs_keys = tuple(obs_keys) if obs_keys is not None else default_obs_keys(fields)
        missing = [k for k in obs_keys if k not in fields]
        if not obs_keys or missing or "reward" in obs_keys:
            raise ValueError(
                f"ReplayBuffer: obs_keys {obs_keys} should name observation fields "
                f"of the spec {sorted(fields)}"
            )
        if her is not None:
            check_goal_fields(fields, obs_keys, her)
        # The stored state is one more observation column: it has a value at the final row.
        column_keys = obs_keys
        if recurrent is not None:
            encoded = recurrent.key if recurrent.key is not None else obs_keys[0]
            if (
                encoded not in obs_keys
                or len(fields[encoded].shape) != 1
                or not fields[encoded].dtype.is_floating_point
            ):
                raise ValueError(
                    f"ReplayBuffer: Recurrent.key should name a float [d_o] "
                    f"observation field of {obs_keys}, got {encoded!r}"
                )
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
        self._config = config_values(
            prioritized, self._steps, her, self.fields, column_keys, episode_mode
        )
        self.storage = ReplayStorage(
            capacity,
            self.fields,
            self.device,
            seed if seed is not None else fresh_seed(),
            self._config,
            len(column_keys),
            self.max_episode_steps,
            mapped=storage,
        )
        self._host = self.storage.host
        self._nested_obs = obs_keys != ("obs",)  # a batch's observations are dicts by key
        self._host.set_batch_layout(Batch, *self._batch_layout())
        self.inputs = Inputs(self.fields, column_keys, self.device, self._host.convert)
        self._warned_terminal = False
        self._warned_cut = False  # add() warns once when a stage fills up without flags
        # gymnasium's autoreset steps, from the first add with infos or a mode (None before:
        # the hot path then tests one attribute)
        self._autoreset: Optional[Autoreset] = None
        self._forget_refreshes()

    def __reduce__(self):
        # The compiled host holds nothing beyond the settings and the state: copy.deepcopy and
        # pickle rebuild the buffer from them.
        return (_rebuild, (self._arguments, self.state_dict()))

    @classmethod
    def from_spaces(
        cls, capacity: int, observation_space, action_space, **settings
    ) -> "ReplayBuffer":
        """A buffer for a gymnasium env's spaces: ``obs`` (a Box, or a Discrete index as int64),
        or one field per key of a Dict (goal dicts keep ``observation``, ``achieved_goal`` and
        ``desired_goal``), and ``action`` (a Box as float32, a Discrete or MultiDiscrete as
        int64). Float observations are stored as float32, integer ones (images) as they are,
        MultiBinary ones as the space's int8 (bools convert). ``settings`` are the
        constructor's keywords.

        Example::

            env = gymnasium.make("CartPole-v1")
            buf = ReplayBuffer.from_spaces(100_000, env.observation_space, env.action_space,
                                           nstep=NStep(3, gamma=0.99))
        """
        return cls(capacity, spec_from_spaces(observation_space, action_space), **settings)

    # ---- adding --------------------------------------------------------------------------------

    def add(
        self,
        obs,
        next_obs,
        reward,
        terminated,
        truncated,
        infos=None,
        autoreset_mode=None,
        **fields,
    ) -> None:
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
            if self._autoreset is None:
                self._autoreset = Autoreset()
            next_obs, skip = self._autoreset.step(
                next_obs, terminated, truncated, infos, autoreset_mode
            )
        if self.recurrent is not None:
            obs = self._with_hidden("add", "hidden", obs, fields)
            next_obs = self._with_hidden("add", "next_hidden", next_obs, fields)
        # The count of pieces committed because their stage filled up (usually 0).
        if (
            self._host.add(obs, next_obs, reward, terminated, truncated, fields, skip)
            and not self._warned_cut
        ):
            self._warned_cut = True
            warnings.warn(
                f"ReplayBuffer.add: an episode reached max_episode_steps="
                f"{self.max_episode_steps} steps with neither terminated nor truncated "
                f"set, and was stored as truncated there. If the env has a time limit, "
                f"pass its truncated flags (from gymnasium's step); if its episodes are "
                f"this long, raise max_episode_steps",
                stacklevel=2,
            )

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
            raise ValueError(
                f"ReplayBuffer.add_episode: terminated should be a bool, got {terminated!r}"
            )
        if td_abs is not None:
            if self.prioritized is None:
                raise ValueError(
                    "ReplayBuffer.add_episode: td_abs needs a prioritized buffer "
                    "(prioritized=replay.PER(...)); this one samples uniformly"
                )
            rows = self.inputs.leading_size(
                "add_episode", self.inputs.obs_values("add_episode", "obs", obs)[0]
            )
            # Under 2 rows the host names the episode as too short.
            td_abs = (
                self.inputs.rows("add_episode", "td_abs", TD_ABS, td_abs, rows - 1)
                if rows >= 2
                else None
            )
        # The columns convert in the host, under add's rule (csrc/replay_host.cpp).
        self._host.add_episode(obs, reward, fields, terminated, td_abs)

    def end_running_episodes(self) -> int:
        """Stores every running episode now, as truncated at its newest observation, and drops
        its newest step (whose next observation has not come yet); the next ``add`` of each
        environment starts a new episode. For a loop that stops or switches envs mid-episode
        (Stable-Baselines3's ``truncate_last_trajectory``). Returns the episodes stored; a
        running episode of one step is dropped whole."""

        stored = self._host.end_episodes()
        if self._autoreset is not None:
            self._autoreset.cut()
        return stored

    # ---- sampling ------------------------------------------------------------------------------

    def sample(self, batch_size: int, out: Optional[Batch] = None) -> Batch:
        """Draws ``batch_size`` transitions (with replacement), stratified over the priority mass,
        or, with ``episode_mode``, groups of steps of the episodes drawn.

        Args:
            batch_size: the number of samples.
            out: a batch an earlier ``sample(batch_size)`` of this buffer returned, to fill again
                in place of allocating a new one: its tensors are overwritten (and its keys set
                back to them), so anything still reading them sees the new samples. Saves the
                allocation and the wrapping of every output, most of a small call's time.

        Returns:
            A :class:`Batch` (``out`` itself when given). Its draws are a function of the seed and
            the number of earlier sample calls (:meth:`next_uniforms`), so a seed reproduces every
            batch, with or without ``out``. A batch's tensors are views of one allocation.
        """
        if not (type(batch_size) is int and batch_size >= 1):
            raise ValueError(
                f"ReplayBuffer.sample: batch_size should be an int >= 1, got {batch_size!r}"
            )
        batch = self._host.sample_batch(batch_size, out)
        if self._nested_obs:
            self._nest_observations(batch)
        if self.her is not None:
            self._finish_relabeling(batch, batch.pop("her_row"))
            if self.nstep is None:  # the finishing steps may set it
                del batch["discount"]
        return batch

    def _batch_layout(self) -> tuple:
        """The key of each output of the direct sample route, and which a batch keeps: the schema's
        outputs flattened (``csrc/torch/replay.h``), its lists one key per column. Without HER
        (whose finishing steps read them) ``her_row`` is left out, and ``discount`` without a
        gamma."""
        next_keys = [("next", key) if self._nested_obs else "next_obs" for key in self.obs_keys]
        if self.recurrent is not None:
            next_keys.append("next_hidden")
        lists = {"fields": self.storage.names[:-1], "next_obs": next_keys}  # reward: its own
        keys = [key for name in OUTPUTS["replay_sample"] for key in lists.get(name, [name])]
        dropped = set()
        if self.her is None:
            dropped.add("her_row")
            if self.nstep is None:
                dropped.add("discount")
        return tuple(keys), [i for i, key in enumerate(keys) if key not in dropped]

    def _nest_observations(self, batch: Batch) -> None:
        batch["obs"] = {key: batch.pop(key) for key in self.obs_keys}
        batch["next_obs"] = {key: batch.pop(("next", key)) for key in self.obs_keys}

    def next_uniforms(self, batch_size: int) -> dict[str, Tensor]:
        """The uniforms the next ``sample(batch_size)`` will draw, by purpose: ``row`` (the
        position inside each sample's stratum), ``relabel`` and ``goal`` (HER), ``lookahead``
        (floating k). A hook for tests and reproducibility: ``pyrl.reference.counter_uniforms``
        computes the same values from the seed and the call count."""
        seed, call = self.storage.seed, self.storage.calls
        return {
            name: torch.tensor(
                _C.counter_uniforms(seed, call, stream, batch_size), dtype=torch.float64
            )
            for name, stream in DRAW_STREAMS.items()
        }

    @property
    def op_config(self) -> list[float]:
        """The settings list the replay ops take (``pyrl.replay.layout.CONFIG`` names its
        slots); with ``storage.state`` and ``storage.columns`` it calls an op by hand."""
        return list(self._config)

    @property
    def sample_calls(self) -> int:
        """Sample calls made so far (the counter of the draws; saved with the state)."""
        return self.storage.calls

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
            raise ValueError(
                "ReplayBuffer.update_priorities: this buffer samples uniformly "
                "(prioritized=None); create it with prioritized=replay.PER(...)"
            )
        index = self.inputs.index("index", index)
        generation = self.inputs.index("generation", generation, index.shape[0])
        if not (type(td_abs) is Tensor and td_abs.device == self.device):
            try:
                td_abs = torch.as_tensor(td_abs, device=self.device)
            except (TypeError, RuntimeError, ValueError):
                raise ValueError(
                    f"ReplayBuffer.update_priorities: td_abs should be a float [B] "
                    f"tensor, got {type(td_abs).__name__}"
                ) from None
        if td_abs.requires_grad:
            td_abs = td_abs.detach()
        applied = torch.empty(index.shape[0], dtype=torch.bool, device=self.device)
        self._host.update_priorities(index, generation, td_abs, applied)
        return applied

    @property
    def priority_updates(self) -> dict[str, int]:
        """``{"applied": int, "dropped": int}``: priority-update entries since construction."""
        return {
            "applied": self.storage.counter("updates_applied"),
            "dropped": self.storage.counter("updates_dropped"),
        }

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
        return int(self.storage.stage_length.sum())

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

    def transitions(self) -> Batch:
        """A copy of every stored transition, episode by episode from the oldest, to export or
        inspect a buffer: each field (``obs`` a dict where the buffer has several observation
        keys), ``next_obs``, ``terminated`` (the last step of a terminated episode) and
        ``truncated`` (the last step of any other episode) and ``episode`` (each transition's
        episode id, as :meth:`episodes` lists them). Staged steps of running episodes are not
        stored yet, so not included (``end_running_episodes`` stores them)."""
        storage = self.storage

        def read():
            first, end = storage.counter("oldest_episode"), storage.counter("next_episode")
            ids = torch.arange(first, end, dtype=torch.int64, device=self.device)
            table = storage.episodes[ids % storage.episodes.shape[0]]
            start, length = table[:, EPISODE_SLOTS["start"]], table[:, EPISODE_SLOTS["length"]]
            ended = table[:, EPISODE_SLOTS["terminated"]].bool()
            # Transition t of an episode is row start + t; its next observation the row after.
            offset = torch.cumsum(length, 0) - length
            t = torch.arange(int(length.sum()), device=self.device)
            t = t - torch.repeat_interleave(offset, length)
            row = (torch.repeat_interleave(start, length) + t) % self.capacity
            last = t == torch.repeat_interleave(length, length) - 1
            ended = torch.repeat_interleave(ended, length)
            out = Batch({name: storage.column(name)[row] for name in storage.names})
            next_obs = {
                key: storage.column(key)[(row + 1) % self.capacity] for key in self.obs_keys
            }
            out.update(
                terminated=last & ended,
                truncated=last & ~ended,
                episode=torch.repeat_interleave(ids, length),
            )
            return out, next_obs

        batch, next_obs = self._locked(read)
        if self.obs_keys == ("obs",):
            batch["next_obs"] = next_obs["obs"]
        else:
            batch["obs"] = {key: batch.pop(key) for key in self.obs_keys}
            batch["next_obs"] = next_obs
        return batch

    def priorities(self) -> Tensor:
        """The leaf of every row: priority^alpha (1 when uniform), 0 where no transition starts."""
        first = tree_leaf_offset(self.capacity)
        return self.storage.sum_tree[first : first + self.capacity].clone()

    def check(self) -> None:
        """Verifies every invariant of the buffer's state: each tree parent is the sum (or min)
        of its children, the root equals the leaves' total, the episode table matches the row
        owners and the counters, and only transition rows carry priority.

        Returns None on a healthy buffer; raises :class:`InvariantError` (a ValueError) naming
        the broken invariant and the first bad index otherwise.
        """
        code, index = self._host.check().tolist()
        if code != 0:
            raise InvariantError(
                f"ReplayBuffer.check: invariant '{INVARIANTS[code]}' is broken at index {index}"
            )

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
