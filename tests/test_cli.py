"""The day-to-day commands end to end in a temporary directory: presets, eval (and videos),
plot, TensorBoard, and what a Stable-Baselines3 user passes (issue 14)."""

import json
import subprocess
import sys
import warnings

import gymnasium as gym
import pytest

from pyrl import cli
from pyrl.agents import PPO, presets


def train(out, *extra, steps=2000, seed=0):
    assert (
        cli.main(
            [
                "train",
                "ppo",
                "--env",
                "CartPole-v1",
                "--steps",
                str(steps),
                "--seed",
                str(seed),
                "--out",
                str(out),
                "--no-progress",
                "--eval-episodes",
                "2",
                *extra,
            ]
        )
        == 0
    )


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pyrl.cli", *args], capture_output=True, text=True)


def test_presets_live_beside_the_agents_and_the_cli_view_is_read_only(capsys):
    preset = presets.get("ddpg", "pyrl/PointReach-v0")
    preset["her_k"] = 99  # a copy: the preset itself is unchanged
    assert presets.get("ddpg", "pyrl/PointReach-v0")["her_k"] == 4
    assert presets.get("ppo", "NoSuchEnv-v0") == {}
    assert dict(cli.PRESETS[("ppo", "CartPole-v1")]) == presets.get("ppo", "CartPole-v1")
    with pytest.raises(TypeError):
        cli.PRESETS[("ppo", "CartPole-v1")] = {}
    with pytest.raises(TypeError):
        cli.PRESETS[("ppo", "CartPole-v1")]["lr"] = 1.0
    assert cli.main(["train", "--list-presets"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(presets.names()) and any(line.startswith("coop") for line in listed)
    missing = run_cli("train", "ppo")
    assert missing.returncode != 0 and "give an algorithm and --env" in missing.stderr


def test_eval_prints_writes_and_records(tmp_path):
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    run = tmp_path / "run"
    train(run)
    done = run_cli("eval", str(run), "--episodes", "3", "--video", str(tmp_path / "video"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("return ") and " ± " in done.stdout
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 3 and result["deterministic"] is True
    assert len(list((tmp_path / "video").glob("*.mp4"))) == 3  # each env's first episode
    stochastic = run_cli("eval", str(run), "--episodes", "2", "--stochastic")
    assert (
        stochastic.returncode == 0
        and json.loads((run / "eval.json").read_text())["deterministic"] is False
    )


def test_eval_bad_arguments_exit_nonzero_with_a_message(tmp_path):
    nothing = run_cli("eval", str(tmp_path))
    assert nothing.returncode != 0 and "no config.json" in nothing.stderr
    run = tmp_path / "run"
    train(run, steps=500)
    assert "--episodes should be >= 1" in run_cli("eval", str(run), "--episodes", "0").stderr
    goal = tmp_path / "goal"
    assert (
        cli.main(
            [
                "train",
                "ddpg",
                "--env",
                "pyrl/PointReach-v0",
                "--steps",
                "200",
                "--out",
                str(goal),
                "--no-progress",
                "--eval-episodes",
                "1",
            ]
        )
        == 0
    )
    no_frames = run_cli("eval", str(goal), "--video", str(tmp_path / "v"))
    assert no_frames.returncode != 0 and "does not render frames" in no_frames.stderr
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    broken = run_cli("eval", str(run))
    assert broken.returncode != 0 and "cannot load" in broken.stderr


def test_plot_draws_one_line_per_algorithm_and_env(tmp_path):
    pytest.importorskip("matplotlib")
    for seed in (0, 1):
        train(tmp_path / f"ppo-s{seed}", seed=seed, steps=3000)
    assert (
        cli.main(
            [
                "train",
                "reinforce",
                "--env",
                "CartPole-v1",
                "--steps",
                "3200",
                "--out",
                str(tmp_path / "reinforce"),
                "--no-progress",
                "--eval-episodes",
                "1",
            ]
        )
        == 0
    )
    out = tmp_path / "curves.png"
    opts = cli.build_parser().parse_args(
        [
            "plot",
            str(tmp_path / "ppo-s0"),
            str(tmp_path / "ppo-s1"),
            str(tmp_path / "reinforce"),
            "--out",
            str(out),
        ]
    )
    assert cli.plot_runs(opts) == ["ppo CartPole-v1", "reinforce CartPole-v1"]
    assert out.stat().st_size > 1000
    timed = run_cli(
        "plot",
        str(tmp_path / "ppo-s0"),
        "--x",
        "time",
        "--y",
        "policy_loss",
        "--out",
        str(tmp_path / "t.png"),
    )
    assert timed.returncode == 0 and "(1 line)" in timed.stdout
    unknown = run_cli("plot", str(tmp_path / "ppo-s0"), "--y", "no_such_column")
    assert unknown.returncode != 0 and "has no 'no_such_column' column" in unknown.stderr
    assert run_cli("plot", str(tmp_path / "ppo-s0"), "--x", "hours").returncode != 0


def test_tensorboard_gets_the_progress_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tmp_path / "run", "--tensorboard", str(tmp_path / "tb"), steps=2000)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "return",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "lr",
        "steps_per_second",
        "returns_seconds",
    } <= tags
    header = (tmp_path / "run" / "progress.csv").read_text().splitlines()[0].split(",")
    assert tags <= set(header)  # the same scalars as progress.csv
    assert [s.step for s in events.Scalars("return")] == sorted(
        s.step for s in events.Scalars("return")
    )


def test_a_single_env_instance_runs_as_one_env_with_a_note():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent = PPO(gym.make("CartPole-v1"), n_steps=16, batch_size=16, n_epochs=1)
    assert agent.args.n_envs == 1
    assert any(
        "runs as one env" in str(w.message) and "lambda: MyEnv()" in str(w.message) for w in caught
    )
    agent.learn(32)
    assert agent.steps == 32


@pytest.mark.slow
def test_fetch_reach_preset_alone_reaches_the_goal(tmp_path):
    pytest.importorskip("gymnasium_robotics")
    out = tmp_path / "fetch"
    assert (
        cli.main(
            [
                "train",
                "ddpg",
                "--env",
                "FetchReach-v4",
                "--steps",
                "10000",
                "--seed",
                "0",
                "--out",
                str(out),
                "--no-progress",
                "--eval-episodes",
                "20",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())["args"]
    assert config["her_strategy"] == "future" and config["normalize_obs"] is True
    assert json.loads((out / "eval.json").read_text())["success"] >= 0.9


@pytest.mark.parametrize(
    "contexts, pulls", [(10, 512_000), pytest.param(100, 2_000_000, marks=pytest.mark.slow)]
)
def test_bandit_preset_scales_with_the_bandit(contexts, pulls):
    import numpy as np

    from pyrl.agents import REINFORCE

    agent = REINFORCE(
        "pyrl/ContextualBandit-v0",
        env_kwargs={"contexts": contexts, "arms": contexts},
        **presets.get("reinforce", "pyrl/ContextualBandit-v0"),
        seed=0,
    )
    agent.learn(pulls)
    greedy = agent.probabilities(np.eye(contexts, dtype=np.float32)).argmax(1)
    assert (
        greedy == np.arange(contexts)
    ).mean() >= 0.9  # 1.0 measured; seeds 0-4: benchmarks.learning.agents


def test_bench_finds_its_scripts_installed_or_in_a_checkout(tmp_path, monkeypatch):
    from pathlib import Path

    above = Path(cli.__file__).resolve().parent.parent
    if (above / "benchmarks" / "ops").is_dir():  # a checkout (else an installed wheel)
        assert cli.benchmark_package() == ("benchmarks", above)
    else:
        assert cli.benchmark_package() == ("pyrl.benchmarks", above)
    # An installed package carries the ops part as pyrl/benchmarks (CMakeLists.txt installs it).
    package = tmp_path / "site" / "pyrl"
    (package / "benchmarks" / "ops").mkdir(parents=True)
    (package / "benchmarks" / "ops" / "__init__.py").write_text("")
    monkeypatch.setattr(cli, "__file__", str(package / "cli.py"))
    assert cli.benchmark_package() == ("pyrl.benchmarks", tmp_path / "site")
    (package / "benchmarks" / "ops" / "__init__.py").unlink()
    with pytest.raises(SystemExit, match="no benchmarks beside this pyrl"):
        cli.main(["bench"])
