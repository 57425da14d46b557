"""Settings of a replay buffer's sampling: prioritized replay (PER), episode-level sampling,
n-step returns and hindsight relabeling (HER) with its reward kinds."""

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch


@dataclass(frozen=True)
class PER:
    """Proportional prioritized replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952).

    A row's priority is ``p = clip(|td| + eps, p_min, p_max)``; it is drawn with probability
    ``p^alpha / sum p^alpha`` (stratified over the batch) and weighted by
    ``(P_min / P)^beta``, or by ``P^-beta`` over the batch maximum with ``weight_norm="batch"``.
    New rows enter at the largest priority seen so far (1.0 at the start).

    Args:
        alpha: how strongly priorities skew sampling, in [0, 1] (0 is uniform).
        beta: the importance-sampling exponent at the first ``sample``, in [0, 1].
        beta_steps: ``sample`` calls over which beta rises linearly to 1; None keeps it fixed.
        eps: added to ``|td|`` so no transition is starved.
        p_min, p_max: priorities are clipped to ``[p_min, p_max]``.
        weight_norm: ``"min"`` divides by the weight of the least likely row in the buffer,
            ``"batch"`` by the largest weight in the batch (what the original code did).
    """

    alpha: float = 0.6
    beta: float = 0.4
    beta_steps: Optional[int] = 100_000
    eps: float = 1e-6
    p_min: float = 1e-10
    p_max: float = 1e2
    weight_norm: str = "min"

    def __post_init__(self):
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"PER: {name} should be in [0, 1], got {value!r}")
        if self.beta_steps is not None and not (
            isinstance(self.beta_steps, int) and self.beta_steps >= 1
        ):
            raise ValueError(
                f"PER: beta_steps should be an int >= 1 or None, got {self.beta_steps!r}"
            )
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps >= 0.0):
            raise ValueError(f"PER: eps should be finite and >= 0, got {self.eps!r}")
        # Capped so that the sum tree of up to 2^48 leaves of p^alpha stays finite and exact
        # enough: beyond it one row would take every draw.
        if not (
            isinstance(self.p_min, (int, float))
            and isinstance(self.p_max, (int, float))
            and 0.0 < self.p_min <= self.p_max <= 1e100
        ):
            raise ValueError(
                f"PER: need 0 < p_min <= p_max <= 1e100, got p_min={self.p_min!r}, "
                f"p_max={self.p_max!r}"
            )
        if self.weight_norm not in ("min", "batch"):
            raise ValueError(
                f"PER: weight_norm should be 'min' or 'batch', got {self.weight_norm!r}"
            )

    def beta_at(self, calls: int) -> float:
        """The IS exponent for the sample call after `calls` earlier ones: the sample ops' own
        rule (C++), beta rising linearly to 1 over ``beta_steps`` calls."""
        from pyrl import _C

        return _C.beta_at(float(self.beta), int(self.beta_steps or 0), int(calls))


@dataclass(frozen=True)
class NStep:
    """n-step returns read from the stored episode at sample time (SPEC 3.2).

    Each sample's window is ``k`` steps, clipped at its episode's end: ``k = n``, or, with
    ``floating``, drawn uniformly from ``{1..n}`` afresh at every ``sample``. The batch's ``reward``
    is ``R = sum_{l<k} gamma^l r_{t+l}``, ``next_obs`` the observation ``k`` steps on, and
    ``discount`` is ``gamma^k``, or 0 where the window reaches a true terminal state.

    Args:
        n: the largest lookahead, >= 1 (1 is plain one-step TD).
        gamma: the discount, in [0, 1]: required, the one your loop uses (a default would
            silently discount with another).
        floating: draw ``k`` per sample instead of always using ``n``.
    """

    n: int = 1
    gamma: Optional[float] = None
    floating: bool = False

    def __post_init__(self):
        if not (type(self.n) is int and 1 <= self.n <= 2**48):  # windows stop at episode ends
            raise ValueError(f"NStep: n should be an int in [1, 2^48], got {self.n!r}")
        if self.gamma is None:
            raise ValueError(
                "NStep: gamma is required, NStep(n, gamma): batches discount by "
                "gamma^k, and a default would silently differ from your loop's"
            )
        if not (isinstance(self.gamma, (int, float)) and 0.0 <= self.gamma <= 1.0):
            raise ValueError(f"NStep: gamma should be in [0, 1], got {self.gamma!r}")


