"""Stable-Baselines3 with its own replay buffers and with pyrl's drop-ins (pyrl.compat.sb3).

    python -m benchmarks.systems.sb3  # buffer table + TD3+HER on FetchReach-v4, 10k steps, 3 seeds
    python -m benchmarks.systems.sb3 --quick    # the buffer table with smaller buffers (CI)

Table 1, the buffer work of one SB3 training step: ``add`` of one step as SB3's loop passes it
(numpy, infos with TimeLimit.truncated) then ``sample(256)`` as SB3's TD3 calls it, with the
buffer holding TRANSITIONS transitions of 50-step episodes:
  ReplayBuffer      Box observations (17), action 6, uniform
  HerReplayBuffer   FetchReach's dict observations (10, 3, 3), action 4, future k=4; rewards from
                    the env's compute_reward (SB3's way, both), and pyrl's compiled sparse_l2
Medians of torch.utils.benchmark's blocked_autorange; speedup = SB3 time / pyrl time.

Table 2, SB3's TD3+HER on FetchReach-v4 (gymnasium-robotics) with each buffer class: wall time
of ``learn`` and the success rate of the final deterministic policy over 50 episodes. The same
hyperparameters for all (rl-zoo-like: gamma 0.95, lr 1e-3, batch 256, [256, 256], noise 0.1,
learning_starts 1000); per seed, the same model seed.
"""

import sys
import time
import warnings

import numpy as np
import torch

from ..common import is_quick, median_us, run

EPISODE, BATCH = 50, 256


def steps_of(n_transitions, obs_of, act_dim, seed=0):
    """n_transitions SB3-style add() argument tuples in 50-step episodes (time limits)."""
    rng = np.random.default_rng(seed)
    out = []
    obs = obs_of(rng)
    for t in range(n_transitions):
        next_obs = obs_of(rng)
        done = (t + 1) % EPISODE == 0
        out.append(
            (
                obs,
                next_obs,
                rng.uniform(-1, 1, (1, act_dim)).astype(np.float32),
                rng.normal(size=1).astype(np.float32),
                np.array([done]),
                [{"TimeLimit.truncated": done}],
            )
        )
        obs = obs_of(rng) if done else next_obs
    return out


def box_obs(rng):
    return rng.normal(size=(1, 17)).astype(np.float32)


def goal_obs(rng):
    return {
        "observation": rng.normal(size=(1, 10)),
        "achieved_goal": rng.normal(size=(1, 3)),
        "desired_goal": rng.normal(size=(1, 3)),
    }


def train_step_us(make, steps, min_run_time):
    """Median µs of add(one step) + sample(256) on a buffer filled with `steps`."""
    buf = make()
    for step in steps:
        buf.add(*step)
    fresh = steps[:EPISODE]
    position = [0]

    def one():
        buf.add(*fresh[position[0] % EPISODE])
        position[0] += 1
        buf.sample(BATCH)

    return median_us(one, min_run_time)


def buffer_table(quick: bool) -> None:
    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer
    from stable_baselines3.common.vec_env import DummyVecEnv
    from stable_baselines3.her import HerReplayBuffer as SB3HerReplayBuffer

    import pyrl.envs  # noqa: F401
    from pyrl import replay
    from pyrl.compat import sb3 as compat

    transitions = 20_000 if quick else 200_000
    min_run_time = 0.5 if quick else 2.0
    capacity = 1_000_000
    print(
        f"\nSB3 buffer work per training step: add 1 step + sample({BATCH}), "
        f"{transitions:,} transitions stored, buffer_size {capacity:,} (median µs)\n"
    )
    print(f"{'buffer':<34}{'SB3':>10}{'pyrl':>10}{'speedup':>10}")

    box = gym.spaces.Box(-np.inf, np.inf, (17,), np.float32)
    act6 = gym.spaces.Box(-1, 1, (6,), np.float32)
    steps = steps_of(transitions, box_obs, 6)
    sb3_us = train_step_us(lambda: SB3ReplayBuffer(capacity, box, act6, "cpu"), steps, min_run_time)
    ours_us = train_step_us(
        lambda: compat.ReplayBuffer(capacity, box, act6, "cpu", seed=0), steps, min_run_time
    )
    print(f"{'ReplayBuffer':<34}{sb3_us:>10.1f}{ours_us:>10.1f}{sb3_us / ours_us:>9.1f}x")

    env = DummyVecEnv([lambda: gym.make("pyrl/PointReach-v0")])  # compute_reward: sparse, 0.05
    goal_space = gym.spaces.Dict(
        {
            "observation": gym.spaces.Box(-np.inf, np.inf, (10,)),
            "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (3,)),
            "desired_goal": gym.spaces.Box(-np.inf, np.inf, (3,)),
        }
    )
    act4 = gym.spaces.Box(-1, 1, (4,), np.float32)
    steps = steps_of(transitions, goal_obs, 4)
    sb3_us = train_step_us(
        lambda: SB3HerReplayBuffer(capacity, goal_space, act4, env, "cpu"), steps, min_run_time
    )
    for label, kwargs in (
        ("HerReplayBuffer (env reward)", {}),
        ("HerReplayBuffer (sparse_l2)", {"compute_reward": replay.sparse_l2(0.05)}),
    ):
        ours_us = train_step_us(
            lambda: compat.HerReplayBuffer(
                capacity, goal_space, act4, env, "cpu", seed=0, **kwargs
            ),
            steps,
            min_run_time,
        )
        print(f"{label:<34}{sb3_us:>10.1f}{ours_us:>10.1f}{sb3_us / ours_us:>9.1f}x")


