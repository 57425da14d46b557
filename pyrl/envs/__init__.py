"""Built-in environments, registered with gymnasium under the ``pyrl/`` namespace on import.

``gym.make("pyrl/PointReach-v0")``; ``gym.make_vec("pyrl/ContextualBandit-v0", num_envs=256)``
steps all bandits as one numpy batch.
"""

from gymnasium.envs.registration import register, registry

from pyrl.envs.bandit import ContextualBandit, ContextualBanditVector
from pyrl.envs.goal import BitFlip, PointReach

__all__ = ["ContextualBandit", "ContextualBanditVector", "PointReach", "BitFlip"]

_ENVS = {
    "pyrl/ContextualBandit-v0": dict(entry_point="pyrl.envs.bandit:ContextualBandit",
                                     vector_entry_point="pyrl.envs.bandit:ContextualBanditVector"),
    "pyrl/PointReach-v0": dict(entry_point="pyrl.envs.goal:PointReach", max_episode_steps=50),
    "pyrl/BitFlip-v0": dict(entry_point="pyrl.envs.goal:BitFlip"),  # truncates itself at n_bits steps
}
for _id, _kwargs in _ENVS.items():
    if _id not in registry:
        register(id=_id, **_kwargs)
