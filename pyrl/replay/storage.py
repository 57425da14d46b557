"""A replay buffer's state: every tensor it owns (columns, bookkeeping, per-environment stage),
the settings list its ops read, and exact save and restore (``state_dict`` /
``load_state_dict``). The layout comes from :mod:`pyrl.replay.layout`."""

import math
import os
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from pyrl import _C, _ops
from pyrl.replay.inputs import Field
from pyrl.replay.layout import (
    CONFIG,
    COUNTERS,
    DRAWS,
    HER_OFF,
    HER_REWARDS,
    HER_STRATEGIES,
    STATE,
    episode_slots,
    tree_size,
)
from pyrl.replay.mapped import ColumnDirectory
from pyrl.replay.settings import HER, MemoryMapped, NStep, PER, PerDim, SparseL2

STATE_NAMES = tuple(sorted(STATE, key=STATE.get))  # row_episode, episodes, counters, ...
# The state tensors whose shape is fixed by the capacity (stage_length's grows at the first add).
FIXED_STATE = tuple(name for name in STATE_NAMES if name != "stage_length")

# Columns kept in their own [C, ...] tensor instead of the row record: recurrent states are read
# as whole episodes or at one row per window, never beside a sampled row's other fields, and
# out of the record they leave a window's rows densely packed.
SEPARATE_COLUMNS = frozenset({"hidden"})

RECORDS_FILE = (
    "records.bin"  # a memory-mapped buffer's row records (MemoryMapped.reuse looks for it)
)


def config_values(
    prioritized: Optional[PER],
    nstep: NStep,
    her: Optional[HER],
    fields: list[Field],
    obs_keys: tuple[str, ...],
    episode_mode=None,
) -> list[float]:
    """The settings list of the ops (kernels::ConfigSlot), from a buffer's settings."""
    per = prioritized if prioritized is not None else PER()
    values = [0.0] * len(CONFIG)

    def put(name, value):
        values[CONFIG[name]] = float(value)

    put("alpha", per.alpha if prioritized is not None else 0.0)  # uniform: every leaf is 1
    put("eps", per.eps)
    put("p_min", per.p_min)
    put("p_max", per.p_max)
    put("beta", per.beta if prioritized is not None else 0.0)
    put("beta_steps", (per.beta_steps or 0) if prioritized is not None else 0)
    put("batch_max", prioritized is not None and per.weight_norm == "batch")
    put("n", nstep.n)
    put("gamma", nstep.gamma)
    put("floating", nstep.floating and nstep.n > 1)
    put("obs_columns", len(obs_keys))
    put("her_strategy", HER_OFF)
    if episode_mode is not None:
        put("episode_select", episode_mode.select_count)
        put("episode_max_draw", episode_mode.max_ep_draw)
    params: list[float] = []
    if her is not None:
        column = {f.name: i for i, f in enumerate(fields)}
        reward = "stored"
        if isinstance(her.reward, SparseL2):
            reward, params = "sparse_l2", [her.reward.eps]
        elif isinstance(her.reward, PerDim):
            reward, params = "per_dim", [*her.reward.thresholds, *her.reward.values]
        put("her_strategy", HER_STRATEGIES[her.strategy])
        put("her_ratio", her.ratio)
        put("her_reward", HER_REWARDS[reward])
        put("achieved_goal", column["achieved_goal"])
        put("desired_goal", column["desired_goal"])
        put("her_recompute", her.nstep == "recompute")
        # A terminal callable takes precedence: Python applies it, C++ tests no success then.
        put("her_terminal_on_success", her.terminal_on_success and her.terminal is None)
    put("her_params", len(params))
    return values + [float(p) for p in params]


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


