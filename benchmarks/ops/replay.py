"""pyrl's replay buffer beside cpprb, SB3, TorchRL, rlox and a numpy sum tree, in one process.

    python -m benchmarks.ops.replay            # full timings
    python -m benchmarks.ops.replay --quick    # shorter timings (CI)

Every buffer holds 1,000,000 transitions of obs 17 and action 6 (float32), full before timing;
prioritized ones use alpha 0.6 and beta 0.4; batches are 256. Rows:
  add 1 step        one transition (pyrl: one step of one environment, committed as the episode
                    ends every 1000 steps; the others: one row with its next_obs)
  add 1000          1000 transitions at once (pyrl: add_episode of a 1000-step episode)
  sample+update     prioritized sample(256), then update_priorities(256) of the sampled rows
  add 1 step (numpy) one step as gymnasium gives it: float32 observations, a float64 reward and
                    bool flags as numpy arrays (SB3 takes numpy too)
  sample            sample(256) alone, prioritized and uniform
Then pyrl on its own: sample+update through each call route (the buffer's direct route and
torch.ops.pyrl's dispatcher), check() over the whole buffer, and sample+update's rate while
another thread adds steps continuously, against its rate alone.
Times are medians of torch.utils.benchmark's blocked_autorange; the speedup column is
baseline time / pyrl time. A peer that is not installed, or whose binary does not load, gets a
line saying why instead of a row. Each buffer's batch is checked (shapes, weights) before timing.
"""

import sys
import threading
import time
import warnings

import numpy as np
import torch

import pyrl
from pyrl import replay
from pyrl.replay.layout import OUTPUTS

from ..common import interleaved, is_quick, median_us, run

# The add timings step one long episode on purpose: its stage filling up is not a mistake here.
warnings.filterwarnings("ignore", message="ReplayBuffer.add: an episode reached max_episode_steps")

CAPACITY, OBS, ACT, BATCH = 1_000_000, 17, 6, 256
ALPHA, BETA = 0.6, 0.4
EPISODE = 1000


# ---- pyrl ----------------------------------------------------------------------------------------


def pyrl_buffer(prioritized):
    buf = replay.ReplayBuffer(
        CAPACITY,
        {"obs": (OBS,), "action": (ACT,)},
        seed=0,
        prioritized=replay.PER(ALPHA, BETA) if prioritized else None,
    )
    g = torch.Generator().manual_seed(0)
    obs, action = torch.randn(EPISODE + 1, OBS, generator=g), torch.randn(EPISODE, ACT, generator=g)
    while len(buf) < CAPACITY - 2 * EPISODE:
        buf.add_episode(obs=obs, action=action, reward=torch.randn(EPISODE, generator=g))
    return buf


def pyrl_ops(prioritized):
    buf = pyrl_buffer(prioritized)
    o, a, r = torch.randn(1, OBS), torch.randn(1, ACT), torch.randn(1)
    no = torch.zeros(1, dtype=torch.bool)
    eo, ea, er = torch.randn(1001, OBS), torch.randn(1000, ACT), torch.randn(1000)

    def add_one():
        buf.add(obs=o, action=a, reward=r, next_obs=o, terminated=no, truncated=no)

    def sample_update():
        batch = buf.sample(BATCH)
        buf.update_priorities(batch.index, batch.generation, batch.reward.abs())

    rng = np.random.default_rng(0)
    flag, o32 = np.zeros(1, dtype=bool), rng.standard_normal((1, OBS)).astype(np.float32)
    a32, r64 = rng.standard_normal((1, ACT)).astype(np.float32), np.zeros(1)  # float64 reward

    def add_numpy():
        buf.add(obs=o32, action=a32, reward=r64, next_obs=o32, terminated=flag, truncated=flag)

    return dict(
        add_one=add_one,
        add_numpy=add_numpy,
        buffer=buf,
        add_many=lambda: buf.add_episode(obs=eo, action=ea, reward=er),
        sample=lambda: buf.sample(BATCH),
        sample_update=sample_update if prioritized else None,
        check=lambda: check_batch(buf.sample(BATCH), "obs", "weight"),
    )


