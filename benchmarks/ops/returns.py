"""pyrl's returns ops beside the usual ways of computing them, on the same inputs, in one process.

    python -m benchmarks.ops.returns            # full table
    python -m benchmarks.ops.returns --quick    # short timings, three shapes

Baselines: pyrl.reference (loop over time, torch ops over envs), a Stable-Baselines3-style numpy
loop, Stable-Baselines3's RolloutBuffer.compute_returns_and_advantage, a CleanRL-style torch loop,
a numba loop, and TorchRL's generalized_advantage_estimate / vec_generalized_advantage_estimate.
Optional ones are skipped with a line saying why. Every baseline's output is checked against
pyrl's before it is timed. Times are medians of torch.utils.benchmark's blocked_autorange.
A second table times V-trace and Retrace at the same shapes against a CleanRL-style torch loop,
a numba loop and TorchRL's vtrace_advantage_estimate; a third GAE with per-step gamma and lambda
([T, N] tensors) against TorchRL's tensor-gamma GAE and pyrl's own float-gamma call.
"""

import sys

import numpy as np
import torch
from torch.utils.benchmark import Timer

import pyrl
from pyrl import reference, returns

from ..common import is_quick, median_us, run

SHAPES = [(2048, 1), (2048, 8), (128, 64), (16, 4096), (1000, 1000)]
QUICK_SHAPES = [(2048, 1), (128, 64), (16, 4096)]
GAMMA, LMBDA = 0.99, 0.95


def make_rollout(T, N, seed=0):
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(T + 1, N, generator=g)
    terminated = torch.rand(T, N, generator=g) < 0.005
    truncated = (torch.rand(T, N, generator=g) < 0.005) & ~terminated
    final_value = torch.randn(T, N, generator=g)
    next_value = torch.where(terminated | truncated, final_value, value[1:])
    return dict(
        reward=torch.randn(T, N, generator=g),
        value=value[:-1].contiguous(),
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
    )


# ---- baselines: each takes the rollout dict and returns the advantages ---------------------------


def sb3_style_numpy(r):
    """The loop of SB3's RolloutBuffer.compute_returns_and_advantage, with separate terminal and
    truncation flags; numpy arrays converted once outside the timed region."""
    reward, value, next_value = r["np_reward"], r["np_value"], r["np_next_value"]
    not_terminal, cont = r["np_not_terminal"], r["np_continues"]
    advantages = np.zeros_like(reward)
    last_gae_lam = 0.0
    for step in reversed(range(reward.shape[0])):
        delta = reward[step] + GAMMA * next_value[step] * not_terminal[step] - value[step]
        last_gae_lam = delta + GAMMA * LMBDA * cont[step] * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages, advantages + value


def cleanrl_style_torch(r):
    """CleanRL ppo.py's advantage loop, per step on [N] tensors."""
    reward, value, next_value = r["reward"], r["value"], r["next_value"]
    not_terminal, cont = r["not_terminal"], r["continues"]
    advantages = torch.zeros_like(reward)
    lastgaelam = 0
    for t in reversed(range(reward.shape[0])):
        delta = reward[t] + GAMMA * next_value[t] * not_terminal[t] - value[t]
        advantages[t] = lastgaelam = delta + GAMMA * LMBDA * cont[t] * lastgaelam
    return advantages, advantages + value


def numba_loop():
    try:
        import numba
    except ImportError as err:
        return None, f"numba not installed ({err})"

    @numba.njit(cache=False)
    def gae(reward, value, next_value, terminated, truncated, gamma, lmbda):
        T, N = reward.shape
        advantages = np.empty_like(reward)
        value_target = np.empty_like(reward)
        carry = np.zeros(N, dtype=np.float64)
        for t in range(T - 1, -1, -1):
            for c in range(N):
                bootstrap = 0.0 if terminated[t, c] else next_value[t, c]
                delta = reward[t, c] + gamma * bootstrap - value[t, c]
                if terminated[t, c] or truncated[t, c] or t == T - 1:
                    carry[c] = delta
                else:
                    carry[c] = delta + gamma * lmbda * carry[c]
                advantages[t, c] = carry[c]
                value_target[t, c] = carry[c] + value[t, c]
        return advantages, value_target

    def run(r):
        return gae(
            r["np_reward"],
            r["np_value"],
            r["np_next_value"],
            r["np_terminated"],
            r["np_truncated"],
            GAMMA,
            LMBDA,
        )

    return run, None


