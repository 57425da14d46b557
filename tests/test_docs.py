"""Every guide's Python code runs as written (the docs site shows the same blocks), and the site
links every guide and API page."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
GUIDES = sorted((DOCS / "guides").glob("*.md"))


# Guides of optional extras run where the extra is installed (scripts/setup.sh installs both).
NEEDS = {"sb3": "stable_baselines3", "distributed": "ray", "own_loop": "stable_baselines3"}


def check_own_loop(namespace):
    assert namespace["truncated"].any(), "the PPO snippet should meet time-limit cuts"
    assert namespace["advantages"].shape == (64, 4)
    rb = namespace["rb"]  # 600 steps of 2 envs: two 200-step episodes each, the resets left out
    assert rb.episodes()["length"].tolist() == [200] * 4 and rb.pending_steps == 2 * 198
    assert len(namespace["model"].replay_buffer.replay) == 200
    assert namespace["dqn"].replay_buffer.replay.priority_updates["applied"] > 0


# What a page's code must have done, beyond running.
CHECKS = {"own_loop": check_own_loop}


@pytest.mark.parametrize("page", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_code_runs(page, tmp_path, monkeypatch):
    if page.stem in NEEDS:
        pytest.importorskip(NEEDS[page.stem])
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks, f"{page.name} has no Python code"
    monkeypatch.chdir(tmp_path)  # some save files
    namespace = {}
    for i, block in enumerate(blocks):  # one namespace per page: later blocks use earlier ones
        exec(compile(block, f"{page.name} block {i}", "exec"), namespace)
    if page.stem in CHECKS:
        CHECKS[page.stem](namespace)


def test_index_reaches_every_page():
    index = (DOCS / "index.md").read_text()
    pages = [
        p.relative_to(DOCS).with_suffix("").as_posix()
        for p in [*GUIDES, *sorted((DOCS / "api").glob("*.md"))]
    ]
    missing = [p for p in pages if p not in index]
    assert not missing, f"pages not in the index's toctrees: {missing}"
