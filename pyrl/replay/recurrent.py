"""Recurrent replay (SPEC 5): the stored hidden state of every row, and the encoders that
recompute it.

An agent with a recurrent encoder stores, per row, ``hidden_in[t]``: the state it fed into step
``t`` (the final row included: it is the bootstrap state). As the encoder trains those states go
stale; ``ReplayBuffer.recompute_hidden`` runs the current encoder over each stored episode in
large batched calls and writes the states back. The goal (HER) enters after the encoder, never
into it, so relabeling never invalidates a stored state.

Encoders: a ``torch.nn.GRU`` or ``torch.nn.LSTM`` (``batch_first=True``, one direction; a state
is every layer's ``h`` side by side, for an LSTM every layer's ``h`` and then every layer's
``c``), or any callable ``encoder(x [E, L, d_o], h0 [E, d]) -> states [E, L, d]`` giving the
state after each position.

With ``n_history`` > 1 the encoder reads the window of the last ``n_history`` observations
(oldest first, zero-filled at reset) at every step, starting from ``hidden_in[t]``; the state
carried to the next step is the one after the window's *oldest* element, so that stepping equals
one uninterrupted pass over the episode (SPEC 5.1; :func:`step`).
"""

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["Recurrent", "encoder_states", "encoder_output", "state_size", "step"]

Encoder = Union[nn.GRU, nn.LSTM, Callable[[Tensor, Tensor], Tensor]]


@dataclass(frozen=True)
class Recurrent:
    """A replay buffer that stores a hidden state per row (SPEC 5.2).

    Args:
        hidden: the shape of one state, ``(d,)`` (``d`` = layers * hidden size for a GRU, twice
            that for an LSTM).
        n_history: observations the encoder reads per step (window stacking, SPEC 7.5).
        dtype: the stored states' dtype.
        key: the observation field the encoder reads; by default the buffer's first
            observation field (``obs``, or ``observation`` for goal dicts: goals stay out).
        recalc_delta: with ``sample_sequences(..., encoder=...)``, the sampled episodes whose
            states were last refreshed at least this many sample calls ago (or never) are
            recomputed before the batch is returned (the original's rule). None: only explicit
            ``recompute_hidden`` calls refresh.
    """

    hidden: tuple[int, ...]
    n_history: int = 1
    dtype: torch.dtype = torch.float32
    key: Optional[str] = None
    recalc_delta: Optional[int] = None

    def __post_init__(self):
        hidden = (self.hidden,) if isinstance(self.hidden, int) else self.hidden
        if not (
            isinstance(hidden, (tuple, list))
            and len(hidden) == 1
            and isinstance(hidden[0], int)
            and hidden[0] >= 1
        ):
            raise ValueError(
                f"Recurrent: hidden should be the shape (d,) of one state, d >= 1, "
                f"got {self.hidden!r}"
            )
        object.__setattr__(self, "hidden", tuple(hidden))
        if not (type(self.n_history) is int and self.n_history >= 1):
            raise ValueError(f"Recurrent: n_history should be an int >= 1, got {self.n_history!r}")
        if not (isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point):
            raise ValueError(f"Recurrent: dtype should be a float torch.dtype, got {self.dtype!r}")
        if self.key is not None and not isinstance(self.key, str):
            raise ValueError(
                f"Recurrent: key should be an observation field name, got {self.key!r}"
            )
        if self.recalc_delta is not None and not (
            type(self.recalc_delta) is int and self.recalc_delta >= 0
        ):
            raise ValueError(
                f"Recurrent: recalc_delta should be an int >= 0 or None, got {self.recalc_delta!r}"
            )

    def describe(self) -> dict:
        return {
            "hidden": list(self.hidden),
            "n_history": self.n_history,
            "dtype": str(self.dtype).removeprefix("torch."),
            "key": self.key,
            "recalc_delta": self.recalc_delta,
        }

    @classmethod
    def from_description(cls, described: dict) -> "Recurrent":
        dtype = getattr(torch, str(described["dtype"]), None)
        return cls(
            tuple(described["hidden"]),
            described["n_history"],
            dtype,
            described["key"],
            described["recalc_delta"],
        )


def _rnn_kind(encoder) -> Optional[str]:
    if isinstance(encoder, nn.GRU):
        return "gru"
    if isinstance(encoder, nn.LSTM):
        return "lstm"
    return None


def state_size(encoder) -> Optional[int]:
    """The size ``d`` of a stored state for a GRU or LSTM; None for a callable."""
    kind = _rnn_kind(encoder)
    if kind is None:
        return None
    return encoder.num_layers * encoder.hidden_size * (2 if kind == "lstm" else 1)


