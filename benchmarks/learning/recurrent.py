"""Recurrent agents on velocity-masked tasks, beside their feed-forward selves (issue 15).

    python -m benchmarks.learning.recurrent            # 2 tasks x methods x 3 seeds (~1.5 h)
    python -m benchmarks.learning.recurrent --quick    # short runs: the script works (CI)
    python -m benchmarks.learning.recurrent --only cartpole --seeds 0

Tasks: recurrent PPO on ``pyrl/CartPoleNoVel-v0`` (cart position and pole angle only) against
feed-forward PPO with the same settings and sb3-contrib's RecurrentPPO (LSTM, rl-zoo's settings;
skipped when sb3-contrib is not installed); recurrent DDPG (TD3 options) on
``pyrl/PendulumNoVel-v0`` (cos and sin of the angle only) against feed-forward DDPG and DDPG
on the last 4 observations stacked. Every run evaluates deterministically every ``eval_every``
steps; the table gives, per method, how many seeds reached the threshold, the median steps to
reach it, the best evaluation and the final one. Each run's result is a JSON file under
``--out`` (an interrupted table resumes where it stopped); the figures go to
``docs/curves/recurrent-<task>.png``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import pyrl.envs  # noqa: F401  (registers the pyrl/ envs)
from pyrl.agents import ALGORITHMS, presets

from .. import common
from ..common import plot_mean_std


def stacked_pendulum():
    """PendulumNoVel with its last 4 observations stacked (zeros before the first): the classic
    feed-forward fix for partial observability."""
    return gym.wrappers.FlattenObservation(
        gym.wrappers.FrameStackObservation(gym.make("pyrl/PendulumNoVel-v0"), 4)
    )


class SB3RecurrentPPO:
    """sb3-contrib's RecurrentPPO (LSTM) with rl-baselines3-zoo's CartPoleNoVel settings, the same
    as pyrl's preset but for the LSTM, evaluated every ``eval_every`` steps with pyrl's
    ``evaluate`` (this class carries its LSTM state as pyrl's recurrent agents do)."""

    def __init__(self, env_id: str, seed: int, eval_every: int, eval_episodes: int, **_):
        from sb3_contrib import RecurrentPPO
        from stable_baselines3.common.env_util import make_vec_env

        def linear(start):
            return lambda remaining: remaining * start

        self.env_id, self.eval_every, self.eval_episodes = env_id, eval_every, eval_episodes
        self.model = RecurrentPPO(
            "MlpLstmPolicy",
            make_vec_env(env_id, n_envs=8, seed=seed),
            n_steps=32,
            batch_size=256,
            gae_lambda=0.8,
            gamma=0.98,
            n_epochs=20,
            ent_coef=0.0,
            learning_rate=linear(1e-3),
            clip_range=linear(0.2),
            seed=seed,
            device="cpu",
            policy_kwargs=dict(
                ortho_init=False,
                activation_fn=torch.nn.ReLU,
                lstm_hidden_size=64,
                enable_critic_lstm=True,
                net_arch=dict(pi=[64], vf=[64]),
            ),
        )
        self.size = 64
        self.history = []

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, 2 * self.size), np.float32)

    def predict(self, obs, deterministic=True, state=None):
        h, c = state[None, :, : self.size], state[None, :, self.size :]
        starts = np.zeros(len(obs), dtype=bool)
        action, (h, c) = self.model.predict(
            obs, state=(h, c), episode_start=starts, deterministic=deterministic
        )
        return action, np.concatenate([h[0], c[0]], 1)

    def learn(self, steps: int) -> None:
        from stable_baselines3.common.callbacks import BaseCallback

        from pyrl.agents import evaluate

        run = self

        class Evaluations(BaseCallback):
            def _on_step(self) -> bool:
                done = self.num_timesteps // run.eval_every
                if done > len(run.history):
                    result = evaluate(
                        run, run.env_id, run.eval_episodes, seed=10_000 + self.num_timesteps
                    )
                    run.history.append(
                        {"step": self.num_timesteps, "eval_return": result["return"]}
                    )
                return True

        self.model.learn(steps, callback=Evaluations())


TASKS = {
    "cartpole": dict(
        env="pyrl/CartPoleNoVel-v0",
        algo="ppo",
        steps=200_000,
        threshold=475.0,
        eval_every=10_000,
        eval_episodes=10,
        quick_steps=5_000,
        methods={
            "ppo-rnn": {},
            "ppo": dict(recurrent=False),
            "sb3-contrib-rppo": dict(agent=SB3RecurrentPPO),
        },
    ),
    "pendulum": dict(
        env="pyrl/PendulumNoVel-v0",
        algo="ddpg",
        steps=100_000,
        threshold=-300.0,
        eval_every=5_000,
        eval_episodes=10,
        quick_steps=1_000,
        methods={
            "ddpg-rnn": {},
            "ddpg": dict(recurrent=False),
            "ddpg-stack4": dict(recurrent=False, env=stacked_pendulum),
        },
    ),
}


