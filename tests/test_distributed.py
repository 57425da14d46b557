"""Distributed acting on Ray (issue 18): DDPG+HER fed by actor processes learns as one process
does, the rate limiter holds its ratio, a killed actor is restarted without losing what it sent,
and the learner's checkpoint resumes. A local Ray cluster (2 CPUs) is started and stopped here."""

import sys

import numpy as np
import pytest

from pyrl import cli
from pyrl.agents import DDPG, PPO
from pyrl.cli import PRESETS
from pyrl.distributed import SampleToInsertRatio

ray = pytest.importorskip("ray")

from pyrl.distributed import Distributed  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             ignore_reinit_error=True)
    yield
    ray.shutdown()


def point_reach(**overrides):
    return DDPG("pyrl/PointReach-v0", **{**PRESETS[("ddpg", "pyrl/PointReach-v0")], **overrides})


def test_the_rate_limiter_keeps_samples_per_insert_within_its_buffer():
    limiter = SampleToInsertRatio(samples_per_insert=4.0, min_size=100, error_buffer=50)
    assert not limiter.can_sample(99, 0, 1)  # below min_size
    inserted, sampled, rng = 0, 0, np.random.default_rng(0)
    for _ in range(10_000):  # a random mix of eager inserters and samplers
        if rng.random() < 0.5:
            if limiter.can_insert(inserted, sampled, 5):
                inserted += 5
        elif limiter.can_sample(inserted, sampled, 8):
            sampled += 8
        if inserted >= 100:
            assert abs(4.0 * (inserted - 100) - sampled) <= 50 + 20
    assert sampled > 0 and abs(sampled / inserted - 4.0) < 0.1
    with pytest.raises(ValueError, match="samples_per_insert should be > 0"):
        SampleToInsertRatio(0, 1, 1)


@pytest.mark.slow
def test_ddpg_her_with_two_actors_reaches_the_one_process_bar(cluster):
    """SPEC 8.2 H1 with the experience from 2 actor processes: >= 0.9 success at 15k steps."""
    agent = point_reach(seed=0)
    runner = Distributed(agent, actors=2)
    try:
        runner.learn(30 * 500)
    finally:
        runner.close()
    assert agent.steps >= 15_000 and agent.history[-1]["eval_success"] >= 0.9, \
        [row["eval_success"] for row in agent.history]
    row = agent.history[-1]
    assert row["actors"] == 2 and row["env_steps_per_s"] > 0 and row["updates_per_s"] > 0
    spi = 40 * 256 / 500  # the preset's own ratio
    assert abs(row["samples_per_insert"] - spi) / spi < 0.1


def test_ratio_holds_and_a_killed_actor_is_restarted_with_nothing_lost(cluster):
    agent = point_reach(seed=1, log_every=200, eval_every=0, learning_starts=0)
    runner = Distributed(agent, actors=2, chunk=25, samples_per_insert=2.0, error_buffer=600)
    seen = {}

    def kill_once(agent, row):
        # At each log point the ratio is within the error buffer, give or take the steps of
        # the episodes the 2 actors are still running (up to 50 each), counted when they end.
        diff = 2.0 * (runner.inserted - runner.limiter.min_size) - runner.sampled
        assert -600 <= diff <= 600 + 2.0 * 2 * 50
        if "killed" not in seen and agent.steps >= 600 and runner.steps_by_actor[0] > 0:
            seen.update(killed=len(agent.buffer), steps=runner.steps_by_actor[0])
            ray.kill(runner.workers[0], no_restart=False)  # the process dies; Ray restarts it
        if "killed" in seen:
            assert len(agent.buffer) >= seen["killed"]  # what it had sent stays

    try:
        runner.learn(3000, callback=kill_once)
        assert "killed" in seen and agent.steps >= 3000
        for _ in range(20):  # a new process takes seconds to start: go on until it has sent
            if runner.steps_by_actor[0] > seen["steps"]:
                break
            runner.learn(agent.steps + 500, callback=kill_once)
    finally:
        runner.close()
    assert runner.steps_by_actor[0] > seen["steps"] and runner.restarts == 1  # it sends again
    assert agent.buffer.num_episodes * 50 == len(agent.buffer)  # whole 50-step episodes only
    agent.buffer.check()


def test_cli_trains_with_actors_and_resumes_from_the_checkpoint(cluster, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "ddpg", "--env", "pyrl/PointReach-v0", "--actors", "2", "--out", str(out),
              "--no-progress", "--eval-episodes", "2", "--set", "eval_every=0"]
    assert cli.main([*common, "--steps", "1000"]) == 0
    first = DDPG.load(out / "checkpoint.pt")
    # Whole 50-step episodes; the actors' running ones (at most one per env) are not in yet.
    assert first.steps >= 1000 and 0 <= first.steps - len(first.buffer) <= 2 * 50
    assert len(first.buffer) == 50 * first.buffer.num_episodes
    assert cli.main([*common, "--steps", "2000", "--resume"]) == 0
    resumed = DDPG.load(out / "checkpoint.pt")
    assert resumed.steps >= 2000 and len(resumed.buffer) > len(first.buffer)  # the buffer went on
    assert resumed.steps - len(resumed.buffer) <= 2 * 2 * 50  # each run leaves actors' episodes
    columns = (out / "progress.csv").read_text().splitlines()[0].split(",")
    for column in ("actors", "env_steps_per_s", "updates_per_s", "samples_per_insert",
                   "stale_update_share"):
        assert column in columns


def test_what_cannot_run_distributed_says_so(cluster):
    with pytest.raises(ValueError, match="off-policy learner"):
        Distributed(PPO("CartPole-v1", n_envs=1, n_steps=8, batch_size=8), actors=1)
    with pytest.raises(ValueError, match="actors should be an int >= 1"):
        Distributed(point_reach(), actors=0)
    with pytest.raises(SystemExit, match="--actors: Distributed: actors feed an off-policy"):
        cli.main(["train", "ppo", "--env", "CartPole-v1", "--actors", "2", "--steps", "10",
                  "--no-progress"])


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    from pyrl import distributed
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'pyrl\[ray\]'"):
        distributed.require_ray()
