"""Buffers larger than RAM (issue 18): columns in memory-mapped files sample exactly as in-memory
columns, save in place (the checkpoint refers to the files) and reopen with ReplayBuffer.load."""

import os

import numpy as np
import pytest
import torch

from pyrl import replay

SPEC = {"obs": (5,), "action": ((), torch.int64)}


def fill(buf, episodes=30, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        length = int(rng.integers(1, 12))
        buf.add_episode(
            obs=torch.as_tensor(rng.normal(size=(length + 1, 5)), dtype=torch.float32),
            action=torch.as_tensor(rng.integers(0, 4, length)),
            reward=torch.as_tensor(rng.normal(size=length), dtype=torch.float32),
            terminated=bool(rng.random() < 0.5),
        )


@pytest.mark.parametrize("prioritized", [None, replay.PER()])
def test_mapped_columns_sample_what_memory_columns_sample(tmp_path, prioritized):
    settings = dict(prioritized=prioritized, nstep=replay.NStep(3, gamma=0.9), seed=7)
    memory = replay.ReplayBuffer(120, SPEC, **settings)
    mapped = replay.ReplayBuffer(
        120, SPEC, **settings, storage=replay.MemoryMapped(tmp_path / "cols")
    )
    fill(memory)  # wraps around the 120 rows: evictions too
    fill(mapped)
    assert (
        os.path.getsize(tmp_path / "cols" / "records.bin") == 120 * mapped.storage.records.shape[1]
    )
    for _ in range(5):
        a, b = memory.sample(64), mapped.sample(64)
        for key in ("obs", "action", "reward", "next_obs", "index", "discount", "weight"):
            assert torch.equal(a[key], b[key]), key
        if prioritized is not None:
            td = torch.rand(64)
            memory.update_priorities(a.index, a.generation, td)
            mapped.update_priorities(b.index, b.generation, td)
    mapped.check()


def test_save_refers_to_the_files_and_load_maps_them_again(tmp_path):
    buf = replay.ReplayBuffer(200, SPEC, seed=3, storage=replay.MemoryMapped(tmp_path / "cols"))
    fill(buf)
    buf.save(tmp_path / "buffer.pt")
    # The checkpoint holds the trees, episode table and counters, not the columns.
    saved = torch.load(tmp_path / "buffer.pt", weights_only=True)
    # The column directory relative to the checkpoint: a copied run maps its own copy.
    assert "columns" not in saved and saved["config"]["storage"] == {"memory_mapped": "cols"}
    expected = buf.sample(32)
    del buf  # releases the directory to the next opener
    loaded = replay.ReplayBuffer.load(tmp_path / "buffer.pt")
    assert loaded.memory_mapped.path == str(tmp_path / "cols")
    loaded.check()
    assert torch.equal(
        loaded.sample(32).obs, expected.obs
    )  # the draws continue from the saved count
    fill(loaded, episodes=5, seed=9)  # and it goes on adding into the same files
    loaded.check()


def test_mapped_directories_are_not_overwritten_and_bad_files_refused(tmp_path):
    replay.ReplayBuffer(50, SPEC, storage=replay.MemoryMapped(tmp_path / "cols"))
    with pytest.raises(ValueError, match="already holds a buffer's columns"):
        replay.ReplayBuffer(50, SPEC, storage=replay.MemoryMapped(tmp_path / "cols"))
    with pytest.raises(ValueError, match="should hold .* bytes"):
        replay.ReplayBuffer(60, SPEC, storage=replay.MemoryMapped(tmp_path / "cols", reopen=True))
    with pytest.raises(ValueError, match="storage should be a replay.MemoryMapped"):
        replay.ReplayBuffer(50, SPEC, storage=str(tmp_path))
    with pytest.raises(ValueError, match="path should be a directory path"):
        replay.MemoryMapped(3)


def test_ddpg_keeps_its_buffer_in_files_and_its_checkpoint_refers_to_them(tmp_path):
    from pyrl.agents import DDPG

    settings = dict(
        buffer_dir=str(tmp_path / "replay"),
        buffer_size=5000,
        learning_starts=100,
        hidden=(16,),
        log_every=200,
        seed=0,
    )
    agent = DDPG("Pendulum-v1", **settings)
    agent.learn(400)
    agent.save(tmp_path / "agent.pt")
    saved = torch.load(tmp_path / "agent.pt", weights_only=True)
    assert "columns" not in saved["state"]["buffer"]  # the rows stay in the files
    expected, stored = agent.buffer.sample(16).obs, len(agent.buffer)
    agent.close()  # one live buffer per directory: the first releases it
    loaded = DDPG.load(tmp_path / "agent.pt")  # maps the files again
    assert len(loaded.buffer) == stored == 400 and loaded.buffer.memory_mapped
    assert torch.equal(loaded.buffer.sample(16).obs, expected)
    loaded.learn(600)
    loaded.buffer.check()
