"""Where a replay sample's time goes: fixed cost, descent, window and gathers, outputs.

    python -m benchmarks.ops.sample_cost            # 10k, 1M and 16M rows
    python -m benchmarks.ops.sample_cost --quick    # 10k and 1M rows (CI)

Buffers of obs 17 and action 6 (float32) in 1000-step episodes, full; batch 256. Each part is a
difference of two timings of the same buffer, medians of interleaved rounds:
  fixed          sample(1, out=batch): the call, the checks, one draw
  window+gather  per sample, uniform sample(256, out=) less the fixed cost: the row draw, the
                 episode record, the window's return and the copies of obs, action, next_obs
  descent        per sample, prioritized sample(256, out=) less uniform: the 8-ary tree descent
                 and the IS weight
  outputs        a fresh sample(256) less sample(256, out=): one allocation and a Python tensor
                 per output
docs/performance.md reads this table beside the memory latency of benchmarks.ops.memory.
"""

import sys

import torch

from pyrl import replay

from ..common import interleaved, is_quick, run

OBS, ACT, EPISODE, BATCH = 17, 6, 1000, 256


def full_buffer(rows, prioritized):
    buf = replay.ReplayBuffer(
        rows,
        {"obs": (OBS,), "action": (ACT,)},
        seed=0,
        prioritized=replay.PER(0.6, 0.4) if prioritized else None,
    )
    g = torch.Generator().manual_seed(0)
    obs, action = torch.randn(EPISODE + 1, OBS, generator=g), torch.randn(EPISODE, ACT, generator=g)
    reward = torch.randn(EPISODE, generator=g)
    for _ in range(rows // (EPISODE + 1)):  # each episode takes EPISODE + 1 rows
        buf.add_episode(obs=obs, action=action, reward=reward)
    return buf


def measure(rows, min_run_time, rounds):
    """Medians of sample(1, out=), uniform and prioritized sample(BATCH, out=), and a fresh
    uniform sample(BATCH), in interleaved rounds."""
    uniform, per = full_buffer(rows, False), full_buffer(rows, True)
    one, uni, pri = uniform.sample(1), uniform.sample(BATCH), per.sample(BATCH)
    fns = [
        lambda: uniform.sample(1, out=one),
        lambda: uniform.sample(BATCH, out=uni),
        lambda: per.sample(BATCH, out=pri),
        lambda: uniform.sample(BATCH),
    ]
    return interleaved(fns, min_run_time, rounds)


def main(argv=None):
    quick = is_quick(__doc__, argv)
    sizes = (10_000, 1_000_000) if quick else (10_000, 1_000_000, 16_000_000)
    min_run_time, rounds = (0.05, 3) if quick else (0.2, 5)
    header = (
        f"{'rows':>12} {'fixed us':>9} {'window+gather ns/sample':>24} {'descent ns/sample':>18} "
        f"{'outputs us':>11} {'sample(256) us':>15}"
    )
    print(f"obs {OBS} action {ACT} float32 | batch {BATCH} | medians of {rounds} rounds")
    print(header)
    print("-" * len(header))
    for rows in sizes:
        fixed, t_uniform, t_per, t_fresh = measure(rows, min_run_time, rounds)
        print(
            f"{rows:>12,} {fixed:>9.2f} {(t_uniform - fixed) / BATCH * 1e3:>24.1f} "
            f"{(t_per - t_uniform) / BATCH * 1e3:>18.1f} {t_fresh - t_uniform:>11.2f} "
            f"{t_fresh:>15.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "sample_cost"))
