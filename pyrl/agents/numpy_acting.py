"""Acting in numpy: a small policy network run on views of its module's current weights, and
its weights as numpy arrays for another process (pyrl.distributed's actors)."""

from typing import Optional

import numpy as np
import torch
from torch import nn


class NumpyMLP:
    """``net(x)`` in numpy, on views of the parameters of a Sequential of Linear, ReLU and Tanh
    layers (nested Sequentials allowed): acting with a small net without torch's per-call cost.

    The module stays the one definition: every call first checks that each view still aliases
    the parameter the module holds now (the same Parameter, the same storage) and takes fresh
    views when not, so a weight change that replaces tensors (``load_state_dict(assign=True)``,
    ``.to()``, ``share_memory()``, a sync that assigns) reaches acting as surely as an in-place
    optimizer step. Parameters numpy cannot view (off the CPU, half precision) run the module.
    """

    def __init__(self, net: nn.Module):
        self.net = net
        self.steps: list = []  # ("linear", layer) or an elementwise numpy function, in order
        for layer in net.modules():
            if isinstance(layer, nn.Linear):
                self.steps.append(("linear", layer))
            elif isinstance(layer, (nn.ReLU, nn.Tanh)):
                self.steps.append(np.tanh if isinstance(layer, nn.Tanh) else relu)
            elif not isinstance(layer, nn.Sequential):
                raise ValueError(f"NumpyMLP: unsupported layer {layer}")
        self.linears = [step[1] for step in self.steps if isinstance(step, tuple)]
        self.seen: list = []  # (parameter, data_ptr) per weight and bias the views were taken of
        self.views: Optional[list] = None  # (weight.T, bias) per Linear, or None: run the module

    def _current_views(self) -> Optional[list]:
        seen = iter(self.seen)
        for layer in self.linears:
            for name in ("weight", "bias"):
                p = layer._parameters[name]
                known = next(seen, None)
                if (
                    known is None
                    or p is not known[0]
                    or (p is not None and p.data_ptr() != known[1])
                ):
                    return self._take_views()
        return self.views

    def _take_views(self) -> Optional[list]:
        params = [
            (layer._parameters["weight"], layer._parameters["bias"]) for layer in self.linears
        ]
        self.seen = [(p, p.data_ptr() if p is not None else 0) for pair in params for p in pair]
        viewable = all(
            p.device.type == "cpu" and p.dtype in (torch.float32, torch.float64)
            for pair in params
            for p in pair
            if p is not None
        )
        self.views = (
            [
                (w.detach().numpy().T, b.detach().numpy() if b is not None else 0.0)
                for w, b in params
            ]
            if viewable
            else None
        )
        return self.views

    def __call__(self, x: np.ndarray) -> np.ndarray:
        views = self._current_views()
        if views is None:
            first = self.linears[0].weight
            with torch.no_grad():
                out = self.net(torch.as_tensor(x).to(device=first.device, dtype=first.dtype))
            return out.float().cpu().numpy()
        linear = iter(views)
        for step in self.steps:
            if isinstance(step, tuple):
                weight_t, bias = next(linear)
                x = x @ weight_t + bias
            else:
                x = step(x)
        return x


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def numpy_weights(module: nn.Module) -> dict:
    """A module's state as numpy copies (what goes to an actor process: pickles small, no torch
    storage sharing)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy_weights(module: nn.Module, weights: dict) -> None:
    """Loads :func:`numpy_weights` into ``module`` in place (NumpyMLP views stay valid)."""
    with torch.no_grad():
        module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