@dataclass(frozen=True)
class EpisodeMode:
    """Episode-level sampling, as the original did it (SPEC 1.2, "episode mode").

    Each round draws ``select_count`` rows by priority (uniformly in a uniform buffer) and keeps
    their distinct episodes; each of those episodes then gives ``m ~ U{1..min(T, max_ep_draw)}``
    distinct time steps, uniformly. Rounds repeat until the batch is full, and the batch is cut
    to exactly the size asked for. Priority only chooses episodes, so the importance weights are
    1 and the sampling is biased; it batches several steps of one episode together, which RNN
    recomputation and episode-level relabeling want.

    Args:
        select_count: rows drawn per round (the original: 4 for DDPG, 40 for PPO).
        max_ep_draw: the most time steps one episode gives per round.
    """

    select_count: int = 4
    max_ep_draw: int = 40

    def __post_init__(self):
        for name in ("select_count", "max_ep_draw"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"EpisodeMode: {name} should be an int >= 1, got {value!r}")


@dataclass(frozen=True)
class SparseL2:
    """Built-in HER reward: 0 if ||achieved - goal||_2 < eps, else -1 (computed in C++; the call
    computes the same in torch, for the windows Python handles)."""

    eps: float

    def __post_init__(self):
        if not (isinstance(self.eps, (int, float)) and self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError(f"sparse_l2: eps should be a finite number > 0, got {self.eps!r}")

    def __call__(self, achieved_goal, desired_goal):
        # over the flattened goal, whatever its shape: [B, *goal_shape] -> [B]
        difference = achieved_goal.double() - desired_goal.double()
        distance = difference.reshape(difference.shape[0], -1).norm(dim=1)
        return torch.where(distance < self.eps, 0.0, -1.0)


@dataclass(frozen=True)
class PerDim:
    """Built-in HER reward with one head per goal dimension (SPEC 7.1, MROCS):
    ``r_d = sum_b values[b] * [e_d passes band b]`` with ``e_d = |achieved_d - goal_d|``; a
    band with threshold ``thr > 0`` passes when ``e_d < thr``, one with ``thr < 0`` when
    ``e_d > -thr``."""

    thresholds: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self):
        if not self.thresholds or len(self.thresholds) != len(self.values):
            raise ValueError(
                f"per_dim: thresholds and values should be non-empty and of equal "
                f"length, got {len(self.thresholds)} and {len(self.values)}"
            )
        if any(t == 0 or not math.isfinite(t) for t in self.thresholds):
            raise ValueError(
                f"per_dim: thresholds should be finite and non-zero (the sign picks "
                f"< or >), got {self.thresholds}"
            )

    def __call__(self, achieved_goal, desired_goal):
        error = (achieved_goal.double() - desired_goal.double()).abs()
        error = error.reshape(error.shape[0], -1)  # one head per goal element
        reward = torch.zeros_like(error)
        for threshold, value in zip(self.thresholds, self.values):
            reward += value * (error < threshold if threshold > 0 else error > -threshold)
        return reward


def sparse_l2(eps: float) -> SparseL2:
    """HER reward: 0 within `eps` of the goal (Euclidean), else -1."""
    return SparseL2(float(eps))


def per_dim(thresholds, values) -> PerDim:
    """HER reward per goal dimension from indicator bands (see :class:`PerDim`)."""
    return PerDim(tuple(float(t) for t in thresholds), tuple(float(v) for v in values))


HER_STRATEGIES = ("future", "final", "episode", "random")


