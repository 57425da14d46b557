"""Learning acceptance over several seeds (SPEC 8.1, 8.2 and issue 5's bars), one table.

    python -m benchmarks.learning.agents                 # everything (~20 min on one core)
    python -m benchmarks.learning.agents --only ppo-cartpole pointreach-H1 --seeds 0 1 2
    python -m benchmarks.learning.agents --out runs/learning     # also CSVs, and one PNG per task

Each row is one task: the bar it must clear, the per-seed scores, and whether every seed (or
the mean, where the bar is on the mean) clears it. CartPole and Pendulum scores are the mean
return of 20 deterministic evaluation episodes after training; "best" is the best periodic
evaluation (10 episodes) on the way.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pyrl.agents import DDPG, PPO, REINFORCE, Agent, evaluate
from pyrl.agents.presets import PRESETS

from ..common import run


def bandit_accuracy(agent) -> tuple[float, float]:
    probs = agent.probabilities(
        np.eye(10, dtype=np.float32)
        if agent.obs_dim == 10
        else np.arange(10, dtype=np.float32)[:, None]
    )
    greedy = probs.argmax(1)
    return float((greedy == np.arange(10)).mean()), float(
        (np.abs(greedy - np.arange(10)) <= 1).mean()
    )


def reinforce_A1(seed):
    agent = REINFORCE(
        "pyrl/ContextualBandit-v0",
        n_envs=256,
        n_steps=1,
        policy="linear",
        optimizer="sgd",
        lr=10.0,
        baseline="state",
        seed=seed,
    )
    agent.learn(500 * 256)
    return agent, bandit_accuracy(agent)[0]


def reinforce_A2(seed):  # SPEC 8.1's fixed function-approximation setup
    agent = REINFORCE(
        "pyrl/ContextualBandit-v0",
        n_envs=256,
        n_steps=1,
        policy="mlp",
        hidden=(128,),
        activation="relu",
        baseline="state",
        lr=1e-3,
        ent_coef=0.1,
        ent_coef_final=0.0,
        ent_anneal_updates=2000,
        seed=seed,
    )
    agent.learn(2000 * 256)
    return agent, bandit_accuracy(agent)[0]


def bandit_preset(contexts: int, pulls: int):
    """The REINFORCE preset with only env_kwargs changed (issue 14: it scales with the bandit)."""

    def run(seed):
        agent = REINFORCE(
            "pyrl/ContextualBandit-v0",
            env_kwargs={"contexts": contexts, "arms": contexts},
            **PRESETS[("reinforce", "pyrl/ContextualBandit-v0")],
            seed=seed,
        )
        agent.learn(pulls)
        greedy = agent.probabilities(np.eye(contexts, dtype=np.float32)).argmax(1)
        return agent, float((greedy == np.arange(contexts)).mean())

    return run


def reinforce_A3(seed):  # the forum's configuration with its bugs fixed but its choices kept
    agent = REINFORCE(
        "pyrl/ContextualBandit-v0",
        env_kwargs={"observation": "scalar"},
        n_envs=50,
        n_steps=1,
        policy="mlp",
        hidden=(128,),
        activation="relu",
        baseline="none",
        lr=1e-3,
        ent_coef=1e-4,
        seed=seed,
    )
    agent.learn(10_001 * 50)
    return agent, bandit_accuracy(agent)[0]


def on_env(cls, algo, env_id, steps, **extra):
    def run(seed):
        agent = cls(
            env_id,
            **{**PRESETS[(algo, env_id)], "eval_every": steps // 10, "eval_episodes": 10, **extra},
            seed=seed,
        )
        agent.learn(steps)
        return agent, agent.evaluate(20, seed=1_000_000 + seed)["return"]

    return run


TD3 = dict(n_critics=2, policy_delay=2, target_noise=0.2, target_noise_clip=0.5)


class SB3Run:
    """A Stable-Baselines3 model trained in chunks, evaluated between them with pyrl's evaluate,
    so its history reads like an agent's (for the table, the CSV and the curve)."""

    def __init__(self, model, env_id: str):
        self.model, self.env_id, self.history = model, env_id, []

    def predict(self, obs, deterministic=True):
        return self.model.predict(obs, deterministic=deterministic)[0]

    def learn(self, steps: int, every: int) -> None:
        from pyrl.agents import evaluate

        while self.model.num_timesteps < steps:
            self.model.learn(every, reset_num_timesteps=False)
            result = evaluate(self, self.env_id, 10, seed=10_000 + self.model.num_timesteps)
            self.history.append({"step": self.model.num_timesteps, "eval_return": result["return"]})

    def write_csv(self, path) -> None:
        Agent.write_csv(self, path)


