"""Slow, obvious pure-torch versions of every pyrl op.

They are the oracle of the tests and the baseline row of the benchmarks. Each mirrors the public
function of the same name (pyrl.returns), computes in float64 with plain Python loops over time
(and, for the window ops, over window starts), and returns the input dtype.
"""

from typing import Optional

import torch
from torch import Tensor


def _flags(flag: Tensor, reward: Tensor) -> Tensor:
    """[T, N] flags as bool, broadcast over reward heads when reward is [T, N, m]."""
    flag = flag.to(device=reward.device) != 0
    return flag.unsqueeze(-1).expand(reward.shape) if reward.dim() == 3 else flag


def gae(reward: Tensor, value: Tensor, next_value: Tensor, terminated: Tensor, truncated: Tensor,
        gamma: float = 0.99, lmbda: float = 0.95) -> tuple[Tensor, Tensor]:
    r, v, nv = reward.double(), value.double(), next_value.double()
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    advantage = torch.zeros_like(r)
    next_advantage = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        bootstrap = torch.where(term[t], 0.0, nv[t])
        delta = r[t] + gamma * bootstrap - v[t]
        ends = term[t] | trunc[t] | (t == r.shape[0] - 1)
        advantage[t] = delta + torch.where(ends, 0.0, gamma * lmbda * next_advantage)
        next_advantage = advantage[t]
    return advantage.to(reward.dtype), (advantage + v).to(reward.dtype)


def discounted_return(reward: Tensor, next_value: Tensor, terminated: Tensor, truncated: Tensor,
                      gamma: float = 0.99) -> Tensor:
    r, nv = reward.double(), next_value.double()
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    out = torch.zeros_like(r)
    next_return = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        ends = trunc[t] | (t == r.shape[0] - 1)
        tail = torch.where(term[t], 0.0, torch.where(ends, nv[t], next_return))
        out[t] = r[t] + gamma * tail
        next_return = out[t]
    return out.to(reward.dtype)


def lambda_return(reward: Tensor, next_value: Tensor, terminated: Tensor, truncated: Tensor,
                  gamma: float = 0.99, lmbda: float = 0.95) -> Tensor:
    r, nv = reward.double(), next_value.double()
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    out = torch.zeros_like(r)
    next_return = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        ends = trunc[t] | (t == r.shape[0] - 1)
        mixed = (1 - lmbda) * nv[t] + lmbda * next_return
        tail = torch.where(term[t], 0.0, torch.where(ends, nv[t], mixed))
        out[t] = r[t] + gamma * tail
        next_return = out[t]
    return out.to(reward.dtype)


def floating_k(uniform: Optional[Tensor], n: int, shape) -> Tensor:
    """k per window: n, or uniform on {1..n} from u in [0, 1)."""
    if uniform is None:
        return torch.full(shape, n, dtype=torch.int64)
    k = 1 + (uniform.double() * n).to(torch.int64)
    return k.clamp(1, n).cpu()


def _window(terminated: Tensor, truncated: Tensor, t: int, env: int, k: int) -> tuple[int, bool]:
    """(length, ends terminal) of the window of up to k steps starting at (t, env)."""
    steps = terminated.shape[0]
    for length in range(1, k + 1):
        s = t + length - 1
        if terminated[s, env]:
            return length, True
        if truncated[s, env] or s == steps - 1:
            return length, False
    return k, False


def nstep_return(reward: Tensor, terminated: Tensor, truncated: Tensor, n: int = 5,
                 gamma: float = 0.99, uniform: Optional[Tensor] = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
    r = reward.double().cpu()
    term, trunc = terminated.cpu() != 0, truncated.cpu() != 0
    steps, envs = r.shape[:2]
    k = floating_k(uniform, n, (steps, envs))
    ret = torch.zeros_like(r)
    discount = torch.zeros(steps, envs, dtype=torch.float64)
    boot = torch.zeros(steps, envs, dtype=torch.int64)
    for t in range(steps):
        for env in range(envs):
            length, terminal = _window(term, trunc, t, env, int(k[t, env]))
            for l in range(length):
                ret[t, env] += gamma ** l * r[t + l, env]
            discount[t, env] = 0.0 if terminal else gamma ** length
            boot[t, env] = t + length - 1
    to = dict(device=reward.device)
    return ret.to(reward.dtype).to(**to), discount.to(reward.dtype).to(**to), boot.to(**to)


def nstep_gae(reward: Tensor, value: Tensor, next_value: Tensor, terminated: Tensor,
              truncated: Tensor, n: int = 5, gamma: float = 0.99, lmbda: float = 0.95,
              uniform: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """The k-step-truncated lambda-return of SPEC 4.2, as credit C and bootstrap discount D:
    C = G^lambda_{t:t+k} - D * V(s_{t+k}),  D = gamma (gamma lmbda)^(k-1)."""
    r, v, nv = reward.double().cpu(), value.double().cpu(), next_value.double().cpu()
    term, trunc = terminated.cpu() != 0, truncated.cpu() != 0
    steps, envs = r.shape[:2]
    k = floating_k(uniform, n, (steps, envs))
    credit = torch.zeros_like(r)
    discount = torch.zeros(steps, envs, dtype=torch.float64)
    boot = torch.zeros(steps, envs, dtype=torch.int64)
    for t in range(steps):
        for env in range(envs):
            length, terminal = _window(term, trunc, t, env, int(k[t, env]))
            end = t + length - 1
            for l in range(length):
                s = t + l
                bootstrap = 0.0 if term[s, env] else nv[s, env]
                delta = r[s, env] + gamma * bootstrap - v[s, env]
                credit[t, env] += (gamma * lmbda) ** l * delta
            d = gamma * (gamma * lmbda) ** (length - 1)
            last = 0.0 if terminal else nv[end, env]
            credit[t, env] += v[t, env] - d * last
            discount[t, env] = 0.0 if terminal else d
            boot[t, env] = end
    to = dict(device=reward.device)
    return credit.to(reward.dtype).to(**to), discount.to(reward.dtype).to(**to), boot.to(**to)