@dataclass(frozen=True)
class HER:
    """Hindsight experience replay (Andrychowicz et al. 2017, https://arxiv.org/abs/1707.01495),
    relabeled at sample time (SPEC 2.2): each transition is stored once.

    A fraction ``k / (k + 1)`` of the sampled transitions gets the achieved goal of another row
    as its goal: ``future`` a later step of its episode (t+1..T), ``final`` the episode's last
    observation, ``episode`` any step 1..T of its episode, ``random`` any stored row. Relabeled
    samples take one step (k = 1), and their reward is recomputed from the next observation's
    achieved goal against the new goal.

    With ``nstep="recompute"`` a relabeled sample keeps the ``k`` it drew instead (floating or
    fixed n-step), and every reward of its window is recomputed under the new goal, so that the
    window's rewards agree with the goal being learned. The intermediate actions were still
    chosen for another goal (SPEC 2.3): this is an opt-in whose value a learning check decides.
    With ``terminal_on_success=True`` the window ends at the first step whose achieved goal
    reaches the new goal (``sparse_l2``'s success), which becomes a true terminal; a
    ``terminal`` callable, where given, decides instead (it takes precedence).

    Args:
        strategy: one of ``future``, ``final``, ``episode``, ``random``.
        k: relabeled samples per original one (the ratio is k / (k + 1)); 0 turns relabeling off.
        reward: ``replay.sparse_l2(eps)``, ``replay.per_dim(thresholds, values)`` (both run in
            C++), or a callable ``reward(achieved_goal [B, g], desired_goal [B, g]) -> [B]`` or
            ``[B, m]`` tensor.
        terminal: an optional callable ``terminal(achieved_goal, desired_goal) -> [B]`` bools:
            whether reaching the achieved goal ends the episode under the relabeled goal.
            Without it, the stored termination is kept, which is only right for tasks that end
            on a time limit (a warning says so when terminated episodes are relabeled).
        nstep: ``"one_step"`` (relabeled samples take k = 1) or ``"recompute"`` (they keep
            their k; the window's rewards are recomputed under the new goal).
        terminal_on_success: end a relabeled window where the new goal is reached, as a true
            terminal (needs ``sparse_l2`` or a ``terminal`` callable).
    """

    strategy: str = "future"
    k: int = 4
    reward: Any = None
    terminal: Optional[Callable] = None
    nstep: str = "one_step"
    terminal_on_success: bool = False

    def __post_init__(self):
        if self.strategy not in HER_STRATEGIES:
            raise ValueError(
                f"HER: strategy should be one of {HER_STRATEGIES}, got {self.strategy!r}"
            )
        if not (isinstance(self.k, int) and self.k >= 0):
            raise ValueError(f"HER: k should be an int >= 0, got {self.k!r}")
        if not (isinstance(self.reward, (SparseL2, PerDim)) or callable(self.reward)):
            raise ValueError(
                f"HER: reward should be replay.sparse_l2(eps), replay.per_dim(...) or a "
                f"callable (achieved_goal, desired_goal) -> reward, got {self.reward!r}"
            )
        if self.terminal is not None and not callable(self.terminal):
            raise ValueError(f"HER: terminal should be a callable or None, got {self.terminal!r}")
        if self.nstep not in ("one_step", "recompute"):
            raise ValueError(f"HER: nstep should be 'one_step' or 'recompute', got {self.nstep!r}")
        if not isinstance(self.terminal_on_success, bool):
            raise ValueError(
                f"HER: terminal_on_success should be a bool, got {self.terminal_on_success!r}"
            )
        if (
            self.terminal_on_success
            and self.terminal is None
            and not isinstance(self.reward, SparseL2)
        ):
            raise ValueError(
                "HER: terminal_on_success needs a success test: "
                "reward=replay.sparse_l2(eps), or a terminal callable"
            )

    @property
    def ratio(self) -> float:
        return self.k / (self.k + 1)


@dataclass(frozen=True)
class MemoryMapped:
    """Keeps a buffer's columns in files under the directory ``path`` (memory-mapped, shared
    with the page cache) instead of in process memory, for buffers larger than RAM; the sum and
    min trees, the episode table and the counters stay in memory. The ops sample them as they
    sample in-memory columns.

    The files are the buffer's live data: ``save`` flushes them in place and writes the rest
    atomically beside, referring to them (no copy); ``ReplayBuffer.load`` maps them again. Rows
    written after a save are in the files when the checkpoint is loaded: restore a saved
    buffer before adding to it again, or accept that its newest episodes' rows hold newer steps.

    Args:
        path: a directory (made if missing) that holds no buffer's columns yet.
        reopen: map the column files a saved buffer left there instead (what
            ``ReplayBuffer.load`` passes).
    """

    path: str
    reopen: bool = False

    def __post_init__(self):
        if not isinstance(self.path, (str, os.PathLike)):
            raise ValueError(f"MemoryMapped: path should be a directory path, got {self.path!r}")
        object.__setattr__(self, "path", os.path.abspath(os.fspath(self.path)))

    @classmethod
    def reuse(cls, path) -> "MemoryMapped":
        """The column files a buffer left in ``path`` if there are any (a run resumed from its
        checkpoint maps them again; a new run overwrites them as it fills), else new ones."""
        found = os.path.isfile(os.path.join(os.fspath(path), "records.bin"))
        return cls(path, reopen=found)
