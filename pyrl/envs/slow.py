"""An env whose steps take wall-clock time without using the CPU, standing in for a simulator
that waits on something else (a physics server, a renderer, I/O): the case where more actor
processes give more env steps per second even on a machine with few cores."""

import time

import gymnasium as gym


class SlowStep(gym.Wrapper):
    """Sleeps ``delay`` seconds in every ``step`` of the wrapped env."""

    def __init__(self, env: gym.Env, delay: float = 0.001):
        if not (isinstance(delay, (int, float)) and delay >= 0):
            raise ValueError(f"SlowStep: delay should be a number of seconds >= 0, got {delay!r}")
        super().__init__(env)
        self.delay = float(delay)

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)

    def compute_reward(self, achieved_goal, desired_goal, info):
        return self.env.unwrapped.compute_reward(achieved_goal, desired_goal, info)


def slow_point_reach(delay: float = 0.001, **kwargs) -> gym.Env:
    """PointReach whose steps each wait ``delay`` seconds (1 ms by default)."""
    return SlowStep(gym.make("pyrl/PointReach-v0", **kwargs), delay)
