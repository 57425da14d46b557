"""The 0-9 contextual bandit of SPEC 8.1 (seed 004).

Each episode is one pull: the observation is a context ``x`` in ``0..contexts-1``, the action an
arm, and the reward ``-|arm - target(x)|`` (so every reward is <= 0 and only the target arm earns
0). ``target(x) = x`` when contexts and arms are equal, else ``x`` scaled onto the arms.

The context is given one-hot by default: a raw scalar context in a ReLU network is one of the
failures SPEC 8.1 documents (``observation="scalar"`` reproduces it).
"""

from typing import Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _observation_space(contexts: int, observation: str) -> spaces.Box:
    if observation == "onehot":
        return spaces.Box(0.0, 1.0, (contexts,), np.float32)
    if observation == "scalar":
        return spaces.Box(0.0, float(contexts - 1), (1,), np.float32)
    raise ValueError(f"observation should be 'onehot' or 'scalar', got {observation!r}")


def _check_sizes(contexts: int, arms: int) -> None:
    if contexts < 1 or arms < 1:
        raise ValueError(f"contexts and arms should be >= 1, got contexts={contexts}, arms={arms}")


class ContextualBandit(gym.Env):
    """One-step episodes: observe a context, pull an arm, get ``-|arm - target(context)|``."""

    metadata = {"render_modes": []}

    def __init__(self, contexts: int = 10, arms: int = 10, observation: str = "onehot"):
        _check_sizes(contexts, arms)
        self.contexts, self.arms, self.observation = contexts, arms, observation
        self.observation_space = _observation_space(contexts, observation)
        self.action_space = spaces.Discrete(arms)
        self.context = 0

    def target(self, context):
        """The best arm for ``context`` (array or int)."""
        if self.contexts == 1:
            return np.zeros_like(context)
        return np.rint(np.asarray(context) * (self.arms - 1) / (self.contexts - 1)).astype(np.int64)

    def _obs(self) -> np.ndarray:
        return _encode(np.array([self.context]), self.contexts, self.observation)[0]

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        self.context = int(self.np_random.integers(self.contexts))
        return self._obs(), {}

    def step(self, action):
        reward = -float(abs(int(action) - int(self.target(self.context))))
        info = {"is_success": reward == 0.0, "context": self.context}
        return self._obs(), reward, True, False, info


def _encode(context: np.ndarray, contexts: int, observation: str) -> np.ndarray:
    if observation == "onehot":
        return np.eye(contexts, dtype=np.float32)[context]
    return context.astype(np.float32)[:, None]


class ContextualBanditVector(gym.vector.VectorEnv):
    """``num_envs`` bandits stepped as one numpy batch (``gym.make_vec`` uses it by default).

    Every step ends every episode, so it resets in the same step: the returned observation is
    the next context and ``info["final_obs"]`` the one just answered (gymnasium's ``SAME_STEP``).
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self, num_envs: int = 1, contexts: int = 10, arms: int = 10, observation: str = "onehot"
    ):
        _check_sizes(contexts, arms)
        self.single = ContextualBandit(contexts, arms, observation)
        self.num_envs = num_envs
        self.single_observation_space = self.single.observation_space
        self.single_action_space = self.single.action_space
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.context = np.zeros(num_envs, dtype=np.int64)

    def _obs(self) -> np.ndarray:
        return _encode(self.context, self.single.contexts, self.single.observation)

    def reset(self, *, seed: Optional[int] = None, options=None):
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
        self.context = self.np_random.integers(self.single.contexts, size=self.num_envs)
        return self._obs(), {}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        reward = -np.abs(actions - self.single.target(self.context)).astype(np.float64)
        final = self._obs()
        info = {
            "is_success": reward == 0.0,
            "context": self.context.copy(),
            "final_obs": list(final),
            "_final_obs": np.ones(self.num_envs, bool),
        }
        self.context = self.np_random.integers(self.single.contexts, size=self.num_envs)
        done = np.ones(self.num_envs, bool)
        return self._obs(), reward, done, np.zeros(self.num_envs, bool), info
