"""Recurrent replay (SPEC 5) on a buffer: stored episodes as sequences for an encoder, their
hidden states recomputed and written back, and windows of consecutive steps sampled with their
n-step targets, all through compiled ops on the buffer's state under its lock."""

from typing import Mapping, Optional

import torch
from torch import Tensor

from pyrl import _ops
from pyrl.replay.batch import Batch
from pyrl.replay.layout import EPISODE_SLOTS, named
from pyrl.replay.recurrent import Encoder, Recurrent, encoder_states


class SequenceReplay:
    """Mixed into :class:`~pyrl.replay.buffer.ReplayBuffer` (``recurrent=Recurrent(...)``)."""

    def _forget_refreshes(self) -> None:
        """Per episode slot: the id last refreshed there and the sample call it was refreshed at
        (recalc_delta); not saved: after a load every episode is due once."""
        slots = self.storage.episodes.shape[0]
        self._refreshed_id = torch.full((slots,), -1, dtype=torch.int64)
        self._refreshed_at = torch.zeros(slots, dtype=torch.int64)

    def _with_hidden(self, where: str, name: str, obs, fields: dict) -> dict:
        """obs with the recurrent state `name` (popped from fields) as its "hidden" entry."""
        if name not in fields:
            raise ValueError(
                f"ReplayBuffer.{where}: this buffer stores recurrent states; pass "
                f"{name}=[..., {self.recurrent.hidden[0]}] tensors"
            )
        hidden = fields.pop(name)
        if self.obs_keys == ("obs",) and not isinstance(obs, Mapping):
            return {"obs": obs, "hidden": hidden}
        if not isinstance(obs, Mapping):
            raise ValueError(
                f"ReplayBuffer.{where}: obs should be a dict with keys "
                f"{sorted(self.obs_keys)}, got {type(obs).__name__}"
            )
        return {**obs, "hidden": hidden}

    def _require_recurrent(self, where: str) -> Recurrent:
        if self.recurrent is None:
            raise ValueError(
                f"ReplayBuffer.{where}: this buffer stores no hidden states; create "
                f"it with recurrent=replay.Recurrent(hidden=(d,))"
            )
        return self.recurrent

    def _episode_ids(self, where: str, episodes) -> Tensor:
        if episodes is None:
            return self._locked(
                lambda: torch.arange(
                    self.storage.counter("oldest_episode"), self.storage.counter("next_episode")
                )
            )
        try:
            ids = torch.as_tensor(episodes)
        except (TypeError, RuntimeError, ValueError):
            ids = None
        if ids is None or ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(
                f"ReplayBuffer.{where}: episodes should be a 1-D list or tensor of "
                f"episode ids (episodes()['id']), got {episodes!r:.80}"
            )
        return ids.to(torch.int64).contiguous()

    def gather_sequences(
        self, episodes=None, key: Optional[str] = None, positions: Optional[int] = None
    ) -> tuple[Tensor, Tensor]:
        """The observation sequences of stored episodes, for a recurrent encoder (SPEC 5.2).

        Args:
            episodes: episode ids (``episodes()["id"]``); None: every stored episode.
            key: the observation field (default: the one the encoder reads).
            positions: how many positions to return (default: the longest sequence's).

        Returns:
            ``(sequences [E, positions, d_o], lengths [E])``: each episode's observations
            ``o_0 .. o_T`` after ``n_history - 1`` zero pads, zeros after the end; ``lengths``
            is ``n_history - 1 + T + 1``, or 0 for an id no longer stored.
        """
        recurrent = self._require_recurrent("gather_sequences")
        ids = self._episode_ids("gather_sequences", episodes)
        column = self.storage.column(key if key is not None else self._encoded)
        pad = recurrent.n_history - 1

        def gather():
            wanted = positions
            if wanted is None:
                wanted = pad + 1 + int(self._lengths(ids).max()) if ids.numel() else 0
            return _ops.replay_gather_episodes(self.storage.state, column, ids, pad, wanted)

        return self._locked(gather)

    def _lengths(self, ids: Tensor) -> Tensor:
        """T of each alive id, 0 for the others (call with the lock held)."""
        storage = self.storage
        alive = (ids >= storage.counter("oldest_episode")) & (ids < storage.counter("next_episode"))
        slots = storage.episodes.shape[0]
        return torch.where(alive, storage.episodes[ids % slots, EPISODE_SLOTS["length"]], 0)

    def recompute_hidden(
        self, encoder: Encoder, episodes=None, chunk: int = 2048
    ) -> dict[str, int]:
        """Refreshes the stored states of every episode, or of the ones given, with `encoder`
        (under no_grad; pass the target encoder if the agent has one).

        Episodes are run in batched calls of up to `chunk` episodes, grouped by length so
        padding stays small. Each runs from its stored first state, which is zero for an episode
        that began at a reset (what acting fed in) and the actor's carried state for a piece
        continuing an episode cut by ``max_episode_steps``; every later state is rewritten
        (``hidden_in[t]`` = the state after padded position ``t - 1``, SPEC 5.1). The buffer's
        lock is held only to gather and to write back: other threads keep adding meanwhile, and
        an episode evicted in between is skipped (its id is its generation).

        Args:
            encoder: a ``torch.nn.GRU``/``LSTM`` (batch_first) or a callable
                ``encoder(x [E, L, d_o], h0 [E, d]) -> states [E, L, d]``
                (see :mod:`pyrl.replay.recurrent`).
            episodes: episode ids; None refreshes every stored episode.
            chunk: episodes per encoder call.

        Returns:
            ``{"episodes": refreshed episodes, "rows": rows rewritten}``.
        """
        recurrent = self._require_recurrent("recompute_hidden")
        if not (type(chunk) is int and chunk >= 1):
            raise ValueError(
                f"ReplayBuffer.recompute_hidden: chunk should be an int >= 1, got {chunk!r}"
            )
        ids = self._episode_ids("recompute_hidden", episodes)
        storage, pad = self.storage, recurrent.n_history - 1
        observations, hidden = storage.column(self._encoded), storage.column("hidden")
        lengths = self._locked(lambda: self._lengths(ids))
        order = torch.argsort(lengths, descending=True, stable=True)
        ids, lengths = ids[order], lengths[order]
        ids, lengths = ids[lengths > 0], lengths[lengths > 0]
        refreshed, rows = 0, 0
        for first in range(0, ids.numel(), chunk):
            part, steps = ids[first : first + chunk], int(lengths[first])

            def gather():
                seq, _ = _ops.replay_gather_episodes(storage.state, observations, part, pad, steps)
                h0, _ = _ops.replay_gather_episodes(storage.state, hidden, part, 0, 1)
                return seq, h0[:, 0]

            seq, h0 = self._locked(gather)
            with torch.no_grad():
                states = encoder_states(encoder, seq, h0).contiguous()
            if not bool(torch.isfinite(states).all()):
                raise ValueError(
                    f"ReplayBuffer.recompute_hidden: the encoder returned states that "
                    f"are not finite (NaN or inf) for episodes {part.tolist()[:8]}; "
                    f"nothing of them was written"
                )
            applied = self._locked(
                lambda: _ops.replay_scatter_episodes(storage.state, hidden, part, states, 1)
            )
            refreshed += int(applied.sum())
            rows += int(lengths[first : first + chunk][applied].sum())
            done = part[applied]
            slot = done % self._refreshed_id.shape[0]
            self._refreshed_id[slot] = done
            self._refreshed_at[slot] = self.storage.calls
        return {"episodes": refreshed, "rows": rows}

    def episodes_due(self, episodes, recalc_delta: int) -> Tensor:
        """Of the given episode ids, the distinct ones whose states were last refreshed at least
        `recalc_delta` sample calls ago, or never (SPEC 5.1's ``recalc_delta`` rule)."""
        ids = torch.unique(self._episode_ids("episodes_due", episodes))
        slot = ids % self._refreshed_id.shape[0]
        never = self._refreshed_id[slot] != ids
        stale = self.storage.calls - self._refreshed_at[slot] >= recalc_delta
        return ids[never | stale]

    def sample_sequences(
        self, batch_size: int, length: int, burn_in: int = 0, encoder: Optional[Encoder] = None
    ) -> Batch:
        """Draws ``batch_size`` windows of ``burn_in + length`` consecutive steps, each inside one
        episode, by the priority of its first step (see :meth:`update_sequence_priorities`:
        R2D2's sequence priority) or uniformly.

        Returns a :class:`Batch` with ``W = burn_in + length``:
            ``obs`` (``[B, W + 1, ...]``: o_t .. o_{t+W}; a dict with several observation
            fields), every other field ``[B, W, ...]``, ``hidden`` (``[B, d]``: the stored state
            at the first step), ``mask`` (``[B, W]``: the step is inside the episode; windows
            cut by an episode's end are zero past it), ``reward`` (``[B, W]`` n-step returns,
            or ``[B, W, m]``), ``terminated`` (the step's window reaches a terminal state),
            ``discount`` (gamma^k, 0 where terminated; only with a gamma, as in ``sample``),
            ``k`` (step j bootstraps from position j + k, which stays inside the window: its
            n-step window is cut at the window's end), ``weight`` (importance
            weights), ``index`` and ``generation`` (for priority updates and
            :meth:`store_hidden`), ``burn_in``.

        With ``encoder`` and ``Recurrent(recalc_delta=...)``, the sampled episodes that are due
        are recomputed first and ``hidden`` is read after the refresh. HER does not relabel
        sequences (their goals are the stored ones).
        """
        recurrent = self._require_recurrent("sample_sequences")
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("length", length, 1),
            ("burn_in", burn_in, 0),
        ):
            if not (type(value) is int and value >= low):
                raise ValueError(
                    f"ReplayBuffer.sample_sequences: {name} should be an int >= "
                    f"{low}, got {value!r}"
                )
        if "mask" in self.storage.names:
            raise ValueError(
                "ReplayBuffer.sample_sequences: the spec has a field 'mask', which "
                "sequence batches use for their validity mask; rename the field"
            )
        steps = burn_in + length
        if steps > self.capacity - 1:
            raise ValueError(
                f"ReplayBuffer.sample_sequences: burn_in + length = {steps} should "
                f"be below the capacity {self.capacity}"
            )
        storage = self.storage
        names = [name for name in storage.names if name != "hidden"]
        columns = [storage.column(name) for name in names]
        # One compiled call draws the start rows, their weights and stored states, and the
        # windows; only the first step's stored state is read: the rest are the learner's.
        out = named(
            "replay_sample_windows",
            self._host.sample_windows(columns, storage.column("hidden"), batch_size, steps),
        )
        rows, hidden, generation = out["index"], out["hidden_first"], out["generation"]
        batch = Batch(zip(names, out["fields"]))
        if not self.obs_keys == ("obs",):
            batch["obs"] = {key: batch.pop(key) for key in self.obs_keys}
        if encoder is not None and recurrent.recalc_delta is not None:
            due = self.episodes_due(generation, recurrent.recalc_delta)
            if due.numel():
                self.recompute_hidden(encoder, due)
                hidden = self._locked(
                    lambda: torch.where(
                        (storage.row_episode[rows] == generation)[:, None],
                        storage.column("hidden")[rows],
                        hidden,
                    )
                )
        batch.update(
            {
                key: out[key]
                for key in (
                    "mask",
                    "reward",
                    "discount",
                    "k",
                    "terminated",
                    "weight",
                    "index",
                    "generation",
                )
            },
            hidden=hidden,
            burn_in=burn_in,
        )
        if self.nstep is None:
            del batch["discount"]
        return batch

    def update_sequence_priorities(
        self, index, generation, td_abs, mask=None, eta: float = 0.9
    ) -> Tensor:
        """Sets each sampled window's priority from the absolute TD errors of its steps, as R2D2
        does: ``eta * max + (1 - eta) * mean`` over the steps in `mask` (``eta=0`` is the mean,
        1 the max). The priority is its first row's, which is what ``sample_sequences`` draws
        by. Returns :meth:`update_priorities`' applied mask.

        Args:
            index, generation: ``[B]``, from the batch.
            td_abs: ``[B, W]`` absolute TD errors (>= 0).
            mask: ``[B, W]`` bools, the steps to count (the batch's ``mask``, with burn-in
                steps removed); None counts every step.
        """
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise ValueError(
                f"ReplayBuffer.update_sequence_priorities: eta should be in [0, 1], got {eta!r}"
            )
        td = torch.as_tensor(td_abs).detach().double()
        if td.dim() != 2:
            raise ValueError(
                f"ReplayBuffer.update_sequence_priorities: td_abs should be [B, W], "
                f"got shape {list(td.shape)}"
            )
        keep = torch.ones_like(td, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
        if keep.shape != td.shape or keep.dtype != torch.bool:
            raise ValueError(
                f"ReplayBuffer.update_sequence_priorities: mask should be [B, W] "
                f"bools like td_abs {list(td.shape)}, got {keep.dtype} "
                f"{list(keep.shape)}"
            )
        counted = keep.sum(1).clamp(min=1)
        mean = torch.where(keep, td, 0.0).sum(1) / counted
        peak = torch.where(keep, td, 0.0).amax(1)
        return self.update_priorities(index, generation, eta * peak + (1 - eta) * mean)

    def store_hidden(self, index, generation, states, offset: int = 0) -> Tensor:
        """Writes states back at row ``index + offset`` of each sampled window (the state the
        burn-in reached, say: the refresh no other library does), where that row still belongs
        to the episode of `generation`. Returns a ``[B]`` bool mask of the rows written."""
        self._require_recurrent("store_hidden")
        if not (type(offset) is int and 0 <= offset < self.capacity):
            raise ValueError(
                f"ReplayBuffer.store_hidden: offset should be an int in [0, "
                f"{self.capacity}), got {offset!r}"
            )
        index = self.inputs.index("index", index, where="store_hidden")
        generation = self.inputs.index("generation", generation, index.shape[0], "store_hidden")
        hidden = self.storage.column("hidden")
        values = self.inputs.rows(
            "store_hidden", "states", self.fields[len(self.obs_keys)], states, index.shape[0]
        ).contiguous()
        # The op checks index as update_priorities does (in [0, C)) and adds the offset itself.
        return self._locked(
            lambda: _ops.replay_write_rows(
                self.storage.state, hidden, index, generation, values, offset
            )
        )
