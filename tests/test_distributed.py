"""Distributed acting on Ray (issue 18): DDPG+HER fed by actor processes learns as one process
does, the rate limiter holds its ratio, a killed actor is restarted without losing what it sent,
actors' initial priorities are the learner's TD errors, PPO with one actor replays the
single-process run exactly and with two learns as it does, and the learner's checkpoint resumes.
A local Ray cluster (2 CPUs) of this module's own is started and stopped here; the fault tests wait
for the events they check (a restart seen, steps from the restarted process) with deadlines."""

import os
import sys
import time

import numpy as np
import pytest
import torch

from pyrl import cli
from pyrl.agents import DDPG, PPO, Coop
from pyrl.agents.ppo import Rollout
from pyrl.cli import PRESETS
from pyrl.distributed import SampleToInsertRatio, join_rollouts

ray = pytest.importorskip("ray")

from pyrl.distributed import Distributed  # noqa: E402


DEADLINE = 300  # seconds a fault test waits for the event it checks (a busy machine is slow)


@pytest.fixture(scope="module")
def cluster():
    # address="local": a cluster of this module's own, never another one running on the machine
    # (ray.init() alone joins the latest `ray start` cluster, or RAY_ADDRESS's).
    address = os.environ.pop("RAY_ADDRESS", None)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        ignore_reinit_error=True,
    )
    yield
    ray.shutdown()
    if address is not None:
        os.environ["RAY_ADDRESS"] = address


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
    assert agent.steps >= 15_000 and agent.history[-1]["eval_success"] >= 0.9, [
        row["eval_success"] for row in agent.history
    ]
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
        # A new process takes seconds to start (minutes on a busy machine): go on until the
        # restart is seen and the new process has sent steps, or the deadline passes.
        deadline = time.monotonic() + DEADLINE
        while (
            not (runner.restarts == 1 and runner.steps_by_actor[0] > seen["steps"])
            and time.monotonic() < deadline
        ):
            runner.learn(agent.steps + 200, callback=kill_once)
    finally:
        runner.close()
    assert runner.steps_by_actor[0] > seen["steps"] and runner.restarts == 1  # it sends again
    assert agent.buffer.num_episodes * 50 == len(agent.buffer)  # whole 50-step episodes only
    agent.buffer.check()


def test_cli_trains_with_actors_and_resumes_from_the_checkpoint(cluster, tmp_path, capsys):
    out = tmp_path / "run"
    common = [
        "train",
        "ddpg",
        "--env",
        "pyrl/PointReach-v0",
        "--actors",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--eval-episodes",
        "2",
        "--set",
        "eval_every=0",
    ]
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
    for column in (
        "actors",
        "env_steps_per_s",
        "updates_per_s",
        "samples_per_insert",
        "stale_update_share",
    ):
        assert column in columns


def test_what_cannot_run_distributed_says_so(cluster):
    with pytest.raises(ValueError, match="actors feed a DDPG learner .* or a PPO learner"):
        Distributed(Coop("pyrl/PointReach-v0"), actors=1)
    with pytest.raises(ValueError, match="actors should be an int >= 1"):
        Distributed(point_reach(), actors=0)
    ppo = PPO("CartPole-v1", n_envs=1, n_steps=8, batch_size=8)
    with pytest.raises(ValueError, match="samples_per_insert, chunk apply to a DDPG learner"):
        Distributed(ppo, actors=1, samples_per_insert=2.0, chunk=10)
    with pytest.raises(ValueError, match="initial_priorities needs a prioritized learner"):
        Distributed(point_reach(), actors=1, initial_priorities=True)
    with pytest.raises(
        SystemExit, match="--actors: Distributed: samples_per_insert apply to a DDPG"
    ):
        cli.main(
            [
                "train",
                "ppo",
                "--env",
                "CartPole-v1",
                "--actors",
                "2",
                "--steps",
                "10",
                "--samples-per-insert",
                "2",
                "--no-progress",
            ]
        )


# ---- actors' initial priorities (Ape-X) ----------------------------------------------------------


