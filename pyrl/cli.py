"""Command line: ``pyrl train`` runs an agent and writes its learning curve; ``pyrl eval``
evaluates a run (and records videos); ``pyrl plot`` draws runs side by side; ``pyrl bench`` runs
the ops benchmark tables (pyrl beside its peers; shipped with the package).

    pyrl train ppo --env CartPole-v1 --steps 100000 --seed 0 --out runs/ppo-cartpole
    pyrl train ddpg --env pyrl/PointReach-v0 --steps 15000 --set her_strategy=future
    pyrl train ppo --env CartPole-v1 --steps 200000 --out runs/ppo-cartpole --resume
    pyrl train ddpg --env FetchReach-v4 --actors 4 --envs-per-actor 2   # Ray actors (pyrl[ray])
    pyrl eval runs/ppo-cartpole --episodes 10 --video runs/ppo-cartpole/video
    pyrl plot runs/ppo-cartpole-s0 runs/ppo-cartpole-s1 --out cartpole.png
    pyrl bench --quick

``train`` writes to ``--out``: ``progress.csv`` (one row per log point), ``curve.png`` (needs
matplotlib), ``checkpoint.pt`` (every ``--save-every`` steps and at the end), ``config.json``
and ``eval.json`` (a final deterministic evaluation). ``--resume`` continues from the checkpoint
to ``--steps`` in all. Hyperparameters start from a preset for known (algorithm, env) pairs
(``pyrl train --list-presets``; ``pyrl.agents.presets``), tuned as rl-baselines3-zoo's, then
``--set key=value`` overrides any of them.
"""

import argparse
import ast
import dataclasses
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Optional

from pyrl.agents import presets

# The presets live beside the agents (pyrl.agents.presets); this is a read-only view of them.
PRESETS = presets.view()


