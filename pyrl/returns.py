"""Returns and advantages over time-first rollouts, computed by compiled ops.

Conventions shared by every function:

* Inputs are ``[T, N]`` (time first) or, for vector rewards with ``m`` heads, ``[T, N, m]``;
  ``terminated`` and ``truncated`` are always ``[T, N]``. float32 or float64, any strides. Flags
  may be bool, uint8 or any dtype read as ``!= 0``.
* ``next_value[t]`` is the value of the observation that followed step ``t``. Where the
  environment auto-resets, pass the value of the *final* observation of the episode there (not
  of the reset observation): it is what a truncated episode bootstraps from.
* Real rollouts (CleanRL's layout) have the value of the one observation after the rollout,
  not a full ``next_value``: :func:`gae`, :func:`discounted_return`, :func:`nstep_gae` and
  :func:`vtrace` also take ``next_value`` as ``[N]`` (or ``[1, N]``) and build the full one,
  ``value[t + 1]`` inside the rollout and ``next_value`` after its last step, with
  ``final_value`` (``[T, N]``, the value of each truncated step's final observation, read only
  where ``truncated``) spliced in at time-limit cuts; truncated steps without ``final_value``
  raise instead of bootstrapping from a reset observation.
* ``terminated[t]``: the episode reached a true terminal state; nothing is bootstrapped.
  ``truncated[t]``: it was cut (time limit); it bootstraps from ``next_value[t]``. The two are
  never merged. The rollout's last step is cut by the collector, so it bootstraps too.
* ``gamma`` and ``lmbda`` are floats (the fast path), or tensors of the reward's dtype and device,
  ``[T, N]`` per step and env or ``[N]`` per env (TorchRL's tensor gamma): ``gamma[t]``
  discounts what follows step ``t`` and ``lmbda[t]`` weighs the carry from ``t + 1`` into ``t``;
  window products run over the window's own steps. Every value must be in [0, 1].
* Recurrences accumulate in float64 whatever the input dtype. Outputs are contiguous, on the
  input's device, not differentiable (they are targets).

Numerically these follow SPEC sections 3.2 and 4 of the project; see ``pyrl.reference`` for
slow, obvious versions of each.
"""

import numbers
from typing import Optional, Union

import torch
from torch import Tensor

from pyrl import _C, _ops

__all__ = [
    "gae",
    "discounted_return",
    "lambda_return",
    "nstep_return",
    "nstep_gae",
    "vtrace",
    "retrace",
]


def _inputs(op: str, names: tuple, *values) -> tuple:
    """``values`` as the op takes them: plain tensors pass straight through (this is every call's
    cost); a tensor that requires grad is detached, since these are targets and an output that
    looked differentiable would silently give no gradient; anything that is not a tensor (numpy,
    lists, None) raises a one-line ValueError naming the argument, before the compiled op would
    print its values."""
    for value in values:
        if type(value) is not Tensor or value.requires_grad:
            break
    else:
        return values
    out = []
    for name, value in zip(names, values):
        if not isinstance(value, Tensor):
            if value is None:
                got = "None"
            elif hasattr(value, "shape") and hasattr(value, "dtype"):  # a numpy (or similar) array
                got = (
                    f"a {type(value).__module__.split('.')[0]} array {tuple(value.shape)} "
                    f"{value.dtype}; torch.from_numpy({name}) wraps it without a copy"
                )
            else:
                got = f"{type(value).__name__}; torch.as_tensor({name}) converts it"
            raise ValueError(f"{op}: {name} should be a torch.Tensor, got {got}")
        out.append(value.detach() if value.requires_grad else value)
    return tuple(out)


