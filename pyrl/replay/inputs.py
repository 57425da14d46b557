"""What a replay buffer accepts: the spec of its fields, and the fast path of the inputs that are
no column's values (indices, generations, TD errors, recurrent states). Every conversion is the
compiled host's (csrc/replay_host.cpp): column values (``add``'s steps, ``add_episode``'s
episodes) convert there, and the inputs here past their fast path (``ReplayHost.convert``).

Conversion rule (``castable`` there): tensors, numpy arrays and lists convert to a field's dtype
within their kind (floats or ints into float columns, ints into int columns, bools into bool
columns); anything else raises ValueError naming the argument. Indices are int64, from any
integer input."""

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from pyrl.replay.settings import HER, PerDim, SparseL2

GOAL_ENV_KEYS = ("observation", "achieved_goal", "desired_goal")  # gymnasium-robotics dicts
# The goal dtypes the compiled sample reads (csrc/kernels/her.h GoalType), of any shape.
GOAL_DTYPES = (
    torch.float32,
    torch.float64,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
)

# Names the sampled batch uses for its own outputs, so no spec field may take them.
RESERVED = frozenset(
    {
        "next_obs",
        "discount",
        "weight",
        "index",
        "generation",
        "boot",
        "terminated",
        "truncated",
        "her_row",
        "is_her",
        "k",
        "hidden",
        "next_hidden",
    }
)


@dataclass(frozen=True)
class Field:
    """One stored column: ``shape`` per row, ``dtype``."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype


def parse_spec(spec: Mapping[str, Any]) -> dict[str, Field]:
    """``{"obs": (17,), "action": ((6,), torch.float32)}`` -> Fields (float32 unless given)."""
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"spec should be a dict {{name: shape}} or {{name: (shape, dtype)}}, "
            f"got {type(spec).__name__}"
        )
    fields = {}
    for name, entry in spec.items():
        if not isinstance(name, str):
            raise ValueError(f"spec: field names should be strings, got {name!r}")
        if name in RESERVED:
            raise ValueError(f"spec: {name!r} is reserved for sampled batches; rename the field")
        shape, dtype = entry, torch.float32
        if (
            isinstance(entry, (tuple, list))
            and len(entry) == 2
            and isinstance(entry[1], torch.dtype)
        ):
            shape, dtype = entry
        if isinstance(shape, int):
            shape = (shape,)
        if not (
            isinstance(shape, (tuple, list, torch.Size))
            and all(isinstance(d, int) and d >= 0 for d in shape)
        ):
            raise ValueError(
                f"spec: {name!r} should be a shape tuple or (shape, dtype), got {entry!r}"
            )
        if dtype.is_complex:
            raise ValueError(f"spec: {name!r} has unsupported dtype {dtype}")
        fields[name] = Field(name, tuple(shape), dtype)
    return fields


def default_obs_keys(fields: Mapping[str, Field]) -> tuple[str, ...]:
    """``obs`` (or ``observation``) and whichever goal fields the spec has: goals are
    observations too, o_T's goals come from next_obs."""
    goals = tuple(key for key in GOAL_ENV_KEYS[1:] if key in fields)
    return (
        ("obs",) if "obs" in fields or "observation" not in fields else ("observation",)
    ) + goals


def check_goal_fields(fields: Mapping[str, Field], obs_keys: tuple, her: HER) -> None:
    missing = [key for key in ("achieved_goal", "desired_goal") if key not in obs_keys]
    if missing:
        raise ValueError(
            f"ReplayBuffer: HER needs observation fields 'achieved_goal' and "
            f"'desired_goal' (in spec and obs_keys); missing {missing} from obs_keys "
            f"{obs_keys}"
        )
    achieved, desired = fields["achieved_goal"], fields["desired_goal"]
    if achieved.shape != desired.shape or achieved.dtype != desired.dtype:
        raise ValueError(
            f"ReplayBuffer: achieved_goal and desired_goal should have one shape and dtype, "
            f"got {list(achieved.shape)} {achieved.dtype} and {list(desired.shape)} "
            f"{desired.dtype}"
        )
    if achieved.dtype not in GOAL_DTYPES:
        raise ValueError(
            f"ReplayBuffer: goal fields should be of one of "
            f"{[str(t).removeprefix('torch.') for t in GOAL_DTYPES]} (any shape), "
            f"got {achieved.dtype}"
        )
    reward = fields["reward"].shape
    if isinstance(her.reward, SparseL2) and reward != ():
        raise ValueError(
            f"ReplayBuffer: sparse_l2 gives one reward per step; reward should be [], "
            f"got {list(reward)}"
        )
    elements = math.prod(achieved.shape)
    if isinstance(her.reward, PerDim) and reward != (elements,):
        raise ValueError(
            f"ReplayBuffer: per_dim gives one reward per goal element; reward should "
            f"be [{elements}], got {list(reward)}"
        )


