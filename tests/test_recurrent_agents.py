"""Recurrent PPO and DDPG (issue 15): acting, storing and training agree on every state."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from pyrl import cli
from pyrl.agents import DDPG, PPO


def test_novel_envs_mask_the_velocities():
    cartpole = gym.make("pyrl/CartPoleNoVel-v0")
    full = gym.make("CartPole-v1")
    obs, _ = cartpole.reset(seed=3)
    full_obs, _ = full.reset(seed=3)
    assert cartpole.observation_space.shape == (2,) and np.array_equal(obs, full_obs[[0, 2]])
    pendulum = gym.make("pyrl/PendulumNoVel-v0")
    obs, _ = pendulum.reset(seed=0)
    assert obs.shape == (2,) and abs(float(np.hypot(*obs)) - 1.0) < 1e-5


def test_recurrent_ppo_rollout_states_match_acting_and_pieces():
    agent = PPO(
        "pyrl/CartPoleNoVel-v0",
        recurrent=True,
        n_envs=3,
        n_steps=40,
        rnn_hidden=8,
        hidden=(8,),
        seed=0,
    )
    agent.begin_learning(120, False)
    rollout = agent.collect()
    T, n = rollout.reward.shape
    done = rollout.terminated | rollout.truncated
    assert done.any(), "the test needs resets inside the rollout"
    with torch.no_grad():
        stepped = agent.model.encode(
            torch.from_numpy(rollout.obs.reshape(T * n, 1, -1)),
            torch.from_numpy(rollout.hidden.reshape(T * n, -1)),
        )[:, 0]
    stepped = stepped.reshape(T, n, -1)
    # The state fed into step t + 1 is the state after step t, or zero after a reset.
    expected_next = np.where(done[:-1, :, None], 0.0, stepped[:-1].numpy())
    np.testing.assert_allclose(rollout.hidden[1:], expected_next, atol=1e-6)
    np.testing.assert_allclose(
        rollout.last_hidden, np.where(done[-1][:, None], 0.0, stepped[-1]), atol=1e-6
    )
    # The update's pieces, run as whole sequences, give the same states as acting did.
    from pyrl.agents.ppo_recurrent import Pieces

    pieces = Pieces(rollout)
    with torch.no_grad():
        steps, states = pieces.states(agent.model)
    assert sorted(steps.tolist()) == list(range(T * n))
    torch.testing.assert_close(states, stepped.reshape(T * n, -1)[steps], atol=1e-5, rtol=1e-5)
    starts = done[:-1].sum() + n
    assert pieces.count == starts


def test_recurrent_ppo_learns_steps_saves_and_resumes(tmp_path):
    agent = PPO(
        "pyrl/CartPoleNoVel-v0",
        recurrent=True,
        n_envs=4,
        n_steps=32,
        batch_size=64,
        n_epochs=2,
        rnn_hidden=16,
        hidden=(16,),
        seed=1,
    )
    history = agent.learn(1024)
    assert all(np.isfinite(history[-1][key]) for key in ("policy_loss", "value_loss", "entropy"))
    path = tmp_path / "ppo.pt"
    agent.save(path)
    loaded = PPO.load(path)
    np.testing.assert_array_equal(loaded.rnn_state, agent.rnn_state)
    obs = np.zeros((2, 2), np.float32)
    a1, s1 = agent.predict(obs, state=agent.initial_state(2))
    a2, s2 = loaded.predict(obs, state=None)
    np.testing.assert_array_equal(a1, a2) and np.testing.assert_allclose(s1, s2)
    assert np.isfinite(agent.evaluate(episodes=2, seed=0)["return"])


def test_recurrent_ddpg_stores_the_states_acting_used():
    # No updates yet: the stored states are exactly what the (unchanged) encoder gives when the
    # episodes are run again from zero, so a recompute with it changes nothing.
    agent = DDPG(
        "pyrl/PendulumNoVel-v0",
        recurrent=True,
        rnn_hidden=8,
        hidden=(16,),
        learning_starts=10**6,
        n_envs=2,
        seed=0,
    )
    agent.learn(880)  # 440 steps per env: two episodes each
    buf = agent.buffer
    assert buf.num_episodes == 4
    before = buf.storage.column("hidden").clone()
    assert before.abs().sum() > 0
    result = buf.recompute_hidden(agent.encoder)
    assert result == {"episodes": 4, "rows": 800}
    torch.testing.assert_close(buf.storage.column("hidden"), before, atol=1e-6, rtol=1e-5)


def test_recurrent_ddpg_updates_write_back_and_checkpoint(tmp_path):
    agent = DDPG(
        "pyrl/PendulumNoVel-v0",
        recurrent=True,
        rnn_hidden=8,
        hidden=(16, 16),
        learning_starts=400,
        batch_size=8,
        seq_len=5,
        burn_in=3,
        recompute_every=20,
        per=True,
        n_critics=2,
        policy_delay=2,
        encoder_freeze=(5, 5),
        seed=0,
    )
    encoder_before = [p.clone() for p in agent.encoder.parameters()]
    history = agent.learn(600)
    assert agent.updates == 201  # one per step from step 400 on
    assert all(np.isfinite(history[-1][key]) for key in ("critic_loss", "actor_loss", "q"))
    assert history[-1]["recompute_seconds"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, agent.encoder.parameters()))
    assert agent.buffer.priority_updates["applied"] > 0
    path = tmp_path / "ddpg.pt"
    agent.save(path)
    loaded = DDPG.load(path)
    for a, b in zip(agent.encoder.parameters(), loaded.encoder.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(
        loaded.buffer.storage.column("hidden"), agent.buffer.storage.column("hidden")
    )
    action, state = loaded.predict(np.zeros(2, np.float32))
    assert action.shape == (1,) and state.shape == (1, 8)


def test_encoder_freeze_schedule_holds_the_encoder():
    agent = DDPG(
        "pyrl/PendulumNoVel-v0",
        recurrent=True,
        rnn_hidden=4,
        hidden=(8,),
        learning_starts=300,
        batch_size=4,
        seq_len=3,
        burn_in=1,
        encoder_freeze=(2, 3),
        recompute_every=0,
        seed=0,
    )
    agent.learn(300)
    agent.learn(301)  # fill the buffer; the next updates follow the schedule
    frozen_at = []
    for _ in range(10):
        before = [p.clone() for p in agent.encoder.parameters()]
        updates = agent.updates
        agent.update()
        changed = any(not torch.equal(a, b) for a, b in zip(before, agent.encoder.parameters()))
        frozen_at.append((updates % 5 >= 2, changed))
    assert all(changed != frozen for frozen, changed in frozen_at)


def test_recurrent_settings_are_checked():
    with pytest.raises(ValueError, match="goal envs"):
        DDPG("pyrl/PointReach-v0", recurrent=True)
    with pytest.raises(ValueError, match="encoder_freeze"):
        DDPG("pyrl/PendulumNoVel-v0", recurrent=True, encoder_freeze=(0, 1))
    with pytest.raises(ValueError, match="seq_len"):
        DDPG("pyrl/PendulumNoVel-v0", recurrent=True, seq_len=0)
    with pytest.raises(ValueError, match="rnn_hidden"):
        PPO("pyrl/CartPoleNoVel-v0", recurrent=True, rnn_hidden=0)
    from pyrl.agents import Coop

    with pytest.raises(ValueError, match="recurrent learners are not supported"):
        Coop("pyrl/PointReach-v0", n_envs=4, ddpg_share=0.25, ppo={"recurrent": True})


def test_cli_trains_a_recurrent_agent(tmp_path):
    out = tmp_path / "run"
    cli.main(
        [
            "train",
            "ppo",
            "--env",
            "pyrl/CartPoleNoVel-v0",
            "--steps",
            "512",
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "recurrent=true",
            "--set",
            "n_steps=64",
            "--set",
            "rnn_hidden=8",
        ]
    )
    loaded = PPO.load(out / "checkpoint.pt")
    assert loaded.args.recurrent and loaded.model.encoder is not None


def test_recurrent_ddpg_bootstraps_through_the_smoothed_target_action(monkeypatch):
    agent = DDPG(
        "pyrl/PendulumNoVel-v0",
        recurrent=True,
        rnn_hidden=4,
        hidden=(8,),
        learning_starts=300,
        batch_size=4,
        seq_len=3,
        burn_in=1,
        target_noise=0.2,
        recompute_every=0,
        seed=0,
    )
    agent.learn(301)
    seen = []
    original = agent.target_action
    monkeypatch.setattr(
        agent, "target_action", lambda s: seen.append(tuple(s.shape)) or original(s)
    )
    agent.update()
    assert seen == [(4 * 3, 4)]  # every trained step's bootstrap state, TD3-smoothed
    torch.manual_seed(0)
    a = original(torch.zeros(64, 4))
    torch.manual_seed(0)
    assert not torch.equal(a, agent.actor_target(torch.zeros(64, 4)))  # noise was added


@pytest.mark.parametrize("algo", ["ppo", "ddpg"])
def test_recurrent_true_builds_the_recurrent_variant_and_load_rebuilds_it(algo, tmp_path):
    from pyrl.agents.ddpg_recurrent import RecurrentDDPG
    from pyrl.agents.ppo_recurrent import RecurrentPPO

    agent_class, variant, env, settings = {
        "ppo": (PPO, RecurrentPPO, "pyrl/CartPoleNoVel-v0", dict(n_envs=2, n_steps=8)),
        "ddpg": (DDPG, RecurrentDDPG, "pyrl/PendulumNoVel-v0", dict(buffer_size=64)),
    }[algo]
    settings.update(rnn_hidden=8, hidden=(8,))
    agent = agent_class(env, recurrent=True, **settings)
    assert type(agent) is variant and isinstance(agent, agent_class)
    assert agent.initial_state(3).shape == (3, 8)
    assert type(agent_class(env, **settings)) is agent_class
    direct = variant(env, **settings)
    assert direct.args.recurrent and direct.algo == algo
    with pytest.raises(ValueError, match="recurrent should be True, got False"):
        variant(env, recurrent=False, **settings)
    with pytest.raises(ValueError, match="rnn_hidden should be an int >= 1, got 0"):
        agent_class(env, **{**settings, "rnn_hidden": 0})
    agent.learn(16)
    agent.save(tmp_path / "agent.pt")
    loaded = agent_class.load(tmp_path / "agent.pt")
    assert type(loaded) is variant
    np.testing.assert_array_equal(loaded.rnn_state, agent.rnn_state)
    obs = agent.env.observation_space.sample()
    state = agent.initial_state(agent.args.n_envs)
    np.testing.assert_array_equal(
        agent.predict(obs, state=state)[0], loaded.predict(obs, state=state)[0]
    )
