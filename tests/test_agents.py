"""Agents, built-in envs and the command line: SPEC 8.1 (REINFORCE on the contextual bandit)
and 8.2 (DDPG + HER on PointReach) acceptance, checkpoints that restore exactly, bad settings."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from pyrl import agents, envs
from pyrl.agents import DDPG, PPO, REINFORCE
from pyrl.agents.common import RunningNorm, make_vec_env
from pyrl.agents.reinforce import per_state_mean
from pyrl.cli import PRESETS, parse_value

torch.set_num_threads(1)


# ---- environments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id,kwargs",
    [
        ("pyrl/ContextualBandit-v0", {}),
        ("pyrl/ContextualBandit-v0", {"observation": "scalar"}),
        ("pyrl/PointReach-v0", {}),
        ("pyrl/BitFlip-v0", {}),
        ("pyrl/BitFlip-v0", {"continuous": True, "n_bits": 5}),
    ],
)
def test_envs_pass_gymnasium_checker(env_id, kwargs):
    check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=True)


def test_bandit_rewards_and_targets():
    env = envs.ContextualBandit()
    obs, _ = env.reset(seed=3)
    context = int(obs.argmax())
    assert env.step(context)[1:4] == (0.0, True, False)
    assert env.step((context + 3) % 10)[1] == -abs((context + 3) % 10 - context)
    assert list(envs.ContextualBandit(contexts=5, arms=9).target(np.arange(5))) == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError, match="observation should be"):
        envs.ContextualBandit(observation="raw")
    with pytest.raises(ValueError, match="contexts and arms"):
        envs.ContextualBandit(contexts=0)


def test_bandit_vector_env_matches_single():
    vec = gym.make_vec("pyrl/ContextualBandit-v0", num_envs=64)
    assert isinstance(vec, envs.ContextualBanditVector)
    obs, _ = vec.reset(seed=0)
    arms = np.random.default_rng(0).integers(10, size=64)
    next_obs, reward, term, trunc, info = vec.step(arms)
    single = envs.ContextualBandit()
    expected = [-abs(a - c) for a, c in zip(arms, obs.argmax(1))]
    assert list(reward) == expected and term.all() and not trunc.any()
    assert np.array_equal(np.stack(info["final_obs"]), obs)
    assert list(info["is_success"]) == [r == 0 for r in expected]
    assert single.observation_space == vec.single_observation_space


def test_point_reach_dynamics_reward_and_scripted_success():
    env = gym.make("pyrl/PointReach-v0")
    obs, _ = env.reset(seed=1)
    p, g = obs["observation"], obs["desired_goal"]
    obs2, reward, term, trunc, info = env.step(np.array([1.0, -1.0], np.float32))
    np.testing.assert_allclose(obs2["achieved_goal"], np.clip(p + [0.1, -0.1], -1, 1), atol=1e-6)
    assert reward == (0.0 if np.linalg.norm(obs2["achieved_goal"] - g) < 0.05 else -1.0)
    assert not term and not trunc and info["is_success"] == (reward == 0.0)
    batch = env.unwrapped.compute_reward(
        np.zeros((3, 2)), np.array([[0, 0.04], [0, 0.05], [1, 1]]), {}
    )
    assert list(batch) == [0.0, -1.0, -1.0]

    class GoStraight:  # moves at full speed towards the goal: always there within 20 steps
        def predict(self, obs, deterministic=True):
            return np.clip((obs["desired_goal"] - obs["observation"]) / 0.1, -1, 1)

    result = agents.evaluate(GoStraight(), "pyrl/PointReach-v0", episodes=30, seed=0)
    assert result["success"] == 1.0 and result["length"] == 50.0  # truncation only, at 50 steps

    class StandStill:
        def predict(self, obs, deterministic=True):
            return np.zeros_like(obs["observation"])

    assert agents.evaluate(StandStill(), "pyrl/PointReach-v0", episodes=30, seed=0)["success"] < 0.1


def test_bit_flip():
    env = envs.BitFlip(n_bits=4)
    obs, _ = env.reset(seed=0)
    start = obs["observation"].copy()
    obs, reward, *_ = env.step(2)
    assert obs["observation"][2] == 1 - start[2] and np.array_equal(
        np.delete(obs["observation"], 2), np.delete(start, 2)
    )
    cont = envs.BitFlip(n_bits=4, continuous=True)
    obs, _ = cont.reset(seed=0)
    flip = obs["observation"] != obs["desired_goal"]
    obs, reward, _, _, info = cont.step(np.where(flip, 1.0, -1.0))
    assert reward == 0.0 and info["is_success"]
    with pytest.raises(ValueError, match="n_bits"):
        envs.BitFlip(n_bits=0)
    env = gym.make("pyrl/BitFlip-v0", n_bits=3)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


def test_make_vec_env_rejects_next_step_autoreset():
    vec = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")  # NEXT_STEP default
    with pytest.raises(ValueError, match="SAME_STEP"):
        make_vec_env(vec, 2)
    with pytest.raises(ValueError, match="n_envs=1"):
        make_vec_env(gym.make("CartPole-v1"), 3)
    with pytest.raises(ValueError, match="env should be"):
        make_vec_env(42, 1)
    with pytest.raises(ValueError, match="has 3 envs, but n_envs=2"):
        make_vec_env(make_vec_env("CartPole-v1", 3), 2)
    assert (
        make_vec_env("CartPole-v1", 3).metadata["autoreset_mode"]
        == gym.vector.AutoresetMode.SAME_STEP
    )


def test_running_norm_matches_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, (1000, 4))
    norm = RunningNorm((4,))
    for chunk in np.array_split(data, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var, data.var(0), rtol=1e-4)
    np.testing.assert_allclose(
        norm(data), np.clip((data - data.mean(0)) / data.std(0), -10, 10), atol=1e-3
    )


# ---- REINFORCE: SPEC 8.1 -----------------------------------------------------------------------


def test_per_state_mean():
    obs = torch.tensor([[1.0, 0], [0, 1], [1, 0], [1, 0]])
    g = torch.tensor([1.0, 5.0, 2.0, 6.0])
    assert per_state_mean(obs, g).tolist() == [3.0, 5.0, 3.0, 3.0]


def tabular_agent(seed, **overrides):
    settings = dict(
        n_envs=256,
        n_steps=1,
        policy="linear",
        optimizer="sgd",
        lr=10.0,
        baseline="state",
        seed=seed,
    )
    return REINFORCE("pyrl/ContextualBandit-v0", **{**settings, **overrides})


@pytest.mark.parametrize("seed", range(5))
def test_reinforce_bandit_A1(seed):
    """SPEC 8.1 A1: tabular logits, batch 256, per-context baseline, SGD lr 10, 500 updates."""
    agent = tabular_agent(seed)
    agent.learn(500 * 256)
    assert agent.updates == 500
    probs = agent.probabilities(np.eye(10, dtype=np.float32))
    assert (probs.argmax(1) == np.arange(10)).all()
    assert probs[np.arange(10), np.arange(10)].mean() >= 0.95


def test_reinforce_gradient_matches_analytic_A4():
    """SPEC 8.1 A4: one SGD step of lr 1 from theta = 0 moves theta by the Monte-Carlo gradient
    estimate of J; it must match p(x) pi(a|x) (r(x, a) - E_pi[r|x]) within 0.006."""
    agent = tabular_agent(seed=0, n_envs=100_000, lr=1.0)
    agent.learn(100_000)
    estimate = agent.policy.net.weight.detach().numpy().T  # theta[x, a]
    x, arm = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    reward = -np.abs(arm - x)
    analytic = 0.1 * 0.1 * (reward - reward.mean(axis=1, keepdims=True))
    assert analytic[0, 0] == pytest.approx(0.045) and analytic[0, 9] == pytest.approx(-0.045)
    assert np.abs(estimate - analytic).max() <= 0.006


def test_reinforce_no_baseline_and_returns_stay_within_episodes():
    """A 3-step bandit batch has 3 one-step episodes per env: each return is its own reward."""
    agent = REINFORCE(
        "pyrl/ContextualBandit-v0",
        n_envs=4,
        n_steps=3,
        baseline="none",
        gamma=0.5,
        policy="linear",
        optimizer="sgd",
        lr=0.0,
    )
    seen = []
    agent.learn(12, callback=lambda a, row: seen.append(row))
    assert agent.steps == 12 and seen[0]["episodes"] == 12
    # lr 0 leaves the policy uniform; the loss is -mean(log(1/10) * r) over all 12 (complete) pulls
    assert seen[0]["policy_loss"] == pytest.approx(np.log(10) * seen[0]["return"], rel=1e-5)


def test_reinforce_value_baseline_learns_cartpole_somewhat():
    agent = REINFORCE("CartPole-v1", n_envs=8, n_steps=200, lr=3e-3, seed=0)
    agent.learn(40_000)
    first, last = agent.history[0]["return"], agent.history[-1]["return"]
    assert last > 2 * first, (first, last)


# ---- PPO ---------------------------------------------------------------------------------------


def test_ppo_bootstraps_truncated_episodes_from_the_final_observation():
    """Constant reward 1 and a time limit of 5: with a critic that predicts exactly 1/(1-gamma)
    everywhere, every advantage must be 0 (bootstrapping from the reset observation's value, or
    not at all, would make the truncated steps' advantages differ)."""
    gamma = 0.9

    class Constant(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(1, np.float32), {}

        def step(self, action):
            return np.zeros(1, np.float32), 1.0, False, False, {}

    gym.register("test/Constant-v0", entry_point=lambda: Constant(), max_episode_steps=5)
    agent = PPO(
        "test/Constant-v0",
        n_envs=2,
        n_steps=7,
        batch_size=14,
        n_epochs=1,
        gamma=gamma,
        gae_lambda=0.95,
        normalize_advantage=False,
        lr=0.0,
    )
    with torch.no_grad():
        agent.model.critic[-1].weight.zero_()
        agent.model.critic[-1].bias.fill_(1 / (1 - gamma))
    captured = {}
    original = agents.ppo.returns.gae

    def spy(*args, **kwargs):
        captured["out"] = original(*args, **kwargs)
        captured["trunc"] = args[4]
        return captured["out"]

    agents.ppo.returns.gae = spy
    try:
        agent.learn(14)
    finally:
        agents.ppo.returns.gae = original
    advantage, target = captured["out"]
    assert captured["trunc"].any()
    torch.testing.assert_close(advantage, torch.zeros_like(advantage), atol=1e-4, rtol=0)
    torch.testing.assert_close(target, torch.full_like(target, 10.0), atol=1e-4, rtol=0)


def test_ppo_cartpole_short_run_improves_and_continuous_runs():
    agent = PPO("CartPole-v1", **PRESETS[("ppo", "CartPole-v1")], seed=0)
    agent.learn(15_000)
    assert agent.evaluate(5, seed=1)["return"] > 100
    pend = PPO(
        "Pendulum-v1",
        n_envs=2,
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        normalize_obs=True,
        normalize_reward=True,
    )
    pend.learn(256)
    action = pend.predict(np.zeros(3, np.float32))
    assert action.shape == (1,) and -2 <= action[0] <= 2
    assert pend.predict(np.zeros((4, 3), np.float32)).shape == (4, 1)


# ---- DDPG: SPEC 8.2 ----------------------------------------------------------------------------


@pytest.mark.parametrize("terminated", [True, False])
def test_ddpg_initial_priorities_are_the_td_errors_its_update_computes(terminated):
    """An actor's initial priorities (pyrl.distributed) for one episode equal |Q - y| of the
    learner's update on the same transitions, sampled from the buffer (fixed 3-step windows)."""
    agent = DDPG("Pendulum-v1", nstep=3, per=True, gamma=0.9, n_critics=2, seed=0)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(21, 3)).astype(np.float32)
    action = rng.uniform(-1, 1, (20, 1)).astype(np.float32)
    reward = rng.normal(size=20).astype(np.float32)
    td = torch.from_numpy(agent.initial_priorities(obs, action, reward, terminated))
    agent.buffer.add_episode(obs=obs, action=action, reward=reward, terminated=terminated)
    batch = agent.buffer.sample(64)
    s, s_next = agent.inputs(batch.obs), agent.inputs(batch.next_obs)
    with torch.no_grad():
        next_q = agent.critic_target(s_next, agent.actor_target(s_next)).min(dim=1).values
        target = batch.reward + batch.discount.float() * next_q
        expected = (agent.critic(s, batch.action)[:, 0] - target).abs()
    assert (
        td.shape == (20,)
        and (batch.discount[batch.index == 19] == (0.0 if terminated else 0.9)).all()
    )
    torch.testing.assert_close(td[batch.index].float(), expected, rtol=1e-5, atol=1e-6)
    recurrent = DDPG("pyrl/PendulumNoVel-v0", recurrent=True, nstep_floating=False)
    with pytest.raises(ValueError, match="per sampled window"):
        recurrent.initial_priorities(obs, action, reward, terminated)


def point_reach(her_strategy, seed, **overrides):
    settings = {
        **PRESETS[("ddpg", "pyrl/PointReach-v0")],
        "her_strategy": her_strategy,
        "seed": seed,
        **overrides,
    }
    return DDPG("pyrl/PointReach-v0", **settings)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_ddpg_her_point_reach_H1_and_H5(seed):
    """SPEC 8.2: 30 epochs of 10 episodes + 40 updates; HER future k=4 reaches >= 0.9 success at
    epoch 30, the same agent without relabeling stays <= 0.1."""
    with_her = point_reach("future", seed)
    with_her.learn(30 * 500)
    success = [row["eval_success"] for row in with_her.history]
    assert len(success) == 30 and success[-1] >= 0.9, success
    without = point_reach(None, seed)
    without.learn(30 * 500)
    assert without.history[-1]["eval_success"] <= 0.1
    assert success[-1] - without.history[-1]["eval_success"] >= 0.8


def test_ddpg_pendulum_short_run_with_per_and_nstep():
    agent = DDPG(
        "Pendulum-v1",
        per=True,
        nstep=3,
        nstep_floating=True,
        learning_starts=200,
        hidden=(32, 32),
        log_every=200,
        normalize_obs=True,
        noise="ou",
    )
    agent.learn(1000)
    assert (
        agent.updates == 801 and len(agent.buffer) == 1000
    )  # an update after each of steps 200..1000
    assert agent.timers["replay"] > 0
    leaves = agent.buffer.priorities()
    assert not torch.allclose(leaves[leaves > 0], leaves[leaves > 0][0])  # TD errors were written


def test_ddpg_her_uses_env_compute_reward_without_a_compiled_one():
    env = gym.make("pyrl/PointReach-v0")
    del env.unwrapped.compiled_reward
    agent = DDPG(
        lambda: env, her_strategy="future", learning_starts=100, batch_size=64, hidden=(16, 16)
    )
    agent.learn(200)
    batch = agent.buffer.sample(512)
    expected = env.unwrapped.compute_reward(
        batch.next_obs["achieved_goal"].numpy(), batch.obs["desired_goal"].numpy()
    )
    relabeled = batch.is_her.numpy()
    assert relabeled.any()
    np.testing.assert_array_equal(batch.reward.numpy()[relabeled], expected[relabeled])


# ---- the surface: predict, save/load, bad settings ---------------------------------------------


def same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_ddpg_save_load_restores_everything(tmp_path):
    agent = point_reach("future", 0, train_every=100, eval_every=0, normalize_obs=True, per=True)
    agent.learn(400)
    path = tmp_path / "ddpg.pt"
    agent.save(path)
    restored = DDPG.load(path)
    assert (
        restored.steps == 400
        and restored.updates == agent.updates
        and restored.history == agent.history
    )
    for name in ("actor", "critic", "actor_target", "critic_target"):
        assert same_parameters(getattr(agent, name), getattr(restored, name))
    np.testing.assert_array_equal(restored.obs_norm.mean, agent.obs_norm.mean)
    assert len(restored.buffer) == len(agent.buffer)
    torch.testing.assert_close(restored.buffer.priorities(), agent.buffer.priorities())
    a, b = agent.buffer.sample(64), restored.buffer.sample(64)  # same generator state: same batch
    assert torch.equal(a.index, b.index) and torch.equal(
        a.obs["desired_goal"], b.obs["desired_goal"]
    )
    obs, _ = gym.make("pyrl/PointReach-v0").reset(seed=5)
    np.testing.assert_array_equal(agent.predict(obs), restored.predict(obs))
    restored.learn(600)  # continues the same run: steps and history go on from the checkpoint
    assert restored.steps == 600 and restored.history[: len(agent.history)] == agent.history
    assert restored.history[-1]["time"] >= agent.history[-1]["time"]


@pytest.mark.parametrize("cls,env_id", [(PPO, "Pendulum-v1"), (REINFORCE, "CartPole-v1")])
def test_on_policy_save_load(tmp_path, cls, env_id):
    settings = dict(n_envs=2, n_steps=16) | (
        {"batch_size": 8, "normalize_obs": True} if cls is PPO else {}
    )
    agent = cls(env_id, **settings)
    agent.learn(64)
    agent.save(tmp_path / "agent.pt")
    restored = cls.load(tmp_path / "agent.pt")
    obs = (
        np.random.default_rng(0)
        .normal(size=(5, *agent.env.single_observation_space.shape))
        .astype(np.float32)
    )
    np.testing.assert_array_equal(agent.predict(obs), restored.predict(obs))
    opt, opt2 = agent.optimizer.state_dict(), restored.optimizer.state_dict()
    assert all(
        torch.equal(opt["state"][k]["exp_avg"], opt2["state"][k]["exp_avg"]) for k in opt["state"]
    )
    restored.learn(128)
    assert restored.steps == 128 and len(restored.history) == 4
    with pytest.raises(ValueError, match="checkpoint"):
        DDPG.load(tmp_path / "agent.pt")


def test_bad_settings_name_what_came_in():
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['lrr'\]"):
        PPO("CartPole-v1", lrr=1e-3)
    with pytest.raises(ValueError, match="her_strategy='future' needs a goal env"):
        DDPG("Pendulum-v1", her_strategy="future")
    with pytest.raises(ValueError, match="actions should be a Box"):
        DDPG("CartPole-v1")
    with pytest.raises(ValueError, match="noise should be"):
        DDPG("Pendulum-v1", noise="pink")
    with pytest.raises(ValueError, match="baseline should be"):
        REINFORCE("CartPole-v1", baseline="mean")
    with pytest.raises(ValueError, match="observations should be a Box or a goal Dict"):
        PPO("Blackjack-v1")
    with pytest.raises(ValueError, match="n_critics should be an int >= 1"):
        DDPG("Pendulum-v1", n_critics=0)
    with pytest.raises(ValueError, match="target_noise should be a finite number >= 0"):
        DDPG("Pendulum-v1", target_noise=-0.1)
    with pytest.raises(ValueError, match="strategy"):
        DDPG("pyrl/PointReach-v0", her_strategy="past")


# ---- command line ------------------------------------------------------------------------------


def test_parse_value():
    assert parse_value("1e-3") == 1e-3 and parse_value("64,64") == (64, 64)
    assert parse_value("[32, 32]") == (32, 32) and parse_value("True") is True
    assert parse_value("none") is None and parse_value("future") == "future"


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pyrl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_cli_train_writes_curve_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "run"
    done = run_cli(
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "512",
        "--out",
        str(out),
        "--set",
        "n_steps=32",
        "--set",
        "n_envs=4",
        "--no-progress",
        "--eval-episodes",
        "3",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert {"progress.csv", "checkpoint.pt", "config.json", "eval.json"} <= set(os.listdir(out))
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["n_steps"] == 32 and config["args"]["n_epochs"] == 20  # preset + --set
    rows = (out / "progress.csv").read_text().splitlines()
    assert rows[0].startswith("step,time,episodes,return") and len(rows) == 1 + 4
    resumed = run_cli(
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "1024",
        "--out",
        str(out),
        "--resume",
        "--no-progress",
        "--eval-episodes",
        "3",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (
        "resumed" in resumed.stdout
        and len((out / "progress.csv").read_text().splitlines()) == 1 + 8
    )
    assert json.loads((out / "eval.json").read_text())["steps"] == 1024


def test_cli_bad_settings(tmp_path):
    done = run_cli(
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "64",
        "--set",
        "gama=0.9",
        "--out",
        str(tmp_path / "x"),
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "unknown hyperparameters ['gama']" in done.stderr
    done = run_cli("train", "ppo", "--env", "CartPole-v1", "--set", "gamma", cwd=tmp_path)
    assert done.returncode != 0 and "key=value" in done.stderr


def test_ddpg_her_on_gymnasium_robotics_fetch_reach():
    pytest.importorskip("gymnasium_robotics")
    agent = DDPG(
        "FetchReach-v4",
        her_strategy="future",
        learning_starts=100,
        batch_size=64,
        hidden=(32, 32),
        normalize_obs=True,
        log_every=100,
    )
    agent.learn(200)
    assert agent.buffer.her.reward is not None and agent.buffer.num_episodes == 4
    batch = agent.buffer.sample(256)
    fetch = agent.env.envs[0].unwrapped
    expected = fetch.compute_reward(
        batch.next_obs["achieved_goal"].numpy(), batch.obs["desired_goal"].numpy(), {}
    )
    relabeled = batch.is_her.numpy()
    np.testing.assert_array_equal(batch.reward.numpy()[relabeled], expected[relabeled])


def test_cli_bench_rejects_unknown_benchmark(tmp_path):
    done = run_cli("bench", "nonesuch", cwd=tmp_path)
    assert done.returncode != 0 and "no benchmark 'nonesuch'" in done.stderr


def test_the_step_protocol_drives_an_agent_exactly_as_learn_does():
    """A loop of public steps (DDPG: step and train_round; PPO: collect and train_round) trains
    to the same weights as learn(): the agents' own loops are made of these steps."""
    settings = dict(
        n_envs=2,
        hidden=(16,),
        learning_starts=100,
        train_every=50,
        gradient_steps=2,
        batch_size=32,
        eval_every=0,
        seed=0,
    )
    learned = DDPG("Pendulum-v1", **settings)
    learned.learn(600)  # Pendulum's episodes end at 400 steps of the 2 envs
    stepped = DDPG("Pendulum-v1", **settings)
    while stepped.steps < 600:
        before = stepped.steps
        transition = stepped.step()
        assert transition.action.shape == (2, 1) and np.all(np.abs(transition.action) <= 1)
        if stepped.steps >= 100 and stepped.steps // 50 != before // 50:
            losses = stepped.train_round()  # none until the buffer holds an episode (200 steps)
            assert len(losses["critic_loss"]) == (2 if stepped.buffer.num_episodes else 0)
    assert stepped.updates == learned.updates > 0
    for ours, theirs in zip(learned.actor.parameters(), stepped.actor.parameters()):
        assert torch.equal(ours, theirs)
    assert torch.equal(learned.buffer.sample(8).obs, stepped.buffer.sample(8).obs)

    settings = dict(
        n_envs=2, n_steps=32, batch_size=32, n_epochs=2, anneal=True, eval_every=0, seed=0
    )
    learned = PPO("CartPole-v1", **settings)
    learned.learn(128)
    stepped = PPO("CartPole-v1", **settings)
    while stepped.steps < 128:
        frac = 1.0 - stepped.steps / 128  # anneal, as learn(128) does
        row = stepped.train_round(stepped.collect(), frac)
        assert {"policy_loss", "value_loss", "lr"} <= set(row)
    for ours, theirs in zip(learned.model.parameters(), stepped.model.parameters()):
        assert torch.equal(ours, theirs)


def test_act_gives_the_agents_actions_and_env_action_the_envs():
    ddpg = DDPG("Pendulum-v1", n_envs=3, hidden=(8,), seed=0)
    obs = np.zeros((3, 3), np.float32)
    greedy, state = ddpg.act(obs, explore=False)
    assert state is None and greedy.shape == (3, 1)
    np.testing.assert_allclose(ddpg.env_action(greedy), ddpg.predict(obs), rtol=1e-6)
    np.testing.assert_allclose(ddpg.from_env_action(ddpg.env_action(greedy)), greedy, atol=1e-6)
    explored, _ = ddpg.act(obs, warmup=True)  # uniform in [-1, 1]
    assert np.all(np.abs(explored) <= 1) and not np.allclose(explored, greedy)
    ppo = PPO("CartPole-v1", n_envs=2, seed=0)
    action, state = ppo.act(np.zeros((2, 4), np.float32), explore=False)
    assert state is None and action.shape == (2,)
    np.testing.assert_array_equal(ppo.env_action(action), ppo.predict(np.zeros((2, 4), np.float32)))
