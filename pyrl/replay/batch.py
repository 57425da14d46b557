"""What a sample returns: :class:`Batch`, and the error :meth:`ReplayBuffer.check` raises."""

from typing import Any


class InvariantError(ValueError):
    """A buffer's state breaks one of its invariants (:meth:`ReplayBuffer.check`)."""


class Batch(dict):
    """A sampled batch: a dict whose keys are also attributes (``batch.obs``, ``batch.weight``).

    Keys: every spec field at the sampled rows (``obs``, ``action``, ...; ``obs`` is a dict when
    the buffer stores several observation keys), ``next_obs`` (at the bootstrap row), ``reward``
    (the n-step return R, ``[B]`` or ``[B, m]``), ``terminated`` (the window reaches a true
    terminal: nothing to bootstrap), ``k`` (steps in the window, 1 without n-step),
    ``discount`` (``gamma^k``, 0 after a true terminal: only when the buffer was given a gamma,
    ``nstep=NStep(n, gamma)``; otherwise form ``gamma ** k * ~terminated`` with yours),
    ``weight`` (importance weights, 1 when uniform), ``index`` and ``generation`` (pass both to
    ``update_priorities``) and ``boot`` (the bootstrap row); with HER also ``her_row`` (the row
    whose achieved goal is the new goal, -1 if not relabeled) and ``is_her``; with
    ``recurrent``, ``hidden`` and ``next_hidden`` (the stored states at the row and at the
    bootstrap row).
    """

    def __reduce__(self):
        # Only the fields: a sampled batch also carries its outputs and their buffer, for
        # ReplayBuffer.sample(out=batch), which neither pickle nor copy should take along.
        return (Batch, (dict(self),))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name == "discount":
                raise AttributeError(
                    "Batch has no discount: the buffer was made without a gamma "
                    "(nstep=None). Use gamma ** batch.k * ~batch.terminated with "
                    "your gamma, or make it with nstep=replay.NStep(n, gamma)"
                ) from None
            raise AttributeError(f"Batch has no field {name!r}; it has {sorted(self)}") from None