def run(name: str, method: str, seed: int, steps: int, out_dir: Path) -> dict:
    path = out_dir / f"{name}-{method}-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    task = TASKS[name]
    changes = dict(task["methods"][method])
    env = changes.pop("env", task["env"])
    quick = steps < task["steps"]
    settings = {
        **presets.get(task["algo"], task["env"]),
        **{k: v for k, v in changes.items() if k != "agent"},
        "seed": seed,
        "eval_every": steps if quick else task["eval_every"],
        "eval_episodes": 2 if quick else task["eval_episodes"],
    }
    if quick and task["algo"] == "ddpg":
        settings["learning_starts"] = steps // 2
    if task["algo"] == "ddpg" and not settings.get("recurrent", False):
        for key in ("seq_len", "burn_in", "recompute_every", "encoder_freeze", "rnn_hidden"):
            settings.pop(key, None)
    start = time.perf_counter()
    try:
        agent = changes.pop("agent", ALGORITHMS[task["algo"]])(env, **settings)
    except ImportError as err:
        print(f"skipped {method}: {err}")
        return None
    agent.learn(steps)
    curve = [(row["step"], row["eval_return"]) for row in agent.history if "eval_return" in row]
    result = {
        "task": name,
        "method": method,
        "seed": seed,
        "steps": steps,
        "curve": curve,
        "seconds": time.perf_counter() - start,
    }
    path.write_text(json.dumps(result))
    return result


def summarize(name: str, results: list[dict]) -> list[str]:
    task = TASKS[name]
    lines = []
    for method in task["methods"]:
        runs = [r for r in results if r["method"] == method]
        if not runs:
            continue
        reached = [next((s for s, v in r["curve"] if v >= task["threshold"]), None) for r in runs]
        hit = [s for s in reached if s is not None]
        best = np.array([max(v for _, v in r["curve"]) for r in runs])
        final = np.array([r["curve"][-1][1] for r in runs])
        median = f"{int(np.median(hit)):,}" if hit else "-"
        minutes = np.mean([r["seconds"] for r in runs]) / 60
        lines.append(
            f"| {name} | {method} | {len(hit)}/{len(runs)} | {median} | "
            f"{' '.join(f'{v:.0f}' for v in best)} | {final.mean():.0f} ± {final.std():.0f} "
            f"({' '.join(f'{v:.0f}' for v in final)}) | {minutes:.1f} |"
        )
    return lines


def plot(name: str, results: list[dict], path: Path) -> None:
    task = TASKS[name]
    plot_mean_std(
        {m: [r["curve"] for r in results if r["method"] == m] for m in task["methods"]},
        task["threshold"],
        "deterministic evaluation return",
        f"{task['env']}: recurrent vs feed-forward (mean ± std)",
        path,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(TASKS), default=None)
    parser.add_argument("--methods", nargs="*", default=None, help="a subset of the methods")
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--out", default="runs/bench-recurrent")
    parser.add_argument("--curves", default="docs/curves", help="where the PNGs go")
    opts = parser.parse_args()
    quick = opts.quick or bool(os.environ.get("CI"))
    torch.set_num_threads(1)
    names = opts.only or list(TASKS)
    seeds = opts.seeds if opts.seeds is not None else ([0] if quick else [0, 1, 2])
    out_dir = Path(opts.out) / ("quick" if quick else "full")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = [
        "| task | method | reached | median steps to reach | best per seed "
        "| final (mean ± std, per seed) | minutes per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        task = TASKS[name]
        steps = task["quick_steps"] if quick else task["steps"]
        results = []
        for seed in seeds:
            for method in task["methods"]:
                if opts.methods and method not in opts.methods:
                    continue
                result = run(name, method, seed, steps, out_dir)
                if result is None:
                    continue
                results.append(result)
                print(
                    f"{name} {method} seed {seed}: final {result['curve'][-1][1]:.0f} "
                    f"({result['seconds']:.0f} s)",
                    flush=True,
                )
        table += summarize(name, results)
        if not quick and results:
            plot(name, results, Path(opts.curves) / f"recurrent-{name}.png")
    thresholds = ", ".join(f"{n} return >= {TASKS[n]['threshold']:g}" for n in names)
    print(f"\nRecurrent vs feed-forward, seeds {seeds}; thresholds: {thresholds}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main, "recurrent_learning"))
