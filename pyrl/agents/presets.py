"""Hyperparameters that work out of the box for known (algorithm, env) pairs, tuned as
rl-baselines3-zoo's where it has them; ``pyrl train`` starts from these, then ``--set`` overrides::

    from pyrl.agents import DDPG, presets
    agent = DDPG("pyrl/PointReach-v0", **presets.get("ddpg", "pyrl/PointReach-v0"), seed=1)

``env_kwargs`` in a preset goes to ``gym.make``; every other key is an agent hyperparameter.
"""

import copy
from types import MappingProxyType
from typing import Mapping

PRESETS: dict[tuple[str, str], dict] = {
    # The bandit at any size (env_kwargs contexts/arms): a tabular softmax on the one-hot context
    # (zero init), Adam, per-context baseline with advantages normalized per batch, so the step
    # and the entropy bonus mean the same at 10 or 100 arms; the bonus fades over 2M pulls.
    # Greedy accuracy 1.0 on seeds 0-9 at 10 arms (512k pulls); 0.99-1.0 on seeds 0-4 at 100.
    ("reinforce", "pyrl/ContextualBandit-v0"): dict(
        n_envs=256,
        n_steps=1,
        policy="linear",
        optimizer="adam",
        lr=0.01,
        baseline="state",
        normalize_advantage=True,
        ent_coef=0.1,
        ent_coef_final=0.0,
        ent_anneal_updates=8000,
    ),
    ("ppo", "CartPole-v1"): dict(
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gae_lambda=0.8,
        gamma=0.98,
        lr=1e-3,
        anneal=True,
    ),
    ("ppo", "Pendulum-v1"): dict(
        n_envs=4,
        n_steps=1024,
        batch_size=64,
        n_epochs=10,
        gae_lambda=0.95,
        gamma=0.9,
        lr=1e-3,
        normalize_obs=True,
        normalize_reward=True,
    ),
    ("ddpg", "Pendulum-v1"): dict(
        gamma=0.98, buffer_size=200_000, learning_starts=10_000, hidden=(400, 300), noise_sigma=0.1
    ),
    ("ddpg", "pyrl/PointReach-v0"): dict(  # SPEC 8.2 H1: 10 episodes then 40 updates per epoch
        her_strategy="future",
        her_k=4,
        hidden=(64, 64),
        gamma=0.98,
        tau=0.05,
        batch_size=256,
        learning_starts=0,
        train_every=500,
        gradient_steps=40,
        action_l2=1.0,
        clip_target="goal",
        random_eps=0.2,
        noise_sigma=0.2,
        log_every=500,
        eval_every=500,
        eval_episodes=100,
    ),
    ("ddpg", "pyrl/BitFlip-v0"): dict(
        env_kwargs={"continuous": True},
        her_strategy="future",
        her_k=4,
        hidden=(256, 256),
        gamma=0.98,
        tau=0.05,
        learning_starts=0,
        train_every=100,
        gradient_steps=40,
        action_l2=1.0,
        clip_target="goal",
        random_eps=0.2,
        noise_sigma=0.2,
    ),
    # gymnasium-robotics (the robotics extra): HER, normalized inputs. FetchReach follows
    # rl-baselines3-zoo (1.0 deterministic success at 10k steps, seeds 0-1); the harder three
    # follow the HER paper's recipe (random actions, action penalty, clipped targets), unmeasured.
    ("ddpg", "FetchReach-v4"): dict(
        her_strategy="future",
        her_k=4,
        normalize_obs=True,
        gamma=0.95,
        batch_size=256,
        hidden=(64, 64),
        tau=0.05,
        noise_sigma=0.2,
        learning_starts=1000,
    ),
    **{
        ("ddpg", env_id): dict(
            her_strategy="future",
            her_k=4,
            normalize_obs=True,
            gamma=0.98,
            batch_size=256,
            hidden=(256, 256, 256),
            tau=0.05,
            noise_sigma=0.2,
            random_eps=0.3,
            action_l2=1.0,
            clip_target="goal",
            learning_starts=1000,
            train_every=50,
            gradient_steps=20,
        )
        for env_id in ("FetchPush-v4", "FetchSlide-v4", "FetchPickAndPlace-v4")
    },
    ("ddpg", "MountainCarContinuous-v0"): dict(  # rl-zoo: OU noise 0.5 finds the hilltop
        noise="ou", noise_sigma=0.5, hidden=(400, 300), buffer_size=200_000, learning_starts=1000
    ),
    ("ppo", "MountainCarContinuous-v0"): dict(  # rl-zoo's, without its gSDE exploration
        n_envs=4,
        n_steps=512,
        batch_size=256,
        n_epochs=10,
        gamma=0.9999,
        gae_lambda=0.9,
        lr=7.77e-5,
        ent_coef=0.00429,
        clip_range=0.1,
        max_grad_norm=5.0,
        vf_coef=0.19,
        normalize_obs=True,
        normalize_reward=True,
    ),
    ("ppo", "pyrl/PointReach-v0"): dict(
        n_envs=10, n_steps=50, batch_size=250, n_epochs=10, gamma=0.98
    ),
    # Recurrent agents on the velocity-masked tasks (benchmarks/learning/recurrent.py);
    # PPO's are rl-baselines3-zoo's RecurrentPPO settings for CartPoleNoVel, with a GRU.
    ("ppo", "pyrl/CartPoleNoVel-v0"): dict(
        recurrent=True,
        rnn_hidden=64,
        hidden=(64,),
        activation="relu",
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gae_lambda=0.8,
        gamma=0.98,
        lr=1e-3,
        anneal=True,
    ),
    ("ddpg", "pyrl/PendulumNoVel-v0"): dict(
        recurrent=True,
        rnn_hidden=64,
        seq_len=16,
        burn_in=8,
        recompute_every=2000,
        hidden=(128, 128),
        batch_size=64,
        gamma=0.98,
        n_critics=2,
        policy_delay=2,
        target_noise=0.2,
        noise_sigma=0.1,
        learning_starts=5000,
        buffer_size=200_000,
    ),
    # Coop: 10 arms, 1 DDPG + 9 PPO (COOP_v1's 1:10); DDPG takes as many updates per env step as
    # alone, its networks shaped like PPO's so the syncs can copy the hidden layers.
    ("coop", "pyrl/PointReach-v0"): dict(
        n_envs=10,
        hidden=(64, 64),
        activation="relu",
        eval_every=1000,
        eval_episodes=50,
        ppo=dict(n_steps=50, batch_size=250, n_epochs=10, gamma=0.98),
        ddpg=dict(
            her_strategy="future",
            her_k=4,
            gamma=0.98,
            tau=0.05,
            batch_size=256,
            learning_starts=0,
            train_every=500,
            gradient_steps=40,
            action_l2=1.0,
            clip_target="goal",
            random_eps=0.2,
            noise_sigma=0.2,
        ),
    ),
    ("coop", "Pendulum-v1"): dict(
        n_envs=10,
        hidden=(64, 64),
        activation="relu",
        eval_every=2000,
        eval_episodes=10,
        ppo=dict(
            n_steps=200, batch_size=200, n_epochs=10, gamma=0.9, lr=1e-3, normalize_reward=True
        ),
        ddpg=dict(
            gamma=0.98,
            buffer_size=200_000,
            learning_starts=1000,
            train_every=10,
            gradient_steps=10,
            noise_sigma=0.1,
        ),
    ),
    ("coop", "MountainCarContinuous-v0"): dict(
        n_envs=10,
        hidden=(64, 64),
        activation="relu",
        eval_every=5000,
        eval_episodes=5,
        ppo=dict(
            n_steps=200, batch_size=256, n_epochs=10, gamma=0.99, lr=3e-4, normalize_reward=True
        ),
        ddpg=dict(
            noise="ou",
            noise_sigma=0.5,
            buffer_size=200_000,
            learning_starts=1000,
            train_every=10,
            gradient_steps=10,
        ),
    ),
}


def get(algo: str, env_id: str) -> dict:
    """A fresh copy of the preset for ``(algo, env_id)`` (``{}`` where there is none)."""
    return copy.deepcopy(PRESETS.get((algo.lower(), env_id), {}))


def names() -> list[tuple[str, str]]:
    """Every ``(algo, env_id)`` with a preset, sorted."""
    return sorted(PRESETS)


def view() -> Mapping[tuple[str, str], Mapping]:
    """A read-only view of all presets, keyed ``(algo, env_id)``."""
    return MappingProxyType({key: MappingProxyType(value) for key, value in PRESETS.items()})
