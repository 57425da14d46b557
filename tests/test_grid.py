"""The CUDA kernel bodies against the CPU ops.

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
SHAPES = [(1, 1, None), (7, 3, None), (64, 5, None), (300, 257, None), (5, 600, None),
          (33, 9, 3), (0, 4, None), (4, 0, None)]


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
    return dict(reward=reward, value=value, next_value=next_value, terminated=terminated,
                truncated=truncated, uniform=uniform, log_rho=log_rho)


def calls(r, heads):
    """(op name, positional arguments, exact?) for every returns op on rollout r."""
    flags = (r["terminated"], r["truncated"])
    yield "gae", (r["reward"], r["value"], r["next_value"], *flags, 0.97, 0.9), True
    yield "discounted_return", (r["reward"], r["next_value"], *flags, 0.97), True
    yield "lambda_return", (r["reward"], r["next_value"], *flags, 0.97, 0.8), True
    yield "nstep_return", (r["reward"], *flags, None, 4, 0.95), True
    yield "nstep_return", (r["reward"], *flags, r["uniform"], 5, 0.95), True
    yield "nstep_gae", (r["reward"], r["value"], r["next_value"], *flags, r["uniform"], 3, 0.95,
                        0.9), True
    if heads is None:
        two_d = (r["log_rho"], r["reward"], r["value"], r["next_value"], *flags)
        yield "vtrace", (*two_d, 0.97, 1.0, 0.9, 0.95), False
        yield "retrace", (*two_d, 0.97, 0.9), False


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
            outputs = [(name, getattr(torch.ops.pyrl, name)(*args), cpu_args)
                       for name, args, cpu_args in inputs
                       if name not in ("vtrace", "retrace")]  # their NaN check reads one value back
        finally:
            torch.cuda.set_sync_debug_mode(0)
    stream.synchronize()
    for name, got, cpu_args in outputs:
        assert_same(getattr(torch.ops.pyrl, name)(*cpu_args), got, True, f"{name} on a side stream")


@pytest.mark.needs_cuda
def test_gpu_refuses_mixed_devices_and_nan_ratios_by_name():
    r = rollout(6, 3, None, torch.float32, seed=5)
    with pytest.raises(RuntimeError, match=r"pyrl::gae: value should be on reward's device cuda"):
        torch.ops.pyrl.gae(r["reward"].cuda(), r["value"], r["next_value"].cuda(),
                           r["terminated"].cuda(), r["truncated"].cuda(), 0.9, 0.9)
    log_rho = r["log_rho"].clone()
    log_rho[2, 1] = float("nan")
    with pytest.raises(RuntimeError, match=r"log_rho should not be NaN, got NaN at flat position 7"):
        torch.ops.pyrl.vtrace(*on("cuda", (log_rho, r["reward"], r["value"], r["next_value"],
                                           r["terminated"], r["truncated"])), 0.9, 1.0, 1.0, 1.0)


def test_grid_ops_check_their_arguments_as_the_ops_do():
    r = rollout(6, 3, None, torch.float32, seed=0)
    with pytest.raises(RuntimeError, match="pyrl::gae: lmbda should be in"):
        torch.ops.pyrl_grid.gae(r["reward"], r["value"], r["next_value"], r["terminated"],
                                r["truncated"], 0.9, 1.5)


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
    cpu = dict(reward=r["reward"], value=r["value"], next_value=r["next_value"][-1],
               terminated=r["terminated"], truncated=r["truncated"], final_value=r["next_value"])
    gpu = {k: v.cuda() for k, v in cpu.items()}
    for fn in (lambda d: returns.gae(**d, gamma=0.97, lmbda=0.9),
               lambda d: returns.nstep_gae(**d, n=3, gamma=0.97, lmbda=0.9)):
        assert_same(fn(cpu), fn(gpu), True, "the [N] bootstrap form on CUDA")
