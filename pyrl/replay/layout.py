"""The replay layout, read once from the compiled extension (csrc/kernels/replay.h, ring.h,
her.h) so that Python never restates it: the order of the state tensors, the counter, episode and
config slots, the HER codes, the invariant names and every op's output names."""

import operator

from pyrl import _C

_LAYOUT = _C.layout()

STATE = dict(_LAYOUT["state"])  # name -> position in the state list
COUNTERS = dict(_LAYOUT["counters"])  # name -> slot of the int64 counters tensor
EPISODE_SLOTS = dict(_LAYOUT["episode_fields"])  # name -> column of the [E, 3] episode table
EPISODE_FIELDS = tuple(sorted(EPISODE_SLOTS, key=EPISODE_SLOTS.get))
CONFIG = dict(_LAYOUT["config"])  # name -> slot of the float config list
HER_STRATEGIES = dict(_LAYOUT["her_strategies"])
HER_OFF = int(_LAYOUT["her_off"])
HER_REWARDS = dict(_LAYOUT["her_rewards"])
HER_MAX_PARAMS = int(_LAYOUT["her_max_params"])
INVARIANTS = tuple(sorted(_LAYOUT["invariants"], key=_LAYOUT["invariants"].get))
DRAW_STREAMS = dict(_LAYOUT["draw_streams"])
DRAWS = dict(_LAYOUT["draws"])  # seed, calls -> slot of the draws state tensor
MAX_CAPACITY = int(_LAYOUT["max_capacity"])
OUTPUTS = {op: tuple(names) for op, names in _LAYOUT["outputs"].items()}  # op -> output names


def named(op: str, values) -> dict:
    """An op's outputs (a tuple in its schema's order) by name: ``named("replay_sample", out)``."""
    names = OUTPUTS[op]
    if len(values) != len(names):
        raise ValueError(f"{op} returned {len(values)} values, its schema names {len(names)}")
    return dict(zip(names, values))


def picker(op: str, *names: str):
    """A function taking an op's output tuple to the outputs ``names``, in that order, found by
    name once (for the hot paths: it costs what a tuple unpacking does, where :func:`named`'s dict
    costs about a microsecond)."""
    missing = [name for name in names if name not in OUTPUTS[op]]
    if missing:
        raise ValueError(f"{op} has no outputs {missing}; it has {list(OUTPUTS[op])}")
    return operator.itemgetter(*(OUTPUTS[op].index(name) for name in names))


def ordered(op: str, values: dict) -> tuple:
    """The inverse of :func:`named`: outputs by name as the op's tuple (the fake kernels)."""
    return tuple(values[name] for name in OUTPUTS[op])


def tree_size(capacity: int) -> int:
    """Length of the flat sum (or min) tree over `capacity` leaves."""
    return _C.tree_size(capacity)


def tree_leaf_offset(capacity: int) -> int:
    """Where the leaves start in that flat tree."""
    return _C.tree_leaf_offset(capacity)


def episode_slots(capacity: int) -> int:
    """Rows of the episode table of a buffer of `capacity` rows."""
    return _C.episode_slots(capacity)
