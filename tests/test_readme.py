"""The README's quickstart runs as written (the guides' code runs in test_docs.py)."""

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
    assert namespace["adv"].shape == (128, 8)
    assert (tmp_path / "buffer.pt").exists()


def test_readme_fits_on_a_page_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) < 250
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (README.parent / target).exists(), f"README links to a missing {target}"
