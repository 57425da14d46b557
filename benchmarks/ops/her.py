"""pyrl's hindsight relabeling beside the HER buffers of Stable-Baselines3, cpprb and rlox.

    python -m benchmarks.ops.her            # full timings
    python -m benchmarks.ops.her --quick    # shorter timings (CI)

Every buffer holds 1,000,000 transitions of 50-step episodes: observation 10, achieved and desired
goal 3, action 4 (float32); HER `future` with k = 4 and a sparse reward (0 within 0.05 of the goal,
else -1). Rows:
  sample            sample(256) with relabeling
  add 1 + sample    one step added (an episode ends every 50) then sample(256)
  bytes/transition  memory per stored transition: pyrl and SB3 relabel at sample time and store
                    each transition once (SB3 also stores next_obs); cpprb stores k + 1 copies
cpprb is timed uniform and prioritized (its default), each against the same kind of pyrl buffer;
pyrl is also timed with floating 5-step returns and with prioritized sampling. Times are medians
of torch.utils.benchmark's blocked_autorange; speedup is baseline time / pyrl time. Peers that are
not installed or do not run get a line saying why. TorchRL has no HER buffer of this kind (its HER
is an environment transform), so it has no row.
"""

import sys

import numpy as np
import torch

import pyrl
from pyrl import replay

from ..common import is_quick, median_us, run

TRANSITIONS, EPISODE, OBS, GOAL, ACT, BATCH, K, EPS = 1_000_000, 50, 10, 3, 4, 256, 4, 0.05


def sparse_reward(achieved, desired):
    return -(np.linalg.norm(achieved - desired, axis=-1) > EPS).astype(np.float32)


# ---- pyrl ----------------------------------------------------------------------------------------


def pyrl_buffer(her=None, **kwargs):
    spec = {
        "observation": (OBS,),
        "achieved_goal": (GOAL,),
        "desired_goal": (GOAL,),
        "action": (ACT,),
    }
    capacity = TRANSITIONS // EPISODE * (EPISODE + 1)  # each episode also keeps its final row
    buf = replay.ReplayBuffer(
        capacity, spec, seed=0, **kwargs, her=her or replay.HER("future", K, replay.sparse_l2(EPS))
    )
    g = torch.Generator().manual_seed(0)
    obs = {
        "observation": torch.randn(EPISODE + 1, OBS, generator=g),
        "achieved_goal": torch.randn(EPISODE + 1, GOAL, generator=g),
        "desired_goal": torch.randn(1, GOAL, generator=g).expand(EPISODE + 1, GOAL),
    }
    action, reward = torch.randn(EPISODE, ACT, generator=g), -torch.ones(EPISODE)
    while len(buf) < TRANSITIONS:
        buf.add_episode(obs=obs, action=action, reward=reward)
    return buf


def pyrl_ops(**kwargs):
    buf = pyrl_buffer(**kwargs)
    step = {
        "observation": torch.randn(1, OBS),
        "achieved_goal": torch.randn(1, GOAL),
        "desired_goal": torch.randn(1, GOAL),
    }
    action, reward = torch.randn(1, ACT), -torch.ones(1)
    ends = [torch.tensor([t == EPISODE - 1]) for t in range(EPISODE)]
    never = torch.zeros(1, dtype=torch.bool)
    clock = [0]

    def add_sample():
        clock[0] = (clock[0] + 1) % EPISODE
        buf.add(
            obs=step,
            next_obs=step,
            action=action,
            reward=reward,
            terminated=never,
            truncated=ends[clock[0]],
        )
        return buf.sample(BATCH)

    size = sum(t.numel() * t.element_size() for t in buf.storage.state + [buf.storage.records])
    return dict(
        sample=lambda: buf.sample(BATCH),
        add_sample=add_sample,
        bytes=size / len(buf),
        check=lambda: check(buf.sample(BATCH).is_her.float().mean()),
    )


# ---- peers ---------------------------------------------------------------------------------------


