"""pyrl's agents beside Stable-Baselines3's with the same hyperparameters, in one process.

    python -m benchmarks.systems.agents  # PPO CartPole 50k, DDPG+HER 30 epochs, TD3 Pendulum 30k
    python -m benchmarks.systems.agents --quick    # 10k, 10 epochs and 12k (CI)

PPO on CartPole-v1: 8 envs, n_steps 32, batch 256, 20 epochs, gamma 0.98, GAE lambda 0.8, lr 1e-3
and clip 0.2 both annealed linearly, 64-64 tanh actor and critic (rl-baselines3-zoo's tuning).
DDPG + HER on pyrl/PointReach-v0: `future` k = 4, 64-64 ReLU actor and critic, gamma 0.98, tau
0.05, Adam 1e-3, Gaussian noise 0.2, 10 episodes (500 steps) then 40 updates of batch 256 per
epoch; no random actions, action penalty or target clipping, which SB3's DDPG does not have.
TD3 on Pendulum-v1: pyrl's DDPG with n_critics=2, policy_delay=2, target_noise=0.2 (clip 0.5)
beside SB3's TD3 (whose defaults those are), rl-baselines3-zoo's Pendulum settings: 400-300
ReLU, gamma 0.98, 10k random steps first, then one update of batch 256 per step, Gaussian
noise 0.1, Adam 1e-3.

Columns: wall-clock of learn(), environment steps per second, seconds inside the replay calls
(DDPG: add and sample) or the returns call (PPO: GAE), and the score after training (mean return
of 20 deterministic episodes; success rate over 100 for PointReach). Speedup is SB3 wall-clock /
pyrl wall-clock. Both run with one torch thread.
"""

import sys
import time

import numpy as np
import torch

from ..common import is_quick, run

import pyrl.envs  # noqa: F401  (registers pyrl/PointReach-v0)
from pyrl.agents import DDPG, PPO, evaluate

GAMMA_PPO, LAMBDA_PPO = 0.98, 0.8


