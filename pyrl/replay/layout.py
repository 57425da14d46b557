"""The replay layout, read once from the compiled extension (csrc/kernels/replay.h, ring.h,
her.h) so that Python never restates it: the order of the state tensors, the counter, episode and
config slots, the HER codes and the invariant names."""

from pyrl import _C

_LAYOUT = _C.layout()

STATE = dict(_LAYOUT["state"])                 # name -> position in the state list
COUNTERS = dict(_LAYOUT["counters"])           # name -> slot of the int64 counters tensor
EPISODE_FIELDS = tuple(sorted(_LAYOUT["episode_fields"], key=_LAYOUT["episode_fields"].get))
CONFIG = dict(_LAYOUT["config"])               # name -> slot of the float config list
HER_STRATEGIES = dict(_LAYOUT["her_strategies"])
HER_OFF = int(_LAYOUT["her_off"])
HER_REWARDS = dict(_LAYOUT["her_rewards"])
HER_MAX_PARAMS = int(_LAYOUT["her_max_params"])
INVARIANTS = tuple(sorted(_LAYOUT["invariants"], key=_LAYOUT["invariants"].get))
DRAW_STREAMS = dict(_LAYOUT["draw_streams"])
MAX_CAPACITY = int(_LAYOUT["max_capacity"])


def tree_size(capacity: int) -> int:
    """Length of the flat sum (or min) tree over `capacity` leaves."""
    return _C.tree_size(capacity)


def tree_leaf_offset(capacity: int) -> int:
    """Where the leaves start in that flat tree."""
    return _C.tree_leaf_offset(capacity)


def episode_slots(capacity: int) -> int:
    """Rows of the episode table of a buffer of `capacity` rows."""
    return _C.episode_slots(capacity)