def parse_value(text: str):
    """``--set`` values: Python literals (``3``, ``1e-3``, ``(64, 64)``, ``None``), true/false,
    a comma list of numbers as a tuple, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_settings(pairs: list[str]) -> dict:
    """``--set`` pairs as keyword arguments; ``learner.key=value`` (Coop's ``ppo.lr=1e-3``)
    sets a key of a dict-valued setting."""
    settings: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SystemExit(f"pyrl train: --set takes key=value, got {pair!r}")
        outer, dot, inner = key.partition(".")
        if dot:
            if not inner or not isinstance(settings.setdefault(outer, {}), dict):
                raise SystemExit(f"pyrl train: --set {pair!r}: {outer} is not a group of settings")
            settings[outer][inner] = parse_value(value)
        else:
            settings[key] = parse_value(value)
    return settings


def merge_settings(preset: dict, overrides: dict) -> dict:
    """The preset with ``overrides`` on top; dict-valued settings merge key by key."""
    out = dict(preset)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def plot_curve(history: list[dict], path: Path, title: str) -> bool:
    """Episode return (and evaluation return / success where logged) against steps."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("return", "training episodes"), ("eval_return", "evaluation")):
        points = [(row["step"], row[key]) for row in history if key in row and row[key] == row[key]]
        if points:
            ax.plot(*zip(*points), label=label, marker="." if key == "eval_return" else None)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return")
    ax.grid(alpha=0.3)
    success = [
        (row["step"], row["eval_success"])
        for row in history
        if row.get("eval_success", float("nan")) == row.get("eval_success")
    ]
    if success:
        ax2 = ax.twinx()
        ax2.plot(*zip(*success), color="tab:green", linestyle="--", label="eval success")
        ax2.set_ylabel("success rate")
        ax2.set_ylim(-0.05, 1.05)
        ax2.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def list_presets() -> int:
    for algo, env_id in presets.names():
        settings = ", ".join(f"{k}={v!r}" for k, v in presets.get(algo, env_id).items())
        print(f"{algo:9s} {env_id:28s} {settings}")
    return 0


def train(opts) -> int:
    if opts.list_presets:
        return list_presets()
    if opts.algo is None or opts.env is None:
        raise SystemExit(
            "pyrl train: give an algorithm and --env (or --list-presets), e.g. "
            "pyrl train ppo --env CartPole-v1"
        )
    import torch

    from pyrl.agents import ALGORITHMS

    algo = opts.algo.lower()
    cls = ALGORITHMS[algo]
    seed_tag = opts.seed if opts.seed is not None else parse_settings(opts.set).get("seed", 0)
    out = Path(opts.out or f"runs/{algo}-{opts.env.replace('/', '_')}-s{seed_tag}")
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    torch.set_num_threads(opts.threads)
    overrides = parse_settings(opts.set)
    if opts.tensorboard:
        overrides["tensorboard"] = opts.tensorboard
    if opts.seed is not None and overrides.get("seed", opts.seed) != opts.seed:
        raise SystemExit(
            f"pyrl train: --seed {opts.seed} and --set seed={overrides['seed']} "
            f"disagree; give the seed once"
        )
    seed = opts.seed if opts.seed is not None else overrides.get("seed", 0)
    if opts.resume and checkpoint.exists():
        try:
            saved_env = cls.saved_env_id(checkpoint)
            if saved_env is not None and saved_env != opts.env:
                raise SystemExit(
                    f"pyrl train: {checkpoint} was trained on {saved_env}, but --env "
                    f"names {opts.env}; resume with --env {saved_env} or use "
                    f"another --out"
                )
            agent = cls.load(checkpoint, **overrides)
        except ValueError as err:
            raise SystemExit(f"pyrl train: cannot resume from {checkpoint}: {err}")
        print(f"pyrl train: resumed {checkpoint} at step {agent.steps}")
    else:
        if opts.resume:
            print(f"pyrl train: no checkpoint in {out}; starting fresh")
        settings = merge_settings({} if opts.no_preset else presets.get(algo, opts.env), overrides)
        settings["seed"] = seed
        env_kwargs = settings.pop("env_kwargs", None)
        try:
            agent = cls(opts.env, env_kwargs=env_kwargs, **settings)
        except (TypeError, ValueError) as err:
            raise SystemExit(f"pyrl train: {err}")
        config = {
            "algo": algo,
            "env": opts.env,
            "env_kwargs": env_kwargs,
            "args": dataclasses.asdict(agent.args),
            "steps": opts.steps,
        }
        (out / "config.json").write_text(json.dumps(config, indent=2, default=str))
    save_every = opts.save_every or max(1, opts.steps // 10)
    last_save = [agent.steps]
    runner = agent
    if opts.actors:
        runner = distributed_runner(agent, opts)

    def save_now(agent, row):
        if agent.steps - last_save[0] >= save_every:
            agent.save(checkpoint)
            agent.write_csv(out / "progress.csv")
            last_save[0] = agent.steps

    try:
        runner.learn(opts.steps, callback=save_now, progress=not opts.no_progress)
    finally:
        if runner is not agent:
            runner.close()
    agent.save(checkpoint)
    agent.write_csv(out / "progress.csv")
    title = f"{algo.upper()} on {opts.env} (seed {agent.args.seed})"
    plotted = plot_curve(agent.history, out / "curve.png", title)
    result = agent.evaluate(opts.eval_episodes, seed=agent.args.seed + 1_000_000)
    result.update(steps=agent.steps, timers=agent.timers)
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    success = "" if result["success"] != result["success"] else f", success {result['success']:.2f}"
    print(
        f"pyrl train: {algo} {opts.env} seed {agent.args.seed}: {agent.steps} steps; "
        "evaluation over "
        f"{opts.eval_episodes} episodes: return {result['return']:.1f} "
        f"+- {result['return_std']:.1f}"
        f"{success}"
    )
    print(
        f"pyrl train: wrote {out}/progress.csv, checkpoint.pt, eval.json"
        + (", curve.png" if plotted else " (no curve.png: matplotlib is not installed)")
    )
    return 0


def distributed_runner(agent, opts):
    """``--actors N``: the agent learns from N Ray actor processes (pyrl.distributed)."""
    if opts.actors < 1 or (opts.envs_per_actor is not None and opts.envs_per_actor < 1):
        raise SystemExit(
            f"pyrl train: --actors and --envs-per-actor should be >= 1, got "
            f"{opts.actors} and {opts.envs_per_actor}"
        )
    try:
        from pyrl.distributed import Distributed

        return Distributed(
            agent,
            actors=opts.actors,
            envs_per_actor=opts.envs_per_actor,
            ray_address=opts.ray_address,
            samples_per_insert=opts.samples_per_insert,
            initial_priorities=opts.initial_priorities,
        )
    except (ImportError, ValueError) as err:
        raise SystemExit(f"pyrl train: --actors: {err}")


def read_run(run: str) -> tuple[Path, dict]:
    """A run directory and its config.json, or SystemExit saying what is missing."""
    path = Path(run)
    config = path / "config.json"
    if not config.is_file():
        raise SystemExit(f"pyrl: {run} is not a pyrl train run (no config.json)")
    try:
        return path, json.loads(config.read_text())
    except json.JSONDecodeError as err:
        raise SystemExit(f"pyrl: {config} is not valid JSON: {err}")


def video_env(env_id: str, env_kwargs: dict, folder: str):
    """A callable making ``env_id`` envs that record their first episode to ``folder``."""
    import itertools

    import gymnasium as gym
    from gymnasium.error import DependencyNotInstalled

    from pyrl.agents.common import register_robotics

    if env_id not in gym.registry:
        register_robotics()
    probe = gym.make(env_id, **env_kwargs)
    modes = probe.metadata.get("render_modes", [])
    probe.close()
    if "rgb_array" not in modes:
        raise SystemExit(
            f"pyrl eval: {env_id} does not render frames (render modes {modes}); "
            f"run without --video"
        )
    counter = itertools.count()
    os.environ.setdefault(
        "SDL_VIDEODRIVER", "dummy"
    )  # pygame renders off-screen, no display needed
    warnings.filterwarnings("ignore", message=".*Overwriting existing videos.*")

    def make():
        env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
        try:
            return gym.wrappers.RecordVideo(
                env,
                folder,
                episode_trigger=lambda episode: episode == 0,
                name_prefix=f"env{next(counter)}",
                disable_logger=True,
            )
        except DependencyNotInstalled as err:
            raise SystemExit(f"pyrl eval: --video needs moviepy (pip install 'pyrl[video]'): {err}")

    return make


def evaluate_run(opts) -> int:
    from pyrl.agents import ALGORITHMS

    run, config = read_run(opts.run)
    checkpoint = run / "checkpoint.pt"
    if not checkpoint.is_file():
        raise SystemExit(f"pyrl eval: no checkpoint.pt in {run}")
    if opts.episodes < 1:
        raise SystemExit(f"pyrl eval: --episodes should be >= 1, got {opts.episodes}")
    try:
        agent = ALGORITHMS[config["algo"]].load(checkpoint)
    except (KeyError, ValueError) as err:
        raise SystemExit(f"pyrl eval: cannot load {checkpoint}: {err}")
    env = (
        video_env(config["env"], config.get("env_kwargs") or {}, opts.video) if opts.video else None
    )
    result = agent.evaluate(
        opts.episodes, seed=opts.seed, env=env, deterministic=opts.deterministic
    )
    result.update(steps=agent.steps, episodes=opts.episodes, deterministic=opts.deterministic)
    (run / "eval.json").write_text(json.dumps(result, indent=2))
    success = "" if result["success"] != result["success"] else f", success {result['success']:.2f}"
    print(f"return {result['return']:.1f} ± {result['return_std']:.1f}{success}")
    if opts.video:
        print(f"pyrl eval: videos in {opts.video}")
    return 0


def plot_runs(opts) -> list[str]:
    """One line per (algorithm, env) over the runs, the mean across seeds with a band of one
    standard deviation; returns the lines' labels (0 for the exit status is main's)."""
    import csv

    import numpy as np

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("pyrl plot: needs matplotlib (pip install 'pyrl[plot]')")
    groups: dict[str, list] = {}
    column = opts.y
    for run in opts.runs:
        path, config = read_run(run)
        progress = path / "progress.csv"
        if not progress.is_file():
            raise SystemExit(f"pyrl plot: no progress.csv in {run}")
        with open(progress, newline="") as f:
            rows = list(csv.DictReader(f))
        logged = {k for row in rows for k, v in row.items() if v not in ("", "nan")}
        if column is None:
            column = next(
                (k for k in ("eval_success", "eval_return", "return") if k in logged), None
            )
        if column not in logged:
            raise SystemExit(f"pyrl plot: {run} has no {column!r} column; it has {sorted(logged)}")
        x_key = "step" if opts.x == "steps" else "time"
        points = [
            (float(r[x_key]), float(r[column]))
            for r in rows
            if r.get(column) not in (None, "", "nan")
        ]
        groups.setdefault(f"{config['algo']} {config['env']}", []).append(np.array(points))
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curves in groups.items():
        end = min(c[-1, 0] for c in curves)  # the span every seed covers
        grid = np.linspace(max(c[0, 0] for c in curves), end, 200)
        values = np.array([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
        mean, std = values.mean(0), values.std(0)
        ax.plot(grid, mean, label=f"{label} ({len(curves)} run{'s' if len(curves) > 1 else ''})")
        ax.fill_between(grid, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("environment steps" if opts.x == "steps" else "wall-clock seconds")
    ax.set_ylabel(column.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(opts.out, dpi=100)
    plt.close(fig)
    print(f"pyrl plot: wrote {opts.out} ({len(groups)} line{'s' if len(groups) > 1 else ''})")
    return list(groups)


OP_BENCHMARKS = ("returns", "replay", "her", "recurrent", "gpu", "rlox", "sample_cost", "memory")


def benchmark_package() -> Optional[tuple[str, Path]]:
    """The ops benchmarks to run and where from: a source checkout's ``benchmarks`` package (run
    from the checkout's root), else the copy an installed pyrl carries (``pyrl.benchmarks``);
    None if neither exists."""
    here = Path(__file__).resolve().parent
    if (here.parent / "benchmarks" / "ops" / "__init__.py").is_file():
        return "benchmarks", here.parent
    if (here / "benchmarks" / "ops" / "__init__.py").is_file():
        return "pyrl.benchmarks", here.parent
    return None


def bench(opts) -> int:
    found = benchmark_package()
    if found is None:
        raise SystemExit(
            "pyrl bench: no benchmarks beside this pyrl (neither a source checkout's "
            "benchmarks/ nor an installed pyrl/benchmarks); reinstall pyrl from its "
            "source or wheel"
        )
    package, root = found
    names = opts.names or ["returns", "replay", "her"]
    for name in names:
        if name not in OP_BENCHMARKS:
            raise SystemExit(
                f"pyrl bench: no benchmark {name!r}; the ops benchmarks are "
                f"{', '.join(OP_BENCHMARKS)} (the systems and learning ones: "
                "python -m benchmarks.systems.<name> in a source checkout)"
            )
    for name in names:
        command = [
            sys.executable,
            "-m",
            f"{package}.ops.{name}",
            *(["--quick"] if opts.quick else []),
        ]
        code = subprocess.call(command, cwd=root)
        if code:
            return code
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``pyrl`` command line (the docs site renders it)."""
    parser = argparse.ArgumentParser(
        prog="pyrl", description="pyrl: train agents, run the benchmark tables"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train an agent; writes CSV, PNG and a checkpoint")
    p.add_argument("algo", nargs="?", choices=["reinforce", "ppo", "ddpg", "coop"], type=str.lower)
    p.add_argument("--env", help="gymnasium env id (pyrl/PointReach-v0, CartPole-v1, ...)")
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    p.add_argument("--steps", type=int, default=100_000, help="environment steps in all")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seeds the agent and the envs (default 0; or --set seed=S, not both)",
    )
    p.add_argument("--out", help="output directory (default runs/ALGO-ENV-sSEED)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-preset", action="store_true", help="start from the agent's defaults")
    p.add_argument(
        "--save-every", type=int, default=0, help="steps between checkpoints (default steps/10)"
    )
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (small nets run best on 1)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write the progress scalars as TensorBoard events to DIR",
    )
    p.add_argument(
        "--actors",
        type=int,
        default=0,
        help="Ray actor processes stepping envs for the learner (ddpg, ppo; the ray extra)",
    )
    p.add_argument(
        "--envs-per-actor",
        type=int,
        default=None,
        help="envs each actor steps (default: ddpg 1; ppo n_envs / actors)",
    )
    p.add_argument("--ray-address", help="a Ray cluster's address (default: a local cluster)")
    p.add_argument(
        "--samples-per-insert",
        type=float,
        default=None,
        help="ddpg: transitions sampled per env step (default: the agent's own ratio)",
    )
    p.add_argument(
        "--initial-priorities",
        action="store_true",
        help="ddpg with per: actors compute their episodes' initial priorities (Ape-X)",
    )
    e = commands.add_parser("eval", help="evaluate a trained run's checkpoint (and record videos)")
    e.add_argument("run", help="a pyrl train --out directory")
    e.add_argument("--episodes", type=int, default=20)
    e.add_argument("--seed", type=int, default=1_000_000, help="seeds the evaluation envs")
    e.add_argument(
        "--video", metavar="DIR", help="record each env's first episode to DIR (the video extra)"
    )
    mode = e.add_mutually_exclusive_group()
    mode.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_true",
        default=True,
        help="the greedy / mean action (default)",
    )
    mode.add_argument(
        "--stochastic",
        dest="deterministic",
        action="store_false",
        help="sample actions as in training",
    )
    g = commands.add_parser(
        "plot", help="learning curves of several runs, mean and spread over seeds"
    )
    g.add_argument("runs", nargs="+", help="pyrl train --out directories")
    g.add_argument("--out", default="curves.png", help="the PNG to write")
    g.add_argument(
        "--x", choices=["steps", "time"], default="steps", help="x axis: env steps or wall seconds"
    )
    g.add_argument(
        "--y",
        default=None,
        help="the progress.csv column (default: eval_success, "
        "eval_return or return, the first the runs logged)",
    )
    b = commands.add_parser("bench", help="run the ops benchmark tables (pyrl beside its peers)")
    b.add_argument(
        "names", nargs="*", help=f"{', '.join(OP_BENCHMARKS)} (default: the first three)"
    )
    b.add_argument("--quick", action="store_true", help="small sizes, as CI runs them")
    return parser


def main(argv=None) -> int:
    opts = build_parser().parse_args(argv)
    if opts.command == "plot":
        plot_runs(opts)
        return 0
    return {"train": train, "eval": evaluate_run, "bench": bench}[opts.command](opts)


if __name__ == "__main__":
    sys.exit(main())