class Inputs:
    """Normalises a buffer's inputs to the tensors its op takes, in column order.

    The fast case (tensors of the column's dtype and shape, on the buffer's device) costs one
    type, dtype and shape comparison per field; everything else is converted or refused here,
    naming the argument, before any op runs.
    """

    def __init__(
        self, fields: list[Field], obs_keys: tuple[str, ...], device: torch.device, convert
    ):
        self._convert = convert  # ReplayHost.convert: the conversion rule, in C++
        self.fields = fields
        self.obs_keys = obs_keys
        self.device = device
        self._single_obs = obs_keys == ("obs",)

    def obs_values(self, where: str, name: str, obs) -> list:
        if self._single_obs:
            return [obs]
        if not isinstance(obs, Mapping) or set(obs) != set(self.obs_keys):
            got = sorted(obs) if isinstance(obs, Mapping) else type(obs).__name__
            raise ValueError(
                f"ReplayBuffer.{where}: {name} should be a dict with keys "
                f"{sorted(self.obs_keys)}, got {got}"
            )
        return [obs[key] for key in self.obs_keys]

    def leading_size(self, where: str, value, name: str = "obs") -> int:
        shape = getattr(value, "shape", None)
        if shape is None:
            try:
                shape = torch.as_tensor(value).shape
            except (TypeError, RuntimeError, ValueError):
                raise ValueError(
                    f"ReplayBuffer.{where}: {name} should be an array or tensor, got "
                    f"{type(value).__name__}"
                ) from None
        if len(shape) == 0:
            raise ValueError(
                f"ReplayBuffer.{where}: {name} should have a leading dimension, got a scalar"
            )
        return shape[0]

    def rows(self, where: str, name: str, field: Field, value, count: int) -> Tensor:
        """`value` as ``[count, *field.shape]`` of the field's dtype on the buffer's device."""
        if type(value) is Tensor and value.dtype is field.dtype and value.device == self.device:
            if (
                value.dim() == 1 + len(field.shape)
                and value.shape[0] == count
                and value.shape[1:] == field.shape
            ):
                return value
        # The conversion rule (within a kind) and its messages are the host's, one for all inputs.
        value = self._convert(where, name, value, field.dtype, [count, *field.shape])
        if value.device.type == "meta":
            raise ValueError(f"ReplayBuffer.{where}: {name} should hold data, got a meta tensor")
        return value.to(self.device)

    def index(
        self, name: str, value, count: Optional[int] = None, where: str = "update_priorities"
    ) -> Tensor:
        """An int64 ``[B]`` tensor of rows or generations, from a tensor, array or list."""
        if not (type(value) is Tensor and value.dtype is torch.int64):
            try:
                value = torch.as_tensor(value)
            except (TypeError, RuntimeError, ValueError):
                raise ValueError(
                    f"ReplayBuffer.{where}: {name} should be an int64 [B] "
                    f"tensor, got {type(value).__name__}"
                ) from None
            if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
                raise ValueError(f"ReplayBuffer.{where}: {name} should be int64, got {value.dtype}")
            value = value.to(torch.int64)
        if value.dim() != 1 or (count is not None and value.shape[0] != count):
            want = "[B]" if count is None else f"[{count}]"
            raise ValueError(
                f"ReplayBuffer.{where}: {name} should be 1-D {want}, got shape {list(value.shape)}"
            )
        return value if value.device == self.device else value.to(self.device)