def sb3_ops():
    import gymnasium as gym
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.vec_env import DummyVecEnv

    class GoalEnv(gym.Env):
        observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32),
                "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (GOAL,), np.float32),
                "desired_goal": gym.spaces.Box(-np.inf, np.inf, (GOAL,), np.float32),
            }
        )
        action_space = gym.spaces.Box(-1, 1, (ACT,), np.float32)

        def compute_reward(self, achieved_goal, desired_goal, info):
            return sparse_reward(achieved_goal, desired_goal)

    env = DummyVecEnv([GoalEnv])
    buf = HerReplayBuffer(
        TRANSITIONS,
        env.observation_space,
        env.action_space,
        env,
        device="cpu",
        n_sampled_goal=K,
        goal_selection_strategy="future",
    )
    rng = np.random.default_rng(0)
    for store in (buf.observations, buf.next_observations):
        for array in store.values():
            array[:] = rng.standard_normal(array.shape, dtype=np.float32)
    buf.actions[:] = rng.standard_normal(buf.actions.shape, dtype=np.float32)
    buf.rewards[:] = -1.0
    index = np.arange(TRANSITIONS)
    buf.ep_start[:, 0] = index // EPISODE * EPISODE
    buf.ep_length[:, 0] = EPISODE
    buf.full, buf.pos = True, 0
    step = {
        k: rng.standard_normal((1, *space.shape), dtype=np.float32)
        for k, space in env.observation_space.spaces.items()
    }
    action, reward = rng.standard_normal((1, ACT), dtype=np.float32), -np.ones(1, np.float32)
    clock = [0]

    def add_sample():
        clock[0] = (clock[0] + 1) % EPISODE
        done = np.array([clock[0] == 0])
        buf.add(step, step, action, reward, done, [{"TimeLimit.truncated": bool(done[0])}])
        return buf.sample(BATCH)

    arrays = [
        *buf.observations.values(),
        *buf.next_observations.values(),
        buf.actions,
        buf.rewards,
        buf.dones,
        buf.timeouts,
        buf.ep_start,
        buf.ep_length,
    ]
    return dict(
        sample=lambda: buf.sample(BATCH),
        add_sample=add_sample,
        bytes=sum(a.nbytes for a in arrays) / TRANSITIONS,
        check=lambda: check(buf.sample(BATCH).observations["observation"].shape[0] / BATCH),
    )