def fetch_run(kind: str, seed: int, steps: int) -> tuple[float, float]:
    """(learn wall seconds, final success rate over 50 episodes) of SB3 TD3+HER on FetchReach."""
    import gymnasium as gym
    import gymnasium_robotics
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.her import HerReplayBuffer as SB3HerReplayBuffer

    from pyrl import replay
    from pyrl.compat.sb3 import HerReplayBuffer

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FetchReach-v4")
    buffer_class, extra = {
        "SB3 HerReplayBuffer": (SB3HerReplayBuffer, {}),
        "pyrl (env reward)": (HerReplayBuffer, {}),
        "pyrl (sparse_l2)": (HerReplayBuffer, {"compute_reward": replay.sparse_l2(0.05)}),
    }[kind]
    model = TD3(
        "MultiInputPolicy",
        env,
        replay_buffer_class=buffer_class,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future", **extra),
        learning_starts=1000,
        batch_size=256,
        gamma=0.95,
        learning_rate=1e-3,
        action_noise=NormalActionNoise(np.zeros(4), 0.1 * np.ones(4)),
        policy_kwargs=dict(net_arch=[256, 256]),
        seed=seed,
    )
    start = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - start
    success = []
    for episode in range(50):
        obs, _ = env.reset(seed=10_000 + episode)
        for _ in range(EPISODE):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        success.append(float(info["is_success"]))
    return wall, float(np.mean(success))


def fetch_table(seeds: list) -> None:
    try:
        import gymnasium_robotics  # noqa: F401
    except ImportError as err:
        print(f"\nSB3 TD3+HER on FetchReach-v4: skipped ({err})")
        return
    steps = 10_000
    torch.set_num_threads(1)
    print(
        f"\nSB3 TD3+HER on FetchReach-v4, {steps:,} steps, seeds {seeds} (success: final "
        f"policy over 50 episodes)\n"
    )
    kinds = ("SB3 HerReplayBuffer", "pyrl (env reward)", "pyrl (sparse_l2)")
    runs = {kind: [] for kind in kinds}
    for seed in seeds:  # seeds outermost, so a noisy spell of the machine hits every kind alike
        for kind in kinds:
            runs[kind].append(fetch_run(kind, seed, steps))
    print(f"{'buffer class':<24}{'wall s (median)':>16}{'success per seed':>28}{'speedup':>9}")
    base = float(np.median([w for w, _ in runs[kinds[0]]]))
    for kind in kinds:
        wall = float(np.median([w for w, _ in runs[kind]]))
        success = " ".join(f"{s:.2f}" for _, s in runs[kind])
        print(f"{kind:<24}{wall:>16.1f}{success:>28}{base / wall:>8.2f}x")


def main() -> None:
    quick = is_quick(__doc__)
    warnings.filterwarnings("ignore")
    try:
        import stable_baselines3  # noqa: F401
    except ImportError as err:
        print(f"bench_sb3: skipped, Stable-Baselines3 is not installed ({err})")
        return
    buffer_table(quick)
    if quick:
        print("\nSB3 TD3+HER on FetchReach-v4 (10k steps per seed): make bench-sb3")
    else:
        fetch_table(seeds=[0, 1, 2, 3, 4])


if __name__ == "__main__":
    sys.exit(run(main, "sb3"))
