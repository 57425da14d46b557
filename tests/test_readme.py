"""The README's quickstart runs as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_quickstart_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"## Quickstart\s+```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # it saves a file
    namespace = {}
    exec(compile(block, "README.md quickstart", "exec"), namespace)
    assert namespace["batch"].obs.shape == (256, 17)
    assert namespace["relabeled"].is_her.float().mean() > 0.5
    assert (tmp_path / "buffer.pt").exists()


def test_agent_snippet_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"## Train\s+```bash\n.*?```.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md agents", "exec"), namespace)
    assert namespace["agent"].steps >= 20_000 and (tmp_path / "ppo.pt").exists()


def test_own_loop_snippets_run(tmp_path, monkeypatch):
    text = README.read_text()
    section = re.search(r"## Use pyrl in your own loop\n(.*?)\n## ", text, re.S).group(1)
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], "README.md own-loop PPO", "exec"), namespace)
    assert namespace["truncated"].any(), "the PPO snippet should meet time-limit cuts"
    assert namespace["advantages"].shape == (64, 4)
    exec(compile(blocks[1], "README.md own-loop DDPG", "exec"), namespace)
    rb = namespace["rb"]  # 600 steps of 2 envs: two 200-step episodes each, the resets left out
    assert rb.episodes()["length"].tolist() == [200] * 4 and rb.pending_steps == 2 * 198
    pytest.importorskip("stable_baselines3")
    exec(compile(blocks[2], "README.md own-loop SB3", "exec"), namespace)
    assert len(namespace["model"].replay_buffer.replay) == 200
    assert namespace["dqn"].replay_buffer.replay.priority_updates["applied"] > 0