def sb3_td3_pendulum(seed):
    """SB3's TD3 with the settings of pyrl's td3-pendulum row (rl-baselines3-zoo's Pendulum)."""
    from stable_baselines3 import TD3 as SB3TD3
    from stable_baselines3.common.noise import NormalActionNoise

    p = PRESETS[("ddpg", "Pendulum-v1")]
    model = SB3TD3(
        "MlpPolicy",
        "Pendulum-v1",
        gamma=p["gamma"],
        buffer_size=p["buffer_size"],
        learning_starts=p["learning_starts"],
        learning_rate=1e-3,
        batch_size=256,
        action_noise=NormalActionNoise(np.zeros(1), np.full(1, p["noise_sigma"])),
        policy_kwargs=dict(net_arch=list(p["hidden"])),
        seed=seed,
        device="cpu",
    )
    run = SB3Run(model, "Pendulum-v1")
    run.learn(30_000, every=3000)
    return run, evaluate(run, "Pendulum-v1", 20, seed=1_000_000 + seed)["return"]


def point_reach(epochs: int = 30, **variant):
    def run(seed):
        agent = DDPG(
            "pyrl/PointReach-v0",
            **{**PRESETS[("ddpg", "pyrl/PointReach-v0")], **variant},
            seed=seed,
        )
        agent.learn(epochs * 500)
        return agent, agent.history[-1]["eval_success"]

    return run