def _discount(op: str, name: str, x, reward: Tensor) -> tuple[float, Optional[Tensor]]:
    """A float ``gamma`` / ``lmbda`` as the op's scalar; a tensor as ``[T, N]`` for the op's
    per-step argument (the scalar then unused: 1.0)."""
    if not isinstance(x, Tensor):
        if isinstance(x, numbers.Real) and not isinstance(x, bool):  # numpy scalars too
            return float(x), None
        raise ValueError(
            f"{op}: {name} should be a float or a torch.Tensor [T, N] / [N], got {type(x).__name__}"
        )
    steps_by_envs = tuple(reward.shape[:2])
    if x.dtype != reward.dtype:
        raise ValueError(
            f"{op}: {name} should have reward's dtype {reward.dtype} (or be a float), got {x.dtype}"
        )
    if x.device != reward.device:
        raise ValueError(
            f"{op}: {name} should be on reward's device {reward.device}, got {x.device}"
        )
    if tuple(x.shape) in ((), steps_by_envs[1:]):
        x = x.expand(steps_by_envs)
    elif tuple(x.shape) != steps_by_envs:
        raise ValueError(
            f"{op}: {name} should be a float, {list(steps_by_envs)} (per step and env) or "
            f"{list(steps_by_envs[1:])} (per env), got shape {list(x.shape)}"
        )
    return 1.0, x.detach()


def _full_next_value(
    op: str,
    reward: Tensor,
    value: Optional[Tensor],
    next_value: Tensor,
    truncated: Tensor,
    final_value: Optional[Tensor],
) -> Tensor:
    """``next_value`` as the ops take it, ``[T, N]`` like ``reward``, from the bootstrap form
    (the module docstring); a full one passes through, ``final_value`` spliced in if given."""
    bootstrap_shapes = (reward.shape[1:], (1, *reward.shape[1:]))
    if final_value is None and next_value.shape not in bootstrap_shapes:
        return next_value  # the full form, or a shape the op itself names
    if final_value is not None:
        if not isinstance(final_value, Tensor):
            raise ValueError(
                f"{op}: final_value should be a torch.Tensor {list(reward.shape)}, "
                f"got {type(final_value).__name__}"
            )
        if final_value.shape != reward.shape:
            raise ValueError(
                f"{op}: final_value should have reward's shape {list(reward.shape)} "
                f"(read only where truncated), got {list(final_value.shape)}"
            )
        final_value = final_value.detach()
    full = next_value
    if next_value.shape != reward.shape and next_value.shape in bootstrap_shapes:
        boot = next_value[None] if next_value.shape == reward.shape[1:] else next_value
        if boot.shape != (1, *reward.shape[1:]):
            raise ValueError(
                f"{op}: next_value should be {list(reward.shape)} (every step) or "
                f"{list(reward.shape[1:])} (the value after the rollout's last step), "
                f"got {list(next_value.shape)}"
            )
        # Rows before the last are read only at cuts (or, with a value, inside episodes).
        rest = (
            value[1:]
            if value is not None
            else boot.new_zeros((reward.shape[0] - 1, *boot.shape[1:]))
        )
        full = torch.cat([rest, boot.to(rest.dtype)])
    cut = truncated != 0
    if reward.dim() == 3:
        cut = cut[..., None]
    if final_value is not None:
        return torch.where(cut, final_value.to(full.dtype), full)
    if next_value.shape != reward.shape and bool(cut.any()):
        raise ValueError(
            f"{op}: {int(cut.sum())} truncated step(s) bootstrap from the value of "
            f"their final observation, which a [N] next_value does not hold; pass "
            f"final_value=[T, N] (V of those final observations, read only where "
            f"truncated), or a full [T, N] next_value"
        )
    return full


_REWARD_VALUES = ("reward", "value", "next_value", "terminated", "truncated")
_REWARD_NEXT = ("reward", "next_value", "terminated", "truncated")
_OFF_POLICY = ("log_rho", "reward", "value", "next_value", "terminated", "truncated")


def gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: Union[float, Tensor] = 0.99,
    lmbda: Union[float, Tensor] = 0.95,
    *,
    final_value: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (Schulman et al., https://arxiv.org/abs/1506.02438).

    ``delta_t = r_t + gamma * (0 if terminated_t else next_value_t) - value_t`` and
    ``A_t = delta_t + gamma * lmbda * A_{t+1}``, the trace cut where an episode ends.

    Args:
        reward: ``[T, N]`` or ``[T, N, m]`` rewards.
        value: ``V(o_t)``, same shape and dtype as ``reward``.
        next_value: ``V(o_{t+1})`` (final observation at episode ends), same shape as
            ``reward``; or ``[N]``, the value after the rollout (module docstring).
        terminated: ``[T, N]`` true terminals.
        truncated: ``[T, N]`` time-limit cuts.
        gamma: discount in [0, 1]; or a ``[T, N]`` / ``[N]`` tensor (module docstring).
        lmbda: GAE lambda in [0, 1]; 1 gives Monte-Carlo advantages, 0 the one-step TD error;
            or a tensor, as ``gamma``.
        final_value: ``[T, N]``, V of each truncated step's final observation (read only where
            ``truncated``).

    Returns:
        ``(advantage, value_target)``, both shaped like ``reward``; ``value_target = A + value``.
    """
    if final_value is None and not torch.compiler.is_compiling():
        # CPU tensors and float discounts: the direct route, without the dispatcher's argument
        # parsing (csrc/returns_host.cpp; it checks the rest, None when it does not apply).
        # torch.compile traces the dispatched op.
        out = _C.gae_direct(reward, value, next_value, terminated, truncated, gamma, lmbda)
        if out is not None:
            return out
    reward, value, next_value, terminated, truncated = _inputs(
        "gae", _REWARD_VALUES, reward, value, next_value, terminated, truncated
    )
    if final_value is not None or next_value.shape != reward.shape:
        next_value = _full_next_value("gae", reward, value, next_value, truncated, final_value)
    gamma, gammas = _discount("gae", "gamma", gamma, reward)
    lmbda, lmbdas = _discount("gae", "lmbda", lmbda, reward)
    return _ops.gae(reward, value, next_value, terminated, truncated, gamma, lmbda, gammas, lmbdas)


def discounted_return(
    reward: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: Union[float, Tensor] = 0.99,
    *,
    final_value: Optional[Tensor] = None,
) -> Tensor:
    """Discounted return to the end of each episode, bootstrapped where it is cut.

    ``G_t = r_t + gamma * (0 if terminated_t else next_value_t if cut_t else G_{t+1})``.

    Args:
        reward: ``[T, N]`` or ``[T, N, m]``.
        next_value: same shape as ``reward``; read only where a step is truncated or last. Or
            ``[N]``, the value after the rollout, with ``final_value`` at the cuts.
        terminated, truncated: ``[T, N]``.
        gamma: discount in [0, 1], or a ``[T, N]`` / ``[N]`` tensor.
        final_value: ``[T, N]``, V of each truncated step's final observation.

    Returns:
        ``[T, N]`` (or ``[T, N, m]``) returns.
    """
    if final_value is None and not torch.compiler.is_compiling():
        out = _C.discounted_return_direct(reward, next_value, terminated, truncated, gamma)
        if out is not None:  # the direct route (see gae)
            return out
    reward, next_value, terminated, truncated = _inputs(
        "discounted_return", _REWARD_NEXT, reward, next_value, terminated, truncated
    )
    if final_value is not None or next_value.shape != reward.shape:
        next_value = _full_next_value(
            "discounted_return", reward, None, next_value, truncated, final_value
        )
    gamma, gammas = _discount("discounted_return", "gamma", gamma, reward)
    return _ops.discounted_return(reward, next_value, terminated, truncated, gamma, gammas)


def lambda_return(
    reward: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: Union[float, Tensor] = 0.99,
    lmbda: Union[float, Tensor] = 0.95,
) -> Tensor:
    """TD(lambda) return, ``G_t = r_t + gamma * ((1 - lmbda) * next_value_t + lmbda * G_{t+1})``,
    with ``G_{t+1}`` replaced by ``next_value_t`` where the episode is cut and the tail dropped
    where it terminates. Equals ``gae(...)[1]`` when ``next_value[t] == value[t + 1]`` inside
    episodes.

    Args:
        reward: ``[T, N]`` or ``[T, N, m]``.
        next_value: same shape as ``reward``.
        terminated, truncated: ``[T, N]``.
        gamma, lmbda: in [0, 1]; or ``[T, N]`` / ``[N]`` tensors.

    Returns:
        ``[T, N]`` (or ``[T, N, m]``) lambda-returns.
    """
    if not torch.compiler.is_compiling():
        out = _C.lambda_return_direct(reward, next_value, terminated, truncated, gamma, lmbda)
        if out is not None:  # the direct route (see gae)
            return out
    reward, next_value, terminated, truncated = _inputs(
        "lambda_return", _REWARD_NEXT, reward, next_value, terminated, truncated
    )
    gamma, gammas = _discount("lambda_return", "gamma", gamma, reward)
    lmbda, lmbdas = _discount("lambda_return", "lmbda", lmbda, reward)
    return _ops.lambda_return(
        reward, next_value, terminated, truncated, gamma, lmbda, gammas, lmbdas
    )


def _uniform(
    reward: Tensor, floating: bool, uniform: Optional[Tensor], generator: Optional[torch.Generator]
) -> Optional[Tensor]:
    if uniform is not None or not floating:
        return uniform
    return torch.rand(
        reward.shape[:2], dtype=reward.dtype, device=reward.device, generator=generator
    )


def nstep_return(
    reward: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    n: int = 5,
    gamma: Union[float, Tensor] = 0.99,
    *,
    floating: bool = False,
    uniform: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """n-step returns, fixed or floating (k drawn per window start).

    The window at ``(t, env)`` has ``k = n`` steps, or ``k ~ U{1..n}`` when floating, clipped
    after the step that ends its episode or the rollout (``k_eff``). The target is
    ``R + D * next_value[boot, env]``.

    Args:
        reward: ``[T, N]`` or ``[T, N, m]``.
        terminated, truncated: ``[T, N]``.
        n: largest window, ``>= 1``.
        gamma: discount in [0, 1]; or a ``[T, N]`` / ``[N]`` tensor: ``R`` then weighs
            ``r_{t+l}`` by ``prod_{i<l} gamma_{t+i}`` and ``D`` is the window's product.
        floating: draw ``k ~ U{1..n}`` per window from ``generator``.
        uniform: ``[T, N]`` uniforms in [0, 1) (reward's dtype) giving ``k = 1 + floor(u * n)``;
            overrides ``floating``. Pass them to reproduce a draw exactly.
        generator: the ``torch.Generator`` for floating draws.

    Returns:
        ``(R, D, boot)``: ``R`` like ``reward``, ``sum_{l<k_eff} gamma^l r_{t+l}``;
        ``D`` ``[T, N]``, ``gamma^k_eff`` or 0 when the window ends in a true terminal;
        ``boot`` ``[T, N]`` int64, ``t + k_eff - 1``, the step whose ``next_value`` bootstraps.
    """
    reward, terminated, truncated, *rest = _inputs(
        "nstep_return",
        ("reward", "terminated", "truncated", "uniform"),
        reward,
        terminated,
        truncated,
        *([uniform] if uniform is not None else []),
    )
    uniform = rest[0] if rest else None
    u = _uniform(reward, floating, uniform, generator)
    gamma, gammas = _discount("nstep_return", "gamma", gamma, reward)
    return _ops.nstep_return(reward, terminated, truncated, u, n, gamma, gammas)


def nstep_gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    n: int = 5,
    gamma: Union[float, Tensor] = 0.99,
    lmbda: Union[float, Tensor] = 0.95,
    *,
    floating: bool = False,
    uniform: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    final_value: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The n-step-GAE credit: a lambda-return truncated after ``k`` steps (SPEC 4.2).

    With the windows of :func:`nstep_return`,
    ``A^(k)_t = sum_{l<k_eff} (gamma lmbda)^l delta_{t+l}``,
    ``D = gamma (gamma lmbda)^(k_eff - 1)`` (0 after a true terminal) and
    ``C = A^(k)_t + value_t - D * next_value[boot]``. The target
    ``C + D * Q(s_{t+k_eff})`` equals the truncated lambda-return ``G^lambda_{t:t+k}`` when the
    cached values are fresh. ``k = 1`` gives ``C = r_t, D = gamma``; ``lmbda = 1`` the plain
    k-step return.

    Args:
        reward, value, next_value: ``[T, N]`` or ``[T, N, m]``, same shape and dtype
            (``next_value`` may be ``[N]``, with ``final_value``, as in :func:`gae`).
        terminated, truncated: ``[T, N]``.
        n, gamma, lmbda, floating, uniform, generator: as in :func:`nstep_return`; with
            tensors, ``delta_{t+l}`` is weighed by ``prod_{i<l} (gamma lmbda)_{t+i}`` and ``D``
            is that product over the window's first ``k_eff - 1`` steps times its last gamma.
        final_value: as in :func:`gae`.

    Returns:
        ``(C, D, boot)`` shaped as in :func:`nstep_return`.
    """
    reward, value, next_value, terminated, truncated, *rest = _inputs(
        "nstep_gae",
        (*_REWARD_VALUES, "uniform"),
        reward,
        value,
        next_value,
        terminated,
        truncated,
        *([uniform] if uniform is not None else []),
    )
    uniform = rest[0] if rest else None
    if final_value is not None or next_value.shape != reward.shape:
        next_value = _full_next_value(
            "nstep_gae", reward, value, next_value, truncated, final_value
        )
    u = _uniform(reward, floating, uniform, generator)
    gamma, gammas = _discount("nstep_gae", "gamma", gamma, reward)
    lmbda, lmbdas = _discount("nstep_gae", "lmbda", lmbda, reward)
    return _ops.nstep_gae(
        reward, value, next_value, terminated, truncated, u, n, gamma, lmbda, gammas, lmbdas
    )


# ---- off-policy corrections --------------------------------------------------------------------


def vtrace(
    log_rho: Tensor,
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: Union[float, Tensor] = 0.99,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    lmbda: Union[float, Tensor] = 1.0,
    *,
    final_value: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """V-trace targets and policy-gradient advantages for data another (or an older) policy
    collected (Espeholt et al. 2018, https://arxiv.org/abs/1802.01561).

    With ``rho_t = min(rho_bar, exp(log_rho_t))`` and ``c_t = lmbda * min(c_bar, exp(log_rho_t))``:
    ``delta_t = rho_t (r_t + gamma nv_t - v_t)`` (``nv_t`` taken as 0 where terminated),
    ``vs_t - v_t = delta_t + gamma c_t (vs_{t+1} - v_{t+1})`` (nothing carried past an episode's
    end or the rollout's last row), and
    ``pg_advantage_t = rho_t (r_t + gamma vhat_{t+1} - v_t)`` with ``vhat_{t+1} = vs_{t+1}``
    inside an episode, ``next_value_t`` at a cut or the last row. ``rho = 1`` everywhere gives
    the on-policy lambda-return; ``c_bar`` near 0 gives one-step TD targets.

    Args:
        log_rho: ``[T, N]`` log importance ratios ``log pi(a_t|o_t) - log mu(a_t|o_t)``; -inf is
            allowed (a ratio of 0), NaN is not.
        reward, value: ``[T, N]``; ``value`` is ``V(o_t)``.
        next_value: ``[T, N]``, ``V(o_{t+1})``, the final observation's where an episode was cut;
            or ``[N]`` with ``final_value``, as in :func:`gae`.
        terminated, truncated: ``[T, N]`` flags, kept apart.
        gamma: discount in [0, 1]; rho_bar, c_bar: clipping thresholds > 0; lmbda in [0, 1];
            gamma and lmbda may be ``[T, N]`` / ``[N]`` tensors (``c_t = lmbda_t min(...)``).
        final_value: as in :func:`gae`.

    Returns:
        ``(vs, pg_advantage)``, both like ``reward``; targets, not differentiable.
    """
    if final_value is None and not torch.compiler.is_compiling():
        out = _C.vtrace_direct(
            log_rho, reward, value, next_value, terminated, truncated, gamma, rho_bar, c_bar, lmbda
        )
        if out is not None:  # the direct route (see gae)
            return out
    log_rho, reward, value, next_value, terminated, truncated = _inputs(
        "vtrace", _OFF_POLICY, log_rho, reward, value, next_value, terminated, truncated
    )
    if final_value is not None or next_value.shape != reward.shape:
        next_value = _full_next_value("vtrace", reward, value, next_value, truncated, final_value)
    gamma, gammas = _discount("vtrace", "gamma", gamma, reward)
    lmbda, lmbdas = _discount("vtrace", "lmbda", lmbda, reward)
    return _ops.vtrace(
        log_rho,
        reward,
        value,
        next_value,
        terminated,
        truncated,
        gamma,
        rho_bar,
        c_bar,
        lmbda,
        gammas,
        lmbdas,
    )


def retrace(
    log_rho: Tensor,
    reward: Tensor,
    q: Tensor,
    next_v: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: Union[float, Tensor] = 0.99,
    lmbda: Union[float, Tensor] = 1.0,
) -> Tensor:
    """Retrace Q targets (Munos et al. 2016, https://arxiv.org/abs/1606.02647).

    ``G_t = r_t + gamma (next_v_t + c_{t+1} (G_{t+1} - q_{t+1}))`` with the trace
    ``c_{t+1} = lmbda * min(1, exp(log_rho_{t+1}))``, cut (0) where an episode ends or the rollout
    does, and ``G_t = r_t`` where terminated.

    Args:
        log_rho: ``[T, N]`` log ratios of the taken actions, ``log pi(a_t|o_t) - log mu(a_t|o_t)``.
        reward: ``[T, N]``.
        q: ``[T, N]``, ``Q(o_t, a_t)``.
        next_v: ``[T, N]``, ``E_{a ~ pi} Q(o_{t+1}, a)``, the final observation's at a cut.
        terminated, truncated: ``[T, N]`` flags, kept apart.
        gamma: discount in [0, 1]; lmbda: trace decay in [0, 1]; either may be a ``[T, N]`` /
            ``[N]`` tensor (``lmbda_t`` scales the trace ``c_{t+1}``).

    Returns:
        ``G`` like ``reward``; targets, not differentiable.
    """
    if not torch.compiler.is_compiling():
        out = _C.retrace_direct(log_rho, reward, q, next_v, terminated, truncated, gamma, lmbda)
        if out is not None:  # the direct route (see gae)
            return out
    log_rho, reward, q, next_v, terminated, truncated = _inputs(
        "retrace",
        ("log_rho", "reward", "q", "next_v", "terminated", "truncated"),
        log_rho,
        reward,
        q,
        next_v,
        terminated,
        truncated,
    )
    gamma, gammas = _discount("retrace", "gamma", gamma, reward)
    lmbda, lmbdas = _discount("retrace", "lmbda", lmbda, reward)
    return _ops.retrace(
        log_rho, reward, q, next_v, terminated, truncated, gamma, lmbda, gammas, lmbdas
    )