def cpprb_ops(quick, prioritized):
    import cpprb

    env_dict = {
        "obs": {"shape": OBS},
        "act": {"shape": ACT},
        "next_obs": {"shape": OBS},
    }  # + rew, goal

    def reward_func(state, action, goal):
        return sparse_reward(state[:, :GOAL], goal)

    # cpprb stores k + 1 relabeled copies of each transition; filling it runs its Python episode
    # hook per episode, so --quick fills a tenth (sample cost barely depends on the size).
    transitions = TRANSITIONS // 10 if quick else TRANSITIONS
    buf = cpprb.HindsightReplayBuffer(
        (K + 1) * transitions,
        env_dict,
        EPISODE,
        reward_func,
        goal_func=lambda s: s[:, :GOAL],
        goal_shape=(GOAL,),
        strategy="future",
        additional_goals=K,
        prioritized=prioritized,
    )
    rng = np.random.default_rng(0)
    episode = dict(
        obs=rng.standard_normal((EPISODE, OBS), dtype=np.float32),
        act=rng.standard_normal((EPISODE, ACT), dtype=np.float32),
        next_obs=rng.standard_normal((EPISODE, OBS), dtype=np.float32),
    )  # it computes rew
    goal = rng.standard_normal(GOAL, dtype=np.float32)
    for _ in range(transitions // EPISODE):
        buf.add(**episode)
        buf.on_episode_end(goal)
    one = {k: v[:1] for k, v in episode.items()}
    clock = [0]

    def add_sample():
        buf.add(**one)
        clock[0] = (clock[0] + 1) % EPISODE
        if clock[0] == 0:
            buf.on_episode_end(goal)
        return buf.sample(BATCH)

    row_bytes = 4 * (OBS + ACT + 1 + OBS + GOAL)  # obs, act, rew, next_obs, goal
    return dict(
        sample=lambda: buf.sample(BATCH),
        add_sample=add_sample,
        bytes=row_bytes * (K + 1),
        check=lambda: check(buf.sample(BATCH)["obs"].shape[0] / BATCH),
    )


def rlox_ops(quick):
    """rlox's HERBuffer: goals inside its obs ([observation, achieved, desired]), future k = 4,
    its sparse reward within 0.05; 80% of samples relabeled (HER future's k / (k + 1)); each
    sample call gets a new seed (its draws take one)."""
    import itertools

    import rlox

    transitions = TRANSITIONS // 10 if quick else TRANSITIONS
    dim = OBS + 2 * GOAL
    buf = rlox.HERBuffer(transitions, dim, ACT, GOAL, OBS, OBS + GOAL, "future", K, EPS)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((EPISODE + 1, dim), dtype=np.float32)
    act = rng.standard_normal((EPISODE, ACT), dtype=np.float32)
    for _ in range(transitions // EPISODE):
        for t in range(EPISODE):
            buf.push(obs[t], obs[t + 1], act[t], -1.0, False, t == EPISODE - 1)
    seed, clock = itertools.count().__next__, [0]

    def sample():
        return buf.sample(BATCH, K / (K + 1), seed())

    def add_sample():
        t = clock[0] = (clock[0] + 1) % EPISODE
        buf.push(obs[t], obs[t + 1], act[t], -1.0, False, t == EPISODE - 1)
        return sample()

    return dict(
        sample=sample,
        add_sample=add_sample,
        bytes=4 * (2 * dim + ACT + 1),  # obs, next_obs, action, reward
        check=lambda: check(sample()["obs"].shape[0] / BATCH),
    )


def check(value):
    value = float(value)
    assert 0.0 < value <= 1.0, value


# ---- the table -----------------------------------------------------------------------------------


def main(argv=None):
    quick = is_quick(__doc__, argv)
    min_run_time = 0.1 if quick else 1.0

    print(
        f"pyrl {pyrl.__version__} | torch {torch.__version__} | threads {torch.get_num_threads()}"
        f" | {TRANSITIONS:,} transitions, {EPISODE}-step episodes | obs {OBS} goal {GOAL} "
        f"action {ACT} | HER future k={K} | batch {BATCH}"
    )
    ours = {False: pyrl_ops(), True: pyrl_ops(prioritized=replay.PER())}
    for ops in ours.values():
        ops["check"]()
    header = f"{'op':<22} {'baseline':<34} {'baseline':>12} {'pyrl':>10} {'speedup':>9}"
    print(header)
    print("-" * len(header))
    peers = [
        ("SB3 HerReplayBuffer", sb3_ops, False),
        ("cpprb HindsightReplayBuffer", lambda: cpprb_ops(quick, False), False),
        ("cpprb HindsightReplayBuffer (PER)", lambda: cpprb_ops(quick, True), True),
        ("rlox HERBuffer", lambda: rlox_ops(quick), False),
    ]
    for name, build, prioritized in peers:
        mine = ours[prioritized]
        try:
            theirs = build()
            theirs["check"]()
        except ImportError as err:
            print(f"skipped {name}: {err}")
            continue
        for label, key in (("sample", "sample"), ("add 1 + sample", "add_sample")):
            label += " (PER)" if prioritized else ""
            t_theirs, t_mine = (
                median_us(theirs[key], min_run_time),
                median_us(mine[key], min_run_time),
            )
            print(
                f"{label:<22} {name:<34} {t_theirs:>9.1f} us {t_mine:>7.1f} us "
                f"{t_theirs / t_mine:>8.1f}x",
                flush=True,
            )
        print(
            f"{'bytes/transition':<22} {name:<34} {theirs['bytes']:>12.0f} {mine['bytes']:>10.0f} "
            f"{theirs['bytes'] / mine['bytes']:>8.1f}x",
            flush=True,
        )
        del theirs
    print()
    print(f"{'pyrl variant':<44} {'sample(256) us':>15} {'samples/s':>12}")
    variants = [
        ("HER future k=4", {}),
        ("HER + floating 5-step", dict(nstep=replay.NStep(5, 0.98, floating=True))),
        ("HER + PER", dict(prioritized=replay.PER())),
        (
            "HER + PER + floating 5-step",
            dict(prioritized=replay.PER(), nstep=replay.NStep(5, 0.98, floating=True)),
        ),
    ]
    recompute = replay.HER("future", K, replay.sparse_l2(EPS), nstep="recompute")
    variants.append(
        (
            "HER + floating 5-step, nstep=recompute",
            dict(nstep=replay.NStep(5, 0.98, floating=True), her=recompute),
        )
    )
    times = {}
    for label, kwargs in variants:
        t = times[label] = median_us(pyrl_ops(**kwargs)["sample"], min_run_time)
        print(f"{label:<44} {t:>15.1f} {BATCH / t * 1e6:>12,.0f}", flush=True)
    extra = times["HER + floating 5-step, nstep=recompute"] / times["HER + floating 5-step"] - 1
    print(
        f"relabeled windows recomputed under the new goal cost {extra:+.0%} against the same "
        f"buffer's sample without it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "her"))
