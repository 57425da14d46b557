"""Velocity-masked classic-control tasks (rl-zoo's NoVel variants): the observation keeps the
positions only, so a policy has to infer velocities from history. The tests of recurrent
agents: a feed-forward policy cannot solve them from one observation."""

import gymnasium as gym
import numpy as np


class MaskVelocity(gym.ObservationWrapper):
    """Keeps the observation entries `keep` of a Box observation."""

    def __init__(self, env: gym.Env, keep):
        super().__init__(env)
        self.keep = np.asarray(keep, dtype=np.int64)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            space.low[self.keep], space.high[self.keep], dtype=space.dtype
        )

    def observation(self, observation):
        return observation[self.keep]


def cartpole_novel(**kwargs) -> gym.Env:
    """CartPole-v1 observing cart position and pole angle (velocities masked)."""
    return MaskVelocity(gym.make("CartPole-v1", **kwargs), keep=[0, 2])


def pendulum_novel(**kwargs) -> gym.Env:
    """Pendulum-v1 observing cos and sin of the angle (angular velocity masked)."""
    return MaskVelocity(gym.make("Pendulum-v1", **kwargs), keep=[0, 1])
