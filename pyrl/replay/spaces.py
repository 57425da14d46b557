"""Buffer specs from gymnasium spaces (``ReplayBuffer.from_spaces``); gymnasium is imported only
when a space is given."""

import torch


def spec_from_spaces(observation_space, action_space) -> dict:
    """The spec of ``ReplayBuffer.from_spaces``."""
    spec = {}
    if isinstance(observation_space, _spaces().Dict):
        for key, space in observation_space.spaces.items():
            spec[key] = _space_field("observation_space", key, space)
    else:
        spec["obs"] = _space_field("observation_space", "obs", observation_space)
    spec["action"] = _space_field("action_space", "action", action_space)
    return spec


def _spaces():
    import gymnasium

    return gymnasium.spaces


def is_space(value) -> bool:
    try:
        return isinstance(value, _spaces().Space)
    except ImportError:
        return False


def _space_field(argument: str, name: str, space) -> tuple:
    """The spec entry ``(shape, dtype)`` of one gymnasium space."""
    spaces = _spaces()
    if isinstance(space, spaces.Box):
        dtype = torch.float32 if space.dtype.kind == "f" else getattr(torch, str(space.dtype))
        return tuple(space.shape), dtype
    if isinstance(space, spaces.Discrete):
        return (), torch.int64
    if isinstance(space, spaces.MultiDiscrete):
        return tuple(space.shape), torch.int64
    if isinstance(space, spaces.MultiBinary):
        # The space's own dtype (int8), as its samples and SB3's VecEnvs give it; bools convert.
        return tuple(space.shape), getattr(torch, str(space.dtype))
    raise ValueError(
        f"ReplayBuffer.from_spaces: {argument} ({name}) should be a Box, Discrete, "
        f"MultiDiscrete or MultiBinary space (or a Dict of them), got {space}"
    )