def _check_rnn(encoder, d: int) -> None:
    if not encoder.batch_first or encoder.bidirectional or getattr(encoder, "proj_size", 0):
        raise ValueError(
            f"encoder: a {type(encoder).__name__} should be batch_first=True, one "
            f"direction and without proj_size, got {encoder}"
        )
    if state_size(encoder) != d:
        raise ValueError(
            f"encoder: a {type(encoder).__name__} with {encoder.num_layers} layer(s) "
            f"of {encoder.hidden_size} has states of {state_size(encoder)}, but the "
            f"stored states are [{d}]"
        )


def _layer_params(rnn: nn.RNNBase, layer: int) -> dict[str, Tensor]:
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    return {f"{name}_l0": getattr(rnn, f"{name}_l{layer}") for name in names}


def _gru_states(gru: nn.GRU, x: Tensor, h0: Tensor) -> Tensor:
    """Every layer's state after each position: one batched call per layer (a GRU's state is
    its output, so each layer's whole output sequence is the next layer's input)."""
    size, layers = gru.hidden_size, gru.num_layers
    if layers == 1:
        return gru(x, h0[None])[0]
    template = nn.GRU(x.shape[-1], size, batch_first=True, bias=gru.bias, device="meta")
    states, inputs = [], x
    for layer in range(layers):
        if layer == 1:
            template = nn.GRU(size, size, batch_first=True, bias=gru.bias, device="meta")
        start = h0[:, layer * size : (layer + 1) * size][None].contiguous()
        inputs = functional_call(template, _layer_params(gru, layer), (inputs, start))[0]
        states.append(inputs)
    return torch.cat(states, dim=-1)


def _lstm_states(lstm: nn.LSTM, x: Tensor, h0: Tensor) -> Tensor:
    """Every layer's ``h`` then ``c`` after each position. nn.LSTM returns only the top layer's
    ``h`` per position, so the sequence is stepped one position at a time (batched over the
    episodes)."""
    layers, size = lstm.num_layers, lstm.hidden_size
    h = h0[:, : layers * size].reshape(-1, layers, size).transpose(0, 1).contiguous()
    c = h0[:, layers * size :].reshape(-1, layers, size).transpose(0, 1).contiguous()
    states = []
    for position in range(x.shape[1]):
        _, (h, c) = lstm(x[:, position : position + 1], (h, c))
        states.append(torch.cat([h.transpose(0, 1).flatten(1), c.transpose(0, 1).flatten(1)], 1))
    return torch.stack(states, dim=1)


def encoder_states(encoder: Encoder, x: Tensor, h0: Tensor) -> Tensor:
    """The state after each position of ``x`` ``[E, L, d_o]``, from ``h0`` ``[E, d]``:
    ``[E, L, d]``, in h0's dtype. The encoder runs in its own parameters' dtype."""
    kind = _rnn_kind(encoder)
    if kind is not None:
        _check_rnn(encoder, h0.shape[-1])
        weight = next(encoder.parameters())
        x, start = x.to(weight.dtype), h0.to(weight.dtype)
        states = (_gru_states if kind == "gru" else _lstm_states)(encoder, x, start)
    else:
        if not callable(encoder):
            raise ValueError(
                f"encoder: should be a torch.nn.GRU, a torch.nn.LSTM or a callable "
                f"(x [E, L, d_o], h0 [E, d]) -> states [E, L, d], got "
                f"{type(encoder).__name__}"
            )
        states = encoder(x, h0)
    expected = (*x.shape[:2], h0.shape[-1])
    if not isinstance(states, Tensor) or tuple(states.shape) != expected:
        got = list(states.shape) if isinstance(states, Tensor) else type(states).__name__
        raise ValueError(
            f"encoder: should return the states after each position, {list(expected)}, got {got}"
        )
    # A meta or other-device tensor would "write" nothing; an integer one would be truncated.
    if states.device != h0.device or not states.dtype.is_floating_point:
        raise ValueError(
            f"encoder: should return float states on {h0.device} (the buffer's "
            f"device), got {states.dtype} on {states.device}"
        )
    return states.to(h0.dtype)


def encoder_output(encoder: Encoder, states: Tensor) -> Tensor:
    """The features an agent reads from states ``[..., d]``: the top layer's ``h`` for a GRU or
    LSTM, the whole state for a callable."""
    kind = _rnn_kind(encoder)
    if kind is None:
        return states
    size, layers = encoder.hidden_size, encoder.num_layers
    return states[..., (layers - 1) * size : layers * size]


def step(encoder: Encoder, window: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
    """One acting step (SPEC 5.1): the encoder reads ``window`` ``[B, n_history, d_o]`` (oldest
    first) from ``hidden`` ``[B, d]``. Returns ``(features, next_hidden)``: the top output after
    the newest observation, and the state after the oldest one, which is what the next step
    starts from (and what the buffer stores as its ``hidden``)."""
    states = encoder_states(encoder, window, hidden)
    return encoder_output(encoder, states[:, -1]), states[:, 0]
