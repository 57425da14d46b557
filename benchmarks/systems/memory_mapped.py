"""Buffers larger than RAM: a replay buffer whose columns live in memory-mapped files
(replay.MemoryMapped), sampled at batch 256, beside the same buffer in memory.

    python -m benchmarks.systems.memory_mapped  # 10 GB of columns mapped (needs ~11 GB of disk)
    python -m benchmarks.systems.memory_mapped --quick    # 256 MB (CI)

Rows are Atari-like: 4 stacked 84x84 uint8 frames, an int64 action, a float32 reward (28,240
bytes). The buffer is filled with 1000-step episodes, then sampled (uniform, 1-step) at batch
256. RssAnon (/proc/self/status) is the process's anonymous memory: the mapped columns live in
the page cache, not in it, so it stays small whatever the buffer's size. The in-memory buffer
is measured at the quick size (an in-memory 10 GB buffer would need 10 GB of RAM).
"""

import gc
import os
import shutil
import sys
import tempfile
import time

import torch

from ..common import is_quick, median_us, run

FRAME, EPISODE, BATCH = (4, 84, 84), 1000, 256
ROW_BYTES = 4 * 84 * 84 + 8 + 4 + 4  # frames, action, reward, padded to 8 bytes


def rss_anon_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def filled(capacity: int, storage=None):
    from pyrl import replay

    buf = replay.ReplayBuffer(
        capacity,
        {"obs": (FRAME, torch.uint8), "action": ((), torch.int64)},
        seed=0,
        storage=storage,
    )
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (EPISODE + 1, *FRAME), dtype=torch.uint8, generator=g)
    action = torch.randint(0, 18, (EPISODE,), generator=g)
    reward = torch.rand(EPISODE, generator=g)
    start = time.perf_counter()
    while len(buf) + EPISODE < capacity - EPISODE - 1:
        frames[:, 0, 0, 0] += 1  # every episode differs a little
        buf.add_episode(obs=frames, action=action, reward=reward)
    return buf, time.perf_counter() - start


def main() -> None:
    quick = is_quick(__doc__)
    from pyrl import replay

    small = 256 * 2**20 // ROW_BYTES
    big = (256 * 2**20 if quick else 10 * 10**9) // ROW_BYTES
    min_run_time = 0.5 if quick else 3.0
    root = tempfile.mkdtemp(prefix="pyrl-mmap-", dir=os.environ.get("PYRL_BENCH_DIR"))
    print(
        f"\nMemory-mapped replay columns: rows of {ROW_BYTES:,} bytes (4x84x84 uint8 frames), "
        f"sample({BATCH}), files in {root}\n"
    )
    print(
        f"{'buffer':<20}{'columns':>10}{'fill s':>9}{'sample µs':>12}{'RssAnon MB':>12}"
        f"{'of it, growth':>15}"
    )
    try:
        base = rss_anon_mb()
        buf, seconds = filled(small)
        sample = median_us(lambda: buf.sample(BATCH), min_run_time)
        print(
            f"{'in memory':<20}{small * ROW_BYTES / 1e9:>8.2f}GB{seconds:>9.1f}{sample:>12.0f}"
            f"{rss_anon_mb():>12.0f}{rss_anon_mb() - base:>15.0f}"
        )
        buf = None
        gc.collect()
        for rows in sorted({small, big}):
            base = rss_anon_mb()
            path = os.path.join(root, f"columns-{rows}")
            buf, seconds = filled(rows, replay.MemoryMapped(path))
            sample = median_us(lambda: buf.sample(BATCH), min_run_time)
            start = time.perf_counter()
            buf.save(os.path.join(root, f"buffer-{rows}.pt"))
            saved = time.perf_counter() - start
            print(
                f"{'memory-mapped':<20}{rows * ROW_BYTES / 1e9:>8.2f}GB{seconds:>9.1f}"
                f"{sample:>12.0f}{rss_anon_mb():>12.0f}{rss_anon_mb() - base:>15.0f}   "
                f"(save: {saved:.1f} s, "
                f"checkpoint {os.path.getsize(os.path.join(root, f'buffer-{rows}.pt')) / 2**20:.0f}"
                " MB)"
            )
            buf = None
            gc.collect()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        "\nRssAnon: the process's anonymous memory after the buffer was built and sampled, and "
        "its growth meanwhile (a mapped buffer's trees, episode table and stage; its columns "
        "are file pages, in the page cache while RAM allows)"
    )


if __name__ == "__main__":
    sys.exit(run(main, "memory_mapped"))