def rlox_gae(T, N):
    """rlox's batched f32 GAE (its layout: flat env-major arrays, one merged done, next values
    from the following step), fed this rollout's values in that layout outside the timing; its
    semantics differ at truncations and episode ends, so it is timed unchecked (rlox.py times it
    on data where both agree, and checks the values)."""
    try:
        import rlox
    except ImportError as err:
        return None, f"rlox not installed ({err})"

    def run(r):
        flat = r.get("rlox")
        if flat is None:
            done = (r["terminated"] | r["truncated"]).float()
            flat = r["rlox"] = [
                x.T.contiguous().numpy().ravel() for x in (r["reward"], r["value"], done)
            ] + [r["next_value"][-1].numpy().copy()]
        rlox.compute_gae_batched_f32(*flat, T, GAMMA, LMBDA)
        return None

    return run, None


def sb3_rollout_buffer(T, N):
    """SB3's own RolloutBuffer.compute_returns_and_advantage (episode_starts and a merged done;
    the timing is what is compared, its semantics differ at truncations)."""
    try:
        from gymnasium import spaces
        from stable_baselines3.common.buffers import RolloutBuffer
    except ImportError as err:
        return None, f"stable-baselines3 not installed ({err})"
    box = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    buffer = RolloutBuffer(T, box, box, device="cpu", gae_lambda=LMBDA, gamma=GAMMA, n_envs=N)

    def run(r):
        buffer.rewards[:] = r["np_reward"]
        buffer.values[:] = r["np_value"]
        buffer.episode_starts[:] = r["np_episode_starts"]
        buffer.compute_returns_and_advantage(r["last_value"], r["np_last_done"])
        return None

    return run, None


def torchrl_functions():
    try:
        from torchrl.objectives.value import functional as F

        r = make_rollout(4, 2)
        F.vec_generalized_advantage_estimate(GAMMA, LMBDA, *_torchrl_args(r), time_dim=0)
    except Exception as err:  # its binary extension may not load with this torch
        return {}, f"torchrl unavailable ({type(err).__name__}: {str(err)[:80]})"

    def wrap(fn):
        return lambda r: tuple(x[..., 0] for x in fn(GAMMA, LMBDA, *r["torchrl"], time_dim=0))

    return {
        "torchrl generalized_advantage_estimate": wrap(F.generalized_advantage_estimate),
        "torchrl vec_generalized_advantage_estimate": wrap(F.vec_generalized_advantage_estimate),
    }, None


def _torchrl_args(r):
    trail = [x.unsqueeze(-1) for x in (r["value"], r["next_value"], r["reward"])]
    return (*trail, (r["terminated"] | r["truncated"]).unsqueeze(-1), r["terminated"].unsqueeze(-1))


def verified_us(fn, r, expected, label: str, min_run_time: float):
    """fn(r)'s median µs, once its first output matches pyrl's (a baseline returning None is
    timed unchecked); None, with a MISMATCH line, when it does not."""
    got = fn(r)
    if got is not None:
        try:
            torch.testing.assert_close(
                torch.as_tensor(np.asarray(got[0])), expected[0], rtol=1e-4, atol=1e-4
            )
        except AssertionError as err:
            print(f"MISMATCH {label}: {str(err)[:200]}")
            return None
    return median_us(fn, min_run_time, r)


