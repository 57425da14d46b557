"""V-trace and Retrace against the references in pyrl.reference, an rlax-style independent
implementation, TorchRL's vtrace where it runs, identities with the on-policy estimators, and
bad input."""

import math

import numpy as np
import pytest
import torch

from pyrl import reference, returns

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}
SHAPES = [(1, 1), (5, 3), (123, 7), (64, 1100), (2048, 1)]


def offpolicy(T, N, *, p_done=0.1, dtype=torch.float32, seed=0, spread=1.5):
    """A rollout (next values consistent inside episodes) and log ratios, some -inf."""
    g = torch.Generator().manual_seed(seed)
    reward = torch.randn(T, N, generator=g, dtype=torch.float64)
    value = torch.randn(T + 1, N, generator=g, dtype=torch.float64)
    final_value = torch.randn(T, N, generator=g, dtype=torch.float64)
    terminated = torch.rand(T, N, generator=g) < p_done / 2
    truncated = (torch.rand(T, N, generator=g) < p_done / 2) & ~terminated
    next_value = torch.where(terminated | truncated, final_value, value[1:])
    log_rho = spread * torch.randn(T, N, generator=g, dtype=torch.float64)
    log_rho[torch.rand(T, N, generator=g) < 0.02] = -math.inf  # the target policy never acts so
    cast = dict(dtype=dtype)
    return dict(
        log_rho=log_rho.to(**cast),
        reward=reward.to(**cast),
        value=value[:-1].to(**cast),
        next_value=next_value.to(**cast),
        terminated=terminated,
        truncated=truncated,
    )


