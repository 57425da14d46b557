"""pyrl's returns ops on a GPU beside the usual ways of computing them there, on the same inputs,
in one process.

    python -m benchmarks.ops.gpu            # full table
    python -m benchmarks.ops.gpu --quick    # shorter timings

For each op and shape: pyrl on CUDA tensors; the CleanRL-style torch loop over time on the same
CUDA tensors (what GPU-resident PPO code does today); and pyrl on the CPU with the copies there and
back (what a user without CUDA kernels does). The floor is the bytes the op must read and write
divided by this GPU's measured device-to-device copy bandwidth. Every baseline's output is checked
against pyrl's before it is timed. Times are medians of torch.utils.benchmark's blocked_autorange
(which synchronises the device). Without a GPU the script says so and exits.
"""

import sys

import torch

import pyrl
from pyrl import returns

from . import returns as bench_returns  # the same rollouts
from ..common import is_quick, median_us, run

SHAPES = [(2048, 1), (128, 64), (16, 4096), (32, 16384), (1000, 1000), (2048, 4096)]
GAMMA, LMBDA = 0.99, 0.95


def make_rollout(T, N, device, seed=0):
    return {k: v.to(device) for k, v in bench_returns.make_rollout(T, N, seed).items()}


def gae_torch_loop(r):
    """CleanRL ppo.py's advantage loop, per step on [N] tensors (here on the GPU)."""
    reward, value, next_value = r["reward"], r["value"], r["next_value"]
    not_terminal = (~r["terminated"]).to(reward.dtype)
    cont = (~(r["terminated"] | r["truncated"])).to(reward.dtype)
    advantages = torch.empty_like(reward)
    last = torch.zeros_like(reward[0])
    for t in reversed(range(reward.shape[0])):
        c = cont[t] if t < reward.shape[0] - 1 else torch.zeros_like(cont[t])
        delta = reward[t] + GAMMA * next_value[t] * not_terminal[t] - value[t]
        last = delta + GAMMA * LMBDA * c * last
        advantages[t] = last
    return advantages, advantages + value


def gae_cpu_round_trip(r):
    cpu = {k: v.cpu() for k, v in r.items()}
    adv, ret = returns.gae(**cpu, gamma=GAMMA, lmbda=LMBDA)
    return adv.cuda(), ret.cuda()


def copy_bandwidth() -> float:
    """Bytes per second of a device-to-device copy (read + write counted), 1 GiB."""
    src = torch.empty(1 << 28, device="cuda")
    dst = torch.empty_like(src)
    us = median_us(dst.copy_, 0.2, src)
    return 2 * src.numel() * src.element_size() / (us * 1e-6)


def main() -> int:
    quick = is_quick(__doc__)
    if not torch.cuda.is_available() or not pyrl.build_info()["cuda"]:
        print("bench_gpu: needs a GPU and pyrl built with CUDA kernels; skipped")
        return 0
    run_time = 0.05 if quick else 0.3
    bandwidth = copy_bandwidth()
    print(
        f"pyrl {pyrl.__version__} | torch {torch.__version__} | {torch.cuda.get_device_name()} | "
        f"copy bandwidth {bandwidth / 1e12:.2f} TB/s | float32 | gamma {GAMMA} lmbda {LMBDA}"
    )
    header = (
        f"{'op':<22}{'T x N':>12}{'floor us':>10}{'pyrl cuda us':>14}{'torch loop us':>15}"
        f"{'speedup':>9}{'cpu+copies us':>15}{'speedup':>9}"
    )
    print(header)
    print("-" * len(header))
    for T, N in SHAPES:
        r = make_rollout(T, N, "cuda")
        # reads reward, value, next_value (4 B each) and two flags (1 B each); writes two outputs
        floor = T * N * (3 * 4 + 2 + 2 * 4) / bandwidth * 1e6
        pyrl_gae = lambda: returns.gae(**r, gamma=GAMMA, lmbda=LMBDA)  # noqa: E731
        want = pyrl_gae()
        ours = median_us(pyrl_gae, run_time)
        row = f"{'gae':<22}{f'{T}x{N}':>12}{floor:>10.1f}{ours:>14.1f}"
        for baseline in (gae_torch_loop, gae_cpu_round_trip):
            got = baseline(r)
            torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-4)
            theirs = median_us(baseline, run_time, r)
            row += f"{theirs:>15.1f}{theirs / ours:>8.1f}x"
        print(row)
    print()
    print(
        f"{'op':<34}{'T x N':>12}{'floor us':>10}{'pyrl cuda us':>14}{'cpu+copies us':>15}"
        f"{'speedup':>9}"
    )
    for T, N in [(128, 64), (32, 16384), (1000, 1000)]:
        r = make_rollout(T, N, "cuda", seed=1)
        u = torch.rand(T, N, device="cuda")
        log_rho = 0.3 * torch.randn(T, N, device="cuda")
        nv = dict((k, r[k]) for k in ("reward", "next_value", "terminated", "truncated"))
        ops = {
            "discounted_return": (lambda d: returns.discounted_return(**d, gamma=GAMMA), nv, 4 * 2),
            "lambda_return": (
                lambda d: returns.lambda_return(**d, gamma=GAMMA, lmbda=LMBDA),
                nv,
                8,
            ),
            "nstep_return (floating, n=5)": (
                lambda d: returns.nstep_return(
                    d["reward"], d["terminated"], d["truncated"], n=5, gamma=GAMMA, uniform=d["u"]
                ),
                dict(r, u=u),
                4 * 4,
            ),
            "nstep_gae (floating, n=5)": (
                lambda d: returns.nstep_gae(
                    **{k: v for k, v in d.items() if k != "u"},
                    n=5,
                    gamma=GAMMA,
                    lmbda=LMBDA,
                    uniform=d["u"],
                ),
                dict(r, u=u),
                4 * 6,
            ),
            "vtrace": (
                lambda d: returns.vtrace(
                    d["log_rho"],
                    d["reward"],
                    d["value"],
                    d["next_value"],
                    d["terminated"],
                    d["truncated"],
                    gamma=GAMMA,
                ),
                dict(r, log_rho=log_rho),
                4 * 6,
            ),
            "retrace": (
                lambda d: returns.retrace(
                    d["log_rho"],
                    d["reward"],
                    d["value"],
                    d["next_value"],
                    d["terminated"],
                    d["truncated"],
                    gamma=GAMMA,
                ),
                dict(r, log_rho=log_rho),
                4 * 5,
            ),
        }
        for name, (fn, inputs, bytes_per_element) in ops.items():
            floor = T * N * (bytes_per_element + 2) / bandwidth * 1e6
            ours = median_us(fn, run_time, inputs)
            on_cpu = {k: v.cpu() for k, v in inputs.items()}

            def round_trip(d, fn=fn):
                out = fn({k: v.cpu() for k, v in d.items()})
                return tuple(o.cuda() for o in out) if isinstance(out, tuple) else out.cuda()

            want, got = fn(on_cpu), fn(inputs)
            for a, b in zip(
                want if isinstance(want, tuple) else (want,),
                got if isinstance(got, tuple) else (got,),
            ):
                torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-5)
            theirs = median_us(round_trip, run_time, inputs)
            print(
                f"{name:<34}{f'{T}x{N}':>12}{floor:>10.1f}{ours:>14.1f}{theirs:>15.1f}"
                f"{theirs / ours:>8.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "gpu"))
