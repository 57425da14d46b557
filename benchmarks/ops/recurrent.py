"""Recurrent replay: refreshing every stored hidden state, and sampling sequences with burn-in.

    python -m benchmarks.ops.recurrent            # 1M steps of 50-step episodes (obs 17)
    python -m benchmarks.ops.recurrent --quick    # 100k steps, shorter timings (CI)

Recompute (GRU 64 and GRU 256, every state of the buffer): ``buf.recompute_hidden(gru)``
against a per-episode Python loop (index the episode's rows, run the GRU, write the states
back) and against the GRU alone over the same observations already laid out as [E, 50, 17]
(no gather, no write-back): in one call, and in calls of 2048 episodes, the chunk
``recompute_hidden`` uses (the floor: one giant call is slower at GRU 256).

Sequences (``sample_sequences(64, length=40, burn_in=20)``, uniform, n = 1): against TorchRL's
SliceSampler (64 slices of 60, cut at episode ends, cached trajectory bounds) and a plain torch
implementation of the same windows (index arithmetic plus gathers), on the same data.
"""

import sys
import time

import torch

import pyrl
from pyrl import replay

from ..common import is_quick, median_us, run

OBS, ACT, EPISODE = 17, 6, 50
BATCH, LENGTH, BURN_IN = 64, 40, 20


def build(steps: int, hidden: int, seed: int = 0):
    episodes = steps // EPISODE
    buf = replay.ReplayBuffer(
        episodes * (EPISODE + 1),
        {"obs": (OBS,), "action": (ACT,)},
        recurrent=replay.Recurrent((hidden,)),
        seed=seed,
        max_episode_steps=EPISODE,
        nstep=replay.NStep(1, 0.99),
    )
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(episodes, EPISODE + 1, OBS, generator=gen)
    action = torch.randn(episodes, EPISODE, ACT, generator=gen)
    reward = torch.randn(episodes, EPISODE, generator=gen)
    zeros = torch.zeros(EPISODE + 1, hidden)
    for e in range(episodes):
        buf.add_episode(
            obs=obs[e],
            reward=reward[e],
            terminated=bool(e % 3 == 0),
            action=action[e],
            hidden=zeros,
        )
    return buf, obs


def per_episode_loop(buf, gru):
    """What a user writes without the op: one GRU call per episode, states written back."""
    table = buf.episodes()
    observations, hidden = buf.storage.column("obs"), buf.storage.column("hidden")
    with torch.no_grad():
        for start, length in zip(table["start"].tolist(), table["length"].tolist()):
            rows = (start + torch.arange(length + 1)) % buf.capacity
            h0 = hidden[rows[:1]]
            states, _ = gru(observations[rows[:-1]][None], h0[None])
            hidden[rows[1:]] = states[0]


def batched_pass(gru, obs, chunk=None):
    """The GRU alone over observations already laid out [E, 50, 17]: one call, or one call per
    `chunk` episodes (what recompute_hidden does by default)."""
    chunk = chunk or obs.shape[0]
    with torch.no_grad():
        for first in range(0, obs.shape[0], chunk):
            part = obs[first : first + chunk, :EPISODE]
            gru(part, torch.zeros(1, part.shape[0], gru.hidden_size))


def seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def recompute_table(steps, quick):
    print(
        f"\nrecompute every stored state: {steps:,} steps, {steps // EPISODE:,} episodes of "
        f"{EPISODE}, obs {OBS}, float32, threads {torch.get_num_threads()} (median of "
        f"{1 if quick else 3})"
    )
    header = f"{'GRU':>5} {'baseline':<34} {'baseline s':>11} {'pyrl s':>8} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    repeats = 1 if quick else 3
    for size in (64, 256):
        buf, obs = build(steps, size)
        gru = torch.nn.GRU(OBS, size, batch_first=True)
        ours = seconds(lambda: buf.recompute_hidden(gru), repeats)
        floor = seconds(lambda: batched_pass(gru, obs), repeats)
        chunked = seconds(lambda: batched_pass(gru, obs, 2048), repeats)
        print(
            f"{size:>5} {'one batched GRU pass':<34} {floor:>11.2f} {ours:>8.2f} "
            f"{ours / floor:>7.2f}x of it",
            flush=True,
        )
        print(
            f"{size:>5} {'GRU passes of 2048 episodes (floor)':<34} {chunked:>11.2f} {ours:>8.2f} "
            f"{ours / chunked:>7.2f}x of it",
            flush=True,
        )
        if size == 64:
            loop = seconds(lambda: per_episode_loop(buf, gru), 1)
            print(
                f"{size:>5} {'per-episode Python loop':<34} {loop:>11.2f} {ours:>8.2f} "
                f"{loop / ours:>7.1f}x faster",
                flush=True,
            )


