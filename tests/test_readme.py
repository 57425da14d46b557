"""The README's quickstart runs as written."""

import pathlib
import re

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
