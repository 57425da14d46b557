"""Reliability, third probe (issue 27): one lock order under every pair of public methods, a full
disk that is an error and never a SIGBUS, one live buffer per column directory, copied runs that
write into their own files, and failed creations and loads that leave the disk as it was. Probes
that could hang or crash run in subprocesses with deadlines, so they fail instead of the run."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch

from pyrl import replay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = {"obs": (5,), "action": ((), torch.int64)}


def run_python(code: str, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def fill(buf, episodes=20, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        length = int(rng.integers(1, 12))
        buf.add_episode(
            obs=torch.as_tensor(rng.normal(size=(length + 1, 5)), dtype=torch.float32),
            action=torch.as_tensor(rng.integers(0, 4, length)),
            reward=torch.as_tensor(rng.normal(size=length), dtype=torch.float32),
        )


@contextlib.contextmanager
def small_disk(tmp_path, megabytes: int):
    """A tmpfs of `megabytes` mounted under tmp_path (root only, as on CI)."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to make a small tmpfs")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill_up(path):
    """Writes `path` until its file system is full."""
    with open(path, "wb", buffering=0) as ballast, contextlib.suppress(OSError):
        while True:
            ballast.write(b"x" * 4096)


# ---- 1. one lock order: every pair of public methods from two threads --------------------------


def test_every_pair_of_public_methods_from_two_threads_finishes():
    # A deadlock hangs for good and Ctrl-C cannot stop it: the probe's faulthandler watchdog ends
    # the process at each pair's deadline and names the pair (tests/lock_pairs.py).
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "lock_pairs.py"), "120", "6"],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "pairs:" in result.stdout and " 0 failed" in result.stdout


# ---- 2. a full disk is an error where nothing is lost --------------------------------------------


def test_a_buffer_larger_than_the_disk_is_refused_at_creation_leaving_nothing(tmp_path):
    with small_disk(tmp_path, 4) as disk:
        columns = disk / "run" / "columns"
        with pytest.raises(OSError, match=r"cannot reserve \d+ bytes .* bytes free"):
            replay.ReplayBuffer(400_000, SPEC, storage=replay.MemoryMapped(columns))
        assert not (disk / "run").exists()  # the directories it made are gone too
        small = replay.ReplayBuffer(1000, SPEC, storage=replay.MemoryMapped(columns))
        fill(small)
        small.check()


def test_a_disk_that_fills_up_later_never_kills_the_process(tmp_path):
    with small_disk(tmp_path, 8) as disk:
        # In a subprocess: with sparse column files, the writes below die of SIGBUS.
        result = run_python(
            """
            import os, sys, torch
            from pyrl import replay
            disk = sys.argv[1]
            buf = replay.ReplayBuffer(60_000, {"obs": (16,)}, prioritized=replay.PER(),
                                      storage=replay.MemoryMapped(os.path.join(disk, "columns")))
            buf.save(os.path.join(disk, "buffer.pt"))
            # The disk fills up.
            with open(os.path.join(disk, "ballast"), "wb", buffering=0) as ballast:
                try:
                    while True:
                        ballast.write(b"x" * 4096)
                except OSError:
                    pass
            for _ in range(60):  # every row of the ring, twice over
                buf.add_episode(obs=torch.randn(2001, 16), reward=torch.randn(2000))
            buf.check()
            print("added", len(buf))
            try:
                buf.save(os.path.join(disk, "buffer.pt"))
            except OSError as err:
                print("save:", err)
        """,
            disk,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "added" in result.stdout
        assert re.search(
            r"save: .*ReplayBuffer.save: writing '.*buffer.pt' failed .* bytes free", result.stdout
        ), result.stdout


def test_a_save_onto_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path):
    with small_disk(tmp_path, 2) as disk:
        buf = replay.ReplayBuffer(2000, {"obs": (16,)})
        buf.add_episode(obs=torch.randn(11, 16), reward=torch.randn(10))
        buf.save(disk / "buffer.pt")
        before = (disk / "buffer.pt").read_bytes()
        for _ in range(150):
            buf.add_episode(obs=torch.randn(11, 16), reward=torch.randn(10))
        fill_up(disk / "ballast")
        with pytest.raises(
            OSError, match=r"ReplayBuffer.save: writing '.*buffer.pt' failed .* bytes free"
        ):
            buf.save(disk / "buffer.pt")
        assert (disk / "buffer.pt").read_bytes() == before
        assert sorted(os.listdir(disk)) == ["ballast", "buffer.pt"]  # no temporary left