def plain_torch_windows(buf):
    """The same windows in plain torch: draw a transition row uniformly, lay out W + 1 rows,
    mask past the episode's end, gather every column, one-step targets."""
    storage, steps = buf.storage, BURN_IN + LENGTH
    table = buf.episodes()
    slots = storage.episodes.shape[0]
    starts = (table["start"][:, None] + torch.arange(EPISODE)).flatten() % buf.capacity
    lengths = storage.episodes[:, 1]
    terminated = storage.episodes[:, 2].bool()
    offsets = torch.arange(steps + 1)
    columns = {name: storage.column(name) for name in ("obs", "action", "hidden")}
    reward_column = storage.column("reward")

    def sample():
        first = starts[torch.randint(0, starts.shape[0], (BATCH,))]
        episode = storage.row_episode[first] % slots
        t0 = (first - storage.episodes[episode, 0]) % buf.capacity
        remaining = lengths[episode] - t0
        rows = (first[:, None] + offsets) % buf.capacity
        valid = offsets[None, :] <= remaining[:, None]
        obs = columns["obs"][rows] * valid[..., None]
        action = columns["action"][rows[:, :-1]] * valid[:, 1:, None]
        mask = offsets[None, :-1] < remaining[:, None]
        reward = reward_column[rows[:, :-1]] * mask
        last = offsets[None, :-1] + 1 == remaining[:, None]
        discount = torch.where(last & terminated[episode][:, None], 0.0, 0.99) * mask
        return obs, action, columns["hidden"][first], mask, reward, discount

    return sample


def torchrl_windows(buf):
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, ReplayBuffer as TorchRLReplayBuffer, SliceSampler

    storage = buf.storage
    table = buf.episodes()
    rows = ((table["start"][:, None] + torch.arange(EPISODE)) % buf.capacity).flatten()
    episode = torch.arange(len(table["id"])).repeat_interleave(EPISODE)
    data = TensorDict(
        {
            "obs": storage.column("obs")[rows],
            "action": storage.column("action")[rows],
            "hidden": storage.column("hidden")[rows],
            "reward": storage.column("reward")[rows],
            "episode": episode,
        },
        [rows.shape[0]],
    )
    steps = BURN_IN + LENGTH
    sampler = SliceSampler(
        slice_len=steps, traj_key="episode", strict_length=False, cache_values=True
    )
    theirs = TorchRLReplayBuffer(
        storage=LazyTensorStorage(rows.shape[0]), sampler=sampler, batch_size=BATCH * steps
    )
    theirs.extend(data)
    return lambda: theirs.sample()


def sequences_table(steps, min_run_time):
    buf, _ = build(steps, 64)
    print(
        f"\nsample_sequences({BATCH}, length={LENGTH}, burn_in={BURN_IN}): {steps:,} steps, "
        f"obs {OBS}, action {ACT}, hidden 64, uniform, n = 1"
    )
    ours = median_us(lambda: buf.sample_sequences(BATCH, LENGTH, burn_in=BURN_IN), min_run_time)
    header = f"{'baseline':<40} {'baseline us':>12} {'pyrl us':>9} {'speedup':>9}"
    print(header)
    print("-" * len(header))
    peers = [
        ("TorchRL SliceSampler (cached)", torchrl_windows),
        ("plain torch windows (gathers)", plain_torch_windows),
    ]
    for name, make in peers:
        try:
            theirs = make(buf)
        except ImportError as err:
            print(f"skipped {name}: {err}")
            continue
        theirs()
        t = median_us(theirs, min_run_time)
        print(f"{name:<40} {t:>12.0f} {ours:>9.0f} {t / ours:>8.1f}x", flush=True)


def main(argv=None):
    quick = is_quick(__doc__, argv)
    steps = 100_000 if quick else 1_000_000
    print(f"pyrl {pyrl.__version__} | torch {torch.__version__}")
    sequences_table(steps, 0.2 if quick else 1.0)
    recompute_table(steps, quick)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "recurrent"))
