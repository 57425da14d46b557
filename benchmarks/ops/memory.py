"""This machine's memory latency: the floor under a replay sample's random reads.

    python -m benchmarks.ops.memory            # full timings
    python -m benchmarks.ops.memory --quick    # shorter timings (CI)

A pointer chase (each load's address is the previous load's value, so no two loads overlap) over
a random cycle through n int64 slots, compiled with numba (an optional benchmark peer: without it
this prints one line saying so), for the working sets of a replay column of 10k, 100k, 1M and 16M
rows of 8 bytes. A sample's gathers are independent loads, which overlap: the per-sample time of a
large sample sits between this latency divided by the loads in flight and the latency itself.
The cost model in docs/performance.md reads these numbers.
"""

import sys
import time

import numpy as np

from ..common import is_quick, run

SIZES = (10_000, 100_000, 1_000_000, 16_000_000)


def random_cycle(n, seed=0):
    """next[i] for one random cycle through all n slots (a random order, each slot pointing at
    the next), so a chase visits every slot."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    following = np.empty(n, dtype=np.int64)
    following[order] = np.roll(order, -1)
    return following


def main(argv=None):
    quick = is_quick(__doc__, argv)
    try:
        import numba
    except ImportError as err:
        print(f"skipped: numba is not installed ({err}); the chase needs a compiled loop")
        return 0

    @numba.njit(cache=False)
    def chase(following, hops):
        j = 0
        for _ in range(hops):
            j = following[j]
        return j

    hops = 2_000_000 if quick else 20_000_000
    chase(random_cycle(16), 16)  # compile
    print(f"numba {numba.__version__} | {hops:,} dependent loads per size, median of 3")
    header = f"{'working set':<28} {'bytes':>12} {'ns per load':>12}"
    print(header)
    print("-" * len(header))
    for n in SIZES[:3] if quick else SIZES:
        following = random_cycle(n)
        chase(following, min(hops, 10 * n))  # warm: pages touched, caches filled
        times = []
        for _ in range(3):
            start = time.perf_counter()
            chase(following, hops)
            times.append((time.perf_counter() - start) / hops * 1e9)
        label = f"{n:,} rows x 8 bytes"
        print(f"{label:<28} {n * 8:>12,} {sorted(times)[1]:>12.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "memory"))
