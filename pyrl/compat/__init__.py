"""Drop-ins that put pyrl's compiled replay under other libraries' algorithms.

``pyrl.compat.sb3``: Stable-Baselines3's replay buffer classes (and PER for its DQN and TD3);
it needs ``stable-baselines3`` (``pip install 'pyrl[sb3]'``).
"""