def timed(obj, name: str, totals: dict, key: str) -> None:
    """Wraps obj.name so that its calls add their seconds to totals[key]."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

    setattr(obj, name, wrapper)


def seconds(learn, steps: int) -> float:
    """Wall-clock of learn(steps)."""
    start = time.perf_counter()
    learn(steps)
    return time.perf_counter() - start


class SB3Predictor:
    def __init__(self, model):
        self.model = model

    def predict(self, obs, deterministic=True):
        return self.model.predict(obs, deterministic=deterministic)[0]


def ppo_pyrl(steps: int, seed: int) -> dict:
    agent = PPO(
        "CartPole-v1",
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=GAMMA_PPO,
        gae_lambda=LAMBDA_PPO,
        lr=1e-3,
        anneal=True,
        seed=seed,
    )
    wall = seconds(agent.learn, steps)
    return dict(
        seconds=wall,
        steps=agent.steps,
        inside=agent.timers.get("returns", 0.0),
        score=agent.evaluate(20, seed=1_000_000)["return"],
    )


def ppo_sb3(steps: int, seed: int) -> dict:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = SB3PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=GAMMA_PPO,
        gae_lambda=LAMBDA_PPO,
        learning_rate=lambda f: 1e-3 * f,
        clip_range=lambda f: 0.2 * f,
        ent_coef=0.0,
        seed=seed,
        device="cpu",
    )
    totals: dict = {}
    timed(model.rollout_buffer, "compute_returns_and_advantage", totals, "returns")
    wall = seconds(model.learn, steps)
    score = evaluate(SB3Predictor(model), "CartPole-v1", 20, seed=1_000_000)["return"]
    return dict(
        seconds=wall, steps=model.num_timesteps, inside=totals.get("returns", 0.0), score=score
    )


def sb3_off_policy(model, steps: int, env_id: str, episodes: int, score: str) -> dict:
    """Wall-clock of an SB3 off-policy model's learn(steps), its seconds in the replay buffer's
    add and sample, and its score after training."""
    totals: dict = {}
    timed(model.replay_buffer, "add", totals, "replay")
    timed(model.replay_buffer, "sample", totals, "replay")
    wall = seconds(model.learn, steps)
    result = evaluate(SB3Predictor(model), env_id, episodes, seed=1_000_000)[score]
    return dict(
        seconds=wall, steps=model.num_timesteps, inside=totals.get("replay", 0.0), score=result
    )


DDPG_SETTINGS = dict(
    her_k=4,
    hidden=(64, 64),
    gamma=0.98,
    tau=0.05,
    batch_size=256,
    actor_lr=1e-3,
    critic_lr=1e-3,
    noise_sigma=0.2,
    train_every=500,
    gradient_steps=40,
)


def ddpg_pyrl(steps: int, seed: int) -> dict:
    agent = DDPG(
        "pyrl/PointReach-v0",
        her_strategy="future",
        learning_starts=0,
        buffer_size=1_000_000,
        log_every=500,
        seed=seed,
        **DDPG_SETTINGS,
    )
    wall = seconds(agent.learn, steps)
    return dict(
        seconds=wall,
        steps=agent.steps,
        inside=agent.timers.get("replay", 0.0),
        score=agent.evaluate(100, seed=1_000_000)["success"],
    )


def ddpg_sb3(steps: int, seed: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DDPG as SB3DDPG
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    s = DDPG_SETTINGS
    env = gym.make("pyrl/PointReach-v0")
    model = SB3DDPG(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=s["her_k"], goal_selection_strategy="future"),
        learning_starts=0,
        buffer_size=1_000_000,
        batch_size=s["batch_size"],
        tau=s["tau"],
        gamma=s["gamma"],
        learning_rate=s["actor_lr"],
        train_freq=(s["train_every"], "step"),
        gradient_steps=s["gradient_steps"],
        action_noise=NormalActionNoise(np.zeros(2), np.full(2, s["noise_sigma"])),
        policy_kwargs=dict(net_arch=list(s["hidden"])),
        seed=seed,
        device="cpu",
    )
    return sb3_off_policy(model, steps, "pyrl/PointReach-v0", 100, "success")


TD3_SETTINGS = dict(
    gamma=0.98,
    buffer_size=200_000,
    learning_starts=10_000,
    hidden=(400, 300),
    noise_sigma=0.1,
    actor_lr=1e-3,
    critic_lr=1e-3,
    batch_size=256,
)


def td3_pyrl(steps: int, seed: int) -> dict:
    agent = DDPG(
        "Pendulum-v1",
        n_critics=2,
        policy_delay=2,
        target_noise=0.2,
        target_noise_clip=0.5,
        log_every=5000,
        seed=seed,
        **TD3_SETTINGS,
    )
    wall = seconds(agent.learn, steps)
    return dict(
        seconds=wall,
        steps=agent.steps,
        inside=agent.timers.get("replay", 0.0),
        score=agent.evaluate(20, seed=1_000_000)["return"],
    )


def td3_sb3(steps: int, seed: int) -> dict:
    from stable_baselines3 import TD3 as SB3TD3
    from stable_baselines3.common.noise import NormalActionNoise

    s = TD3_SETTINGS
    model = SB3TD3(
        "MlpPolicy",
        "Pendulum-v1",
        gamma=s["gamma"],
        buffer_size=s["buffer_size"],
        learning_starts=s["learning_starts"],
        learning_rate=s["actor_lr"],
        batch_size=s["batch_size"],
        action_noise=NormalActionNoise(np.zeros(1), np.full(1, s["noise_sigma"])),
        policy_kwargs=dict(net_arch=list(s["hidden"])),
        seed=seed,
        device="cpu",
    )
    return sb3_off_policy(model, steps, "Pendulum-v1", 20, "return")


def main() -> int:
    quick = is_quick(__doc__)
    torch.set_num_threads(1)
    ppo_steps, ddpg_steps, td3_steps = (
        (10_000, 5_000, 12_000) if quick else (50_000, 15_000, 30_000)
    )
    print(f"torch {torch.__version__}, 1 thread, {'quick' if quick else 'full'} run; seed 0")
    header = (
        f"{'task':30} {'library':18} {'wall s':>8} {'steps/s':>9} {'in replay/returns s':>20} "
        f"{'score':>8} {'speedup':>8}"
    )
    print(header)
    rows = [
        ("PPO CartPole-v1 %dk" % (ppo_steps // 1000), "return", ppo_pyrl, ppo_sb3, ppo_steps),
        (
            "DDPG+HER PointReach %d ep." % (ddpg_steps // 500),
            "success",
            ddpg_pyrl,
            ddpg_sb3,
            ddpg_steps,
        ),
        ("TD3 Pendulum-v1 %dk" % (td3_steps // 1000), "return", td3_pyrl, td3_sb3, td3_steps),
    ]
    for task, _, ours, theirs, steps in rows:
        results = {"pyrl": ours(steps, 0)}
        try:
            results["Stable-Baselines3"] = theirs(steps, 0)
        except ImportError as err:
            print(f"{task:30} Stable-Baselines3 skipped: {err}")
        for library, r in results.items():
            speedup = (
                results["Stable-Baselines3"]["seconds"] / r["seconds"]
                if library == "pyrl" and "Stable-Baselines3" in results
                else None
            )
            print(
                f"{task:30} {library:18} {r['seconds']:8.1f} {r['steps'] / r['seconds']:9.0f} "
                f"{r['inside']:20.2f} {r['score']:8.3g} {f'{speedup:.2f}x' if speedup else '':>8}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "agents"))
