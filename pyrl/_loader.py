"""Loads pyrl._C, refusing a torch other than the one the extension was compiled against."""

import importlib

import torch

REBUILD = (
    "Rebuild pyrl against the installed torch, from the pyrl source tree:\n"
    "    pip install --no-build-isolation --force-reinstall --no-deps .\n"
    "(or `make install`)."
)


def load_extension():
    try:
        config = importlib.import_module("pyrl._build_config")
    except ImportError as err:
        raise ImportError(
            "pyrl's compiled extension is not built (pyrl._build_config is missing).\n" + REBUILD
        ) from err
    if config.TORCH_VERSION != torch.__version__:
        raise ImportError(
            f"pyrl was compiled against torch {config.TORCH_VERSION}, "
            f"but torch {torch.__version__} is installed.\n" + REBUILD
        )
    try:
        return importlib.import_module("pyrl._C")
    except ImportError as err:
        raise ImportError(f"pyrl._C failed to load: {err}\n" + REBUILD) from err
