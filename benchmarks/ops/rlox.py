"""pyrl beside rlox (Rust + PyO3) on rlox's own published workloads, in one process.

    python -m benchmarks.ops.rlox            # full timings
    python -m benchmarks.ops.rlox --quick    # shorter timings (CI)

rlox (``pip install rlox==1.2.0``, an optional benchmark peer: without it this prints one line
saying so) publishes replay and returns timings against TorchRL and SB3. Its workloads, on the
same data in both libraries:
  uniform sample(B)     from 100k transitions of obs 4 (action 1), B = 32, 64, 256, 1024; and
                        sample(256) from 1M transitions of obs 17, action 6. pyrl is timed making
                        a fresh batch and refilling one (``sample(B, out=batch)``); rlox returns a
                        dict of new numpy arrays. rlox's draws take a seed argument: each call gets
                        a new one, as pyrl's draws change each call (a fixed seed would draw the
                        same, cache-warm, rows every time).
  push 1                one transition of obs 4 and of obs 28,224 (4 x 84 x 84, as float32: rlox
                        stores float32 only); pyrl's add takes it as one environment's step.
  GAE f32               [T, N] = [2048, 1], [128, 64], [16, 4096]; rlox's batched f32 GAE takes the
                        same values laid out env-major.
  PER                   sample(256), and sample(256) + update_priorities(256), from 1M
                        transitions of obs 17, action 6 (alpha 0.6, beta 0.4).
  HER                   future, k = 4, sample(256) from 1M transitions of 50-step episodes
                        (observation 10, goals 3, action 4; rlox's goals live inside its obs).
Each row is timed in interleaved rounds (rlox, pyrl, rlox, pyrl, ...) and quotes medians; the
speedup is rlox's time / pyrl's. The machine is shared: read the ratios.
"""

import itertools
import sys

import numpy as np
import torch

import pyrl
from pyrl import replay, returns

from ..common import interleaved, is_quick, run

GAMMA, LMBDA = 0.99, 0.95


def new_seeds():
    return itertools.count().__next__


def sample_times(sample_theirs, ours, batch_size, min_run_time, rounds):
    """rlox's sample (given a new seed each call), pyrl's fresh sample and pyrl's refill of one
    batch (``out=``), in µs."""
    seed, reused = new_seeds(), ours.sample(batch_size)
    return interleaved(
        [
            lambda: sample_theirs(batch_size, seed()),
            lambda: ours.sample(batch_size),
            lambda: ours.sample(batch_size, out=reused),
        ],
        min_run_time,
        rounds,
    )


# ---- uniform replay ------------------------------------------------------------------------------


def uniform_pair(rlox, transitions, obs_dim, act_dim):
    """rlox's ReplayBuffer and a pyrl buffer holding the same transitions (one long episode
    stream, cut every 1000 steps on pyrl's side, which stores each next_obs as the next row)."""
    rng = np.random.default_rng(0)
    episode = 1000
    obs = rng.standard_normal((transitions + 1, obs_dim), dtype=np.float32)
    action = rng.standard_normal((transitions, act_dim), dtype=np.float32)
    reward = rng.standard_normal(transitions, dtype=np.float32)
    theirs = rlox.ReplayBuffer(transitions, obs_dim, act_dim)
    zeros = np.zeros(episode, dtype=np.uint8)  # its flags' type
    for s in range(0, transitions, episode):
        e = s + episode
        theirs.push_batch(
            obs[s:e].ravel(),
            obs[s + 1 : e + 1].ravel(),
            action[s:e].ravel(),
            reward[s:e],
            zeros,
            zeros,
        )
    ours = replay.ReplayBuffer(
        transitions + transitions // episode, {"obs": (obs_dim,), "action": (act_dim,)}, seed=0
    )
    for s in range(0, transitions, episode):
        e = s + episode
        ours.add_episode(
            obs=torch.from_numpy(obs[s : e + 1]),
            action=torch.from_numpy(action[s:e]),
            reward=torch.from_numpy(reward[s:e]),
        )
    return theirs, ours


def uniform_rows(rlox, min_run_time, rounds, quick):
    rows = []
    theirs, ours = uniform_pair(rlox, 100_000, 4, 1)
    for batch_size in (32, 64, 256, 1024):
        check(theirs.sample(batch_size, 0), ours.sample(batch_size), batch_size)
        times = sample_times(theirs.sample, ours, batch_size, min_run_time, rounds)
        rows.append((f"uniform sample({batch_size}), 100k, obs 4", *times))
    del theirs, ours
    theirs, ours = uniform_pair(rlox, 200_000 if quick else 1_000_000, 17, 6)
    size = "200k" if quick else "1M"
    times = sample_times(theirs.sample, ours, 256, min_run_time, rounds)
    rows.append((f"uniform sample(256), {size}, obs 17 act 6", *times))
    return rows