def test_actors_initial_priorities_are_the_learners_td_errors(cluster):
    """With no update yet (min_size above the run), every stored transition sits at the priority
    the learner's own critics give its episode: the actors computed it with the same weights."""
    agent = point_reach(seed=2, per=True, per_alpha=0.6, nstep=3, eval_every=0, log_every=500)
    runner = Distributed(agent, actors=2, chunk=25, min_size=5000, initial_priorities=True)
    try:
        runner.learn(1000)
    finally:
        runner.close()
    assert agent.updates == 0 and agent.buffer.priority_updates == {"applied": 0, "dropped": 0}
    table, columns = agent.buffer.episodes(), agent.buffer.state_dict()["columns"]
    leaves = agent.buffer.priorities()
    assert len(table["id"]) >= 10
    eps = agent.buffer.prioritized.eps
    for start, length, terminated in zip(
        *(table[k].tolist() for k in ("start", "length", "terminated"))
    ):
        rows = torch.arange(start, start + length + 1) % agent.buffer.capacity
        obs = {
            k: columns[k][rows].numpy() for k in ("observation", "achieved_goal", "desired_goal")
        }
        td = agent.initial_priorities(
            obs,
            columns["action"][rows[:-1]].numpy(),
            columns["reward"][rows[:-1]].numpy(),
            terminated,
        )
        expected = torch.from_numpy(td + eps) ** 0.6
        torch.testing.assert_close(leaves[rows[:-1]], expected, rtol=1e-5, atol=1e-7)
    assert leaves[leaves > 0].std() > 0  # not the uniform max priority
    agent.buffer.check()


def test_recurrent_ddpg_actors_store_the_states_they_acted_from(cluster):
    """Each stored state is the encoder's state over its episode so far: recomputing them all
    with the learner's encoder (the actors' weights: no update ran) changes nothing."""
    settings = {
        **PRESETS[("ddpg", "pyrl/PendulumNoVel-v0")],
        "buffer_size": 5000,
        "seed": 0,
        "eval_every": 0,
        "log_every": 500,
        "learning_starts": 0,
    }
    agent = DDPG("pyrl/PendulumNoVel-v0", **settings)
    runner = Distributed(agent, actors=2, min_size=4000)
    try:
        runner.learn(1000)
    finally:
        runner.close()
    assert agent.updates == 0 and agent.buffer.num_episodes >= 2
    stored = agent.buffer.state_dict()["columns"]["hidden"].clone()
    assert stored.abs().sum() > 0
    agent.buffer.recompute_hidden(agent.encoder)
    torch.testing.assert_close(
        agent.buffer.state_dict()["columns"]["hidden"], stored, rtol=1e-4, atol=1e-5
    )
    first = agent.buffer.episodes()["start"][0]
    assert stored[first].abs().sum() == 0  # an episode from a reset starts at zero
    runner = Distributed(agent, actors=1, min_size=400)  # and the learner trains on windows
    try:
        runner.learn(2000)
    finally:
        runner.close()
    assert agent.updates > 0 and np.isfinite(agent.history[-1]["critic_loss"])


# ---- PPO: synchronous rollouts from actors -------------------------------------------------------


def ppo_settings(**overrides):
    return {
        **dict(n_envs=2, n_steps=32, batch_size=32, n_epochs=2, eval_every=0, seed=3),
        **overrides,
    }


def test_ppo_with_one_actor_replays_the_single_process_run(cluster):
    """Actor 0 steps the learner's seed with its n_envs: the same rollouts, the same updates."""
    single = PPO("CartPole-v1", **ppo_settings())
    single.learn(640)
    learner = PPO("CartPole-v1", **ppo_settings())
    runner = Distributed(learner, actors=1)
    try:
        assert runner.envs_per_actor == 2  # n_envs / actors
        runner.learn(640)
    finally:
        runner.close()
    assert [row["policy_loss"] for row in learner.history] == [
        row["policy_loss"] for row in single.history
    ]
    assert [row["return"] for row in learner.history] == [row["return"] for row in single.history]
    for key, value in single.model.state_dict().items():
        assert torch.equal(learner.model.state_dict()[key], value), key
    assert learner.history[-1]["actors"] == 1 and learner.history[-1]["samples_per_insert"] == 2.0


def test_ppo_normalizers_merge_the_actors_statistics(cluster):
    """The actor's observation and return moments merged into the learner's equal the
    statistics one process keeps step by step (to rounding)."""
    settings = ppo_settings(normalize_obs=True, normalize_reward=True)
    single = PPO("Pendulum-v1", **settings)
    single.learn(640)
    learner = PPO("Pendulum-v1", **settings)
    runner = Distributed(learner, actors=1)
    try:
        runner.learn(640)
    finally:
        runner.close()
    for name in ("obs_norm", "return_norm"):
        ours, theirs = getattr(learner, name), getattr(single, name)
        assert ours.count == theirs.count
        np.testing.assert_allclose(ours.mean, theirs.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.var, theirs.var, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        [row["value_loss"] for row in learner.history],
        [row["value_loss"] for row in single.history],
        rtol=1e-4,
    )


