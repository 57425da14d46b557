"""The CUDA kernel bodies against the CPU ops: the returns ops, the fused replay sample and the
priority update (their phases, csrc/kernels/replay_sample.h and replay_update.h).

On the CPU, the grid runner (test-only ops ``torch.ops.pyrl_grid``, csrc/torch/grid.cpp) runs each
body over every thread index of the launch the CUDA backend makes, in launch order and in shuffled
orders: a body whose result depended on the order its threads run in would race on the GPU. On a
GPU (tests marked needs_cuda), the same ops run on CUDA tensors. Both are compared with the CPU ops
bit for bit: the sources of these kernels build without contracted multiply-adds
(-ffp-contract=off, nvcc --fmad=false), so each step rounds the same way everywhere.

V-trace and Retrace take exp of the log-ratios: the CPU op vectorises it with glibc's libmvec
(within 4 ulp), the bodies call the scalar exp (CUDA's own on a GPU), so those two are compared
within a few ulp per step of the recurrence instead."""

import pytest
import torch

import pyrl  # noqa: F401  (loads the extension, which registers pyrl_grid)

SHUFFLES = [0, 1, 12345]
SHAPES = [
    (1, 1, None),
    (7, 3, None),
    (64, 5, None),
    (300, 257, None),
    (5, 600, None),
    (33, 9, 3),
    (0, 4, None),
    (4, 0, None),
]