def plot_seeds(histories: list, seeds: list, path: Path, title: str) -> None:
    """One line per seed: evaluation success, else evaluation return, else training return."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return

    def logged(key):
        return any(row.get(key, float("nan")) == row.get(key) for row in histories[0])

    key = next(k for k in ("eval_success", "eval_return", "return") if logged(k))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for seed, history in zip(seeds, histories):
        points = [(row["step"], row[key]) for row in history if key in row and row[key] == row[key]]
        ax.plot(*zip(*points), label=f"seed {seed}", linewidth=1.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# name: (run(seed) -> (agent, score), bar text, check(scores) -> bool, default seeds)
TASKS = {
    "reinforce-A1": (
        reinforce_A1,
        "greedy acc = 1.0, all seeds",
        lambda s: min(s) == 1.0,
        range(5),
    ),
    "reinforce-A2": (
        reinforce_A2,
        "mean >= 0.85, each >= 0.7",
        lambda s: np.mean(s) >= 0.85 and min(s) >= 0.7,
        range(10),
    ),
    "bandit-10-preset": (
        bandit_preset(10, 2000 * 256),
        "greedy acc >= 0.9, all seeds (preset)",
        lambda s: min(s) >= 0.9,
        range(10),
    ),
    "bandit-100-preset": (
        bandit_preset(100, 2_000_000),
        ">= 0.9 in 2M pulls, all seeds (preset)",
        lambda s: min(s) >= 0.9,
        range(5),
    ),
    "reinforce-A3 (neg.)": (
        reinforce_A3,
        "<= 0.7 (negative control)",
        lambda s: max(s) <= 0.7,
        range(3),
    ),
    "ppo-cartpole": (
        on_env(PPO, "ppo", "CartPole-v1", 100_000),
        ">= 475 in 100k, all seeds",
        lambda s: min(s) >= 475,
        range(3),
    ),
    "ppo-pendulum": (
        on_env(PPO, "ppo", "Pendulum-v1", 200_000),
        ">= -300 in 200k",
        lambda s: min(s) >= -300,
        range(3),
    ),
    "ddpg-pendulum": (
        on_env(DDPG, "ddpg", "Pendulum-v1", 30_000, log_every=1000),
        ">= -200 in 30k",
        lambda s: min(s) >= -200,
        range(3),
    ),
    "td3-pendulum": (
        on_env(DDPG, "ddpg", "Pendulum-v1", 30_000, log_every=1000, **TD3),
        ">= -200 in 30k (TD3 options)",
        lambda s: min(s) >= -200,
        range(3),
    ),
    "sb3-td3-pendulum": (
        sb3_td3_pendulum,
        "reference: SB3's TD3, same settings",
        lambda s: True,
        range(3),
    ),
    "pointreach-H1": (point_reach(), ">= 0.9 at epoch 30", lambda s: min(s) >= 0.9, range(3)),
    "pointreach-H2": (
        point_reach(nstep=5, nstep_floating=True),
        ">= 0.9 (HER + floating 5)",
        lambda s: min(s) >= 0.9,
        range(3),
    ),
    "pointreach-H2-recompute": (
        point_reach(nstep=5, nstep_floating=True, her_nstep="recompute"),
        ">= 0.9 (H2, HER windows recomputed)",
        lambda s: min(s) >= 0.9,
        range(3),
    ),
    "pointreach-H3": (
        point_reach(her_k=1, nstep=5, nstep_floating=True),
        ">= 0.9 (ratio .5 + floating 5)",
        lambda s: min(s) >= 0.9,
        range(3),
    ),
    "pointreach-H4": (
        point_reach(her_strategy="episode"),
        ">= 0.7 (episode)",
        lambda s: min(s) >= 0.7,
        range(6),
    ),
    "pointreach-H4-45": (
        point_reach(45, her_strategy="episode"),
        ">= 0.7 at epoch 45 (episode)",
        lambda s: min(s) >= 0.7,
        range(6),
    ),
    "pointreach-H5": (
        point_reach(her_strategy=None),
        "<= 0.1 (no HER)",
        lambda s: max(s) <= 0.1,
        range(3),
    ),
    "pointreach-final": (
        point_reach(her_strategy="final"),
        "report only",
        lambda s: True,
        range(3),
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="*", choices=list(TASKS), help="tasks to run (default: all)"
    )
    parser.add_argument("--seeds", nargs="*", type=int, help="seeds (default: each task's)")
    parser.add_argument("--out", help="directory for per-run CSVs and per-task PNG curves")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; scores per seed")
    print(f"{'task':22} {'bar':34} {'pass':5} {'min':>8} {'mean':>8}  seconds/seed  scores")
    failed = []
    for name in opts.only or TASKS:
        run, bar, check, seeds = TASKS[name]
        scores, seconds, histories = [], [], []
        seeds = list(opts.seeds if opts.seeds is not None else seeds)
        for seed in seeds:
            start = time.perf_counter()
            agent, score = run(seed)
            seconds.append(time.perf_counter() - start)
            scores.append(float(score))
            histories.append(agent.history)
            if opts.out:
                Path(opts.out).mkdir(parents=True, exist_ok=True)
                agent.write_csv(Path(opts.out) / f"{name.split()[0]}-seed{seed}.csv")
        if opts.out:
            plot_seeds(
                histories, seeds, Path(opts.out) / f"{name.split()[0]}.png", f"{name}: {bar}"
            )
        ok = check(scores)
        if not ok:
            failed.append(name)
        shown = " ".join(f"{s:.3g}" for s in scores)
        print(
            f"{name:22} {bar:34} {'yes' if ok else 'NO':5} {min(scores):8.3g} "
            f"{np.mean(scores):8.3g}  "
            f"{np.median(seconds):12.1f}  {shown}",
            flush=True,
        )
    if failed:
        print(f"below the bar: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "learning"))
