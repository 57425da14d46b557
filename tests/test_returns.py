"""The returns ops against SPEC's worked numbers, the references in pyrl.reference, identities
between the estimators, and bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrl import reference, returns

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def col(*xs, dtype=torch.float64):
    """A [T, 1] column."""
    return torch.tensor(xs, dtype=dtype).view(-1, 1)


def flags(T, N, *, term=(), trunc=()):
    terminated = torch.zeros(T, N, dtype=torch.bool)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    for t in term:
        terminated[t] = True
    for t in trunc:
        truncated[t] = True
    return terminated, truncated


def rollout(T, N, *, heads=None, p_done=0.1, dtype=torch.float32, device="cpu", seed=0):
    """Random rollout; next_value[t] == value[t + 1] inside episodes, a separate bootstrap value
    (the final observation's) where an episode ends."""
    g = torch.Generator().manual_seed(seed)
    shape = (T, N) if heads is None else (T, N, heads)
    reward = torch.randn(shape, generator=g, dtype=torch.float64)
    value = torch.randn((T + 1,) + shape[1:], generator=g, dtype=torch.float64)
    final_value = torch.randn(shape, generator=g, dtype=torch.float64)
    terminated = torch.rand(T, N, generator=g) < p_done / 2
    truncated = (torch.rand(T, N, generator=g) < p_done / 2) & ~terminated
    ends = terminated | truncated
    if heads is not None:
        ends = ends.unsqueeze(-1)
    next_value = torch.where(ends, final_value, value[1:])
    cast = dict(dtype=dtype, device=device)
    return dict(
        reward=reward.to(**cast),
        value=value[:-1].to(**cast),
        next_value=next_value.to(**cast),
        terminated=terminated.to(device),
        truncated=truncated.to(device),
    )


def without_value(r):
    return {k: v for k, v in r.items() if k != "value"}


# ---- SPEC 4.1: GAE worked example --------------------------------------------------------------

REWARD = col(1.0, 0.0, 2.0)
VALUE = col(0.5, 1.0, 1.5)
NEXT_VALUE = col(1.0, 1.5, 2.0)  # val[1:], val[3] = 2.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gae_spec_no_done(dtype):
    r, v, nv = (x.to(dtype) for x in (REWARD, VALUE, NEXT_VALUE))
    adv, ret = returns.gae(r, v, nv, *flags(3, 1), gamma=0.9, lmbda=0.8)
    torch.testing.assert_close(adv, col(2.84432, 2.006, 2.3, dtype=dtype), **TOL[dtype])
    torch.testing.assert_close(ret, col(3.34432, 3.006, 3.8, dtype=dtype), **TOL[dtype])


def test_gae_spec_terminal_and_truncation_cases():
    term2 = returns.gae(REWARD, VALUE, NEXT_VALUE, *flags(3, 1, term=[2]), 0.9, 0.8)[0]
    torch.testing.assert_close(term2, col(1.9112, 0.71, 0.5))
    # truncation bootstraps from next_value[2]: 2.0 reproduces the no-done row, 0 the terminal one
    trunc_boot2 = returns.gae(REWARD, VALUE, NEXT_VALUE, *flags(3, 1, trunc=[2]), 0.9, 0.8)[0]
    torch.testing.assert_close(trunc_boot2, col(2.84432, 2.006, 2.3))
    zero_boot = NEXT_VALUE.clone()
    zero_boot[2] = 0.0
    trunc_boot0 = returns.gae(REWARD, VALUE, zero_boot, *flags(3, 1, trunc=[2]), 0.9, 0.8)[0]
    torch.testing.assert_close(trunc_boot0, term2)


def test_gae_spec_boundary_does_not_leak():
    no_done = returns.gae(REWARD, VALUE, NEXT_VALUE, *flags(3, 1), 0.9, 0.8)[0]
    adv = returns.gae(REWARD, VALUE, NEXT_VALUE, *flags(3, 1, term=[0]), 0.9, 0.8)[0]
    assert adv[0].item() == pytest.approx(0.5)
    torch.testing.assert_close(adv[1:], no_done[1:])


def test_bandit_is_reward_minus_value():
    r, v = torch.randn(1, 64, dtype=torch.float64), torch.randn(1, 64, dtype=torch.float64)
    term = torch.ones(1, 64, dtype=torch.bool)
    adv, ret = returns.gae(r, v, torch.full_like(r, 1e9), term, ~term, 0.99, 0.95)
    torch.testing.assert_close(adv, r - v)
    torch.testing.assert_close(ret, r)


# ---- SPEC 3.3 and 4.2: window ops ---------------------------------------------------------------


def test_nstep_spec_truncated_and_terminated():
    r = col(1.0, 0.0, 2.0, 0.0, 3.0)
    term, trunc = flags(5, 1, trunc=[4])
    R, D, boot = returns.nstep_return(r, term, trunc, n=3, gamma=0.9)
    torch.testing.assert_close(R[2:, 0], torch.tensor([4.43, 2.7, 3.0], dtype=torch.float64))
    torch.testing.assert_close(D[2:, 0], torch.tensor([0.729, 0.81, 0.9], dtype=torch.float64))
    assert boot[:, 0].tolist() == [2, 3, 4, 4, 4]  # SPEC's boot row 5 is step 4's next obs
    # k = 1 and k = 2 at t = 0 (SPEC rows 1-2) through explicit uniforms: k = 1 + floor(u * n)
    u = torch.tensor([[0.0], [0.5], [0.9], [0.9], [0.5]], dtype=torch.float64)
    R, D, boot = returns.nstep_return(r, term, trunc, n=3, gamma=0.9, uniform=u)
    assert R[0, 0].item() == pytest.approx(1.0) and D[0, 0].item() == pytest.approx(0.9)
    assert R[1, 0].item() == pytest.approx(1.8) and D[1, 0].item() == pytest.approx(0.81)
    u[0] = 0.5
    R, D, boot = returns.nstep_return(r, term, trunc, n=3, gamma=0.9, uniform=u)
    assert R[0, 0].item() == pytest.approx(1.0) and D[0, 0].item() == pytest.approx(0.81)
    assert boot[0, 0].item() == 1
    # terminated: the windows that reach the end stop bootstrapping, R unchanged
    term, trunc = flags(5, 1, term=[4])
    R2, D2, _ = returns.nstep_return(r, term, trunc, n=3, gamma=0.9)
    torch.testing.assert_close(R2, returns.nstep_return(r, *flags(5, 1, trunc=[4]), 3, 0.9)[0])
    assert D2[2:, 0].tolist() == [0.0, 0.0, 0.0]
    assert D2[1, 0].item() == pytest.approx(0.729)


@pytest.mark.parametrize("k,C,D", [(1, 1.0, 0.9), (2, 1.18, 0.648), (3, 2.4112, 0.46656)])
def test_nstep_gae_spec(k, C, D):
    credit, discount, boot = returns.nstep_gae(
        REWARD, VALUE, NEXT_VALUE, *flags(3, 1), n=k, gamma=0.9, lmbda=0.8
    )
    assert credit[0, 0].item() == pytest.approx(C)
    assert discount[0, 0].item() == pytest.approx(D)
    assert boot[0, 0].item() == k - 1
    # fresh values: y = C + D * V(s_k) is the truncated lambda-return; k = 3 is GAE's return
    y = credit[0, 0] + discount[0, 0] * NEXT_VALUE[k - 1, 0]
    expected = {1: 1.9, 2: 2.152, 3: 3.34432}[k]
    assert y.item() == pytest.approx(expected)


# ---- against the references ---------------------------------------------------------------------

SHAPES = [(1, 1), (5, 3), (123, 7), (64, 33), (17, 70)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N", SHAPES + [(2048, 1), (9, 300)])
@pytest.mark.parametrize("p_done", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("heads", [None, 3])
def test_rollout_ops_match_reference(device, dtype, T, N, p_done, heads):
    r = rollout(T, N, heads=heads, p_done=p_done, dtype=dtype, device=device)
    gamma, lmbda = 0.97, 0.9
    for got, want in zip(
        returns.gae(**r, gamma=gamma, lmbda=lmbda), reference.gae(**r, gamma=gamma, lmbda=lmbda)
    ):
        torch.testing.assert_close(got, want, **TOL[dtype])
    torch.testing.assert_close(
        returns.discounted_return(**without_value(r), gamma=gamma),
        reference.discounted_return(**without_value(r), gamma=gamma),
        **TOL[dtype],
    )
    torch.testing.assert_close(
        returns.lambda_return(**without_value(r), gamma=gamma, lmbda=lmbda),
        reference.lambda_return(**without_value(r), gamma=gamma, lmbda=lmbda),
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N", SHAPES)
@pytest.mark.parametrize("p_done", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("heads", [None, 2])
@pytest.mark.parametrize("floating", [False, True])
def test_window_ops_match_reference(device, dtype, T, N, p_done, heads, floating):
    r = rollout(T, N, heads=heads, p_done=p_done, dtype=dtype, device=device, seed=1)
    u = torch.rand(T, N, generator=torch.Generator().manual_seed(2), dtype=dtype).to(device)
    u = u if floating else None
    n, gamma, lmbda = 4, 0.95, 0.8
    flag_args = dict(terminated=r["terminated"], truncated=r["truncated"])
    got = returns.nstep_return(r["reward"], **flag_args, n=n, gamma=gamma, uniform=u)
    want = reference.nstep_return(r["reward"], **flag_args, n=n, gamma=gamma, uniform=u)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])
    got = returns.nstep_gae(**r, n=n, gamma=gamma, lmbda=lmbda, uniform=u)
    want = reference.nstep_gae(**r, n=n, gamma=gamma, lmbda=lmbda, uniform=u)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_float32_tracks_float64_at_long_horizons():
    r64 = rollout(2048, 8, p_done=0.0, dtype=torch.float64)
    r32 = {k: (v.float() if v.is_floating_point() else v) for k, v in r64.items()}
    for gamma, lmbda in [(0.99, 0.95), (1.0, 1.0)]:
        adv64, ret64 = reference.gae(**r64, gamma=gamma, lmbda=lmbda)
        adv32, ret32 = returns.gae(**r32, gamma=gamma, lmbda=lmbda)
        scale = ret64.abs().max()
        assert ((ret32.double() - ret64).abs() / scale).max() < 1e-5
        assert ((adv32.double() - adv64).abs() / scale).max() < 1e-5


@settings(deadline=None, max_examples=40)
@given(
    T=st.integers(1, 40),
    N=st.integers(1, 9),
    gamma=st.floats(0, 1),
    lmbda=st.floats(0, 1),
    p_done=st.sampled_from([0.0, 0.3, 1.0]),
    n=st.integers(1, 6),
    seed=st.integers(0, 99),
)
def test_hypothesis_sweep(T, N, gamma, lmbda, p_done, n, seed):
    r = rollout(T, N, p_done=p_done, dtype=torch.float64, seed=seed)
    for a, b in zip(
        returns.gae(**r, gamma=gamma, lmbda=lmbda), reference.gae(**r, gamma=gamma, lmbda=lmbda)
    ):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(
        returns.lambda_return(**without_value(r), gamma=gamma, lmbda=lmbda),
        reference.lambda_return(**without_value(r), gamma=gamma, lmbda=lmbda),
    )
    for a, b in zip(
        returns.nstep_gae(**r, n=n, gamma=gamma, lmbda=lmbda),
        reference.nstep_gae(**r, n=n, gamma=gamma, lmbda=lmbda),
    ):
        torch.testing.assert_close(a, b)


# ---- identities ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p_done", [0.0, 0.2])
def test_identities_between_estimators(p_done):
    r = rollout(50, 6, p_done=p_done, dtype=torch.float64, seed=3)
    nv = without_value(r)
    one_step = r["reward"] + 0.9 * torch.where(r["terminated"], 0.0, r["next_value"])
    # gamma = 0: the advantage is reward minus value
    adv, _ = returns.gae(**r, gamma=0.0, lmbda=0.95)
    torch.testing.assert_close(adv, r["reward"] - r["value"])
    # lmbda = 0: the one-step TD error; lmbda = 1: Monte-Carlo (the discounted return)
    adv, _ = returns.gae(**r, gamma=0.9, lmbda=0.0)
    torch.testing.assert_close(adv, one_step - r["value"])
    _, ret = returns.gae(**r, gamma=0.9, lmbda=1.0)
    torch.testing.assert_close(ret, returns.discounted_return(**nv, gamma=0.9))
    # the lambda-return is GAE's value target, and spans TD(0) .. Monte-Carlo
    _, ret = returns.gae(**r, gamma=0.9, lmbda=0.7)
    torch.testing.assert_close(returns.lambda_return(**nv, gamma=0.9, lmbda=0.7), ret)
    torch.testing.assert_close(returns.lambda_return(**nv, gamma=0.9, lmbda=0.0), one_step)
    torch.testing.assert_close(
        returns.lambda_return(**nv, gamma=0.9, lmbda=1.0),
        returns.discounted_return(**nv, gamma=0.9),
    )
    # an n-step window as long as the rollout is the discounted return
    R, D, boot = returns.nstep_return(r["reward"], r["terminated"], r["truncated"], n=50, gamma=0.9)
    target = R + D * r["next_value"].gather(0, boot)
    torch.testing.assert_close(target, returns.discounted_return(**nv, gamma=0.9))


def test_nstep_gae_identities():
    r = rollout(40, 5, p_done=0.15, dtype=torch.float64, seed=4)
    flag_args = (r["terminated"], r["truncated"])
    # k = 1: C = r, D = gamma (0 at terminals), whatever the values
    C, D, _ = returns.nstep_gae(**r, n=1, gamma=0.9, lmbda=0.5)
    torch.testing.assert_close(C, r["reward"])
    torch.testing.assert_close(D, torch.where(r["terminated"], 0.0, 0.9).double())
    # lmbda = 1: the plain k-step return
    C, D, boot = returns.nstep_gae(**r, n=4, gamma=0.9, lmbda=1.0)
    R, D_k, boot_k = returns.nstep_return(r["reward"], *flag_args, n=4, gamma=0.9)
    torch.testing.assert_close(C, R)
    torch.testing.assert_close(D, D_k)
    assert torch.equal(boot, boot_k)
    # lmbda = 0, k > 1: D = 0 and C = r + gamma * v_{t+1} (TD(0) on the cached value)
    C, D, boot = returns.nstep_gae(**r, n=3, gamma=0.9, lmbda=0.0)
    longer = boot > torch.arange(40).unsqueeze(1)
    assert (D[longer] == 0).all()
    one_step = r["reward"] + 0.9 * torch.where(r["terminated"], 0.0, r["next_value"])
    torch.testing.assert_close(C[longer], one_step[longer])


def test_floating_k_is_uniform():
    n, T, N = 3, 1000, 100
    term, trunc = flags(T, N)
    gen = torch.Generator().manual_seed(0)
    _, _, boot = returns.nstep_return(
        torch.zeros(T, N), term, trunc, n=n, floating=True, generator=gen
    )
    k = (boot - torch.arange(T).unsqueeze(1) + 1)[: T - n]  # windows clear of the rollout end
    freq = torch.bincount(k.flatten(), minlength=n + 1)[1:].double() / k.numel()
    assert (freq - 1 / n).abs().max() < 0.005
    _, _, boot = returns.nstep_return(torch.zeros(T, N), term, trunc, n=n)
    assert ((boot - torch.arange(T).unsqueeze(1) + 1)[: T - n] == n).all()


# ---- layouts and edge shapes --------------------------------------------------------------------


def test_non_contiguous_inputs():
    r = rollout(31, 12, p_done=0.2, dtype=torch.float64, seed=5)
    # the same rollout stored env-major, viewed time-first
    strided = {k: v.t().contiguous().t() for k, v in r.items()}
    assert not strided["reward"].is_contiguous()
    for a, b in zip(
        returns.gae(**strided, gamma=0.9, lmbda=0.9), returns.gae(**r, gamma=0.9, lmbda=0.9)
    ):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b)
    every_other = {k: v[:, ::2] for k, v in r.items()}
    want = reference.nstep_gae(**every_other, n=3, gamma=0.9, lmbda=0.9)
    for a, b in zip(returns.nstep_gae(**every_other, n=3, gamma=0.9, lmbda=0.9), want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("T,N", [(0, 4), (4, 0), (0, 0)])
def test_empty(T, N):
    r = rollout(max(T, 1), max(N, 1))
    r = {k: v[:T, :N] for k, v in r.items()}
    adv, ret = returns.gae(**r)
    assert adv.shape == (T, N) and ret.shape == (T, N)
    assert returns.discounted_return(**without_value(r)).shape == (T, N)
    assert returns.lambda_return(**without_value(r)).shape == (T, N)
    R, D, boot = returns.nstep_return(r["reward"], r["terminated"], r["truncated"], n=3)
    assert R.shape == D.shape == boot.shape == (T, N)
    assert returns.nstep_gae(**r, n=2)[0].shape == (T, N)


def test_flags_of_any_dtype():
    r = rollout(20, 4, p_done=0.3, dtype=torch.float64, seed=6)
    as_float = dict(
        r, terminated=r["terminated"].double(), truncated=r["truncated"].to(torch.int32)
    )
    as_bytes = dict(r, terminated=r["terminated"].to(torch.uint8), truncated=r["truncated"])
    want = returns.gae(**r)
    for variant in (as_float, as_bytes):
        for a, b in zip(returns.gae(**variant), want):
            torch.testing.assert_close(a, b)


# ---- bad input ----------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument():
    r = rollout(6, 3, dtype=torch.float32)
    cases = [
        (
            dict(r, reward=r["reward"][0]),
            r"reward should be 2-D \[T, N\] or 3-D \[T, N, m\], got 1-D",
        ),
        (
            dict(
                r,
                reward=r["reward"].long(),
                value=r["value"].long(),
                next_value=r["next_value"].long(),
            ),
            r"reward should be float32 or float64, got Long",
        ),
        (dict(r, value=r["value"][:5]), r"value should have reward's shape \[6, 3\], got \[5, 3\]"),
        (
            dict(r, next_value=r["next_value"].double()),
            r"next_value should have reward's dtype Float, got Double",
        ),
        (dict(r, terminated=r["terminated"][:, :2]), r"terminated should have shape \[6, 3\]"),
        (dict(r, truncated=r["truncated"].t()), r"truncated should have shape \[6, 3\]"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RuntimeError, match=message):
            returns.gae(**kwargs)
    with pytest.raises(RuntimeError, match=r"gamma should be in \[0, 1\], got 1.5"):
        returns.gae(**r, gamma=1.5)
    with pytest.raises(RuntimeError, match=r"lmbda should be in \[0, 1\], got -0.1"):
        returns.lambda_return(**without_value(r), lmbda=-0.1)
    with pytest.raises(RuntimeError, match=r"gamma should be in \[0, 1\], got nan"):
        returns.discounted_return(**without_value(r), gamma=math.nan)
    flag_args = (r["terminated"], r["truncated"])
    with pytest.raises(RuntimeError, match=r"n should be >= 1, got 0"):
        returns.nstep_return(r["reward"], *flag_args, n=0)
    with pytest.raises(RuntimeError, match=r"uniform should have reward's dtype Float, got Double"):
        returns.nstep_return(r["reward"], *flag_args, uniform=torch.rand(6, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"uniform should have shape \[6, 3\]"):
        returns.nstep_gae(**r, uniform=torch.rand(6, 2))


def direct_calls(shape):
    """Each rollout op with float discounts: (its returns call, the dispatched op's call)."""
    g = torch.Generator().manual_seed(0)
    r, v, nv = (torch.randn(shape, generator=g) for _ in range(3))
    log_rho = torch.randn(shape[:2], generator=g) * 0.3
    term, trunc = (torch.rand(shape[:2], generator=g) < 0.1 for _ in range(2))
    # The off-policy ops take one reward head: [T, N].
    off = [x[..., 0] if len(shape) > 2 else x for x in (r, v, nv)]
    ops = torch.ops.pyrl
    return {
        "gae": (
            lambda **k: returns.gae(r, v, nv, term, trunc, **k),
            lambda gamma, lmbda: ops.gae(r, v, nv, term, trunc, gamma, lmbda),
            dict(gamma=0.9, lmbda=0.8),
        ),
        "discounted_return": (
            lambda **k: returns.discounted_return(r, nv, term, trunc, **k),
            lambda gamma: ops.discounted_return(r, nv, term, trunc, gamma),
            dict(gamma=0.9),
        ),
        "lambda_return": (
            lambda **k: returns.lambda_return(r, nv, term, trunc, **k),
            lambda gamma, lmbda: ops.lambda_return(r, nv, term, trunc, gamma, lmbda),
            dict(gamma=0.9, lmbda=0.8),
        ),
        "vtrace": (
            lambda **k: returns.vtrace(log_rho, *off, term, trunc, **k),
            lambda gamma, lmbda: ops.vtrace(log_rho, *off, term, trunc, gamma, 1.0, 1.0, lmbda),
            dict(gamma=0.9, lmbda=0.8),
        ),
        "retrace": (
            lambda **k: returns.retrace(log_rho, *off, term, trunc, **k),
            lambda gamma, lmbda: ops.retrace(log_rho, *off, term, trunc, gamma, lmbda),
            dict(gamma=0.9, lmbda=0.8),
        ),
    }


@pytest.mark.parametrize("name", ["gae", "discounted_return", "lambda_return", "vtrace", "retrace"])
@pytest.mark.parametrize("shape", [(33, 5), (33, 5, 2)])
def test_direct_route_equals_the_dispatched_op(name, shape):
    """The rollout ops' direct route (plain CPU tensors, float discounts) gives the dispatched
    op's values bit for bit, and its bad input raises the op's error, naming the argument; ints
    for the discounts take the general route to the same values."""
    ours, dispatched, floats = direct_calls(shape)[name]
    direct, expected = ours(**floats), dispatched(**floats)
    for a, b in zip(*(x if isinstance(x, tuple) else (x,) for x in (direct, expected))):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match=rf"pyrl::{name}: gamma should be in \[0, 1\], got 1.5"):
        ours(**{**floats, "gamma": 1.5})
    with pytest.raises(RuntimeError) as general:
        dispatched(**{**floats, "gamma": 1.5})
    assert "gamma should be in" in str(general.value)
    ints = ours(**{key: int(value > 0.5) for key, value in floats.items()})
    again = ours(**{key: float(value > 0.5) for key, value in floats.items()})
    for a, b in zip(*(x if isinstance(x, tuple) else (x,) for x in (ints, again))):
        assert torch.equal(a, b)


def test_direct_route_leaves_grads_and_subclasses_to_the_general_one():
    g = torch.Generator().manual_seed(0)
    reward, value, next_value = (torch.randn(9, 3, generator=g) for _ in range(3))
    flags = torch.zeros(9, 3, dtype=torch.bool)
    expected = returns.gae(reward, value, next_value, flags, flags, gamma=0.9, lmbda=0.8)
    grad = value.clone().requires_grad_()
    out = returns.gae(reward, grad, next_value, flags, flags, gamma=0.9, lmbda=0.8)
    assert not out[0].requires_grad and torch.equal(out[0], expected[0])
    param = torch.nn.Parameter(reward.clone(), requires_grad=False)
    assert torch.equal(
        returns.gae(param, value, next_value, flags, flags, 0.9, 0.8)[0], expected[0]
    )
    with pytest.raises(ValueError, match="next_value should be a torch.Tensor"):
        returns.gae(reward, value, next_value.numpy(), flags, flags, 0.9, 0.8)


def test_mixed_devices_are_refused():
    r = rollout(6, 3)
    with pytest.raises(RuntimeError, match=r"value should be on reward's device cpu, got meta"):
        returns.gae(**dict(r, value=r["value"].to("meta")))


# ---- torch.library and torch.compile ------------------------------------------------------------


def _samples():
    for T, N, heads in [(7, 3, None), (1, 1, None), (12, 2, 2)]:
        r = rollout(T, N, heads=heads, p_done=0.3, seed=T)
        u = torch.rand(T, N)
        yield (
            "gae",
            (r["reward"], r["value"], r["next_value"], r["terminated"], r["truncated"], 0.9, 0.8),
        )
        yield (
            "discounted_return",
            (r["reward"], r["next_value"], r["terminated"], r["truncated"], 0.9),
        )
        yield (
            "lambda_return",
            (r["reward"], r["next_value"], r["terminated"], r["truncated"], 0.9, 0.7),
        )
        yield "nstep_return", (r["reward"], r["terminated"], r["truncated"], u, 3, 0.9)
        yield "nstep_return", (r["reward"], r["terminated"], r["truncated"], None, 2, 0.9)
        yield (
            "nstep_gae",
            (
                r["reward"],
                r["value"],
                r["next_value"],
                r["terminated"],
                r["truncated"],
                u,
                3,
                0.9,
                0.8,
            ),
        )


@pytest.mark.parametrize(
    "name,args", list(_samples()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_opcheck(name, args):
    torch.library.opcheck(getattr(torch.ops.pyrl, name).default, args)


def test_torch_compile_fullgraph(compile_backend):
    r = rollout(33, 5, p_done=0.2)

    @torch.compile(fullgraph=True, backend=compile_backend)
    def targets(reward, value, next_value, terminated, truncated, u):
        adv, ret = returns.gae(reward, value, next_value, terminated, truncated, 0.99, 0.95)
        R, D, boot = returns.nstep_return(reward, terminated, truncated, n=3, gamma=0.99, uniform=u)
        return (adv - adv.mean()) / (adv.std() + 1e-8), ret, R + D * next_value.gather(0, boot)

    u = torch.rand(33, 5)
    got = targets(**r, u=u)
    adv, ret = reference.gae(**r, gamma=0.99, lmbda=0.95)
    R, D, boot = reference.nstep_return(r["reward"], r["terminated"], r["truncated"], 3, 0.99, u)
    torch.testing.assert_close(got[0], (adv - adv.mean()) / (adv.std() + 1e-8))
    torch.testing.assert_close(got[1], ret)
    torch.testing.assert_close(got[2], R + D * r["next_value"].gather(0, boot))


# ---- per-step gamma and lmbda (tensors) --------------------------------------------------------


def per_step(T, N, dtype, seed, form):
    """gamma in [0.8, 1] and lmbda in [0.5, 1], as [T, N] or [N] tensors."""
    g = torch.Generator().manual_seed(seed)
    shape = (T, N) if form == "steps" else (N,)
    gamma = 0.8 + 0.2 * torch.rand(shape, generator=g, dtype=torch.float64)
    lmbda = 0.5 + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64)
    return gamma.to(dtype), lmbda.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N", [(1, 1), (37, 5), (9, 64)])
@pytest.mark.parametrize("heads", [None, 3])
@pytest.mark.parametrize("form", ["steps", "envs"])
def test_tensor_discounts_match_the_reference(dtype, T, N, heads, form):
    r = rollout(T, N, heads=heads, p_done=0.2, dtype=dtype, seed=T + N)
    gamma, lmbda = per_step(T, N, dtype, seed=T * N, form=form)
    both = dict(gamma=gamma, lmbda=lmbda)
    tol = TOL[dtype]
    for got, want in zip(returns.gae(**r, **both), reference.gae(**r, **both)):
        torch.testing.assert_close(got, want, **tol)
    flags = dict(terminated=r["terminated"], truncated=r["truncated"])
    nv = dict(next_value=r["next_value"], **flags)
    torch.testing.assert_close(
        returns.discounted_return(r["reward"], **nv, gamma=gamma),
        reference.discounted_return(r["reward"], **nv, gamma=gamma),
        **tol,
    )
    torch.testing.assert_close(
        returns.lambda_return(r["reward"], **nv, **both),
        reference.lambda_return(r["reward"], **nv, **both),
        **tol,
    )
    u = torch.rand(T, N, generator=torch.Generator().manual_seed(3), dtype=dtype)
    for uniform in (None, u):
        got = returns.nstep_return(r["reward"], **flags, n=4, gamma=gamma, uniform=uniform)
        want = reference.nstep_return(r["reward"], **flags, n=4, gamma=gamma, uniform=uniform)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, **tol)
        got = returns.nstep_gae(**r, n=3, **both, uniform=uniform)
        want = reference.nstep_gae(**r, n=3, **both, uniform=uniform)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, **tol)
    if heads is None:
        log_rho = 0.5 * torch.randn(T, N, generator=torch.Generator().manual_seed(4)).to(dtype)
        off = dict(log_rho=log_rho, **r)
        for got, want in zip(
            returns.vtrace(**off, **both, c_bar=0.9), reference.vtrace(**off, **both, c_bar=0.9)
        ):
            torch.testing.assert_close(got, want, **tol)
        q = dict(q=r["value"], next_v=r["next_value"])
        args = dict(log_rho=log_rho, reward=r["reward"], **q, **flags, **both)
        torch.testing.assert_close(returns.retrace(**args), reference.retrace(**args), **tol)


def test_constant_tensor_discounts_equal_the_floats():
    r = rollout(50, 6, p_done=0.2, dtype=torch.float64, seed=8)
    gamma = torch.full((50, 6), 0.97, dtype=torch.float64)
    lmbda = torch.full((6,), 0.9, dtype=torch.float64)
    pairs = [
        (returns.gae(**r, gamma=gamma, lmbda=lmbda), returns.gae(**r, gamma=0.97, lmbda=0.9)),
        (
            returns.nstep_gae(**r, n=4, gamma=gamma, lmbda=lmbda),
            returns.nstep_gae(**r, n=4, gamma=0.97, lmbda=0.9),
        ),
        (
            returns.lambda_return(**without_value(r), gamma=gamma, lmbda=lmbda),
            returns.lambda_return(**without_value(r), gamma=0.97, lmbda=0.9),
        ),
    ]
    for tensors, floats in pairs:
        for a, b in zip(tensors, floats):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # A zero gamma at a step cuts what follows it, as a terminal does for the return.
    zero = torch.ones(50, 6, dtype=torch.float64)
    zero[10] = 0.0
    ret = returns.discounted_return(**without_value(r), gamma=zero)
    torch.testing.assert_close(ret[10], r["reward"][10])


def test_bad_tensor_discounts_name_the_argument():
    r = rollout(6, 3, dtype=torch.float32)
    cases = [
        (
            dict(gamma=torch.full((6, 3), 0.9, dtype=torch.float64)),
            r"gae: gamma should have "
            r"reward's dtype torch.float32 \(or be a float\), got torch.float64",
        ),
        (
            dict(lmbda=torch.full((5, 3), 0.9)),
            r"gae: lmbda should be a float, \[6, 3\] \(per step "
            r"and env\) or \[3\] \(per env\), got shape \[5, 3\]",
        ),
        (dict(gamma=np.full((6, 3), 0.9)), r"gae: gamma should be a float or a torch.Tensor"),
        (dict(gamma=torch.full((6, 3), 0.9).to("meta")), r"gamma should be on reward's device"),
        (
            dict(gamma=torch.full((6, 3), 1.5)),
            r"pyrl::gae: gamma should be in \[0, 1\] everywhere, "
            r"got 1.5 at flat position 0",
        ),
        (
            dict(lmbda=torch.tensor([0.5, float("nan"), 0.5])),
            r"lmbda should be in \[0, 1\] "
            r"everywhere, got nan at flat position 1",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            returns.gae(**r, **kwargs)
    for number in (np.float32(0.9), np.float64(0.9), 1):  # numpy scalars and ints are numbers
        returns.gae(**r, gamma=number, lmbda=number)
    with pytest.raises(ValueError, match=r"gae: gamma should be a float or a torch.Tensor"):
        returns.gae(**r, gamma=True)
    with pytest.raises(ValueError, match=r"nstep_return: gamma should be a float, \[6, 3\]"):
        returns.nstep_return(r["reward"], r["terminated"], r["truncated"], gamma=torch.ones(2))


def test_opcheck_with_tensor_discounts():
    r = rollout(7, 3, heads=2, p_done=0.3, seed=5)
    g, lm = per_step(7, 3, torch.float32, seed=6, form="steps")
    flags = (r["terminated"], r["truncated"])
    u = torch.rand(7, 3)
    ops = torch.ops.pyrl
    for op, args in [
        (ops.gae, (r["reward"], r["value"], r["next_value"], *flags, 1.0, 1.0, g, lm)),
        (ops.discounted_return, (r["reward"], r["next_value"], *flags, 1.0, g)),
        (ops.lambda_return, (r["reward"], r["next_value"], *flags, 1.0, 1.0, g, lm)),
        (ops.nstep_return, (r["reward"], *flags, u, 3, 1.0, g)),
        (ops.nstep_gae, (r["reward"], r["value"], r["next_value"], *flags, u, 3, 1.0, 1.0, g, lm)),
    ]:
        torch.library.opcheck(op.default, args)
