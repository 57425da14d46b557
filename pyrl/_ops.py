"""Typed wrappers over torch.ops.pyrl.* and the fake (meta) implementation of each op.

The fakes give torch.compile and torch.library.opcheck each op's output shapes without running
it; the compiled op checks its arguments in full, the fakes only what decides the output shape.
"""

from typing import Optional

import torch
from torch import Tensor

_ops = torch.ops.pyrl


def gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lmbda: float,
    gammas: Optional[Tensor] = None,
    lmbdas: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    return _ops.gae.default(
        reward, value, next_value, terminated, truncated, gamma, lmbda, gammas, lmbdas
    )


def discounted_return(
    reward: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    gammas: Optional[Tensor] = None,
) -> Tensor:
    return _ops.discounted_return.default(reward, next_value, terminated, truncated, gamma, gammas)


def lambda_return(
    reward: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lmbda: float,
    gammas: Optional[Tensor] = None,
    lmbdas: Optional[Tensor] = None,
) -> Tensor:
    return _ops.lambda_return.default(
        reward, next_value, terminated, truncated, gamma, lmbda, gammas, lmbdas
    )


def nstep_return(
    reward: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    uniform: Optional[Tensor],
    n: int,
    gamma: float,
    gammas: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    return _ops.nstep_return.default(reward, terminated, truncated, uniform, n, gamma, gammas)


def nstep_gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    uniform: Optional[Tensor],
    n: int,
    gamma: float,
    lmbda: float,
    gammas: Optional[Tensor] = None,
    lmbdas: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    return _ops.nstep_gae.default(
        reward, value, next_value, terminated, truncated, uniform, n, gamma, lmbda, gammas, lmbdas
    )


def vtrace(
    log_rho: Tensor,
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    rho_bar: float,
    c_bar: float,
    lmbda: float,
    gammas: Optional[Tensor] = None,
    lmbdas: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    return _ops.vtrace.default(
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
    gamma: float,
    lmbda: float,
    gammas: Optional[Tensor] = None,
    lmbdas: Optional[Tensor] = None,
) -> Tensor:
    return _ops.retrace.default(
        log_rho, reward, q, next_v, terminated, truncated, gamma, lmbda, gammas, lmbdas
    )


def tree_update(
    sum_tree: Tensor, min_tree: Tensor, capacity: int, index: Tensor, leaf: Tensor
) -> None:
    _ops.tree_update.default(sum_tree, min_tree, capacity, index, leaf)


def tree_sample(
    sum_tree: Tensor, min_tree: Tensor, capacity: int, uniform: Tensor, beta: float, batch_max: bool
) -> tuple[Tensor, Tensor]:
    return _ops.tree_sample.default(sum_tree, min_tree, capacity, uniform, beta, batch_max)


def replay_rebuild(state: list[Tensor], alpha: float) -> None:
    _ops.replay_rebuild.default(state, alpha)


def replay_gather_episodes(
    state: list[Tensor], column: Tensor, episode_ids: Tensor, pad: int, positions: int
) -> tuple[Tensor, Tensor]:
    return _ops.replay_gather_episodes.default(state, column, episode_ids, pad, positions)


def replay_scatter_episodes(
    state: list[Tensor], column: Tensor, episode_ids: Tensor, values: Tensor, offset: int
) -> Tensor:
    return _ops.replay_scatter_episodes.default(state, column, episode_ids, values, offset)


def replay_write_rows(
    state: list[Tensor],
    column: Tensor,
    index: Tensor,
    generation: Tensor,
    values: Tensor,
    offset: int = 0,
) -> Tensor:
    return _ops.replay_write_rows.default(state, column, index, generation, values, offset)


def replay_gather_windows(
    state: list[Tensor], columns: list[Tensor], start: Tensor, steps: int, config: list[float]
):
    return _ops.replay_gather_windows.default(state, columns, start, steps, config)


# ---- fakes -------------------------------------------------------------------------------------


def _check_rollout(op: str, reward: Tensor, **others: Optional[Tensor]) -> None:
    torch._check(
        reward.dim() in (2, 3),
        lambda: f"{op}: reward should be 2-D [T, N] or 3-D [T, N, m], got {reward.dim()}-D",
    )
    for name, t in others.items():
        if t is None:
            continue
        torch._check(
            t.device == reward.device,
            lambda: f"{op}: {name} should be on reward's device {reward.device}, got {t.device}",
        )
        expected = reward.shape if name in ("value", "next_value") else reward.shape[:2]
        torch._check(
            t.shape == expected,
            lambda: f"{op}: {name} should have shape {tuple(expected)}, got {tuple(t.shape)}",
        )


def _like(reward: Tensor, shape=None, dtype=None) -> Tensor:
    # Real outputs are contiguous whatever the input strides, so the fakes are too.
    return reward.new_empty(
        reward.shape if shape is None else shape, dtype=reward.dtype if dtype is None else dtype
    )


@torch.library.register_fake("pyrl::gae")
def _gae_fake(
    reward, value, next_value, terminated, truncated, gamma, lmbda, gammas=None, lmbdas=None
):
    _check_rollout(
        "pyrl::gae",
        reward,
        value=value,
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
        gammas=gammas,
        lmbdas=lmbdas,
    )
    return _like(reward), _like(reward)


@torch.library.register_fake("pyrl::discounted_return")
def _discounted_return_fake(reward, next_value, terminated, truncated, gamma, gammas=None):
    _check_rollout(
        "pyrl::discounted_return",
        reward,
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
        gammas=gammas,
    )
    return _like(reward)


@torch.library.register_fake("pyrl::lambda_return")
def _lambda_return_fake(
    reward, next_value, terminated, truncated, gamma, lmbda, gammas=None, lmbdas=None
):
    _check_rollout(
        "pyrl::lambda_return",
        reward,
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
        gammas=gammas,
        lmbdas=lmbdas,
    )
    return _like(reward)


def _window_outputs(reward: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    steps_by_envs = reward.shape[:2]
    return _like(reward), _like(reward, steps_by_envs), _like(reward, steps_by_envs, torch.int64)


@torch.library.register_fake("pyrl::nstep_return")
def _nstep_return_fake(reward, terminated, truncated, uniform, n, gamma, gammas=None):
    _check_rollout(
        "pyrl::nstep_return",
        reward,
        terminated=terminated,
        truncated=truncated,
        uniform=uniform,
        gammas=gammas,
    )
    return _window_outputs(reward)


@torch.library.register_fake("pyrl::nstep_gae")
def _nstep_gae_fake(
    reward,
    value,
    next_value,
    terminated,
    truncated,
    uniform,
    n,
    gamma,
    lmbda,
    gammas=None,
    lmbdas=None,
):
    _check_rollout(
        "pyrl::nstep_gae",
        reward,
        value=value,
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
        uniform=uniform,
        gammas=gammas,
        lmbdas=lmbdas,
    )
    return _window_outputs(reward)


def _check_off_policy(op: str, log_rho: Tensor, reward: Tensor, **others: Tensor) -> None:
    torch._check(
        reward.dim() == 2, lambda: f"{op}: reward should be 2-D [T, N], got {reward.dim()}-D"
    )
    _check_rollout(op, reward, log_rho=log_rho, **others)


@torch.library.register_fake("pyrl::vtrace")
def _vtrace_fake(
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
    gammas=None,
    lmbdas=None,
):
    _check_off_policy(
        "pyrl::vtrace",
        log_rho,
        reward,
        value=value,
        next_value=next_value,
        terminated=terminated,
        truncated=truncated,
        gammas=gammas,
        lmbdas=lmbdas,
    )
    return _like(reward), _like(reward)


@torch.library.register_fake("pyrl::retrace")
def _retrace_fake(
    log_rho, reward, q, next_v, terminated, truncated, gamma, lmbda, gammas=None, lmbdas=None
):
    _check_off_policy(
        "pyrl::retrace",
        log_rho,
        reward,
        q=q,
        next_v=next_v,
        terminated=terminated,
        truncated=truncated,
        gammas=gammas,
        lmbdas=lmbdas,
    )
    return _like(reward)


# The replay ops that only mutate their (a!) arguments (add_episode, update_priorities) need no
# fake; the add and end_episodes ops return a count (a 0-d int64 tensor).


@torch.library.register_fake("pyrl::replay_add")
def _replay_add_fake(state, columns, step, final_obs, terminated, truncated, config, skip=None):
    return state[0].new_empty(())


@torch.library.register_fake("pyrl::replay_end_episodes")
def _replay_end_episodes_fake(state, columns, config):
    return state[0].new_empty(())


@torch.library.register_fake("pyrl::tree_sample")
def _tree_sample_fake(sum_tree, min_tree, capacity, uniform, beta, batch_max):
    count = uniform.shape[0]
    return (
        sum_tree.new_empty(count, dtype=torch.int64),
        sum_tree.new_empty(count, dtype=torch.float32),
    )


def _obs_columns(config) -> int:
    from pyrl import _C

    return int(config[_C.layout()["config"]["obs_columns"]])


@torch.library.register_fake("pyrl::replay_sample")
def _replay_sample_fake(state, columns, batch_size, rows, config):
    ids = state[0].new_empty(batch_size)
    reward = columns[-1]
    fields = [c.new_empty((batch_size, *c.shape[1:])) for c in columns[:-1]]
    next_obs = [c.new_empty((batch_size, *c.shape[1:])) for c in columns[: _obs_columns(config)]]
    return (
        ids,
        ids.clone(),
        reward.new_empty(batch_size, dtype=torch.float32),
        reward.new_empty((batch_size, *reward.shape[1:])),
        reward.new_empty(batch_size),
        ids.clone(),
        ids.clone(),
        fields,
        next_obs,
        ids.clone(),
        ids.new_empty(batch_size, dtype=torch.bool),
    )


@torch.library.register_fake("pyrl::replay_check")
def _replay_check_fake(state):
    return state[0].new_empty(2)


@torch.library.register_fake("pyrl::replay_gather_episodes")
def _replay_gather_episodes_fake(state, column, episode_ids, pad, positions):
    count = episode_ids.shape[0]
    return column.new_empty((count, positions, *column.shape[1:])), episode_ids.new_empty(count)


@torch.library.register_fake("pyrl::replay_scatter_episodes")
def _replay_scatter_episodes_fake(state, column, episode_ids, values, offset):
    return episode_ids.new_empty(episode_ids.shape[0], dtype=torch.bool)


@torch.library.register_fake("pyrl::replay_write_rows")
def _replay_write_rows_fake(state, column, index, generation, values, offset=0):
    return index.new_empty(index.shape[0], dtype=torch.bool)


@torch.library.register_fake("pyrl::replay_gather_windows")
def _replay_gather_windows_fake(state, columns, start, steps, config):
    # The buffer's settings; its hidden column (the last observation column) is passed apart.
    obs_columns = _obs_columns(config) - 1
    count, reward = start.shape[0], columns[-1]
    fields = [
        c.new_empty((count, steps + 1 if i < obs_columns else steps, *c.shape[1:]))
        for i, c in enumerate(columns[:-1])
    ]
    return (
        fields,
        start.new_empty((count, steps), dtype=torch.bool),
        reward.new_empty((count, steps, *reward.shape[1:])),
        reward.new_empty((count, steps)),
        start.new_empty((count, steps)),
        start.new_empty((count, steps), dtype=torch.bool),
        start.new_empty(count),
    )


@torch.library.register_fake("pyrl::replay_sample_windows")
def _replay_sample_windows_fake(state, columns, hidden, batch_size, steps, config):
    from pyrl.replay.layout import named, ordered  # here: pyrl.replay imports this module

    # The buffer's settings; its hidden column (the last observation column) is passed apart.
    windows = named(
        "replay_gather_windows",
        _replay_gather_windows_fake(
            state, columns, generation_like(state, batch_size), steps, config
        ),
    )
    generation = windows["generation"]
    return ordered(
        "replay_sample_windows",
        dict(
            windows,
            index=generation.new_empty(batch_size),
            weight=generation.new_empty(batch_size, dtype=torch.float32),
            hidden_first=hidden.new_empty((batch_size, *hidden.shape[1:])),
        ),
    )


def generation_like(state, count):
    return state[0].new_empty(count)
