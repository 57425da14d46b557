"""Cooperative PPO+DDPG against PPO alone and DDPG alone, at equal environment steps (issue 13).

    python -m benchmarks.learning.coop                      # 4 envs x 3 methods x 5 seeds (~1 h)
    python -m benchmarks.learning.coop --quick              # PointReach, 1 seed, short: it works
    python -m benchmarks.learning.coop --only pendulum --seeds 0 1

Every run evaluates deterministically every ``eval_every`` steps (Coop: the DDPG actor, what
its ``predict`` uses; PPO's column is kept too). Per env the table gives, per method, how many
seeds reached the threshold, the median steps to reach it (over the seeds that did), and the
final evaluation's mean and spread. All methods use (64, 64) networks (the presets' DDPG
networks are bigger; the 2-core machine and the Coop's syncs want one size). Each run's
result is a JSON file under ``--out``, so an interrupted table resumes where it stopped; the
figures go to ``docs/curves/coop-<env>.png``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pyrl.agents import ALGORITHMS, presets

from .. import common
from ..common import plot_mean_std

HIDDEN = (64, 64)
# name: env id, env kwargs, steps, evaluation metric, threshold, per-method preset changes
ENVS = {
    "pendulum": dict(
        env="Pendulum-v1",
        kwargs={},
        steps=30_000,
        metric="return",
        threshold=-200.0,
        eval_every=2000,
        eval_episodes=10,
        changes={"ddpg": dict(learning_starts=1000)},
    ),
    "mountaincar": dict(
        env="MountainCarContinuous-v0",
        kwargs={},
        steps=50_000,
        metric="return",
        threshold=90.0,
        eval_every=5000,
        eval_episodes=5,
        changes={},
    ),
    "pointreach-her": dict(
        env="pyrl/PointReach-v0",
        kwargs={},
        steps=20_000,
        metric="success",
        threshold=0.9,
        eval_every=1000,
        eval_episodes=20,
        changes={},
    ),
    "pointreach-dense": dict(
        env="pyrl/PointReach-v0",
        kwargs={"reward_type": "dense"},
        steps=20_000,
        metric="success",
        threshold=0.9,
        eval_every=1000,
        eval_episodes=20,
        changes={
            "ddpg": dict(her_strategy=None, clip_target=None),
            "coop": dict(her_strategy=None, clip_target=None),
        },
    ),
}
METHODS = ("coop", "coop-nosync", "ppo", "ddpg")  # coop-nosync: the same Coop, schedule "none"


def settings(method: str, spec: dict, seed: int) -> dict:
    algo = method.split("-")[0]
    out = presets.get(algo, spec["env"])
    for key in ("eval_every", "eval_episodes", "log_every"):
        out.pop(key, None)
    changes = spec["changes"].get(algo, {})
    if algo == "coop":
        out["ddpg"] = {**out["ddpg"], **changes}
        out["hidden"] = HIDDEN
        if method == "coop-nosync":
            out.update(schedule="none", sync_at_start=False)
    else:
        out.update(changes, hidden=HIDDEN)
    out.update(seed=seed, eval_every=spec["eval_every"], eval_episodes=spec["eval_episodes"])
    if method == "ddpg":
        out["log_every"] = spec["eval_every"]
    return out


def run(name: str, method: str, seed: int, steps: int, out_dir: Path) -> dict:
    path = out_dir / f"{name}-{method}-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    spec = ENVS[name]
    start = time.perf_counter()
    agent = ALGORITHMS[method.split("-")[0]](
        spec["env"], env_kwargs=spec["kwargs"], **settings(method, spec, seed)
    )
    agent.learn(steps)
    key = f"eval_{spec['metric']}"
    curve = [(row["step"], row[key]) for row in agent.history if key in row]
    result = {
        "env": name,
        "method": method,
        "seed": seed,
        "steps": steps,
        "curve": curve,
        "seconds": time.perf_counter() - start,
    }
    if method.startswith("coop"):
        result["ppo_curve"] = [
            (row["step"], row[f"ppo_{key}"]) for row in agent.history if key in row
        ]
        result["syncs"] = agent.syncs
    path.write_text(json.dumps(result))
    return result


def steps_to(curve, threshold: float):
    return next((step for step, value in curve if value >= threshold), None)


def summarize(name: str, results: list[dict]) -> list[str]:
    spec = ENVS[name]
    lines = []
    for method in METHODS:
        runs = [r for r in results if r["method"] == method]
        if not runs:
            continue
        reached = [steps_to(r["curve"], spec["threshold"]) for r in runs]
        hit = [s for s in reached if s is not None]
        final = np.array([r["curve"][-1][1] for r in runs])
        median = f"{int(np.median(hit)):,}" if hit else "-"
        fmt = "{:.2f}" if spec["metric"] == "success" else "{:.0f}"
        lines.append(
            f"| {name} | {method} | {len(hit)}/{len(runs)} | {median} | "
            f"{fmt.format(final.mean())} ± {fmt.format(final.std())} | "
            f"{' '.join(fmt.format(v) for v in final)} |"
        )
    return lines


def plot(name: str, results: list[dict], path: Path) -> None:
    spec = ENVS[name]
    plot_mean_std(
        {m: [r["curve"] for r in results if r["method"] == m] for m in METHODS},
        spec["threshold"],
        f"deterministic evaluation {spec['metric']}",
        f"{spec['env']} {spec['kwargs'] or ''}: Coop vs PPO vs DDPG (mean ± std)",
        path,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(ENVS), default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--out", default="runs/bench-coop")
    parser.add_argument("--curves", default="docs/curves", help="where the PNGs go")
    opts = parser.parse_args()
    quick = opts.quick or bool(os.environ.get("CI"))
    torch.set_num_threads(1)
    names = opts.only or (["pointreach-her"] if quick else list(ENVS))
    seeds = opts.seeds if opts.seeds is not None else ([0] if quick else [0, 1, 2, 3, 4])
    out_dir = Path(opts.out) / ("quick" if quick else "full")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = [
        "| env | method | reached | median steps to reach | final (mean ± std) | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        steps = 3000 if quick else ENVS[name]["steps"]
        results = []
        for seed in seeds:
            for method in METHODS:
                result = run(name, method, seed, steps, out_dir)
                results.append(result)
                print(
                    f"{name} {method} seed {seed}: final {result['curve'][-1][1]:.3g} "
                    f"({result['seconds']:.0f} s)",
                    flush=True,
                )
        table += summarize(name, results)
        if not quick:
            plot(name, results, Path(opts.curves) / f"coop-{name}.png")
    thresholds = ", ".join(f"{n} {ENVS[n]['metric']} >= {ENVS[n]['threshold']:g}" for n in names)
    print(f"\nCoop vs PPO vs DDPG at equal env steps, seeds {seeds}; thresholds: {thresholds}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main, "coop"))
