"""Distributed acting on Ray: env steps/s and learner updates/s against the number of actors,
beside the single-process agent, and the learner's ingestion rate.

    python -m benchmarks.systems.distributed            # 1, 2 and 4 actors, longer runs
    python -m benchmarks.systems.distributed --quick    # 1 and 2 actors, short runs (CI)

The env is pyrl/SlowPointReach-v0: PointReach whose every step waits 1 ms (time.sleep, standing
in for a simulator that waits on something else), with the PointReach DDPG+HER preset.
  acting        env steps/s with the learner sampling little (samples_per_insert 0.05):
                what n actors deliver
  learning      updates/s of the learner while n actors run at the preset's ratio left open
                (a wide error buffer), against the same updates in one process with no env
  single        the single-process agent (acting and learning in turn) on the same env
  ingestion     transitions/s the learner adds from actor results (50-step episodes)
  model         at what actor count the learner's updates become the limit, from the
                measured per-update cost and per-actor step rate (see the README)
  PPO           env steps/s of synchronous PPO rollouts (the PointReach PPO preset, its 10 envs
                split over the actors) against the single-process agent, and the share of each
                iteration the learner spends training (collection stops meanwhile)
"""

import os
import sys
import time
import warnings

import numpy as np
import torch

from ..common import is_quick, run

ENV = "pyrl/SlowPointReach-v0"


def preset(**overrides):
    from pyrl.agents import DDPG
    from pyrl.cli import PRESETS

    settings = {
        **PRESETS[("ddpg", "pyrl/PointReach-v0")],
        "eval_every": 0,
        "log_every": 100_000,
        "learning_starts": 0,
        **overrides,
    }
    return DDPG(ENV, **settings)


