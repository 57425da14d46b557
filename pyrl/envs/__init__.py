"""Built-in environments, registered with gymnasium under the ``pyrl/`` namespace on import,
and the one gymnasium helper a training loop needs, :func:`final_observations`.

``gym.make("pyrl/PointReach-v0")``; ``gym.make_vec("pyrl/ContextualBandit-v0", num_envs=256)``
steps all bandits as one numpy batch. ``pyrl/CartPoleNoVel-v0`` and ``pyrl/PendulumNoVel-v0``
are CartPole-v1 and Pendulum-v1 with the velocities masked (:class:`MaskVelocity`), the tasks of
the recurrent agents. ``pyrl/SlowPointReach-v0`` is PointReach with each step waiting 1 ms
(``delay=``; :class:`SlowStep`), for distributed-acting benchmarks.
"""

from gymnasium.envs.registration import register, registry

from pyrl.envs.bandit import ContextualBandit, ContextualBanditVector
from pyrl.envs.goal import BitFlip, PointReach
from pyrl.envs.masked import MaskVelocity
from pyrl.envs.slow import SlowStep
from pyrl.replay.autoreset import final_observations

__all__ = [
    "ContextualBandit",
    "ContextualBanditVector",
    "PointReach",
    "BitFlip",
    "MaskVelocity",
    "SlowStep",
    "final_observations",
]

_ENVS = {
    "pyrl/ContextualBandit-v0": dict(
        entry_point="pyrl.envs.bandit:ContextualBandit",
        vector_entry_point="pyrl.envs.bandit:ContextualBanditVector",
    ),
    "pyrl/PointReach-v0": dict(entry_point="pyrl.envs.goal:PointReach", max_episode_steps=50),
    "pyrl/BitFlip-v0": dict(
        entry_point="pyrl.envs.goal:BitFlip"
    ),  # truncates itself at n_bits steps
    # The inner CartPole-v1 / Pendulum-v1 keep their own time limits (500 / 200 steps).
    "pyrl/CartPoleNoVel-v0": dict(entry_point="pyrl.envs.masked:cartpole_novel"),
    "pyrl/PendulumNoVel-v0": dict(entry_point="pyrl.envs.masked:pendulum_novel"),
    "pyrl/SlowPointReach-v0": dict(entry_point="pyrl.envs.slow:slow_point_reach"),
}
for _id, _kwargs in _ENVS.items():
    if _id not in registry:
        register(id=_id, **_kwargs)