def prepare(r):
    """Every baseline's own input layout, built once outside the timed region."""
    T = r["reward"].shape[0]
    ends = r["terminated"] | r["truncated"]
    ends[T - 1] = True
    r["not_terminal"] = (~r["terminated"]).float()
    r["continues"] = (~ends).float()
    for key in (
        "reward",
        "value",
        "next_value",
        "terminated",
        "truncated",
        "not_terminal",
        "continues",
    ):
        r["np_" + key] = r[key].numpy()
    r["np_episode_starts"] = np.zeros_like(r["np_reward"])
    r["np_episode_starts"][1:] = ends[:-1].numpy()
    r["last_value"] = r["next_value"][-1].clone()
    r["np_last_done"] = r["np_terminated"][-1].astype(np.float32)
    r["torchrl"] = _torchrl_args(r)
    return r


def main(argv=None):
    quick = is_quick(__doc__, argv)
    min_run_time = 0.05 if quick else 0.5
    slow_limit = (
        20_000 if quick else 2_000_000
    )  # T * N above which the per-step Python loops are skipped

    info = pyrl.build_info()
    print(
        f"pyrl {pyrl.__version__} | torch {torch.__version__} | cpu isa {info['cpu_isa']} | "
        f"threads {torch.get_num_threads()} | float32 | gamma {GAMMA} lmbda {LMBDA}"
    )
    numba_run, numba_skip = numba_loop()
    torchrl_fns, torchrl_skip = torchrl_functions()
    for reason in (numba_skip, torchrl_skip, rlox_gae(1, 1)[1]):
        if reason:
            print(f"skipped: {reason}")

    header = (
        f"{'op':<5} {'device':<6} {'T x N':<10} {'baseline':<42} {'baseline us':>12} "
        f"{'pyrl us':>9} {'speedup':>9}"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for T, N in QUICK_SHAPES if quick else SHAPES:
        r = prepare(make_rollout(T, N))

        def run_pyrl(r):
            return returns.gae(
                r["reward"],
                r["value"],
                r["next_value"],
                r["terminated"],
                r["truncated"],
                GAMMA,
                LMBDA,
            )

        expected = run_pyrl(r)
        baselines = {}
        if T * N <= slow_limit:
            baselines["pyrl.reference.gae (loop)"] = lambda r: reference.gae(
                r["reward"],
                r["value"],
                r["next_value"],
                r["terminated"],
                r["truncated"],
                GAMMA,
                LMBDA,
            )
            baselines["SB3-style numpy loop"] = sb3_style_numpy
            baselines["CleanRL-style torch loop"] = cleanrl_style_torch
            sb3_run, _ = sb3_rollout_buffer(T, N)
            if sb3_run:
                baselines["SB3 RolloutBuffer.compute_returns_and_adv."] = sb3_run
        if numba_run:
            baselines["numba loop"] = numba_run
        rlox_run, _ = rlox_gae(T, N)
        if rlox_run:
            baselines["rlox compute_gae_batched_f32 (unchecked)"] = rlox_run
        baselines.update(torchrl_fns)

        t_pyrl = median_us(run_pyrl, min_run_time, r)
        for name, fn in baselines.items():
            t_base = verified_us(fn, r, expected, f"{name} at {T}x{N}", min_run_time)
            if t_base is None:
                failures += 1
                continue
            print(
                f"{'gae':<5} {'cpu':<6} {f'{T}x{N}':<10} {name:<42} {t_base:>12.1f} "
                f"{t_pyrl:>9.1f} {t_base / t_pyrl:>8.1f}x"
            )
        sys.stdout.flush()

    print()
    print(other_ops_table(min_run_time))
    print()
    failures += offpolicy_table(min_run_time, slow_limit, QUICK_SHAPES if quick else SHAPES)
    print()
    failures += tensor_gamma_table(min_run_time, [(128, 64)] if quick else SHAPES[:4])
    return 1 if failures else 0


def tensor_gamma_table(min_run_time, shapes) -> int:
    """GAE with gamma and lmbda as [T, N] tensors (TorchRL's tensor gamma); pyrl's float call on
    the same rollout shows what the per-step path costs."""
    try:
        from torchrl.objectives.value import functional as F
    except Exception as err:
        print(f"skipped: torchrl unavailable ({type(err).__name__})")
        F = None
    header = (
        f"{'op':<22} {'T x N':<10} {'baseline':<42} {'baseline us':>12} {'pyrl us':>9} "
        f"{'speedup':>9}"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for T, N in shapes:
        r = prepare(make_rollout(T, N, seed=4))
        g = torch.Generator().manual_seed(5)
        gamma = 0.9 + 0.1 * torch.rand(T, N, generator=g)
        lmbda = 0.8 + 0.2 * torch.rand(T, N, generator=g)
        inputs = (r["reward"], r["value"], r["next_value"], r["terminated"], r["truncated"])

        def run_pyrl(r):
            return returns.gae(*inputs, gamma, lmbda)

        expected = run_pyrl(r)
        t_pyrl = median_us(run_pyrl, min_run_time, r)
        t_float = median_us(lambda r: returns.gae(*inputs, GAMMA, LMBDA), min_run_time, r)
        print(
            f"{'gae, tensor gamma':<22} {f'{T}x{N}':<10} {'pyrl gae, float gamma and lmbda':<42} "
            f"{t_float:>12.1f} {t_pyrl:>9.1f} {t_float / t_pyrl:>8.2f}x"
        )
        if F is None:
            continue
        torchrl = {
            "torchrl generalized_advantage_estimate": F.generalized_advantage_estimate,
            "torchrl vec_generalized_advantage_estimate": F.vec_generalized_advantage_estimate,
        }
        for name, fn in torchrl.items():

            def run_peer(r, fn=fn):
                out = fn(gamma[..., None], lmbda[..., None], *r["torchrl"], time_dim=0)
                return tuple(x[..., 0] for x in out)

            t_base = verified_us(run_peer, r, expected, f"{name} at {T}x{N}", min_run_time)
            if t_base is None:
                failures += 1
                continue
            print(
                f"{'gae, tensor gamma':<22} {f'{T}x{N}':<10} {name:<42} {t_base:>12.1f} "
                f"{t_pyrl:>9.1f} {t_base / t_pyrl:>8.1f}x",
                flush=True,
            )
    return failures


def other_ops_table(min_run_time):
    """The other returns ops against their references at one mid-size shape."""
    T, N = 256, 16
    r = make_rollout(T, N, seed=1)
    flags = (r["terminated"], r["truncated"])
    u = torch.rand(T, N, generator=torch.Generator().manual_seed(2))
    rows = [
        (
            "discounted_return",
            lambda: returns.discounted_return(r["reward"], r["next_value"], *flags, GAMMA),
            lambda: reference.discounted_return(r["reward"], r["next_value"], *flags, GAMMA),
        ),
        (
            "lambda_return",
            lambda: returns.lambda_return(r["reward"], r["next_value"], *flags, GAMMA, LMBDA),
            lambda: reference.lambda_return(r["reward"], r["next_value"], *flags, GAMMA, LMBDA),
        ),
        (
            "nstep_return (floating, n=5)",
            lambda: returns.nstep_return(r["reward"], *flags, n=5, gamma=GAMMA, uniform=u),
            lambda: reference.nstep_return(r["reward"], *flags, n=5, gamma=GAMMA, uniform=u),
        ),
        (
            "nstep_gae (floating, n=5)",
            lambda: returns.nstep_gae(
                r["reward"],
                r["value"],
                r["next_value"],
                *flags,
                n=5,
                gamma=GAMMA,
                lmbda=LMBDA,
                uniform=u,
            ),
            lambda: reference.nstep_gae(
                r["reward"],
                r["value"],
                r["next_value"],
                *flags,
                n=5,
                gamma=GAMMA,
                lmbda=LMBDA,
                uniform=u,
            ),
        ),
    ]
    lines = [f"{'op':<30} {'T x N':<8} {'reference us':>13} {'pyrl us':>9} {'speedup':>9}"]
    for name, fast, slow in rows:
        for a, b in zip(*(x if isinstance(x, tuple) else (x,) for x in (fast(), slow()))):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        t_fast = (
            Timer("f()", globals=dict(f=fast)).blocked_autorange(min_run_time=min_run_time).median
        )
        t_slow = (
            Timer("f()", globals=dict(f=slow)).blocked_autorange(min_run_time=min_run_time).median
        )
        lines.append(
            f"{name:<30} {f'{T}x{N}':<8} {t_slow * 1e6:>13.1f} {t_fast * 1e6:>9.1f} "
            f"{t_slow / t_fast:>8.1f}x"
        )
    return "\n".join(lines)


# ---- V-trace and Retrace ------------------------------------------------------------------------

RHO_BAR = C_BAR = 1.0


def make_offpolicy(T, N, seed=3):
    r = make_rollout(T, N, seed)
    r["log_rho"] = 0.5 * torch.randn(T, N, generator=torch.Generator().manual_seed(seed + 1))
    return r


def vtrace_torch_loop(r):
    """The usual per-step torch loop (as IMPALA ports write it), separate flags."""
    rho = r["log_rho"].exp()
    rhos, cs = rho.clamp(max=RHO_BAR), rho.clamp(max=C_BAR)
    T = rho.shape[0]
    not_terminal = (~r["terminated"]).float()
    cont = (~(r["terminated"] | r["truncated"])).float()
    cont[-1] = 0.0
    value, next_value, reward = r["value"], r["next_value"], r["reward"]
    deltas = rhos * (reward + GAMMA * not_terminal * next_value - value)
    diff = torch.zeros_like(value[0])
    vs_minus_v = torch.zeros_like(value)
    for t in reversed(range(T)):
        diff = deltas[t] + GAMMA * cs[t] * cont[t] * diff
        vs_minus_v[t] = diff
    vs = vs_minus_v + value
    vhat = torch.where(cont.bool(), torch.cat([vs[1:], vs[-1:]]), next_value)
    return vs, rhos * (reward + GAMMA * not_terminal * vhat - value)


def retrace_torch_loop(r):
    c = r["log_rho"].exp().clamp(max=1.0)
    T = c.shape[0]
    not_terminal = (~r["terminated"]).float()
    cont = (~(r["terminated"] | r["truncated"])).float()
    cont[-1] = 0.0
    target = torch.zeros_like(r["reward"])
    carry = torch.zeros_like(r["reward"][0])
    next_c = torch.zeros_like(carry)
    for t in reversed(range(T)):
        g = r["reward"][t] + GAMMA * not_terminal[t] * (
            r["next_value"][t] + cont[t] * next_c * carry
        )
        target[t] = g
        carry, next_c = g - r["value"][t], c[t]
    return (target,)


def offpolicy_numba():
    try:
        import numba
    except ImportError as err:
        print(f"skipped: numba loops ({err})")
        return None, None

    @numba.njit(cache=False)
    def vtrace(log_rho, reward, value, next_value, terminated, truncated, gamma):
        T, N = reward.shape
        vs = np.empty_like(reward)
        pg = np.empty_like(reward)
        diff = np.zeros(N)
        for t in range(T - 1, -1, -1):
            for n in range(N):
                ends = terminated[t, n] or truncated[t, n] or t == T - 1
                ratio = np.exp(log_rho[t, n])
                rho, c = min(RHO_BAR, ratio), min(C_BAR, ratio)
                boot = 0.0 if terminated[t, n] else next_value[t, n]
                d = rho * (reward[t, n] + gamma * boot - value[t, n])
                if not ends:
                    d += gamma * c * diff[n]
                    vhat = value[t + 1, n] + diff[n]
                else:
                    vhat = next_value[t, n]
                if terminated[t, n]:
                    vhat = 0.0
                pg[t, n] = rho * (reward[t, n] + gamma * vhat - value[t, n])
                vs[t, n] = value[t, n] + d
                diff[n] = d
        return vs, pg

    @numba.njit(cache=False)
    def retrace(log_rho, reward, q, next_v, terminated, truncated, gamma):
        T, N = reward.shape
        target = np.empty_like(reward)
        carry = np.zeros(N)
        for t in range(T - 1, -1, -1):
            for n in range(N):
                ends = terminated[t, n] or truncated[t, n] or t == T - 1
                if terminated[t, n]:
                    g = reward[t, n]
                elif ends:
                    g = reward[t, n] + gamma * next_v[t, n]
                else:
                    c = min(1.0, np.exp(log_rho[t + 1, n]))
                    g = reward[t, n] + gamma * (next_v[t, n] + c * carry[n])
                target[t, n] = g
                carry[n] = g - q[t, n]
        return (target,)

    def args(r):
        return tuple(
            r[k].numpy()
            for k in ("log_rho", "reward", "value", "next_value", "terminated", "truncated")
        ) + (GAMMA,)

    return (lambda r: vtrace(*args(r))), (lambda r: retrace(*args(r)))


def torchrl_vtrace():
    try:
        from torchrl.objectives.value.functional import vtrace_advantage_estimate

        vtrace_advantage_estimate  # noqa: B018
    except Exception as err:  # noqa: BLE001 (its binary may not load with this torch)
        return None, f"torchrl vtrace unavailable ({type(err).__name__}: {str(err)[:60]})"

    def run(r):
        trail = [
            x.T.unsqueeze(-1)
            for x in (
                r["log_rho"],
                torch.zeros_like(r["log_rho"]),
                r["value"],
                r["next_value"],
                r["reward"],
            )
        ]
        done = (r["terminated"] | r["truncated"]).T.unsqueeze(-1)
        _, vs = vtrace_advantage_estimate(
            GAMMA,
            *trail,
            done,
            r["terminated"].T.unsqueeze(-1),
            rho_thresh=RHO_BAR,
            c_thresh=C_BAR,
            time_dim=-2,
        )
        return (vs.squeeze(-1).T,)

    return run, None


def offpolicy_table(min_run_time, slow_limit, shapes) -> int:
    numba_vtrace, numba_retrace = offpolicy_numba()
    torchrl_run, skip = torchrl_vtrace()
    if skip:
        print(f"skipped: {skip}")
    header = (
        f"{'op':<8} {'T x N':<10} {'baseline':<32} {'baseline us':>12} {'pyrl us':>9} "
        f"{'speedup':>9}"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for T, N in shapes:
        r = make_offpolicy(T, N)
        args = tuple(
            r[k] for k in ("log_rho", "reward", "value", "next_value", "terminated", "truncated")
        )
        ops = {
            "vtrace": (lambda r: returns.vtrace(*args, GAMMA, RHO_BAR, C_BAR)),
            "retrace": (lambda r: (returns.retrace(*args, GAMMA),)),
        }
        peers = {
            "vtrace": {"numba loop": numba_vtrace, "TorchRL vtrace": torchrl_run},
            "retrace": {"numba loop": numba_retrace},
        }
        if T * N <= slow_limit:
            peers["vtrace"]["CleanRL-style torch loop"] = vtrace_torch_loop
            peers["retrace"]["CleanRL-style torch loop"] = retrace_torch_loop
        for op, run_pyrl in ops.items():
            expected = run_pyrl(r)
            t_pyrl = median_us(run_pyrl, min_run_time, r)
            for name, fn in peers[op].items():
                if fn is None:
                    continue
                # TorchRL's vtrace gives vs only: the first outputs are compared
                t_base = verified_us(fn, r, expected, f"{name} {op} at {T}x{N}", min_run_time)
                if t_base is None:
                    failures += 1
                    continue
                print(
                    f"{op:<8} {f'{T}x{N}':<10} {name:<32} {t_base:>12.1f} {t_pyrl:>9.1f} "
                    f"{t_base / t_pyrl:>8.1f}x",
                    flush=True,
                )
    return failures


if __name__ == "__main__":
    sys.exit(run(main, "returns"))
