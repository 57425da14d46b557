"""Built-in environments, registered with gymnasium under the ``pyrl/`` namespace on import,
and the one gymnasium helper a training loop needs, :func:`final_observations`.

``gym.make("pyrl/PointReach-v0")``; ``gym.make_vec("pyrl/ContextualBandit-v0", num_envs=256)``
steps all bandits as one numpy batch. ``pyrl/CartPoleNoVel-v0`` and ``pyrl/PendulumNoVel-v0``
are CartPole-v1 and Pendulum-v1 with the velocities masked (:class:`MaskVelocity`), the tasks of
the recurrent agents. ``pyrl/SlowPointReach-v0`` is PointReach with each step waiting 1 ms
(``delay=``; :class:`SlowStep`), for distributed-acting benchmarks.
"""

import numpy as np
from gymnasium.envs.registration import register, registry

from pyrl.envs.bandit import ContextualBandit, ContextualBanditVector
from pyrl.envs.goal import BitFlip, PointReach
from pyrl.envs.masked import MaskVelocity
from pyrl.envs.slow import SlowStep

__all__ = ["ContextualBandit", "ContextualBanditVector", "PointReach", "BitFlip", "MaskVelocity",
           "SlowStep", "final_observations"]

_ENVS = {
    "pyrl/ContextualBandit-v0": dict(entry_point="pyrl.envs.bandit:ContextualBandit",
                                     vector_entry_point="pyrl.envs.bandit:ContextualBanditVector"),
    "pyrl/PointReach-v0": dict(entry_point="pyrl.envs.goal:PointReach", max_episode_steps=50),
    "pyrl/BitFlip-v0": dict(entry_point="pyrl.envs.goal:BitFlip"),  # truncates itself at n_bits steps
    # The inner CartPole-v1 / Pendulum-v1 keep their own time limits (500 / 200 steps).
    "pyrl/CartPoleNoVel-v0": dict(entry_point="pyrl.envs.masked:cartpole_novel"),
    "pyrl/PendulumNoVel-v0": dict(entry_point="pyrl.envs.masked:pendulum_novel"),
    "pyrl/SlowPointReach-v0": dict(entry_point="pyrl.envs.slow:slow_point_reach"),
}
for _id, _kwargs in _ENVS.items():
    if _id not in registry:
        register(id=_id, **_kwargs)


def final_observations(next_obs, infos: dict, done):
    """The true next observation of each env of a gymnasium vector env step: ``next_obs``, with
    the episode's final observation where it ended.

    Under ``AutoresetMode.SAME_STEP`` the env has already reset the ended envs, so ``next_obs``
    holds their reset observations and the final ones are in ``infos["final_obs"]``; this puts
    them back. Under gymnasium's default ``NEXT_STEP`` mode ``next_obs`` already is final where
    ``done`` (the reset comes with the next step, whose transition is not a real one: skip it),
    and ``infos`` has no ``final_obs``; ``next_obs`` is returned as it is.

    Args:
        next_obs: the step's observations, an array ``[N, ...]`` or a dict of them.
        infos: the step's info dict.
        done: ``[N]`` bools, ``terminated | truncated``.

    Returns:
        ``next_obs`` itself when nothing ended or there is nothing to restore, else a copy.
    """
    done = np.asarray(done, dtype=bool)
    if not done.any() or "final_obs" not in infos:
        return next_obs
    rows = np.flatnonzero(done)
    finals = infos["final_obs"]
    if isinstance(next_obs, dict):
        out = {key: np.array(value, copy=True) for key, value in next_obs.items()}
        for i in rows:
            for key in out:
                out[key][i] = finals[i][key]
        return out
    out = np.array(next_obs, copy=True)
    for i in rows:
        out[i] = finals[i]
    return out