class ReplayStorage:
    """The tensors of one buffer, and the direct route that runs its ops on them.

    Attributes:
        records: ``[C, record_bytes]`` uint8, every field of a row side by side (each aligned to
            its element size), so a sampled row's fields share one or two cache lines.
        columns: one ``[C, *shape]`` view of ``records`` per field, in column order (observation
            fields, the other fields, reward last); rows are contiguous, ``record_bytes`` apart.
            The recurrent ``hidden`` column is a tensor of its own (``SEPARATE_COLUMNS``).
        state: the bookkeeping tensors in the ops' order, then the stage columns; also by
            name: ``row_episode`` ``[C]`` (the owning episode id of each row, -1 if free: the
            row's generation), ``episodes`` (start, length, terminated per slot),
            ``counters``, ``sum_tree``, ``min_tree``, ``max_priority``, ``draws`` (the seed of
            the sample draws and the count of sample calls, which each sample advances: a
            sample is a pure function of the state) and ``stage_length`` (``[N]`` steps staged
            per environment; ``[0]`` before the first add).
        staged: per column, ``[N, horizon, *shape]``: the episodes in progress, one per
            environment (``N`` = 0 until the first ``add`` sizes them); the end of ``state``.
        host: the ``pyrl._C.ReplayHost`` on these tensors: it converts inputs, takes the buffer's
            mutex and runs the compiled ops; it holds no state of its own.
    """

    def __init__(
        self,
        capacity: int,
        fields: list[Field],
        device: torch.device,
        seed: int,
        config: list[float],
        obs_columns: int,
        horizon: int,
        mapped: Optional[MemoryMapped] = None,
    ):
        self.capacity, self.fields, self.device = capacity, fields, device
        self.mapped = mapped
        self._maps: list = []  # the np.memmap arrays behind mapped columns (flushed by save)
        self.directory = ColumnDirectory(mapped.path) if mapped is not None else None
        try:
            self._allocate(capacity, fields, device, seed, config, obs_columns, horizon)
        except BaseException:
            if self.directory is not None:  # a failed creation leaves the disk as it was
                self.directory.discard()
            raise

    def _allocate(
        self,
        capacity: int,
        fields: list[Field],
        device: torch.device,
        seed: int,
        config: list[float],
        obs_columns: int,
        horizon: int,
    ) -> None:
        mapped = self.mapped
        self._alpha = config[CONFIG["alpha"]]
        self.names = [f.name for f in fields]

        def full(*shape, dtype=torch.int64, fill=0.0):
            return torch.full(shape, fill, dtype=dtype, device=device)

        size = tree_size(capacity)
        offsets, end = [], 0
        for f in fields:
            if f.name in SEPARATE_COLUMNS:
                offsets.append(None)
                continue
            item = torch.empty((), dtype=f.dtype).element_size()
            end = (end + item - 1) // item * item
            offsets.append(end)
            end += item * math.prod(f.shape)
        record_bytes = max(8, (end + 7) // 8 * 8)
        if mapped is None:
            self.records = torch.zeros(capacity, record_bytes, dtype=torch.uint8, device=device)
        else:
            self.records = self._map(RECORDS_FILE, (capacity, record_bytes), torch.uint8)
        self.columns = [
            (
                full(capacity, *f.shape, dtype=f.dtype)
                if mapped is None
                else self._map(f"column-{f.name}.bin", (capacity, *f.shape), f.dtype)
            )
            if offset is None
            else self.records[
                :,
                offset : offset
                + torch.empty((), dtype=f.dtype).element_size() * math.prod(f.shape),
            ]
            .view(f.dtype)
            .view(capacity, *f.shape)
            for f, offset in zip(fields, offsets)
        ]
        self.row_episode = full(capacity, fill=-1)
        self.episodes = full(episode_slots(capacity), 3)
        self.counters = full(len(COUNTERS))
        self.sum_tree = full(size, dtype=torch.float64)
        self.min_tree = full(size, dtype=torch.float64, fill=float("inf"))
        self.max_priority = torch.ones(1, dtype=torch.float64, device=device)
        self.draws = torch.tensor([seed, 0], dtype=torch.int64, device=device)
        self.stage_length = full(0)
        self.staged = [
            torch.zeros(0, horizon, *f.shape, dtype=f.dtype, device=device) for f in fields
        ]
        # The fixed slots, then the stage columns (kernels::StateSlot).
        self.state = [getattr(self, name) for name in STATE_NAMES] + self.staged
        self.horizon = horizon
        self.host = _C.ReplayHost(self.state, self.columns, config, self.names, obs_columns)

    def _map(self, name: str, shape: tuple, dtype: torch.dtype) -> Tensor:
        """A tensor on the file ``name`` of the mapped directory: created (zeros, its space
        reserved) for a new buffer, mapped as it is when reopening one."""
        kind = torch.empty((), dtype=dtype).numpy().dtype
        open_file = self.directory.reopen if self.mapped.reopen else self.directory.create
        array = open_file(name, shape, kind)
        self._maps.append(array)
        return torch.from_numpy(array)

    def flush(self) -> None:
        """Writes a mapped buffer's dirty column pages to its files (msync)."""
        for array in self._maps:
            array.flush()

    def close(self, remove_new_files: bool = False) -> None:
        """A mapped buffer: flushes its files (or removes the ones it created) and releases its
        directory to the next buffer."""
        if self.directory is None:
            return
        if remove_new_files:
            self.directory.discard()
        else:
            self.flush()
            self.directory.close()

    def column(self, name: str) -> Tensor:
        return self.columns[self.names.index(name)]

    def counter(self, name: str) -> int:
        """One of ``pyrl.replay.layout.COUNTERS``."""
        return int(self.counters[COUNTERS[name]])

    @property
    def seed(self) -> int:
        return int(self.draws[DRAWS["seed"]])

    @property
    def calls(self) -> int:
        return int(self.draws[DRAWS["calls"]])

    @property
    def stage(self) -> Optional[list[Tensor]]:
        """The staged columns, or None before the first ``add``."""
        return self.staged if self.stage_length.numel() else None

    # ---- save and restore ----------------------------------------------------------------------

    def state_dict(self, columns: bool = True) -> dict:
        """The state's tensors; ``columns=False`` leaves the columns out (a mapped buffer's
        files hold them)."""
        staged = self.stage_length.numel() > 0
        # The columns are views of one record buffer, and torch.save cannot write views of one
        # storage as different dtypes: the dtype holding the most bytes stays a view (no copy of
        # the observations), columns of the other dtypes (int64 actions, say) are copied.
        size: dict = {}
        for name, column in zip(self.names, self.columns):
            if name not in SEPARATE_COLUMNS:
                size[column.dtype] = (
                    size.get(column.dtype, 0) + column.numel() * column.element_size()
                )
        kept = max(size, key=size.get)
        columns = (
            {
                name: c if c.dtype == kept or name in SEPARATE_COLUMNS else c.clone()
                for name, c in zip(self.names, self.columns)
            }
            if columns
            else None
        )
        return {
            **({"columns": columns} if columns is not None else {}),
            **{name: getattr(self, name) for name in FIXED_STATE},
            "stage": dict(zip(self.names, self.staged)) if staged else None,
            "stage_length": self.stage_length if staged else None,
        }

    def check_state(self, state: Mapping[str, Any]) -> dict[str, Tensor]:
        """Every tensor of `state` against this storage's shapes and dtypes, before anything
        changes; returns them by flat name."""
        expected = {
            name: (getattr(self, name).shape, getattr(self, name).dtype) for name in FIXED_STATE
        }
        columns = state.get("columns")
        if columns is None and self.mapped is not None:
            columns = {}  # a mapped buffer's saved state: its files hold the columns
        else:
            expected.update(
                {f"columns.{f.name}": (c.shape, c.dtype) for f, c in zip(self.fields, self.columns)}
            )
        if not isinstance(columns, Mapping):
            raise ValueError(
                f"ReplayBuffer.load_state_dict: columns should be a dict of tensors, "
                f"got {type(columns).__name__}"
            )
        given = {name: state.get(name) for name in FIXED_STATE}
        given.update({f"columns.{k}": v for k, v in columns.items()})
        if state.get("stage") is not None:
            stage_length = state.get("stage_length")
            envs = (
                stage_length.shape[0]
                if isinstance(stage_length, Tensor) and stage_length.dim() == 1
                else -1
            )
            expected["stage_length"] = ((envs,), torch.int64)
            given["stage_length"] = stage_length
            for f in self.fields:
                expected[f"stage.{f.name}"] = ((envs, self.horizon, *f.shape), f.dtype)
            if not isinstance(state["stage"], Mapping):
                raise ValueError("ReplayBuffer.load_state_dict: stage should be a dict of tensors")
            given.update({f"stage.{k}": v for k, v in state["stage"].items()})
        if set(given) != set(expected):
            raise ValueError(
                f"ReplayBuffer.load_state_dict: expected tensors {sorted(expected)}, "
                f"got {sorted(given)}"
            )
        for name, (shape, dtype) in expected.items():
            tensor = given[name]
            if not isinstance(tensor, Tensor) or tensor.shape != shape or tensor.dtype != dtype:
                got = (
                    (list(tensor.shape), tensor.dtype)
                    if isinstance(tensor, Tensor)
                    else type(tensor)
                )
                raise ValueError(
                    f"ReplayBuffer.load_state_dict: {name} should be {list(shape)} "
                    f"{dtype}, got {got}"
                )
        seed, calls = given["draws"].tolist()
        if seed < 0 or calls < 0:
            raise ValueError(
                f"ReplayBuffer.load_state_dict: draws should be [seed, calls], both "
                f">= 0, got {[seed, calls]}"
            )
        if "stage_length" in given:
            length = given["stage_length"]
            bad = ((length < 0) | (length >= self.horizon)).nonzero()
            if bad.numel():
                raise ValueError(
                    f"ReplayBuffer.load_state_dict: stage_length[{int(bad[0])}] "
                    f"should be in [0, {self.horizon}), got {int(length[bad[0]])}"
                )
        if "stage_length" not in given:  # nothing staged
            given["stage_length"] = torch.zeros(0, dtype=torch.int64)
        # Counters and the episode table are validated value by value, and everything derived
        # from them (row owners, the leaf mask, every tree parent) is rebuilt from them on copies:
        # nothing stored is trusted as an index, and a rejected state changes nothing.
        rebuilt = [given[name].to(self.device, copy=True) for name in STATE_NAMES]
        _ops.replay_rebuild(rebuilt, float(self._alpha))
        return {**given, **dict(zip(STATE_NAMES, rebuilt))}

    def load(self, given: Mapping[str, Tensor]) -> None:
        """Copies checked tensors (from :meth:`check_state`) in. Each tensor stays itself (the
        host refers to them): the stage is resized in place to the saved number of envs."""
        for name in FIXED_STATE:
            getattr(self, name).copy_(given[name])
        for f, column in zip(self.fields, self.columns):
            if f"columns.{f.name}" in given:
                column.copy_(given[f"columns.{f.name}"])
        envs = given["stage_length"].shape[0]
        self.stage_length.resize_(envs).copy_(given["stage_length"])
        for f, stage in zip(self.fields, self.staged):
            stage.resize_(envs, self.horizon, *f.shape)
            if envs:
                stage.copy_(given[f"stage.{f.name}"])
