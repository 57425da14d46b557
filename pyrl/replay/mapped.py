"""The directory of a memory-mapped buffer's column files (:class:`~pyrl.replay.MemoryMapped`).

One live buffer at a time: opening the directory takes an exclusive ``flock`` on its lock file,
which records the holder's pid, so a second buffer on the same files (in this process or another)
is refused with the holder named instead of both writing each other's rows. The lock goes when the
buffer is closed, garbage-collected or its process ends.

New files have their whole size reserved on the file system (``posix_fallocate``): a disk that is
too small is an ``OSError`` at creation, where nothing is lost, never a SIGBUS at a later write
into a sparse file. A failed creation removes everything it made.
"""

import errno
import fcntl
import os
import shutil
import weakref
from typing import Optional

import numpy as np

LOCK_FILE = "lock"  # beside the column files; kept after close (unlinking a lock file races)


def free_bytes(path: str) -> Optional[int]:
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


class ColumnDirectory:
    """A mapped buffer's directory, locked for this buffer; files are mapped through it."""

    def __init__(self, path: str):
        self.path = path
        # The outermost directory this buffer makes, if any (removed if creation fails).
        self._made: Optional[str] = None
        if not os.path.exists(path):
            self._made = path
            while not os.path.exists(os.path.dirname(self._made)):
                self._made = os.path.dirname(self._made)
        self._created: list[str] = []  # the files this buffer made (removed if creation fails)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as err:
            raise OSError(
                err.errno, f"ReplayBuffer: cannot make the column directory {path} ({err.strerror})"
            ) from None
        lock_path = os.path.join(path, LOCK_FILE)
        if not os.path.exists(lock_path):
            self._created.append(lock_path)
        self._lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._lock, 32).decode(errors="replace").strip() or "unknown"
            os.close(self._lock)
            raise ValueError(
                f"ReplayBuffer: {path} is in use by another live buffer (process "
                f"{holder}); close that buffer (ReplayBuffer.close) or end its "
                f"process first, or copy the directory for a second buffer"
            ) from None
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, f"{os.getpid()}\n".encode(), 0)
        # Garbage collection releases the directory too (the mapped arrays may outlive it).
        self._release = weakref.finalize(self, os.close, self._lock)

    def create(self, name: str, shape: tuple, dtype: np.dtype) -> np.memmap:
        """A new zero file ``name`` of ``shape``, its bytes reserved on the disk, mapped."""
        path = os.path.join(self.path, name)
        if os.path.exists(path):
            raise ValueError(
                f"ReplayBuffer: {self.path} already holds a buffer's columns ({name}); "
                f"open that buffer with ReplayBuffer.load(its saved file), or give "
                f"another directory"
            )
        size = int(np.prod(shape)) * dtype.itemsize
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self._created.append(path)
        try:
            if size > 0:
                os.posix_fallocate(descriptor, 0, size)
        except OSError as err:
            free = free_bytes(self.path)
            raise OSError(
                err.errno,
                f"ReplayBuffer: cannot reserve {size} bytes for {path} "
                f"({err.strerror}; {free} bytes free there)",
            ) from None
        finally:
            os.close(descriptor)
        return self._map(path, shape, dtype)

    def reopen(self, name: str, shape: tuple, dtype: np.dtype) -> np.memmap:
        """The existing file ``name`` mapped as it is, after checking its size."""
        path = os.path.join(self.path, name)
        size = int(np.prod(shape)) * dtype.itemsize
        if not os.path.isfile(path) or os.path.getsize(path) != size:
            got = os.path.getsize(path) if os.path.isfile(path) else "no file"
            raise ValueError(
                f"ReplayBuffer: {path} should hold {size} bytes of columns "
                f"{list(shape)} {dtype}, got {got}"
            )
        return self._map(path, shape, dtype)

    @staticmethod
    def _map(path: str, shape: tuple, dtype: np.dtype) -> np.memmap:
        try:
            return np.memmap(path, dtype=dtype, mode="r+", shape=shape)
        except (OSError, ValueError) as err:
            raise OSError(
                getattr(err, "errno", None) or errno.EINVAL,
                f"ReplayBuffer: cannot map {path} as {list(shape)} {dtype} ({err})",
            ) from None

    def discard(self) -> None:
        """Undoes a failed creation: removes the files this buffer made (the directory too if it
        made it) and releases the lock. Files it only reopened stay."""
        for path in reversed(self._created):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._created.clear()
        self.close()
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)

    def close(self) -> None:
        """Releases the directory to the next buffer (idempotent)."""
        self._release()
