"""pyrl: compiled replay and returns ops for PyTorch reinforcement learning."""

from pyrl._loader import load_extension

_C = load_extension()

from pyrl import _ops, returns, reference, replay  # noqa: E402  (ops register once _C is loaded)


def build_info() -> dict:
    """How the compiled extension was built: torch version, compiler, OpenMP, threads, CUDA."""
    return dict(_C.build_info())


__version__ = "0.1.0"
__all__ = ["build_info", "returns", "reference", "replay"]