# ---- peers ---------------------------------------------------------------------------------------


def cpprb_ops(prioritized):
    import cpprb

    env_dict = {
        "obs": {"shape": OBS},
        "act": {"shape": ACT},
        "rew": {},
        "next_obs": {"shape": OBS},
        "done": {},
    }
    buf = (
        cpprb.PrioritizedReplayBuffer(CAPACITY, env_dict, alpha=ALPHA)
        if prioritized
        else cpprb.ReplayBuffer(CAPACITY, env_dict)
    )
    rng = np.random.default_rng(0)
    many = dict(
        obs=rng.standard_normal((1000, OBS), dtype=np.float32),
        act=rng.standard_normal((1000, ACT), dtype=np.float32),
        rew=rng.standard_normal(1000, dtype=np.float32),
        next_obs=rng.standard_normal((1000, OBS), dtype=np.float32),
        done=np.zeros(1000, dtype=np.float32),
    )
    for _ in range(CAPACITY // 1000):
        buf.add(**many)
    one = {k: v[0] for k, v in many.items()}

    def sample():
        return buf.sample(BATCH, beta=BETA) if prioritized else buf.sample(BATCH)

    def sample_update():
        batch = buf.sample(BATCH, beta=BETA)
        buf.update_priorities(batch["indexes"], np.abs(batch["rew"][:, 0]) + 1e-6)

    return dict(
        add_one=lambda: buf.add(**one),
        add_numpy=None,
        add_many=lambda: buf.add(**many),
        sample=sample,
        sample_update=sample_update if prioritized else None,
        check=lambda: check_batch(sample(), "obs", "weights" if prioritized else None),
    )


def rlox_ops(prioritized):
    """rlox (Rust + PyO3): its ReplayBuffer or PrioritizedReplayBuffer; each sample call gets a
    new seed (its draws take one: a fixed seed would draw the same cache-warm rows)."""
    import itertools

    import rlox

    rng = np.random.default_rng(0)
    obs = rng.standard_normal((1001, OBS), dtype=np.float32)
    act = rng.standard_normal((1000, ACT), dtype=np.float32)
    rew = rng.standard_normal(1000, dtype=np.float32)
    flags = np.zeros(1000, dtype=np.uint8)
    if prioritized:
        buf = rlox.PrioritizedReplayBuffer(CAPACITY, OBS, ACT, alpha=ALPHA, beta=BETA)
        for i in range(CAPACITY):
            j = i % 1000
            buf.push(obs[j], act[j], float(rew[j]), False, False, obs[j + 1])
    else:
        buf = rlox.ReplayBuffer(CAPACITY, OBS, ACT)
    many = (obs[:-1].ravel(), obs[1:].ravel(), act.ravel(), rew, flags, flags)
    while not prioritized and len(buf) < CAPACITY:
        buf.push_batch(*many)
    seed = itertools.count().__next__
    td = np.abs(rng.standard_normal(BATCH)) + 1e-6

    def sample():
        return buf.sample(BATCH, seed())

    def sample_update():
        buf.update_priorities(sample()["indices"], td)

    return dict(
        add_one=lambda: buf.push(obs[0], act[0], 0.0, False, False, obs[1]),
        add_numpy=None,
        add_many=None if prioritized else lambda: buf.push_batch(*many),
        sample=sample,
        sample_update=sample_update if prioritized else None,
        check=lambda: check_batch(sample(), "obs", "weights" if prioritized else None),
    )


def sb3_ops():
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer

    buf = SB3ReplayBuffer(
        CAPACITY,
        spaces.Box(-np.inf, np.inf, (OBS,), np.float32),
        spaces.Box(-1, 1, (ACT,), np.float32),
        device="cpu",
        n_envs=1,
        handle_timeout_termination=False,
    )
    rng = np.random.default_rng(0)
    buf.observations[:] = rng.standard_normal(buf.observations.shape, dtype=np.float32)
    buf.next_observations[:] = rng.standard_normal(buf.next_observations.shape, dtype=np.float32)
    buf.actions[:] = rng.standard_normal(buf.actions.shape, dtype=np.float32)
    buf.full = True
    o = rng.standard_normal((1, OBS), dtype=np.float32)
    a = rng.standard_normal((1, ACT), dtype=np.float32)
    r, d = np.zeros(1, dtype=np.float32), np.zeros(1, dtype=np.float32)
    return dict(
        add_one=lambda: buf.add(o, o, a, r, d, [{}]),
        add_numpy=lambda: buf.add(o, o, a, np.zeros(1), np.zeros(1, dtype=bool), [{}]),
        add_many=None,
        sample=lambda: buf.sample(BATCH),
        sample_update=None,
        check=lambda: check_batch(buf.sample(BATCH)._asdict(), "observations", None),
    )


def torchrl_ops(prioritized):
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, ReplayBuffer as TorchRLReplayBuffer

    if prioritized:
        from torchrl.data import PrioritizedSampler

        try:
            sampler = PrioritizedSampler(CAPACITY, alpha=ALPHA, beta=BETA)
        except (ImportError, RuntimeError, OSError) as err:
            raise ImportError(f"its C++ segment tree does not load ({str(err)[:80]}...)") from err
    else:
        from torchrl.data import RandomSampler

        sampler = RandomSampler()
    buf = TorchRLReplayBuffer(
        storage=LazyTensorStorage(CAPACITY), sampler=sampler, batch_size=BATCH
    )

    def rows(n):
        return TensorDict(
            {
                "obs": torch.randn(n, OBS),
                "action": torch.randn(n, ACT),
                "reward": torch.randn(n),
                "next_obs": torch.randn(n, OBS),
            },
            [n],
        )

    many = rows(1000)
    for _ in range(CAPACITY // 100_000):
        buf.extend(rows(100_000))
    one = rows(1)[0]
    return dict(
        add_one=lambda: buf.add(one),
        add_numpy=None,
        add_many=lambda: buf.extend(many),
        sample=lambda: buf.sample(),
        sample_update=None,
        check=lambda: check_batch(dict(buf.sample().items()), "obs", None),
    )


class NumpySumTree:
    """The textbook proportional PER in numpy: a binary sum tree and min tree, vectorised
    stratified descent, and leaf-to-root refresh of the updated leaves."""

    def __init__(self, capacity):
        self.leaves = 1 << (capacity - 1).bit_length()
        self.sum = np.zeros(2 * self.leaves)
        self.min = np.full(2 * self.leaves, np.inf)
        self.capacity, self.cursor, self.max_priority = capacity, 0, 1.0
        self.obs = np.zeros((capacity, OBS), np.float32)
        self.next_obs = np.zeros((capacity, OBS), np.float32)
        self.act = np.zeros((capacity, ACT), np.float32)
        self.rew = np.zeros(capacity, np.float32)
        self.rng = np.random.default_rng(0)

    def _set(self, index, leaf):
        node = index + self.leaves
        self.sum[node], self.min[node] = leaf, leaf
        while node[0] > 1:
            node = np.unique(node // 2)
            self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1]
            self.min[node] = np.minimum(self.min[2 * node], self.min[2 * node + 1])

    def add(self, obs, act, rew, next_obs):
        n = len(rew)
        index = (self.cursor + np.arange(n)) % self.capacity
        self.obs[index], self.act[index], self.rew[index], self.next_obs[index] = (
            obs,
            act,
            rew,
            next_obs,
        )
        self._set(index, np.full(n, self.max_priority**ALPHA))
        self.cursor = (self.cursor + n) % self.capacity

    def sample(self, count, beta):
        total = self.sum[1]
        mass = (np.arange(count) + self.rng.random(count)) * total / count
        node = np.ones(count, dtype=np.int64)
        while node[0] < self.leaves:
            left = self.sum[2 * node]
            right = mass >= left
            mass -= left * right
            node = 2 * node + right
        index = node - self.leaves
        weight = (self.min[1] / self.sum[node]) ** beta
        return dict(
            obs=self.obs[index],
            act=self.act[index],
            rew=self.rew[index],
            next_obs=self.next_obs[index],
            weights=weight,
            indexes=index,
        )

    def update_priorities(self, index, td):
        priority = np.abs(td) + 1e-6
        self.max_priority = max(self.max_priority, priority.max())
        self._set(index, priority**ALPHA)


def numpy_ops():
    buf = NumpySumTree(CAPACITY)
    rng = np.random.default_rng(0)
    many = (
        rng.standard_normal((1000, OBS), dtype=np.float32),
        rng.standard_normal((1000, ACT), dtype=np.float32),
        rng.standard_normal(1000, dtype=np.float32),
        rng.standard_normal((1000, OBS), dtype=np.float32),
    )
    for _ in range(CAPACITY // 1000):
        buf.add(*many)
    one = tuple(x[:1] for x in many)

    def sample_update():
        batch = buf.sample(BATCH, BETA)
        buf.update_priorities(batch["indexes"], batch["rew"])

    return dict(
        add_one=lambda: buf.add(*one),
        add_numpy=None,
        add_many=lambda: buf.add(*many),
        sample=lambda: buf.sample(BATCH, BETA),
        sample_update=sample_update,
        check=lambda: check_batch(buf.sample(BATCH, BETA), "obs", "weights"),
    )


def check_batch(batch, obs_key, weight_key):
    obs = np.asarray(batch[obs_key])
    assert obs.shape[0] == BATCH and obs.shape[-1] == OBS, obs.shape
    if weight_key is not None:
        weight = np.asarray(batch[weight_key], dtype=np.float64).reshape(-1)
        assert weight.shape == (BATCH,) and np.all(weight > 0) and np.all(weight <= 1 + 1e-6)


# ---- the table -----------------------------------------------------------------------------------


PEERS = [
    ("cpprb PrioritizedReplayBuffer", lambda: cpprb_ops(True), True),
    ("cpprb ReplayBuffer", lambda: cpprb_ops(False), False),
    ("SB3 ReplayBuffer", sb3_ops, False),
    ("rlox PrioritizedReplayBuffer", lambda: rlox_ops(True), True),
    ("rlox ReplayBuffer", lambda: rlox_ops(False), False),
    ("TorchRL ReplayBuffer+PrioritizedSampler", lambda: torchrl_ops(True), True),
    ("TorchRL ReplayBuffer (uniform)", lambda: torchrl_ops(False), False),
    ("numpy sum tree (binary)", numpy_ops, True),
]
ROWS = [
    ("add 1 step", "add_one"),
    ("add 1 step (numpy)", "add_numpy"),
    ("add 1000", "add_many"),
    ("sample+update", "sample_update"),
    ("sample", "sample"),
]


# ---- pyrl on its own -----------------------------------------------------------------------------


def dispatcher_sample_update(buf):
    """sample+update through torch.ops.pyrl (what opcheck and torch.compile see)."""
    storage, config = buf.storage, buf.op_config
    applied = torch.empty(BATCH, dtype=torch.bool)
    slot = {name: i for i, name in enumerate(OUTPUTS["replay_sample"])}  # outputs by name
    index, generation, reward = slot["index"], slot["generation"], slot["reward"]

    def run():
        out = torch.ops.pyrl.replay_sample(storage.state, storage.columns, BATCH, None, config)
        torch.ops.pyrl.replay_update_priorities(
            storage.state, out[index], out[generation], out[reward].abs(), config, applied
        )

    return run


def sample_routes(buf):
    """The one compiled sample(BATCH) call of a buffer by both routes: the host (the buffer's
    own route: pybind11, no dispatcher) and torch.ops.pyrl."""
    storage, config, host = buf.storage, buf.op_config, buf.storage.host

    def direct():
        host.sample(BATCH, None)

    def dispatched():
        torch.ops.pyrl.replay_sample(storage.state, storage.columns, BATCH, None, config)

    return direct, dispatched


def rate_per_s(fn, seconds):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def concurrent_rates(ops, seconds):
    """sample+update calls/s alone, then while a second thread adds one step at a time."""
    alone = rate_per_s(ops["sample_update"], seconds)
    stop, adds = threading.Event(), [0]

    def adder():
        while not stop.is_set():
            ops["add_one"]()
            adds[0] += 1

    thread = threading.Thread(target=adder)
    thread.start()
    try:
        shared = rate_per_s(ops["sample_update"], seconds)
    finally:
        stop.set()
        thread.join()
    return alone, shared, adds[0] / seconds


def pyrl_only(ours, min_run_time):
    buf = ours[True]["buffer"]
    print()
    header = f"{'pyrl path':<52} {'us':>9} {'note':<30}"
    print(header)
    print("-" * len(header))
    direct = median_us(ours[True]["sample_update"], min_run_time)
    dispatched = median_us(dispatcher_sample_update(buf), min_run_time)
    print(f"{'sample+update (PER), direct route (the buffer)':<52} {direct:>9.1f}")
    print(
        f"{'sample+update (PER), torch.ops.pyrl dispatcher':<52} {dispatched:>9.1f} "
        f"{dispatched / direct:.2f}x the direct route"
    )
    for prioritized in (False, True):
        direct_op, dispatched_op = sample_routes(ours[prioritized]["buffer"])
        kind = "PER" if prioritized else "uniform"
        direct, dispatched = interleaved([direct_op, dispatched_op], min_run_time / 4, 4)
        print(f"{f'sample({BATCH}) op call ({kind}), direct route':<52} {direct:>9.1f}")
        print(
            f"{f'sample({BATCH}) op call ({kind}), torch.ops.pyrl':<52} {dispatched:>9.1f} "
            f"direct saves {1 - direct / dispatched:.0%}"
        )
    print(f"{'check() of the full 1M buffer':<52} {median_us(buf.check, min_run_time):>9.1f}")
    alone, shared, adds = concurrent_rates(ours[True], max(0.5, 3 * min_run_time))
    print(f"{'sample+update/s alone':<52} {alone:>9.0f}")
    print(
        f"{'sample+update/s while a thread adds steps':<52} {shared:>9.0f} "
        f"{shared / alone:.0%} of alone; {adds:,.0f} adds/s"
    )


def main(argv=None):
    min_run_time = 0.1 if is_quick(__doc__, argv) else 1.0

    print(
        f"pyrl {pyrl.__version__} | torch {torch.__version__} | threads {torch.get_num_threads()}"
        f" | capacity {CAPACITY:,} | obs {OBS} action {ACT} float32 | batch {BATCH} | "
        f"alpha {ALPHA} beta {BETA}"
    )
    ours = {True: pyrl_ops(True), False: pyrl_ops(False)}
    for ops in ours.values():
        ops["check"]()
    header = f"{'op':<20} {'baseline':<40} {'baseline us':>12} {'pyrl us':>9} {'speedup':>9}"
    print(header)
    print("-" * len(header))
    skipped = []
    for name, build, prioritized in PEERS:
        try:
            theirs = build()
            theirs["check"]()
        except ImportError as err:
            skipped.append(f"skipped {name}: {err}")
            continue
        mine = ours[prioritized]
        for label, key in ROWS:
            if theirs[key] is None or mine[key] is None:
                continue
            t_theirs = median_us(theirs[key], min_run_time)
            t_mine = median_us(mine[key], min_run_time)
            kind = " (PER)" if prioritized and key.startswith("sample") else ""
            print(
                f"{label + kind:<20} {name:<40} {t_theirs:>12.1f} {t_mine:>9.1f} "
                f"{t_theirs / t_mine:>8.1f}x",
                flush=True,
            )
        del theirs
    for line in skipped:
        print(line)
    pyrl_only(ours, min_run_time)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "replay"))