def distributed_rate(actors: int, steps: int, **limiter) -> dict:
    from pyrl.distributed import Distributed

    agent = preset()
    runner = Distributed(agent, actors=actors, **limiter)
    try:
        runner.learn(steps // 5)  # the actors start, warm up and sync once
        steps0, updates0, start = agent.steps, agent.updates, time.perf_counter()
        runner.learn(steps0 + steps)
        seconds = time.perf_counter() - start
    finally:
        runner.close()
    return {
        "env_steps_per_s": (agent.steps - steps0) / seconds,
        "updates_per_s": (agent.updates - updates0) / seconds,
    }


def update_rate(seconds: float) -> float:
    """Updates/s of the learner alone (a buffer of PointReach episodes, no env)."""
    agent = preset()
    agent.learn(2000)
    for _ in range(20):
        agent.update()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        agent.update()
        count += 1
    return count / (time.perf_counter() - start)


def single_process_rate(steps: int) -> float:
    agent = preset()
    agent.learn(500)
    start, steps0 = time.perf_counter(), agent.steps
    agent.learn(steps0 + steps)
    return (agent.steps - steps0) / (time.perf_counter() - start)


def ingestion_rate(episodes: int) -> float:
    """Transitions/s of the learner's insert of actor results (50-step PointReach episodes)."""
    from pyrl.distributed import add_episodes

    agent = preset(buffer_size=1_000_000)
    rng = np.random.default_rng(0)
    result = [
        {
            "obs": {
                k: rng.normal(size=(51, 2)).astype(np.float32)
                for k in ("observation", "achieved_goal", "desired_goal")
            },
            "action": rng.uniform(-1, 1, (50, 2)).astype(np.float32),
            "reward": -np.ones(50, np.float32),
            "terminated": False,
        }
    ] * 20
    added, start = 0, time.perf_counter()
    for _ in range(episodes // 20):
        added += add_episodes(agent, result)
    return added / (time.perf_counter() - start)


def ppo_rate(actors: int, steps: int) -> tuple[float, float]:
    """(env steps/s, the learner's training share of the wall time) of PPO on the slow env."""
    from pyrl.agents import PPO
    from pyrl.cli import PRESETS
    from pyrl.distributed import Distributed

    agent = PPO(ENV, **{**PRESETS[("ppo", "pyrl/PointReach-v0")], "eval_every": 0})
    runner = Distributed(agent, actors=actors) if actors else agent
    train = agent.train_round
    training = [0.0]

    def timed_train(*args):
        start = time.perf_counter()
        out = train(*args)
        training[0] += time.perf_counter() - start
        return out

    agent.train_round = timed_train
    try:
        runner.learn(1000)  # the actors start and the first rollouts run
        steps0, training[0], start = agent.steps, 0.0, time.perf_counter()
        runner.learn(steps0 + steps)
        seconds = time.perf_counter() - start
    finally:
        if actors:
            runner.close()
    return (agent.steps - steps0) / seconds, training[0] / seconds


def main() -> None:
    quick = is_quick(__doc__)
    warnings.filterwarnings("ignore")
    try:
        import ray
    except ImportError as err:
        print(f"bench_distributed: skipped, Ray is not installed ({err}); pip install 'pyrl[ray]'")
        return
    torch.set_num_threads(1)
    counts = [1, 2] if quick else [1, 2, 4]
    steps = 3000 if quick else 15_000
    print(
        f"\nDistributed DDPG+HER on {ENV} (1 ms per step), {steps:,} env steps per row; "
        f"this machine has {len(os.sched_getaffinity(0))} cores\n"
    )
    alone = update_rate(2.0 if quick else 10.0)
    single = single_process_rate(steps // 3)
    print(
        f"{'setup':<28}{'env steps/s':>14}{'updates/s':>12}{'vs 1 actor':>12}"
        f"{'updates vs alone':>18}"
    )
    print(f"{'single process (no actors)':<28}{single:>14.0f}{'':>12}{'':>12}{'':>18}")
    print(f"{'learner alone (no env)':<28}{'':>14}{alone:>12.0f}{'':>12}{'1.00':>18}")
    base = None
    acting = {}
    for n in counts:
        rate = distributed_rate(n, steps, samples_per_insert=0.05)
        acting[n] = rate["env_steps_per_s"]
        base = base or acting[n]
        print(
            f"{f'acting, {n} actor(s)':<28}{acting[n]:>14.0f}{rate['updates_per_s']:>12.0f}"
            f"{acting[n] / base:>11.2f}x{'':>18}"
        )
        ray.shutdown()
    for n in counts:
        rate = distributed_rate(n, steps, error_buffer=1e9)
        print(
            f"{f'learning, {n} actor(s)':<28}{rate['env_steps_per_s']:>14.0f}"
            f"{rate['updates_per_s']:>12.0f}{'':>12}{rate['updates_per_s'] / alone:>18.2f}"
        )
        ray.shutdown()
    ingest = ingestion_rate(2000 if quick else 20_000)
    print(f"\ningestion: {ingest:,.0f} transitions/s added from actor results (50-step episodes)")

    batch, spi = 256, 40 * 256 / 500
    per_actor = acting[1]
    limit = alone * batch / spi  # env steps/s the learner can keep up with at this ratio
    print(
        f"model: an update costs {1e3 / alone:.2f} ms, so at {spi:.2f} samples per insert "
        f"(batch {batch}) the learner keeps up with {limit:,.0f} env steps/s; one actor "
        f"delivers {per_actor:,.0f}/s, so the learner becomes the limit from about "
        f"{limit / per_actor:.1f} actors (more learner threads or a GPU learner move it)"
    )

    print(
        f"\nDistributed PPO on {ENV} (1 ms per step), synchronous rollouts of 10 envs x 50 "
        f"steps, {steps:,} env steps per row\n"
    )
    print(f"{'setup':<28}{'env steps/s':>14}{'vs single':>12}{'training share':>16}")
    single_ppo = None
    for n in [0, *counts]:
        rate, share = ppo_rate(n, steps)
        single_ppo = single_ppo or rate
        name = (
            "single process (10 envs)"
            if n == 0
            else f"{n} actor(s), {max(1, round(10 / n))} envs each"
        )
        print(f"{name:<28}{rate:>14.0f}{rate / single_ppo:>11.2f}x{share:>16.2f}")
        if n:
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(run(main, "distributed"))