# ---- 3. one live buffer per column directory ----------------------------------------------------


def test_a_second_opener_of_a_column_directory_is_refused_naming_the_holder(tmp_path):
    buf = replay.ReplayBuffer(200, SPEC, seed=1, storage=replay.MemoryMapped(tmp_path / "cols"))
    fill(buf)
    buf.save(tmp_path / "buffer.pt")
    with pytest.raises(
        ValueError, match=rf"in use by another live buffer \(process {os.getpid()}\)"
    ):
        replay.ReplayBuffer.load(tmp_path / "buffer.pt")
    other = run_python(
        """
        import sys
        from pyrl import replay
        try:
            replay.ReplayBuffer.load(sys.argv[1])
        except ValueError as err:
            print(err)
    """,
        tmp_path / "buffer.pt",
    )
    assert f"in use by another live buffer (process {os.getpid()})" in other.stdout, other.stderr
    expected = buf.sample(16).obs
    buf.close()  # released: the checkpoint opens now, and samples what the first would have
    loaded = replay.ReplayBuffer.load(tmp_path / "buffer.pt")
    assert torch.equal(loaded.sample(16).obs, expected)
    del loaded  # garbage collection releases it too
    replay.ReplayBuffer.load(tmp_path / "buffer.pt").check()


# ---- 4. a copied run writes into its own files ---------------------------------------------------


def test_a_copied_run_maps_its_own_column_files(tmp_path):
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    buf = replay.ReplayBuffer(200, SPEC, seed=2, storage=replay.MemoryMapped(run1 / "cols"))
    fill(buf)
    buf.save(run1 / "buffer.pt")
    buf.close()
    shutil.copytree(run1, run2)
    original = (run1 / "cols" / "records.bin").read_bytes()
    copy = replay.ReplayBuffer.load(run2 / "buffer.pt")
    assert copy.memory_mapped.path == str(run2 / "cols")
    fill(copy, episodes=40, seed=5)
    copy.save(run2 / "buffer.pt")
    assert (run1 / "cols" / "records.bin").read_bytes() == original
    assert (run2 / "cols" / "records.bin").read_bytes() != original


def test_a_copied_ddpg_run_resumes_into_its_own_buffer_dir(tmp_path):
    from pyrl.agents import DDPG

    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    agent = DDPG(
        "Pendulum-v1",
        buffer_dir=str(run1 / "replay"),
        buffer_size=2000,
        learning_starts=100,
        hidden=(8,),
        log_every=1000,
        seed=0,
    )
    agent.learn(150)
    agent.save(run1 / "agent.pt")
    agent.close()
    shutil.copytree(run1, run2)
    original = (run1 / "replay" / "records.bin").read_bytes()
    resumed = DDPG.load(run2 / "agent.pt")
    assert resumed.buffer.memory_mapped.path == str(run2 / "replay")
    resumed.learn(300)
    resumed.buffer.check()
    assert (run1 / "replay" / "records.bin").read_bytes() == original


# ---- 7. a failed load or create changes nothing on disk ------------------------------------------


def test_a_rejected_ddpg_checkpoint_leaves_no_buffer_dir(tmp_path):
    from pyrl.agents import DDPG

    agent = DDPG(
        "Pendulum-v1", buffer_size=500, learning_starts=50, hidden=(8,), log_every=1000, seed=0
    )
    agent.learn(60)
    agent.save(tmp_path / "agent.pt")
    checkpoint = torch.load(tmp_path / "agent.pt", weights_only=True)
    checkpoint["state"]["critic"] = {"not": torch.zeros(1)}
    torch.save(checkpoint, tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match=r"damaged.pt: field 'state.critic' does not fit"):
        DDPG.load(tmp_path / "damaged.pt", buffer_dir=str(tmp_path / "new" / "replay"))
    assert not (tmp_path / "new").exists()


def test_a_failed_mapped_create_leaves_the_directory_usable(tmp_path):
    columns = tmp_path / "cols"
    with pytest.raises(OSError, match=r"cannot reserve \d+ bytes for .*records.bin"):
        replay.ReplayBuffer(2**46, SPEC, storage=replay.MemoryMapped(columns))
    assert not columns.exists()
    columns.mkdir()  # a directory that was there stays, empty
    with pytest.raises(OSError, match="cannot reserve"):
        replay.ReplayBuffer(2**46, SPEC, storage=replay.MemoryMapped(columns))
    assert os.listdir(columns) == []
    buf = replay.ReplayBuffer(100, SPEC, storage=replay.MemoryMapped(columns))
    fill(buf)
    buf.check()
