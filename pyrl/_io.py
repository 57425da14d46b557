"""Files: data only, written atomically. Every file pyrl reads is loaded with
``torch.load(weights_only=True)`` (no code runs from a file), and every file it writes goes to a
temporary file beside the target, is flushed to disk, then renamed over it, so a process killed
mid-save leaves the previous file intact."""

import errno
import os
import shutil
import tempfile
from typing import Any, Callable, Optional

import numpy as np
import torch


def plain(value: Any) -> Any:
    """`value` with numpy arrays as tensors and numpy scalars as Python numbers, the types a
    weights_only load accepts (recursing into dicts, lists and tuples)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def atomic_save(obj: Any, path, under: Optional[Callable] = None, where: str = "save") -> None:
    """torch.save(obj, path) through a temporary file, fsync and rename (then the directory is
    synced too). `under(write)` runs the write itself, say under a lock; a failed save removes its
    temporary file and leaves `path` as it was. A write that fails (a full disk, say) raises
    OSError naming `where`, the file and the free space."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )

    def write():
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(obj() if callable(obj) else obj, file)
                file.flush()
                os.fsync(file.fileno())
        except (OSError, RuntimeError) as err:  # torch's writer reports a short write as a
            # RuntimeError ("unexpected pos ..."); the flush, fsync and close as OSError
            free = shutil.disk_usage(directory).free
            code = err.errno if isinstance(err, OSError) and err.errno else errno.EIO
            raise OSError(
                code,
                f"{where}: writing {path!r} failed ({str(err)[:200]}); {free} "
                f"bytes free on its file system",
            ) from None

    try:
        (under or (lambda fn: fn()))(write)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)  # the rename itself survives a power cut
    finally:
        os.close(descriptor)


def load_data(path, where: str, mmap: bool = True) -> Any:
    """torch.load(path, weights_only=True); a file that is not a readable torch file raises
    ValueError naming it (a missing file raises FileNotFoundError as usual)."""
    try:
        return torch.load(path, weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated, corrupted, foreign or code-carrying files
        raise ValueError(
            f"{where}: {os.fspath(path)!r} is not a readable pyrl file "
            f"({type(err).__name__}: {str(err)[:200]})"
        ) from None
