"""pyrl: compiled replay and returns ops for PyTorch reinforcement learning."""

from pyrl._loader import load_extension

_C = load_extension()

from pyrl import _ops, returns, reference, replay  # noqa: E402, F401  (ops register once _C is loaded)


def build_info() -> dict:
    """How the compiled extension was built: torch version, compiler, OpenMP, threads, CUDA."""
    return dict(_C.build_info())


def __getattr__(name: str):
    # The agents and envs need gymnasium; `import pyrl` alone (ops, returns, replay) does not.
    if name in ("agents", "envs"):
        import importlib

        return importlib.import_module(f"pyrl.{name}")
    raise AttributeError(f"module 'pyrl' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["build_info", "returns", "reference", "replay", "agents", "envs"]
