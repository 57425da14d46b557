"""Steps of gymnasium's autoreset vector envs: under ``SAME_STEP`` the final observations are put
back from ``infos``, under ``NEXT_STEP`` the reset step that follows an end is not stored (it
is no transition). :class:`Autoreset` keeps what one buffer has seen (the mode, once given or
detected, and the envs that ended at the previous step); ``ReplayBuffer.add`` runs it."""

import warnings
from typing import Mapping, Optional

import numpy as np
import torch

# autoreset_mode names (also gymnasium's AutoresetMode values, lower-cased without "_").
AUTORESET_MODES = {"samestep": "same_step", "nextstep": "next_step", "disabled": "disabled"}


def final_observations(next_obs, infos: dict, done):
    """The true next observation of each env of a gymnasium vector env step: ``next_obs``, with
    the episode's final observation where it ended.

    Under ``AutoresetMode.SAME_STEP`` the env has already reset the ended envs, so ``next_obs``
    holds their reset observations and the final ones are in ``infos["final_obs"]``; this puts
    them back. Under gymnasium's default ``NEXT_STEP`` mode ``next_obs`` already is final where
    ``done`` (the reset comes with the next step, whose transition is not a real one: skip it),
    and ``infos`` has no ``final_obs``; ``next_obs`` is returned as it is.

    Args:
        next_obs: the step's observations, an array ``[N, ...]`` or a dict of them.
        infos: the step's info dict.
        done: ``[N]`` bools, ``terminated | truncated``.

    Returns:
        ``next_obs`` itself when nothing ended or there is nothing to restore, else a copy.
    """
    done = np.asarray(done, dtype=bool)
    if not done.any() or "final_obs" not in infos:
        return next_obs
    rows = np.flatnonzero(done)
    finals = infos["final_obs"]
    if isinstance(next_obs, dict):
        out = {key: np.array(value, copy=True) for key, value in next_obs.items()}
        for i in rows:
            for key in out:
                out[key][i] = finals[i][key]
        return out
    out = np.array(next_obs, copy=True)
    for i in rows:
        out[i] = finals[i]
    return out


class Autoreset:
    """The autoreset handling of one buffer's ``add`` calls, made at the first add with infos or
    a mode; ``add`` runs :meth:`step` from then on."""

    def __init__(self):
        self.mode: Optional[str] = None  # given or detected: "same_step", "next_step", "disabled"
        self.after_end: Optional[np.ndarray] = None  # NEXT_STEP: the envs that ended last step

    def cut(self) -> None:
        """Running episodes were stored as cut: no reset step follows them."""
        if self.after_end is not None:
            self.after_end[:] = False

    def step(self, next_obs, terminated, truncated, infos, mode):
        """(next_obs with final observations put back, the envs whose step is not stored) for
        one step of a gymnasium autoreset vector env (see ``ReplayBuffer.add``)."""
        if infos is not None and not isinstance(infos, Mapping):
            raise ValueError(
                f"ReplayBuffer.add: infos should be the info dict of a gymnasium "
                f"vector env's step, got {type(infos).__name__}"
            )
        if mode is not None:
            name = str(getattr(mode, "value", mode)).replace("_", "").lower()
            if name not in AUTORESET_MODES:
                raise ValueError(
                    f"ReplayBuffer.add: autoreset_mode should be 'same_step', "
                    f"'next_step' or 'disabled' (or gymnasium's AutoresetMode), got {mode!r}"
                )
            self.mode = AUTORESET_MODES[name]
        try:
            done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        except (TypeError, ValueError):
            return next_obs, None  # the host names the bad flags
        infos = infos if infos is not None else {}
        if self.mode is None and done.any():
            self.mode = "same_step" if "final_obs" in infos else "next_step"
            if self.mode == "next_step":
                warnings.warn(
                    "ReplayBuffer.add: an episode ended and infos has no 'final_obs': "
                    "treating the env as gymnasium's NEXT_STEP autoreset, so the reset "
                    "step each env returns next is not stored (it is no transition). "
                    "Pass autoreset_mode='disabled' if you reset envs yourself, or "
                    "'next_step' to say so and silence this.",
                    stacklevel=3,
                )
        skip = None
        if self.mode == "same_step" and done.any():
            if "final_obs" not in infos:
                raise ValueError(
                    "ReplayBuffer.add: autoreset_mode is 'same_step' but infos has no "
                    "'final_obs' at an episode end; pass the step's infos (or use "
                    "autoreset_mode='next_step' for gymnasium's default)"
                )
            next_obs = final_observations(next_obs, infos, done)
        elif self.mode == "next_step":
            if (
                self.after_end is not None
                and self.after_end.shape == done.shape
                and self.after_end.any()
            ):
                skip = torch.from_numpy(self.after_end)
                done = done & ~self.after_end
            self.after_end = done
        return next_obs, skip
