"""Replay storage with prioritized sampling and n-step returns on compiled ops.

Example::

    buf = replay.ReplayBuffer(1_000_000, {"obs": (17,), "action": (6,)},
                              prioritized=replay.PER(alpha=0.6, beta=0.4), seed=0)
"""

from pyrl.replay.buffer import Batch, Field, InvariantError, ReplayBuffer
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

__all__ = [
    "Batch",
    "EpisodeMode",
    "Field",
    "HER",
    "InvariantError",
    "MemoryMapped",
    "NStep",
    "PER",
    "PerDim",
    "Recurrent",
    "ReplayBuffer",
    "SparseL2",
    "per_dim",
    "sparse_l2",
]
