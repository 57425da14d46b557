"""Agents over pyrl's replay and returns: one file each, read top to bottom.

Every agent is ``Agent(env, **hyperparameters)`` with ``.learn(total_steps, callback=None)``,
``.predict(obs, deterministic=True)``, ``.evaluate(episodes)``, ``.save(path)`` and
``Agent.load(path)``; the hyperparameters are each file's ``Args`` dataclass.
"""

from pyrl.agents.common import Agent, evaluate
from pyrl.agents.coop import Coop
from pyrl.agents.ddpg import DDPG
from pyrl.agents.ddpg_recurrent import RecurrentDDPG
from pyrl.agents.ppo import PPO
from pyrl.agents.ppo_recurrent import RecurrentPPO
from pyrl.agents.reinforce import REINFORCE

ALGORITHMS = {"reinforce": REINFORCE, "ppo": PPO, "ddpg": DDPG, "coop": Coop}

__all__ = [
    "Agent",
    "REINFORCE",
    "PPO",
    "RecurrentPPO",
    "DDPG",
    "RecurrentDDPG",
    "Coop",
    "ALGORITHMS",
    "evaluate",
]
