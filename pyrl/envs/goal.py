"""Small goal-conditioned environments for hindsight relabeling (SPEC 8.2), gymnasium-robotics
style.

Observations are dicts ``{"observation", "achieved_goal", "desired_goal"}``; ``compute_reward``
takes batched ``achieved_goal``/``desired_goal`` arrays (``info`` is ignored) so HER can recompute
rewards for relabeled goals; ``info["is_success"]`` reports success at every step. Episodes are
only ever truncated (a time limit from the registration), never terminated, so relabeled goals
never inherit a stored terminal flag.

``compiled_reward`` names the same reward as one of ``pyrl.replay``'s built-in kinds, which the
replay buffer computes in C++ inside its sample instead of calling back into Python.
"""

from typing import Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pyrl import replay


class PointReach(gym.Env):
    """Move a point in ``[-1, 1]^2`` to a goal: ``p' = clip(p + 0.1 a, -1, 1)``, 50 steps.

    Reward is 0 when ``||p' - g|| < 0.05`` and -1 otherwise; a random policy essentially never
    succeeds, which is what makes it a test of relabeling (SPEC 8.2). ``reward_type="dense"``
    rewards ``-||p' - g||`` instead (success is still reaching the threshold).
    """

    metadata = {"render_modes": []}

    def __init__(
        self, distance_threshold: float = 0.05, step_size: float = 0.1, reward_type: str = "sparse"
    ):
        if reward_type not in ("sparse", "dense"):
            raise ValueError(
                f"PointReach: reward_type should be 'sparse' or 'dense', got {reward_type!r}"
            )
        self.distance_threshold, self.step_size = distance_threshold, step_size
        self.reward_type = reward_type
        box = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Dict(
            {"observation": box, "achieved_goal": box, "desired_goal": box}
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        # The dense reward has no compiled kind: HER then calls compute_reward.
        self.compiled_reward = (
            replay.sparse_l2(distance_threshold) if reward_type == "sparse" else None
        )
        self.position = np.zeros(2, np.float32)
        self.goal = np.zeros(2, np.float32)

    def _obs(self) -> dict:
        return {
            "observation": self.position.copy(),
            "achieved_goal": self.position.copy(),
            "desired_goal": self.goal.copy(),
        }

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        if self.reward_type == "dense":
            return -distance.astype(np.float32)
        return -(distance >= self.distance_threshold).astype(np.float32)

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float32).reshape(2), -1.0, 1.0)
        self.position = np.clip(self.position + self.step_size * action, -1.0, 1.0).astype(
            np.float32
        )
        reward = float(self.compute_reward(self.position, self.goal))
        success = bool(np.linalg.norm(self.position - self.goal) < self.distance_threshold)
        return self._obs(), reward, False, False, {"is_success": success}


class BitFlip(gym.Env):
    """Flip bits to match a goal bit string (Andrychowicz et al. 2017, https://arxiv.org/abs/1707.01495).

    Discrete actions flip one bit; ``continuous=True`` takes an action in ``[-1, 1]^n`` and flips
    every bit whose action is positive, so DDPG can play it. Reward 0 when all bits match, else
    -1; episodes are truncated after ``n_bits`` steps (the env counts them, so the limit follows
    ``n_bits``).
    """

    metadata = {"render_modes": []}

    def __init__(self, n_bits: int = 10, continuous: bool = False):
        if n_bits < 1:
            raise ValueError(f"n_bits should be >= 1, got {n_bits}")
        self.n_bits, self.continuous = n_bits, continuous
        bits = spaces.Box(0.0, 1.0, (n_bits,), np.float32)
        self.observation_space = spaces.Dict(
            {"observation": bits, "achieved_goal": bits, "desired_goal": bits}
        )
        self.action_space = (
            spaces.Box(-1.0, 1.0, (n_bits,), np.float32) if continuous else spaces.Discrete(n_bits)
        )
        # Bits are 0/1, so "L2 distance below 0.5" is "every bit equal".
        self.compiled_reward = replay.sparse_l2(0.5)
        self.state = np.zeros(n_bits, np.float32)
        self.goal = np.zeros(n_bits, np.float32)
        self.steps = 0

    def _obs(self) -> dict:
        return {
            "observation": self.state.copy(),
            "achieved_goal": self.state.copy(),
            "desired_goal": self.goal.copy(),
        }

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        differ = (np.asarray(achieved_goal) != np.asarray(desired_goal)).any(axis=-1)
        return -differ.astype(np.float32)

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        self.goal = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        if self.continuous:
            flip = np.asarray(action, np.float32).reshape(self.n_bits) > 0
        else:
            flip = np.arange(self.n_bits) == int(action)
        self.state = np.where(flip, 1.0 - self.state, self.state).astype(np.float32)
        self.steps += 1
        reward = float(self.compute_reward(self.state, self.goal))
        return self._obs(), reward, False, self.steps >= self.n_bits, {"is_success": reward == 0.0}
