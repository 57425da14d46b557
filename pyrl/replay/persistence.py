"""Saving and restoring a buffer: its settings as plain values (``config``), its tensors
(``state_dict``, checked on the way in), atomic files (``save``, ``load``) and the checks a
file's settings get before anything is allocated."""

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Mapping, Optional

import torch
from torch import Tensor

from pyrl._io import atomic_save, load_data
from pyrl.replay.layout import MAX_CAPACITY
from pyrl.replay.recurrent import Recurrent
from pyrl.replay.settings import (
    HER,
    EpisodeMode,
    MemoryMapped,
    NStep,
    PER,
    PerDim,
    SparseL2,
    per_dim,
    sparse_l2,
)

if TYPE_CHECKING:
    from pyrl.replay.buffer import ReplayBuffer


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
    return {
        "strategy": her.strategy,
        "k": her.k,
        "reward": reward,
        "terminal": "callable" if her.terminal is not None else None,
        "nstep": her.nstep,
        "terminal_on_success": her.terminal_on_success,
    }


def her_from_description(described: dict) -> HER:
    reward = described["reward"]
    if reward == "callable" or described["terminal"] is not None:
        raise ValueError(
            "ReplayBuffer.load: the saved buffer relabels with Python callables, "
            "which are not saved; pass her=replay.HER(...) to load()"
        )
    kind = sparse_l2(reward["sparse_l2"]) if "sparse_l2" in reward else per_dim(*reward["per_dim"])
    return HER(
        described["strategy"],
        described["k"],
        kind,
        nstep=described.get("nstep", "one_step"),
        terminal_on_success=described.get("terminal_on_success", False),
    )


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
        kwargs = dict(
            spec=spec,
            prioritized=PER(**prioritized) if prioritized else None,
            episode_mode=EpisodeMode(**episode_mode) if episode_mode else None,
            her=her,
            nstep=NStep(**nstep) if (nstep := config.pop("nstep")) is not None else None,
            obs_keys=tuple(config.pop("obs_keys")),
            **config,
        )
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


class Persistence:
    """Mixed into :class:`~pyrl.replay.buffer.ReplayBuffer`."""

    def config(self) -> dict:
        """The constructor arguments, as plain Python values."""
        return {
            "capacity": self.capacity,
            "spec": {
                f.name: (list(f.shape), str(f.dtype).removeprefix("torch."))
                for f in self.fields
                if f.name != "hidden" or self.recurrent is None
            },
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
            **(
                {"storage": {"memory_mapped": self.memory_mapped.path}}
                if self.memory_mapped is not None
                else {}
            ),
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
            raise ValueError(
                "ReplayBuffer.load_state_dict: state should be a dict from "
                "state_dict(), with a 'config' entry"
            )
        ours, theirs = self.config(), dict(state["config"])
        for key in ("seed", "device"):
            ours.pop(key), theirs.pop(key, None)
        # Where the column files are is this buffer's own setting (a copied run's directory);
        # only whether there are files must match.
        ours["storage"] = "storage" in ours
        theirs["storage"] = "storage" in theirs
        if theirs != ours:
            raise ValueError(
                f"ReplayBuffer.load_state_dict: the state was saved from a buffer with "
                f"{theirs}, this one has {ours}"
            )
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
                config["storage"] = {
                    "memory_mapped": os.path.relpath(self.memory_mapped.path, where)
                }
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
        kwargs = settings_from_file(
            where, state, her, os.path.dirname(os.path.abspath(os.fspath(path)))
        )
        buf = cls(**kwargs)
        buf.load_state_dict(state)
        return buf