def as_retrace(r):
    return dict(
        log_rho=r["log_rho"],
        reward=r["reward"],
        q=r["value"],
        next_v=r["next_value"],
        terminated=r["terminated"],
        truncated=r["truncated"],
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N", SHAPES)
@pytest.mark.parametrize("p_done", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("bars", [(1.0, 1.0, 1.0), (2.0, 0.5, 0.9), (0.3, 3.0, 0.7)])
def test_vtrace_matches_reference(dtype, T, N, p_done, bars):
    rho_bar, c_bar, lmbda = bars
    r = offpolicy(T, N, p_done=p_done, dtype=dtype, seed=T * N)
    got = returns.vtrace(**r, gamma=0.97, rho_bar=rho_bar, c_bar=c_bar, lmbda=lmbda)
    expected = reference.vtrace(**r, gamma=0.97, rho_bar=rho_bar, c_bar=c_bar, lmbda=lmbda)
    for a, b in zip(got, expected):
        assert a.dtype == dtype and a.shape == (T, N)
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N", SHAPES)
@pytest.mark.parametrize("p_done", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("lmbda", [1.0, 0.8, 0.0])
def test_retrace_matches_reference(dtype, T, N, p_done, lmbda):
    r = as_retrace(offpolicy(T, N, p_done=p_done, dtype=dtype, seed=T + N))
    got = returns.retrace(**r, gamma=0.97, lmbda=lmbda)
    torch.testing.assert_close(got, reference.retrace(**r, gamma=0.97, lmbda=lmbda), **TOL[dtype])


def test_float32_within_1e5_of_float64_at_2048_steps():
    r64 = offpolicy(2048, 16, p_done=0.0, dtype=torch.float64, spread=0.3)
    r32 = {k: (v.float() if v.is_floating_point() else v) for k, v in r64.items()}
    for got, exact in zip(returns.vtrace(**r32, gamma=0.99), reference.vtrace(**r64, gamma=0.99)):
        torch.testing.assert_close(got.double(), exact, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        returns.retrace(**as_retrace(r32), gamma=0.99).double(),
        reference.retrace(**as_retrace(r64), gamma=0.99),
        rtol=1e-5,
        atol=1e-5,
    )


# ---- identities ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p_done", [0.0, 0.2])
def test_on_policy_vtrace_is_the_lambda_return(p_done):
    r = offpolicy(50, 6, p_done=p_done, dtype=torch.float64)
    r["log_rho"] = torch.zeros_like(r["log_rho"])  # rho = 1 everywhere
    vs, pg = returns.vtrace(**r, gamma=0.95, lmbda=0.8)
    _, gae_return = returns.gae(
        r["reward"],
        r["value"],
        r["next_value"],
        r["terminated"],
        r["truncated"],
        gamma=0.95,
        lmbda=0.8,
    )
    torch.testing.assert_close(vs, gae_return, **TOL[torch.float64])
    lam = returns.lambda_return(
        r["reward"], r["next_value"], r["terminated"], r["truncated"], gamma=0.95, lmbda=0.8
    )
    torch.testing.assert_close(vs, lam, **TOL[torch.float64])  # consistent next values


def test_c_bar_near_zero_gives_one_step_td():
    r = offpolicy(40, 5, p_done=0.2, dtype=torch.float64)
    vs, _ = returns.vtrace(**r, gamma=0.9, rho_bar=1e9, c_bar=1e-300)
    rho = r["log_rho"].exp()
    bootstrap = torch.where(r["terminated"], 0.0, r["next_value"])
    torch.testing.assert_close(vs, r["value"] + rho * (r["reward"] + 0.9 * bootstrap - r["value"]))


def test_retrace_identities():
    r = as_retrace(offpolicy(40, 5, p_done=0.2, dtype=torch.float64))
    one_step = torch.where(r["terminated"], 0.0, r["next_v"])
    torch.testing.assert_close(
        returns.retrace(**r, gamma=0.9, lmbda=0.0), r["reward"] + 0.9 * one_step
    )
    # On-policy (rho >= 1 clipped to 1), lambda 1, q consistent with next_v: the discounted return.
    r["log_rho"] = torch.zeros_like(r["log_rho"])
    r["q"] = torch.cat([r["q"][:1], r["next_v"][:-1]])
    ends = r["terminated"] | r["truncated"]
    r["q"][1:] = torch.where(ends[:-1], r["q"][1:], r["next_v"][:-1])
    torch.testing.assert_close(
        returns.retrace(**r, gamma=0.9, lmbda=1.0),
        returns.discounted_return(
            r["reward"], r["next_v"], r["terminated"], r["truncated"], gamma=0.9
        ),
    )


# ---- independent implementations -----------------------------------------------------------------


def rlax_style_vtrace(
    v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_=1.0, clip_rho=1.0, clip_pg_rho=1.0
):
    """rlax.vtrace_td_error_and_advantage's algorithm, in numpy, for one trajectory [T]."""
    rhos = np.asarray(rho_tm1)
    c_tm1 = np.minimum(1.0, rhos) * lambda_
    clipped_rhos = np.minimum(clip_rho, rhos)
    td = clipped_rhos * (r_t + discount_t * v_t - v_tm1)
    err, errors = 0.0, np.zeros_like(td)
    for t in reversed(range(len(td))):
        err = td[t] + discount_t[t] * c_tm1[t] * err
        errors[t] = err
    vs = errors + v_tm1
    q_bootstrap = np.concatenate([lambda_ * vs[1:] + (1 - lambda_) * v_tm1[1:], v_t[-1:]])
    pg = np.minimum(clip_pg_rho, rhos) * (r_t + discount_t * q_bootstrap - v_tm1)
    return vs, pg


def test_matches_an_rlax_style_vtrace():
    r = offpolicy(300, 4, p_done=0.05, dtype=torch.float64)
    r["truncated"] = torch.zeros_like(r["truncated"])  # rlax has one discount: ends are terminal
    r["next_value"] = torch.cat([r["value"][1:], r["next_value"][-1:]])  # consistent
    vs, pg = returns.vtrace(**r, gamma=0.99)
    for n in range(4):
        discount = 0.99 * (1.0 - r["terminated"][:, n].double().numpy())
        rvs, rpg = rlax_style_vtrace(
            r["value"][:, n].numpy(),
            r["next_value"][:, n].numpy(),
            r["reward"][:, n].numpy(),
            discount,
            r["log_rho"][:, n].exp().numpy(),
        )
        np.testing.assert_allclose(vs[:, n].numpy(), rvs, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(pg[:, n].numpy(), rpg, rtol=1e-10, atol=1e-10)


def test_matches_torchrl_vtrace_where_it_runs():
    try:
        from torchrl.objectives.value.functional import vtrace_advantage_estimate
    except Exception as err:  # noqa: BLE001 (its binary does not load with every torch)
        pytest.skip(f"torchrl's vtrace does not import here: {str(err)[:80]}")
    T, N = 64, 3
    r = offpolicy(T, N, p_done=0.0, dtype=torch.float64)
    r["next_value"] = torch.cat([r["value"][1:], r["next_value"][-1:]])
    done = torch.zeros(T, N, dtype=torch.bool)
    vs, _ = returns.vtrace(**r, gamma=0.95)
    batch_first = [
        x.T.unsqueeze(-1)
        for x in (
            r["log_rho"],
            torch.zeros_like(r["log_rho"]),
            r["value"],
            r["next_value"],
            r["reward"],
        )
    ]
    _, theirs = vtrace_advantage_estimate(
        0.95,
        *batch_first,
        done.T.unsqueeze(-1),
        done.T.unsqueeze(-1),
        rho_thresh=1.0,
        c_thresh=1.0,
        time_dim=-2,
    )  # rho = exp(log_pi - log_mu)
    torch.testing.assert_close(vs, theirs.squeeze(-1).T)


# ---- shapes, torch.library, bad input ------------------------------------------------------------


def test_non_contiguous_and_empty():
    r = offpolicy(30, 6, dtype=torch.float64)
    transposed = {k: v.T.contiguous().T for k, v in r.items()}  # same values, column-major strides
    for a, b in zip(returns.vtrace(**transposed), returns.vtrace(**r)):
        torch.testing.assert_close(a, b)
    empty = offpolicy(0, 3)
    vs, pg = returns.vtrace(**empty)
    assert vs.shape == pg.shape == (0, 3)
    assert returns.retrace(**as_retrace(empty)).shape == (0, 3)


@pytest.mark.parametrize("name", ["vtrace", "retrace"])
def test_opcheck(name):
    for T, N in [(7, 3), (1, 1)]:
        r = offpolicy(T, N, p_done=0.3, seed=T)
        args = tuple(r.values())
        extra = (0.9, 1.2, 0.8, 0.9) if name == "vtrace" else (0.9, 0.8)
        torch.library.opcheck(getattr(torch.ops.pyrl, name).default, args + extra)


def test_torch_compile_fullgraph(compile_backend):
    r = offpolicy(33, 5, p_done=0.2)

    @torch.compile(fullgraph=True, backend=compile_backend)
    def targets(log_rho, reward, value, next_value, terminated, truncated):
        vs, pg = returns.vtrace(log_rho, reward, value, next_value, terminated, truncated, 0.99)
        g = returns.retrace(log_rho, reward, value, next_value, terminated, truncated, 0.99)
        return vs, (pg - pg.mean()) / (pg.std() + 1e-8), g

    vs, pg, g = targets(**r)
    evs, epg = reference.vtrace(**r, gamma=0.99)
    torch.testing.assert_close(vs, evs)
    torch.testing.assert_close(pg, (epg - epg.mean()) / (epg.std() + 1e-8))
    torch.testing.assert_close(g, reference.retrace(**as_retrace(r), gamma=0.99))


def test_bad_inputs_name_the_argument():
    r = offpolicy(6, 3)
    with pytest.raises(RuntimeError, match=r"reward should be 2-D \[T, N\], got 3-D"):
        returns.vtrace(**dict(r, reward=r["reward"][..., None], value=r["value"][..., None]))
    with pytest.raises(RuntimeError, match="log_rho should have reward's shape"):
        returns.vtrace(**dict(r, log_rho=r["log_rho"][:5]))
    with pytest.raises(RuntimeError, match="log_rho should not be NaN, got NaN at flat position 4"):
        bad = r["log_rho"].clone()
        bad.view(-1)[4] = math.nan
        returns.vtrace(**dict(r, log_rho=bad))
    for kwargs, match in [
        (dict(rho_bar=0.0), "rho_bar should be a finite number > 0, got 0"),
        (dict(c_bar=math.inf), "c_bar should be a finite number > 0, got inf"),
        (dict(lmbda=1.5), r"lmbda should be in \[0, 1\], got 1.5"),
        (dict(gamma=-0.1), r"gamma should be in \[0, 1\]"),
    ]:
        with pytest.raises(RuntimeError, match=match):
            returns.vtrace(**r, **kwargs)
    with pytest.raises(RuntimeError, match="reward should be float32 or float64, got Long"):
        returns.retrace(**dict(as_retrace(r), reward=r["reward"].long()))
    with pytest.raises(RuntimeError, match="q should have reward's dtype"):
        returns.retrace(**dict(as_retrace(r), q=r["value"].double()))
    with pytest.raises(RuntimeError, match="next_v should be on reward's device cpu, got meta"):
        returns.retrace(**dict(as_retrace(r), next_v=r["next_value"].to("meta")))