def check(theirs, ours, batch_size):
    assert np.asarray(theirs["obs"]).shape[0] == batch_size == ours.obs.shape[0]
    assert ours.obs.shape == ours.next_obs.shape


def push_rows(rlox, min_run_time, rounds):
    rows = []
    for obs_dim in (4, 4 * 84 * 84):
        capacity = 100_000 if obs_dim == 4 else 2_000
        rng = np.random.default_rng(0)
        obs = rng.standard_normal(obs_dim, dtype=np.float32)
        action = np.zeros(1, dtype=np.float32)
        theirs = rlox.ReplayBuffer(capacity, obs_dim, 1)
        ours = replay.ReplayBuffer(
            capacity, {"obs": (obs_dim,), "action": (1,)}, seed=0, max_episode_steps=100
        )
        step = obs[None], action[None]
        reward, flag, ends = np.zeros(1, np.float32), np.zeros(1, bool), np.ones(1, bool)
        count = itertools.count()

        def push_ours():  # an episode ends every 100 steps, as a time limit would cut it
            ours.add(
                obs=step[0],
                action=step[1],
                reward=reward,
                next_obs=step[0],
                terminated=flag,
                truncated=ends if next(count) % 100 == 99 else flag,
            )

        t_rlox, t_ours = interleaved(
            [lambda: theirs.push(obs, action, 1.0, False, False, obs), push_ours],
            min_run_time,
            rounds,
        )
        rows.append((f"push 1 transition, obs {obs_dim:,}", t_rlox, t_ours, None))
    return rows


# ---- returns -------------------------------------------------------------------------------------


def gae_rows(rlox, min_run_time, rounds):
    rows = []
    for T, N in ((2048, 1), (128, 64), (16, 4096)):
        g = torch.Generator().manual_seed(0)
        reward = torch.randn(T, N, generator=g)
        values = torch.randn(T + 1, N, generator=g)
        done = torch.rand(T, N, generator=g) < 0.02
        value, next_value = values[:-1].contiguous(), values[1:].contiguous()
        no = torch.zeros(T, N, dtype=torch.bool)
        # rlox: flat env-major arrays; next_value within an env is the following step's value.
        flat = dict(
            rewards=reward.T.contiguous().numpy().ravel(),
            values=value.T.contiguous().numpy().ravel(),
            dones=done.T.contiguous().float().numpy().ravel(),
            last_values=values[-1].numpy().copy(),
        )

        def theirs():
            return rlox.compute_gae_batched_f32(
                flat["rewards"],
                flat["values"],
                flat["dones"],
                flat["last_values"],
                T,
                GAMMA,
                LMBDA,
            )

        def ours():
            return returns.gae(reward, value, next_value, done, no, gamma=GAMMA, lmbda=LMBDA)

        adv_theirs = np.asarray(theirs()[0]).reshape(N, T).T
        torch.testing.assert_close(ours()[0], torch.from_numpy(adv_theirs), atol=1e-3, rtol=1e-3)
        t_rlox, t_ours = interleaved([theirs, ours], min_run_time, rounds)
        rows.append((f"GAE f32 [{T}, {N}]", t_rlox, t_ours, None))
    return rows


# ---- prioritized and hindsight replay ------------------------------------------------------------


def per_rows(rlox, min_run_time, rounds, quick):
    transitions, obs_dim, act_dim, batch_size = (200_000 if quick else 1_000_000), 17, 6, 256
    size = "200k" if quick else "1M"
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((transitions + 1, obs_dim), dtype=np.float32)
    action = rng.standard_normal((transitions, act_dim), dtype=np.float32)
    theirs = rlox.PrioritizedReplayBuffer(transitions, obs_dim, act_dim, alpha=0.6, beta=0.4)
    for i in range(transitions):
        theirs.push(obs[i], action[i], 0.0, False, False, obs[i + 1])
    ours = replay.ReplayBuffer(
        transitions + transitions // 1000,
        {"obs": (obs_dim,), "action": (act_dim,)},
        seed=0,
        prioritized=replay.PER(0.6, 0.4),
    )
    for s in range(0, transitions, 1000):
        ours.add_episode(
            obs=torch.from_numpy(obs[s : s + 1001]),
            action=torch.from_numpy(action[s : s + 1000]),
            reward=torch.zeros(1000),
        )
    seed, reused = new_seeds(), ours.sample(batch_size)
    td = np.abs(rng.standard_normal(batch_size)) + 1e-3
    td_ours = torch.from_numpy(td)

    def sample_update_theirs():
        batch = theirs.sample(batch_size, seed())
        theirs.update_priorities(batch["indices"], td)

    def sample_update_ours():
        batch = ours.sample(batch_size, out=reused)
        ours.update_priorities(batch.index, batch.generation, td_ours)

    times = sample_times(theirs.sample, ours, batch_size, min_run_time, rounds)
    rows = [(f"PER sample(256), {size}", *times)]
    t_rlox, t_out = interleaved([sample_update_theirs, sample_update_ours], min_run_time, rounds)
    rows.append((f"PER sample+update(256), {size}", t_rlox, None, t_out))
    return rows


