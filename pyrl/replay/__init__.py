"""Replay storage with prioritized sampling and n-step returns on compiled ops.

    buf = replay.ReplayBuffer(1_000_000, {"obs": (17,), "action": (6,)},
                              prioritized=replay.PER(alpha=0.6, beta=0.4), seed=0)
"""

from pyrl.replay.buffer import Batch, Field, ReplayBuffer
from pyrl.replay.settings import EpisodeMode, NStep, PER

__all__ = ["Batch", "EpisodeMode", "Field", "NStep", "PER", "ReplayBuffer"]