def rollout(T, N, heads, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (T, N) if heads is None else (T, N, heads)
    reward = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    value = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    next_value = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    terminated = torch.rand(T, N, generator=g) < 0.08
    truncated = (torch.rand(T, N, generator=g) < 0.08) & ~terminated
    uniform = torch.rand(T, N, generator=g, dtype=torch.float64).to(dtype)
    log_rho = (0.5 * torch.randn((T, N), generator=g, dtype=torch.float64)).to(dtype)
    gammas = (0.8 + 0.2 * torch.rand(T, N, generator=g, dtype=torch.float64)).to(dtype)
    lmbdas = (0.5 + 0.5 * torch.rand(T, N, generator=g, dtype=torch.float64)).to(dtype)
    return dict(
        gammas=gammas,
        lmbdas=lmbdas,
        reward=reward,
        value=value,
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
        uniform=uniform,
        log_rho=log_rho,
    )


def calls(r, heads):
    """(op name, positional arguments, exact?) for every returns op on rollout r."""
    flags = (r["terminated"], r["truncated"])
    yield "gae", (r["reward"], r["value"], r["next_value"], *flags, 0.97, 0.9), True
    yield "discounted_return", (r["reward"], r["next_value"], *flags, 0.97), True
    yield "lambda_return", (r["reward"], r["next_value"], *flags, 0.97, 0.8), True
    yield "nstep_return", (r["reward"], *flags, None, 4, 0.95), True
    yield "nstep_return", (r["reward"], *flags, r["uniform"], 5, 0.95), True
    yield (
        "nstep_gae",
        (r["reward"], r["value"], r["next_value"], *flags, r["uniform"], 3, 0.95, 0.9),
        True,
    )
    # Per-step gamma and lmbda: the CPU runs the bodies themselves, in order.
    g, lm = r["gammas"], r["lmbdas"]
    yield "gae", (r["reward"], r["value"], r["next_value"], *flags, 1.0, 1.0, g, lm), True
    yield "discounted_return", (r["reward"], r["next_value"], *flags, 1.0, g), True
    yield "lambda_return", (r["reward"], r["next_value"], *flags, 1.0, 1.0, g, lm), True
    yield "nstep_return", (r["reward"], *flags, r["uniform"], 5, 1.0, g), True
    yield (
        "nstep_gae",
        (r["reward"], r["value"], r["next_value"], *flags, r["uniform"], 3, 1.0, 1.0, g, lm),
        True,
    )
    if heads is None:
        two_d = (r["log_rho"], r["reward"], r["value"], r["next_value"], *flags)
        yield "vtrace", (*two_d, 0.97, 1.0, 0.9, 0.95), False
        yield "retrace", (*two_d, 0.97, 0.9), False
        yield "vtrace", (*two_d, 1.0, 1.0, 0.9, 1.0, g, lm), False
        yield "retrace", (*two_d, 1.0, 1.0, g, lm), False


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.fixture(autouse=True)
def launch_order():
    yield
    torch.ops.pyrl_grid.set_shuffle(0)


def assert_same(want, got, exact, what):
    for w, g in zip(as_tuple(want), as_tuple(got)):
        g = g.cpu()
        if exact:
            assert torch.equal(w, g), f"{what} differs"
        else:  # a few ulp per ratio, carried along the recurrence: linear in T at most
            tol = 16 * torch.finfo(w.dtype).eps * max(1, w.shape[0] if w.dim() else 1)
            torch.testing.assert_close(g, w, rtol=tol, atol=tol, msg=what)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N,heads", SHAPES)
def test_bodies_equal_the_cpu_ops_in_any_thread_order(T, N, heads, dtype):
    r = rollout(T, N, heads, dtype, seed=T * 1000 + N)
    for name, args, exact in calls(r, heads):
        want = getattr(torch.ops.pyrl, name)(*args)
        for shuffle in SHUFFLES:
            torch.ops.pyrl_grid.set_shuffle(shuffle)
            got = getattr(torch.ops.pyrl_grid, name)(*args)
            assert_same(want, got, exact, f"{name} (shuffle {shuffle})")


def on(device, args):
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N,heads", SHAPES + [(2048, 1, None), (16, 4096, None)])
def test_gpu_equals_the_cpu_ops(T, N, heads, dtype):
    r = rollout(T, N, heads, dtype, seed=T * 1000 + N)
    for name, args, exact in calls(r, heads):
        want = getattr(torch.ops.pyrl, name)(*args)
        got = getattr(torch.ops.pyrl, name)(*on("cuda", args))
        for g in as_tuple(got):
            assert g.is_cuda and g.is_contiguous()
        assert_same(want, got, exact, f"{name} on CUDA")


@pytest.mark.needs_cuda
def test_gpu_ops_pass_opcheck_and_run_on_the_current_stream_without_syncs():
    r = rollout(37, 5, 2, torch.float32, seed=3)
    r2 = rollout(37, 5, None, torch.float64, seed=4)
    cases = list(calls(r, 2)) + list(calls(r2, None))
    for name, args, _ in cases:
        torch.library.opcheck(getattr(torch.ops.pyrl, name).default, on("cuda", args))
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        inputs = [(name, on("cuda", args), args) for name, args, _ in cases]
        torch.cuda.set_sync_debug_mode("error")
        try:
            outputs = [
                (name, getattr(torch.ops.pyrl, name)(*args), cpu_args)
                for name, args, cpu_args in inputs
                if name not in ("vtrace", "retrace")
            ]  # their NaN check reads one value back
        finally:
            torch.cuda.set_sync_debug_mode(0)
    stream.synchronize()
    for name, got, cpu_args in outputs:
        assert_same(getattr(torch.ops.pyrl, name)(*cpu_args), got, True, f"{name} on a side stream")


@pytest.mark.needs_cuda
def test_gpu_refuses_mixed_devices_and_nan_ratios_by_name():
    r = rollout(6, 3, None, torch.float32, seed=5)
    with pytest.raises(RuntimeError, match=r"pyrl::gae: value should be on reward's device cuda"):
        torch.ops.pyrl.gae(
            r["reward"].cuda(),
            r["value"],
            r["next_value"].cuda(),
            r["terminated"].cuda(),
            r["truncated"].cuda(),
            0.9,
            0.9,
        )
    log_rho = r["log_rho"].clone()
    log_rho[2, 1] = float("nan")
    with pytest.raises(
        RuntimeError, match=r"log_rho should not be NaN, got NaN at flat position 7"
    ):
        torch.ops.pyrl.vtrace(
            *on(
                "cuda",
                (
                    log_rho,
                    r["reward"],
                    r["value"],
                    r["next_value"],
                    r["terminated"],
                    r["truncated"],
                ),
            ),
            0.9,
            1.0,
            1.0,
            1.0,
        )


def test_grid_ops_check_their_arguments_as_the_ops_do():
    r = rollout(6, 3, None, torch.float32, seed=0)
    with pytest.raises(RuntimeError, match="pyrl::gae: lmbda should be in"):
        torch.ops.pyrl_grid.gae(
            r["reward"], r["value"], r["next_value"], r["terminated"], r["truncated"], 0.9, 1.5
        )


def test_every_op_with_a_cuda_kernel_has_a_grid_twin():
    """The bodies the CUDA backend launches are the ones the grid runs: every pyrl op registered
    for CUDA in this build has a pyrl_grid op of the same schema."""
    if not pyrl.build_info()["cuda"]:
        pytest.skip("pyrl was built without CUDA kernels")
    ops = [op for op in torch._C._dispatch_get_all_op_names() if op.startswith("pyrl::")]
    with_cuda = [op for op in ops if torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")]
    assert with_cuda
    for op in with_cuda:
        name = op.split("::")[1]
        schema = str(getattr(torch.ops.pyrl, name).default._schema)
        twin = str(getattr(torch.ops.pyrl_grid, name).default._schema)
        assert twin.replace("pyrl_grid::", "pyrl::") == schema


@pytest.mark.needs_cuda
def test_gpu_takes_the_bootstrap_form_of_next_value():
    """next_value as [N] (the value after the rollout) with final_value at the cuts, on CUDA."""
    from pyrl import returns

    r = rollout(40, 6, None, torch.float32, seed=6)
    cpu = dict(
        reward=r["reward"],
        value=r["value"],
        next_value=r["next_value"][-1],
        terminated=r["terminated"],
        truncated=r["truncated"],
        final_value=r["next_value"],
    )
    gpu = {k: v.cuda() for k, v in cpu.items()}
    for fn in (
        lambda d: returns.gae(**d, gamma=0.97, lmbda=0.9),
        lambda d: returns.nstep_gae(**d, n=3, gamma=0.97, lmbda=0.9),
    ):
        assert_same(fn(cpu), fn(gpu), True, "the [N] bootstrap form on CUDA")


# ---- the priority update's phases (csrc/kernels/replay_update.h) ------------------------------


def prioritized_buffer(capacity, seed, heads=None):
    """A prioritized buffer with random episodes: wrapped around the ring, old ones evicted,
    and priorities already set unevenly."""
    from pyrl import replay

    spec = {"obs": (2,), "action": (1,)}
    if heads is not None:
        spec["reward"] = (heads,)
    buf = replay.ReplayBuffer(
        capacity, spec, seed=seed, prioritized=replay.PER(alpha=0.6, eps=1e-3, p_max=50.0)
    )
    g = torch.Generator().manual_seed(seed)
    for _ in range(3 * capacity // 5):
        T = int(torch.randint(1, max(2, capacity // 4), (1,), generator=g))
        reward = torch.zeros(T) if heads is None else torch.zeros(T, heads)
        buf.add_episode(
            obs=torch.randn(T + 1, 2, generator=g), action=torch.zeros(T, 1), reward=reward
        )
    batch = buf.sample(16)
    buf.update_priorities(batch.index, batch.generation, torch.rand(16, generator=g) * 3)
    return buf, g


def update_cases(buf, g, batch_size, dtype, heads):
    """(index, generation, td_abs) of a sampled batch with duplicate rows, rows overwritten since
    the sample, final-observation rows and free rows mixed in."""
    batch = buf.sample(batch_size)
    index, generation = batch.index.clone(), batch.generation.clone()
    repeat = torch.randint(0, batch_size, (batch_size // 3,), generator=g)
    index[repeat] = index[torch.roll(repeat, 1)]  # the same row twice, its generation kept or not
    generation[repeat] = buf.storage.row_episode[index[repeat]]
    stale = torch.rand(batch_size, generator=g) < 0.15
    generation[stale] += 1
    shape = (batch_size,) if heads is None else (batch_size, heads)
    td = (torch.rand(shape, generator=g, dtype=torch.float64) * 80).to(dtype)  # some above p_max
    td[torch.rand(shape, generator=g) < 0.1] = 0.0
    return index, generation, td


@pytest.mark.parametrize("capacity", [2, 9, 37, 4099])
@pytest.mark.parametrize(
    "dtype, heads", [(torch.float32, None), (torch.float64, None), (torch.float32, 3)]
)
def test_priority_update_phases_equal_the_cpu_op_in_any_thread_order(capacity, dtype, heads):
    buf, g = prioritized_buffer(capacity, seed=capacity, heads=heads)
    for batch_size in (1, 5, 300):
        index, generation, td = update_cases(buf, g, batch_size, dtype, heads)
        want = [t.clone() for t in buf.storage.state]
        applied = torch.zeros(batch_size, dtype=torch.bool)
        torch.ops.pyrl.replay_update_priorities(want, index, generation, td, buf.op_config, applied)
        for shuffle in SHUFFLES:
            torch.ops.pyrl_grid.set_shuffle(shuffle)
            got = [t.clone() for t in buf.storage.state]
            mask = torch.ones(batch_size, dtype=torch.bool)  # every entry is written
            torch.ops.pyrl_grid.replay_update_priorities(
                got, index, generation, td, buf.op_config, mask
            )
            assert torch.equal(mask, applied), f"applied (shuffle {shuffle})"
            for w, t in zip(want, got):
                assert torch.equal(w, t), f"state (shuffle {shuffle}, batch {batch_size})"
        assert 0 < int(applied.sum()) <= batch_size or batch_size == 1


def test_priority_update_phases_check_their_arguments_as_the_op_does():
    buf, _ = prioritized_buffer(20, seed=1)
    state = [t.clone() for t in buf.storage.state]
    with pytest.raises(ValueError, match=r"index\[1\] should be a row in \[0, 20\), got 20"):
        torch.ops.pyrl_grid.replay_update_priorities(
            state,
            torch.tensor([0, 20]),
            torch.tensor([0, 0]),
            torch.ones(2),
            buf.op_config,
            torch.zeros(2, dtype=torch.bool),
        )
    assert all(torch.equal(a, b) for a, b in zip(state, buf.storage.state))


# ---- the fused sample's phases (csrc/kernels/replay_sample.h) ---------------------------------


def goal_buffer(capacity, seed, her=None, **settings):
    """Random goal episodes (a wrapped ring with evictions), some terminated."""
    from pyrl import replay

    reward_shape = settings.pop("reward", ())
    reward_dtype = settings.pop("reward_dtype", torch.float32)
    goal_shape, goal_dtype = settings.pop("goal", ((2,), torch.float32))
    spec = {
        "observation": (2,),
        "achieved_goal": (goal_shape, goal_dtype),
        "desired_goal": (goal_shape, goal_dtype),
        "action": (1,),
        "reward": (reward_shape, reward_dtype),
    }
    buf = replay.ReplayBuffer(capacity, spec, seed=seed, her=her, **settings)
    g = torch.Generator().manual_seed(seed)
    for e in range(2 * capacity // 5):
        T = int(torch.randint(1, max(2, capacity // 5), (1,), generator=g))
        goals = torch.randint(
            0, 2 if goal_dtype == torch.bool else 3, (T + 1, *goal_shape), generator=g
        ).to(goal_dtype)
        buf.add_episode(
            obs={
                "observation": torch.randn(T + 1, 2, generator=g),
                "achieved_goal": goals,
                "desired_goal": goals[-1:].expand(T + 1, *goal_shape).clone(),
            },
            action=torch.zeros(T, 1),
            reward=torch.randn((T, *reward_shape), generator=g, dtype=reward_dtype),
            terminated=bool(e % 3 == 0),
        )
    return buf


def sample_cases():
    from pyrl import replay

    nstep = replay.NStep(3, 0.9, floating=True)
    yield "uniform, direct draws", dict(), 53
    yield "uniform, nearly empty ring (descent)", dict(sparse=True), 401
    yield (
        "PER, batch max weights",
        dict(prioritized=replay.PER(alpha=0.7, beta=0.5, weight_norm="batch")),
        61,
    )
    yield (
        "PER, floating n-step, float64 rewards",
        dict(prioritized=replay.PER(beta_steps=5), nstep=nstep, reward_dtype=torch.float64),
        47,
    )
    for strategy in ("future", "final", "episode", "random"):
        yield (
            f"HER {strategy}",
            dict(her=replay.HER(strategy, 4, replay.sparse_l2(0.5)), nstep=replay.NStep(2, 0.8)),
            59,
        )
    yield (
        "HER recompute, terminal on success",
        dict(
            her=replay.HER(
                "future", 4, replay.sparse_l2(0.5), nstep="recompute", terminal_on_success=True
            ),
            nstep=nstep,
        ),
        67,
    )
    yield (
        "HER per_dim, two heads",
        dict(
            her=replay.HER("episode", 3, replay.per_dim([0.5], [1.0])),
            reward=(2,),
            nstep=replay.NStep(2, 0.9),
        ),
        43,
    )
    yield (
        "HER recompute, int8 goals [2, 3]",
        dict(
            her=replay.HER(
                "future", 4, replay.sparse_l2(1.5), nstep="recompute", terminal_on_success=True
            ),
            nstep=nstep,
            goal=((2, 3), torch.int8),
        ),
        71,
    )
    yield (
        "HER per_dim, bool goals [3]",
        dict(
            her=replay.HER("final", 3, replay.per_dim([0.5], [1.0])),
            reward=(3,),
            goal=((3,), torch.bool),
        ),
        37,
    )
    yield (
        "HER with a Python reward (stored kind)",
        dict(her=replay.HER("future", 4, lambda a, g: -(a - g).abs().sum(-1)), nstep=nstep),
        41,
    )


@pytest.mark.parametrize(
    "case, settings, capacity", list(sample_cases()), ids=[c[0] for c in sample_cases()]
)
def test_sample_phases_equal_the_cpu_op_in_any_thread_order(case, settings, capacity):
    from pyrl.replay.layout import named

    settings = dict(settings)
    sparse = settings.pop("sparse", False)
    if sparse:
        from pyrl import replay

        buf = replay.ReplayBuffer(capacity, {"obs": (2,), "action": (1,)}, seed=3)
        buf.add_episode(obs=torch.randn(6, 2), action=torch.zeros(5, 1), reward=torch.randn(5))
    else:
        buf = goal_buffer(capacity, seed=capacity, **settings)
    if buf.prioritized is not None:
        batch = buf.sample(32)
        buf.update_priorities(batch.index, batch.generation, torch.rand(32) * 4)
    config, columns = buf.op_config, buf.storage.columns
    for batch_size in (1, 7, 300):
        for rows in (None, buf.sample(batch_size).index):  # drawn, or given (episode mode)
            want_state = [t.clone() for t in buf.storage.state]
            want = named(
                "replay_sample",
                torch.ops.pyrl.replay_sample(want_state, columns, batch_size, rows, config),
            )
            for shuffle in SHUFFLES:
                torch.ops.pyrl_grid.set_shuffle(shuffle)
                state = [t.clone() for t in buf.storage.state]
                got = named(
                    "replay_sample",
                    torch.ops.pyrl_grid.replay_sample(state, columns, batch_size, rows, config),
                )
                for name, value in want.items():
                    pairs = (
                        zip(value, got[name]) if isinstance(value, list) else [(value, got[name])]
                    )
                    for w, t in pairs:
                        assert torch.equal(w, t), f"{case}: {name} (batch {batch_size}, {shuffle})"
                assert all(torch.equal(a, b) for a, b in zip(want_state, state))  # draws advanced


# ---- the window ops' bodies (csrc/kernels/sequence_phases.h) ---------------------------------


def recurrent_buffer(capacity, seed, reward_shape=(), reward_dtype=torch.float32, **settings):
    """Random episodes of a recurrent buffer, wrapped around the ring with evictions."""
    from pyrl import replay

    buf = replay.ReplayBuffer(
        capacity,
        {"obs": (3,), "action": ((2,), torch.int64), "reward": (reward_shape, reward_dtype)},
        recurrent=replay.Recurrent((5,)),
        seed=seed,
        **settings,
    )
    g = torch.Generator().manual_seed(seed)
    for _ in range(30):
        T = int(torch.randint(1, max(2, capacity // 3), (1,), generator=g))
        buf.add_episode(
            obs=torch.randn(T + 1, 3, generator=g),
            reward=torch.randn((T, *reward_shape), generator=g).to(reward_dtype),
            terminated=bool(torch.rand(1, generator=g) < 0.5),
            action=torch.randint(0, 9, (T, 2), generator=g),
            hidden=torch.randn(T + 1, 5, generator=g),
        )
    return buf


def window_cases():
    from pyrl import replay

    yield "uniform, one-step", 37, dict(), ()
    yield (
        "PER, batch max, n-step 3, float64",
        64,
        dict(
            prioritized=replay.PER(alpha=0.6, beta_steps=4, weight_norm="batch"),
            nstep=replay.NStep(3, 0.9),
            reward_dtype=torch.float64,
        ),
        (),
    )
    yield "n-step 2, three heads", 23, dict(nstep=replay.NStep(2, 0.8)), (3,)


@pytest.mark.parametrize(
    "case, capacity, settings, heads", list(window_cases()), ids=[c[0] for c in window_cases()]
)
def test_window_bodies_equal_the_cpu_ops_in_any_thread_order(case, capacity, settings, heads):
    from pyrl.replay.layout import named

    settings = dict(settings)
    dtype = settings.pop("reward_dtype", torch.float32)
    buf = recurrent_buffer(capacity, capacity, heads, dtype, **settings)
    if buf.prioritized is not None:
        batch = buf.sample(16)
        buf.update_priorities(batch.index, batch.generation, torch.rand(16) * 3)
    names = [n for n in buf.storage.names if n != "hidden"]
    columns = [buf.storage.column(n) for n in names]
    hidden, config = buf.storage.column("hidden"), buf.op_config
    for count, steps in ((1, 1), (9, 4), (200, capacity // 2)):
        start = buf.sample(count).index
        want = named(
            "replay_gather_windows",
            torch.ops.pyrl.replay_gather_windows(buf.storage.state, columns, start, steps, config),
        )
        want_state = [t.clone() for t in buf.storage.state]
        want_sample = named(
            "replay_sample_windows",
            torch.ops.pyrl.replay_sample_windows(want_state, columns, hidden, count, steps, config),
        )
        for shuffle in SHUFFLES:
            torch.ops.pyrl_grid.set_shuffle(shuffle)
            got = named(
                "replay_gather_windows",
                torch.ops.pyrl_grid.replay_gather_windows(
                    buf.storage.state, columns, start, steps, config
                ),
            )
            state = [t.clone() for t in buf.storage.state]
            got_sample = named(
                "replay_sample_windows",
                torch.ops.pyrl_grid.replay_sample_windows(
                    state, columns, hidden, count, steps, config
                ),
            )
            for expected, actual in ((want, got), (want_sample, got_sample)):
                for name, value in expected.items():
                    pairs = (
                        zip(value, actual[name])
                        if isinstance(value, list)
                        else [(value, actual[name])]
                    )
                    for w, t in pairs:
                        assert torch.equal(w, t), f"{case}: {name} (count {count}, {shuffle})"
            assert all(torch.equal(a, b) for a, b in zip(want_state, state))


# ---- the episode, row and tree ops' bodies (sequence_phases.h, replay_update.h, replay_sample.h)


def test_episode_and_row_bodies_equal_the_cpu_ops_in_any_thread_order():
    buf = recurrent_buffer(41, 7)
    table = buf.episodes()
    state, hidden, obs = buf.storage.state, buf.storage.column("hidden"), buf.storage.column("obs")
    g = torch.Generator().manual_seed(1)
    ids = torch.cat([table["id"], table["id"][:3], torch.tensor([0, -4, 10**6])])  # repeats, gone
    longest = int(table["length"].max()) + 1
    rows = buf.sample(60).index
    generation = buf.storage.row_episode[rows].clone()
    generation[::7] += 1  # some stale
    rows[::5] = rows[0]  # the same row written by several entries
    values = torch.randn(60, 5, generator=g)
    for shuffle in SHUFFLES:
        torch.ops.pyrl_grid.set_shuffle(shuffle)
        for pad, positions in ((0, longest), (2, 3), (1, longest + 1)):
            want = torch.ops.pyrl.replay_gather_episodes(state, obs, ids, pad, positions)
            got = torch.ops.pyrl_grid.replay_gather_episodes(state, obs, ids, pad, positions)
            assert all(torch.equal(w, t) for w, t in zip(want, got)), f"gather (shuffle {shuffle})"
        scattered = torch.randn(len(ids), longest, 5, generator=g)
        for offset in (0, 1):
            want_column, got_column = hidden.clone(), hidden.clone()
            part = scattered[:, offset:].contiguous()
            want = torch.ops.pyrl.replay_scatter_episodes(state, want_column, ids, part, offset)
            got = torch.ops.pyrl_grid.replay_scatter_episodes(state, got_column, ids, part, offset)
            assert torch.equal(want, got) and torch.equal(want_column, got_column), "scatter"
        for offset in (0, 3, 40):
            want_column, got_column = hidden.clone(), hidden.clone()
            want = torch.ops.pyrl.replay_write_rows(
                state, want_column, rows, generation, values, offset
            )
            got = torch.ops.pyrl_grid.replay_write_rows(
                state, got_column, rows, generation, values, offset
            )
            assert torch.equal(want, got) and torch.equal(want_column, got_column), "write rows"


@pytest.mark.parametrize("capacity", [1, 8, 9, 1000])
def test_tree_op_bodies_equal_the_cpu_ops_in_any_thread_order(capacity):
    from pyrl.replay.layout import tree_size

    g = torch.Generator().manual_seed(capacity)
    size = tree_size(capacity)
    sum_tree = torch.zeros(size, dtype=torch.float64)
    min_tree = torch.full((size,), float("inf"), dtype=torch.float64)
    index = torch.randint(0, capacity, (3 * capacity + 2,), generator=g)  # with repeats
    leaf = torch.rand(index.shape[0], generator=g, dtype=torch.float64) * 5
    leaf[::4] = 0.0
    leaf[-1] = 1.0
    torch.ops.pyrl.tree_update(sum_tree, min_tree, capacity, index, leaf)
    uniform = torch.rand(77, generator=g, dtype=torch.float64)
    for shuffle in SHUFFLES:
        torch.ops.pyrl_grid.set_shuffle(shuffle)
        grid_sum = torch.zeros(size, dtype=torch.float64)
        grid_min = torch.full((size,), float("inf"), dtype=torch.float64)
        torch.ops.pyrl_grid.tree_update(grid_sum, grid_min, capacity, index, leaf)
        assert torch.equal(grid_sum, sum_tree) and torch.equal(grid_min, min_tree)
        for beta, batch_max in ((0.0, False), (0.4, False), (0.7, True)):
            want = torch.ops.pyrl.tree_sample(
                sum_tree, min_tree, capacity, uniform, beta, batch_max
            )
            got = torch.ops.pyrl_grid.tree_sample(
                sum_tree, min_tree, capacity, uniform, beta, batch_max
            )
            assert all(torch.equal(w, t) for w, t in zip(want, got)), f"tree_sample {beta}"


# ---- the adds' bodies (csrc/kernels/replay_add.h) --------------------------------------------


def test_add_bodies_equal_the_cpu_ops_in_any_thread_order():
    """Steps of 5 envs (ends, skipped reset steps, stages filling up), whole episodes with and
    without initial priorities and running episodes stored, on a small prioritized ring that
    wraps and evicts: the state, columns and stage after every call, bit for bit."""
    from pyrl import replay

    buf = replay.ReplayBuffer(
        23,
        {"obs": (2,), "action": ((1,), torch.int64)},
        seed=0,
        prioritized=replay.PER(alpha=0.6),
        max_episode_steps=4,
    )
    config, envs = buf.op_config, 5
    g = torch.Generator().manual_seed(0)
    st = buf.storage
    want = ([t.clone() for t in st.state], [c.clone() for c in st.columns])  # stage included
    for shuffle in SHUFFLES:
        torch.ops.pyrl_grid.set_shuffle(shuffle)
        got = ([t.clone() for t in want[0]], [c.clone() for c in want[1]])
        g.manual_seed(0)
        for call in range(60):
            if call % 9 == 8:
                T = int(torch.randint(1, 6, (1,), generator=g))
                values = [
                    torch.randn(T + 1, 2, generator=g),
                    torch.randint(0, 5, (T, 1), generator=g),
                    torch.randn(T, generator=g),
                ]
                td = torch.rand(T, generator=g, dtype=torch.float64) * 3 if call % 2 else None
                for ops, (state, columns) in ((torch.ops.pyrl, want), (torch.ops.pyrl_grid, got)):
                    ops.replay_add_episode(state, columns, values, bool(call % 3), config, td)
            elif call % 13 == 12:
                stored = [
                    int(ops.replay_end_episodes(state, columns, config))
                    for ops, (state, columns) in (
                        (torch.ops.pyrl, want),
                        (torch.ops.pyrl_grid, got),
                    )
                ]
                assert stored[0] == stored[1]
            else:
                step = [
                    torch.randn(envs, 2, generator=g),
                    torch.randint(0, 5, (envs, 1), generator=g),
                    torch.randn(envs, generator=g),
                ]
                final = [torch.randn(envs, 2, generator=g)]
                terminated = torch.rand(envs, generator=g) < 0.2
                truncated = (torch.rand(envs, generator=g) < 0.1) & ~terminated
                skip = torch.rand(envs, generator=g) < 0.1
                cuts = [
                    int(
                        ops.replay_add(
                            state, columns, step, final, terminated, truncated, config, skip
                        )
                    )
                    for ops, (state, columns) in (
                        (torch.ops.pyrl, want),
                        (torch.ops.pyrl_grid, got),
                    )
                ]
                assert cuts[0] == cuts[1]
            for w_list, g_list in zip(want, got):
                for w, t in zip(w_list, g_list):
                    assert torch.equal(w, t), f"call {call} (shuffle {shuffle})"
        want = ([t.clone() for t in st.state], [c.clone() for c in st.columns])  # afresh