def her_rows(rlox, min_run_time, rounds, quick):
    transitions, episode, obs_dim, goal, act_dim = (200_000 if quick else 1_000_000), 50, 10, 3, 4
    size = "200k" if quick else "1M"
    g = torch.Generator().manual_seed(0)
    observation = torch.randn(episode + 1, obs_dim, generator=g)
    achieved = torch.randn(episode + 1, goal, generator=g)
    desired = torch.randn(1, goal, generator=g).expand(episode + 1, goal).contiguous()
    action = torch.randn(episode, act_dim, generator=g)
    # rlox's goals are slices of its observation: [observation, achieved, desired].
    flat = torch.cat([observation, achieved, desired], 1).numpy()
    act = action.numpy()
    theirs = rlox.HERBuffer(
        transitions, obs_dim + 2 * goal, act_dim, goal, obs_dim, obs_dim + goal, "future", 4, 0.05
    )
    for _ in range(transitions // episode):
        for t in range(episode):
            theirs.push(flat[t], flat[t + 1], act[t], -1.0, False, t == episode - 1)
    spec = {
        "observation": (obs_dim,),
        "achieved_goal": (goal,),
        "desired_goal": (goal,),
        "action": (act_dim,),
    }
    ours = replay.ReplayBuffer(
        transitions // episode * (episode + 1),
        spec,
        seed=0,
        her=replay.HER("future", 4, replay.sparse_l2(0.05)),
    )
    obs = {"observation": observation, "achieved_goal": achieved, "desired_goal": desired}
    while len(ours) < transitions:
        ours.add_episode(obs=obs, action=action, reward=-torch.ones(episode))
    ratio = 0.8  # HER future with k = 4 relabels k / (k + 1) of the samples
    times = sample_times(
        lambda count, seed: theirs.sample(count, ratio, seed), ours, 256, min_run_time, rounds
    )
    return [(f"HER future k=4 sample(256), {size}", *times)]


# ---- the table -----------------------------------------------------------------------------------


def main(argv=None):
    quick = is_quick(__doc__, argv)
    min_run_time, rounds = (0.05, 3) if quick else (0.2, 7)
    try:
        import rlox
    except ImportError as err:
        print(f"skipped: rlox is not installed ({err}); pip install rlox==1.2.0")
        return 0
    print(
        f"pyrl {pyrl.__version__} | rlox {getattr(rlox, '__version__', '?')} | torch "
        f"{torch.__version__} | threads {torch.get_num_threads()} | medians of {rounds} "
        f"interleaved rounds"
    )
    header = (
        f"{'work':<42} {'rlox us':>9} {'pyrl us':>9} {'speedup':>8} "
        f"{'pyrl out= us':>13} {'speedup':>8}"
    )
    print(header)
    print("-" * len(header))
    sections = [
        lambda: uniform_rows(rlox, min_run_time, rounds, quick),
        lambda: push_rows(rlox, min_run_time, rounds),
        lambda: gae_rows(rlox, min_run_time, rounds),
        lambda: per_rows(rlox, min_run_time, rounds, quick),
        lambda: her_rows(rlox, min_run_time, rounds, quick),
    ]
    for section in sections:
        for work, t_rlox, t_ours, t_out in section():
            fresh = f"{t_ours:>9.1f} {t_rlox / t_ours:>7.2f}x" if t_ours else f"{'-':>9} {'':>8}"
            out = f"{t_out:>13.1f} {t_rlox / t_out:>7.2f}x" if t_out else ""
            print(f"{work:<42} {t_rlox:>9.1f} {fresh} {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "rlox"))