def test_ppo_goes_on_when_an_actor_is_killed(cluster):
    agent = PPO("CartPole-v1", **ppo_settings(n_envs=4))
    runner = Distributed(agent, actors=2)
    seen = {}

    def kill_once(agent, row):
        if "steps" not in seen and agent.steps >= 256:
            seen["steps"] = runner.steps_by_actor[0]
            ray.kill(runner.workers[0], no_restart=False)  # the process dies; Ray restarts it

    try:
        runner.learn(1280, callback=kill_once)
        # The kill takes effect when Ray gets to it (late on a busy machine): iterate until the
        # restarted process has answered, or the deadline passes.
        deadline = time.monotonic() + DEADLINE
        while runner.restarts == 0 and time.monotonic() < deadline:
            runner.learn(agent.steps + 128, callback=kill_once)
    finally:
        runner.close()
    # Every iteration has both actors' rollouts (2 x 2 envs x 32 steps): the restarted one
    # answered again, with a new process.
    assert runner.restarts == 1 and agent.steps >= 1280 and agent.steps % 128 == 0
    assert runner.steps_by_actor == [agent.steps // 2] * 2 and seen["steps"] == 128


def test_joined_rollouts_keep_each_actors_envs_and_cut_episodes():
    def rollout(n, value, finals):
        T = 3
        return Rollout(
            obs=np.full((T, n, 2), value, np.float32),
            action=np.full((T, n), value),
            reward=np.full((T, n), value, np.float32),
            terminated=np.zeros((T, n), bool),
            truncated=np.zeros((T, n), bool),
            last_obs=np.full((n, 2), value, np.float32),
            finals=finals,
            hidden=np.full((T, n, 4), value, np.float32),
            last_hidden=np.full((n, 4), value, np.float32),
        )

    joined = join_rollouts(
        [rollout(2, 1.0, [(0, 1, "a", "h")]), rollout(3, 2.0, [(2, 0, "b", "k")])]
    )
    assert joined.obs.shape == (3, 5, 2) and joined.hidden.shape == (3, 5, 4)
    assert joined.reward[0].tolist() == [1, 1, 2, 2, 2] and joined.last_obs[:, 0].tolist() == [
        1,
        1,
        2,
        2,
        2,
    ]
    assert joined.last_hidden.shape == (5, 4) and joined.behaviour_log_prob is None
    assert joined.finals == [(0, 1, "a", "h"), (2, 2, "b", "k")]  # env indices shifted per actor


@pytest.mark.parametrize("seed", range(2))
def test_ppo_with_two_actors_learns_cartpole_as_one_process_does(cluster, seed):
    """test_agents' single-process bar (return > 100 after 15k steps), the preset's 8 envs
    split over 2 actors."""
    agent = PPO("CartPole-v1", **PRESETS[("ppo", "CartPole-v1")], seed=seed)
    runner = Distributed(agent, actors=2)
    try:
        runner.learn(15_000)
    finally:
        runner.close()
    assert agent.evaluate(5, seed=1)["return"] > 100
    assert agent.history[-1]["actors"] == 2


def test_recurrent_ppo_runs_with_actors_and_the_cli_resumes(cluster, tmp_path):
    out = tmp_path / "ppo"
    common = [
        "train",
        "ppo",
        "--env",
        "pyrl/CartPoleNoVel-v0",
        "--actors",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--eval-episodes",
        "2",
        "--set",
        "recurrent=True",
        "--set",
        "n_steps=32",
        "--set",
        "n_envs=4",
        "--set",
        "n_epochs=2",
        "--set",
        "eval_every=0",
    ]
    assert cli.main([*common, "--steps", "512"]) == 0
    first = PPO.load(out / "checkpoint.pt")
    assert first.steps == 512 and first.args.recurrent
    assert cli.main([*common, "--steps", "1024", "--resume"]) == 0
    resumed = PPO.load(out / "checkpoint.pt")
    assert resumed.steps == 1024 and resumed.updates == 2 * first.updates
    rows = (out / "progress.csv").read_text().splitlines()
    assert "actors" in rows[0].split(",") and len(rows) == 1 + 1024 // 128


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    from pyrl import distributed

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'pyrl\[ray\]'"):
        distributed.require_ray()
