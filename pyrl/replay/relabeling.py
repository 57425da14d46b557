"""HER's finishing steps in Python (ReplayBuffer.sample): Python reward and terminal callables
applied to the relabeled samples the compiled sample drew (one step, or whole windows with
``nstep="recompute"``), and the warning about relabeled terminated episodes. Built-in rewards
(``sparse_l2``, ``per_dim``) never come here: the compiled sample applies them."""

import math
import warnings

import torch
from torch import Tensor

from pyrl.replay.batch import Batch
from pyrl.replay.settings import PerDim, SparseL2


class HerFinishing:
    """Mixed into :class:`~pyrl.replay.buffer.ReplayBuffer`."""

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
                    raise ValueError(
                        f"ReplayBuffer.sample: the HER reward callable should return "
                        f"{list(expected)} rewards, got shape {list(reward.shape)}"
                    )
                batch.reward[relabeled] = reward.reshape(expected)
            if her.terminal is not None:
                ends = torch.as_tensor(her.terminal(reached, goal), dtype=torch.bool).reshape(-1)
                if ends.shape[0] != int(relabeled.sum()):
                    raise ValueError(
                        f"ReplayBuffer.sample: the HER terminal callable should "
                        f"return {int(relabeled.sum())} flags, got {ends.shape[0]}"
                    )
                batch.discount[relabeled] = torch.where(ends, 0.0, self._steps.gamma).to(
                    batch.discount.dtype
                )
                batch.terminated[relabeled] = ends
        if (
            her.terminal is None
            and not self._warned_terminal
            and self.storage.counter("terminated_episodes") > 0
        ):
            self._warned_terminal = True
            warnings.warn(
                "ReplayBuffer: HER relabels terminated episodes without a terminal "
                "function; the stored termination is kept under the new goals, which is "
                "only right if termination does not depend on the goal. Pass "
                "HER(terminal=...) to recompute it.",
                stacklevel=3,
            )

    def _recompute_windows(self, batch: Batch, relabeled: Tensor) -> None:
        """HER(nstep="recompute") with a Python reward or terminal callable: the rewards of each
        relabeled window (its k drawn steps, reaching o_{t+1} .. o_{t+k}) recomputed under the
        new goal, batched over every window step; a terminal callable ends a window at its first
        True, as a true terminal (it takes precedence over the stored termination)."""
        her, storage, capacity = self.her, self.storage, self.capacity
        index, boot = batch.index[relabeled], batch.boot[relabeled]
        steps = (boot - index) % capacity
        offsets = torch.arange(1, int(steps.max()) + 1)
        valid = offsets[None, :] <= steps[:, None]  # [b, n]
        rows = (index[:, None] + offsets[None, :]) % capacity
        reached = storage.column("achieved_goal")[rows]  # [b, n, *goal_shape]
        goal = batch.obs["desired_goal"][relabeled][:, None].expand_as(reached)
        cut = steps.clone()
        ended = torch.zeros_like(steps, dtype=torch.bool)
        if her.terminal is not None:
            flags = torch.zeros(valid.shape, dtype=torch.bool)
            flags[valid] = torch.as_tensor(
                her.terminal(reached[valid], goal[valid]), dtype=torch.bool
            ).reshape(-1)
            first = torch.where(flags.any(1), flags.int().argmax(1), steps)
            ended = flags.any(1)
            cut = torch.where(ended, first + 1, steps)
        kept = offsets[None, :] <= cut[:, None]
        heads = batch.reward.shape[1:]
        rewards = torch.zeros((*valid.shape, *heads), dtype=torch.float64)
        values = torch.as_tensor(her.reward(reached[kept], goal[kept]), dtype=torch.float64)
        if values.numel() != int(kept.sum()) * max(1, math.prod(heads)):
            raise ValueError(
                f"ReplayBuffer.sample: the HER reward callable should return one "
                f"reward per step {list(heads)}, got shape {list(values.shape)}"
            )
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
