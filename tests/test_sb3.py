"""pyrl.compat.sb3 (issue 17): the Stable-Baselines3 drop-ins sample what SB3's own buffers hold
for the same adds, SB3's algorithms train on them, and PER reaches SB3's DQN and TD3."""

import collections
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

sb3 = pytest.importorskip("stable_baselines3")

from stable_baselines3 import TD3  # noqa: E402
from stable_baselines3.common import buffers as sb3_buffers  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402
from stable_baselines3.her import HerReplayBuffer as SB3HerReplayBuffer  # noqa: E402

import pyrl.envs  # noqa: E402,F401  (registers pyrl/PointReach-v0)
from pyrl import replay  # noqa: E402
from pyrl.compat import sb3 as compat  # noqa: E402


def sb3_style_steps(rng, n_envs, steps, obs_of, ends, action_dim=1):
    """What SB3's off-policy loop passes to add(): next_obs holds the final observation where an
    episode ended (the env resets after), a time limit is flagged in infos."""
    obs = obs_of(rng, n_envs)
    for step in range(steps):
        action = rng.uniform(-1, 1, (n_envs, action_dim)).astype(np.float32)
        next_obs = obs_of(rng, n_envs)
        if isinstance(next_obs, dict):  # a goal stays until the episode ends
            next_obs["desired_goal"] = obs["desired_goal"].copy()
        reward = rng.normal(size=n_envs).astype(np.float32)
        done, timeout = ends(rng, step, n_envs)
        infos = [{"TimeLimit.truncated": bool(t)} for t in timeout]
        yield obs, next_obs, action, reward, done, infos
        obs = (
            {k: v.copy() for k, v in next_obs.items()}
            if isinstance(next_obs, dict)
            else next_obs.copy()
        )
        for i in np.flatnonzero(done):  # the reset observation replaces the final one
            fresh = obs_of(rng, 1)
            if isinstance(obs, dict):
                for k in obs:
                    obs[k][i] = fresh[k][0]
            else:
                obs[i] = fresh[0]


def box_obs(rng, n):
    return rng.normal(size=(n, 3)).astype(np.float32)


def random_ends(last):
    def ends(rng, step, n_envs):
        if step == last:  # every episode ends, so nothing is left staged
            done = np.ones(n_envs, bool)
        else:
            done = rng.random(n_envs) < 0.08
        return done, done & (rng.random(n_envs) < 0.5)

    return ends


def pendulum_spaces():
    env = gym.make("Pendulum-v1")
    return env.observation_space, env.action_space


def test_uniform_samples_are_sb3s_stored_transitions_drawn_uniformly():
    obs_space, act_space = pendulum_spaces()
    ours = compat.ReplayBuffer(1000, obs_space, act_space, device="cpu", n_envs=2, seed=0)
    theirs = sb3_buffers.ReplayBuffer(1000, obs_space, act_space, device="cpu", n_envs=2)
    for step in sb3_style_steps(np.random.default_rng(0), 2, 120, box_obs, random_ends(119)):
        ours.add(*step)
        theirs.add(*step)
    assert (ours.pos, ours.full, ours.size()) == (theirs.pos, theirs.full, theirs.size())
    assert len(ours.replay) == 240 and ours.replay.pending_steps == 0

    stored = {}
    for t in range(theirs.pos):
        for e in range(2):
            done = theirs.dones[t, e] * (1 - theirs.timeouts[t, e])
            key = (theirs.observations[t, e].tobytes(), theirs.actions[t, e].tobytes())
            stored[key] = (theirs.next_observations[t, e], theirs.rewards[t, e], done)
    counts = collections.Counter()
    reference = theirs.sample(64)
    for _ in range(200):
        batch = ours.sample(64)
        assert type(batch) is type(reference)
        for name in ("observations", "actions", "next_observations", "dones", "rewards"):
            mine, sb3s = getattr(batch, name), getattr(reference, name)
            assert (mine.shape, mine.dtype) == (sb3s.shape, sb3s.dtype), name
        assert batch.discounts is None
        for i in range(64):
            key = (batch.observations[i].numpy().tobytes(), batch.actions[i].numpy().tobytes())
            next_obs, reward, done = stored[key]  # a KeyError would be a made-up transition
            np.testing.assert_array_equal(batch.next_observations[i].numpy(), next_obs)
            assert float(batch.rewards[i, 0]) == reward and float(batch.dones[i, 0]) == done
            counts[key] += 1
    assert len(counts) == len(stored)  # every stored transition is drawn ...
    expected = 200 * 64 / len(stored)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < len(stored) + 5 * np.sqrt(2 * len(stored))  # ... uniformly (df = 239)


def goal_obs(rng, n):
    return {
        "observation": rng.normal(size=(n, 2)),
        "achieved_goal": rng.normal(size=(n, 2)),
        "desired_goal": rng.normal(size=(n, 2)),
    }


def test_her_samples_relabel_like_sb3s_future_strategy():
    env = DummyVecEnv([lambda: gym.make("pyrl/PointReach-v0")])
    obs_space, act_space = env.observation_space, env.action_space
    ours = compat.HerReplayBuffer(2000, obs_space, act_space, env, device="cpu", seed=1)
    theirs = SB3HerReplayBuffer(2000, obs_space, act_space, env, device="cpu")

    def ends(rng, step, n_envs):  # time limits every 10 steps, as a goal env's
        done = np.array([step % 10 == 9])
        return done, done

    for step in sb3_style_steps(np.random.default_rng(2), 1, 300, goal_obs, ends, action_dim=2):
        ours.add(*step)
        theirs.add(*step)
    # Where each stored transition is: its episode, its step, and the step of every achieved goal.
    position = {}
    reached = {}
    for t in range(300):
        position[theirs.observations["observation"][t, 0].astype(np.float32).tobytes()] = (
            t // 10,
            t % 10,
        )
        reached[theirs.next_observations["achieved_goal"][t, 0].astype(np.float32).tobytes()] = (
            t // 10,
            t % 10,
        )

    def offsets(batch):
        real, future = 0, []
        for i in range(batch.rewards.shape[0]):
            episode, t = position[batch.observations["observation"][i].numpy().tobytes()]
            goal = batch.observations["desired_goal"][i].numpy()
            stored_goal = theirs.observations["desired_goal"][episode * 10 + t, 0].astype(
                np.float32
            )
            np.testing.assert_array_equal(batch.next_observations["desired_goal"][i].numpy(), goal)
            if np.array_equal(goal, stored_goal):
                real += 1
                continue
            goal_episode, goal_t = reached[goal.tobytes()]
            assert goal_episode == episode and goal_t >= t  # SB3's inclusive future
            future.append((goal_t - t) / (10 - t))
            achieved = batch.next_observations["achieved_goal"][i].numpy()[None]
            expected = env.env_method("compute_reward", achieved, goal[None], [{}], indices=[0])[0]
            assert float(batch.rewards[i, 0]) == float(expected[0])
        return real, future

    ours_real, ours_future = zip(*(offsets(ours.sample(100)) for _ in range(40)))
    relabeled = 1 - sum(ours_real) / 4000
    assert abs(relabeled - theirs.her_ratio) < 0.03
    # Goals drawn uniformly over the rest of the episode: SB3's virtual samples, matched the same
    # way, place them alike.
    theirs_future = []
    for _ in range(40):
        batch = theirs.sample(100)
        batch = batch._replace(
            observations={k: v.float() for k, v in batch.observations.items()},
            next_observations={k: v.float() for k, v in batch.next_observations.items()},
        )
        theirs_future += offsets(batch)[1]
    ours_future = [x for part in ours_future for x in part]
    assert abs(np.mean(ours_future) - np.mean(theirs_future)) < 0.03


def test_sb3_td3_trains_on_the_drop_in_and_the_buffer_pickles_exactly(tmp_path):
    model = TD3(
        "MlpPolicy",
        "Pendulum-v1",
        replay_buffer_class=compat.ReplayBuffer,
        learning_starts=50,
        batch_size=32,
        seed=0,
        policy_kwargs=dict(net_arch=[32]),
    )
    model.learn(300)
    buf = model.replay_buffer
    assert isinstance(buf, sb3_buffers.ReplayBuffer) and buf.size() == 300
    # The first episode is stored in cuts while it would outnumber what is stored, so sampling
    # started at learning_starts; everything but the newest steps is sampleable.
    assert len(buf.replay) + buf.replay.pending_steps == 300
    assert buf.replay.pending_steps <= len(buf.replay)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    model.load_replay_buffer(tmp_path / "buffer.pkl")
    loaded = model.replay_buffer
    assert loaded is not buf and loaded.size() == 300
    for _ in range(3):
        a, b = buf.sample(16), loaded.sample(16)
        for x, y in zip(a, b):
            if x is not None:
                assert torch.equal(x, y)
    model.learn(100, reset_num_timesteps=False)


def test_sb3_td3_with_her_runs_saves_and_resumes(tmp_path):
    model = TD3(
        "MultiInputPolicy",
        "pyrl/PointReach-v0",
        replay_buffer_class=compat.HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        learning_starts=100,
        batch_size=32,
        seed=0,
        policy_kwargs=dict(net_arch=[32]),
    )
    model.learn(230)  # ends mid-episode
    buf = model.replay_buffer
    assert len(buf.replay) == 200 and buf.replay.pending_steps == 30
    model.save_replay_buffer(tmp_path / "her.pkl")
    model.load_replay_buffer(tmp_path / "her.pkl")  # SB3 truncates the running episode
    loaded = model.replay_buffer
    assert (
        loaded.env is model.env and len(loaded.replay) == 229 and loaded.replay.pending_steps == 0
    )
    loaded.replay.check()
    model.learn(100, reset_num_timesteps=False)  # the env's episode goes on: 20, 50 and 30 steps
    assert len(loaded.replay) == 229 + 20 + 50 and loaded.replay.pending_steps == 30


@pytest.mark.parametrize("algorithm", [compat.PrioritizedDQN, compat.PrioritizedTD3])
def test_prioritized_sb3_algorithms_weight_losses_and_update_priorities(algorithm):
    env = "CartPole-v1" if algorithm is compat.PrioritizedDQN else "Pendulum-v1"
    model = algorithm(
        "MlpPolicy",
        env,
        learning_starts=50,
        batch_size=32,
        seed=0,
        train_freq=1,
        gradient_steps=1,
        policy_kwargs=dict(net_arch=[32]),
    )
    assert isinstance(model.replay_buffer, compat.PrioritizedReplayBuffer)
    model.learn(300)
    updates = model.replay_buffer.replay.priority_updates
    assert updates["applied"] == 32 * (300 - 50) and updates["dropped"] == 0
    leaves = model.replay_buffer.replay.priorities()
    assert leaves[leaves > 0].unique().numel() > 100  # priorities follow the TD errors
    samples = model.replay_buffer.sample(8)
    assert samples.weights.shape == (8, 1) and float(samples.weights.max()) <= 1.0
    with pytest.raises(ValueError, match="needs a prioritized pyrl buffer"):
        algorithm(
            "MlpPolicy",
            env,
            replay_buffer_class=compat.ReplayBuffer,
            learning_starts=10,
            seed=0,
            policy_kwargs=dict(net_arch=[8]),
        ).learn(30)


def test_nstep_discounts_and_normalization_follow_sb3():
    obs_space, act_space = pendulum_spaces()
    buf = compat.ReplayBuffer(500, obs_space, act_space, device="cpu", n_steps=3, gamma=0.9, seed=0)
    for step in sb3_style_steps(np.random.default_rng(3), 1, 100, box_obs, random_ends(99)):
        buf.add(*step)
    batch = buf.sample(256)
    # gamma^k with k the window's steps, as SB3's NStepReplayBuffer: dones mark the terminals
    k = np.round(np.log(batch.discounts.flatten().numpy()) / np.log(0.9))
    np.testing.assert_allclose(batch.discounts.flatten().numpy(), 0.9**k, rtol=1e-6)
    assert set(k) == {1, 2, 3}  # windows clipped at episode ends
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
    venv.obs_rms.mean[:] = 1.0
    normalized = buf.sample(8, env=venv)
    assert normalized.observations.dtype == torch.float32
    with pytest.raises(ValueError, match=r"n_steps=3 needs the algorithm's gamma"):
        compat.ReplayBuffer(500, obs_space, act_space, n_steps=3)


def test_drop_ins_refuse_what_they_cannot_do_in_one_line():
    obs_space, act_space = pendulum_spaces()
    with pytest.raises(ValueError, match="optimize_memory_usage=True is not needed"):
        compat.ReplayBuffer(
            100, obs_space, act_space, optimize_memory_usage=True, handle_timeout_termination=False
        )
    env = DummyVecEnv([lambda: gym.make("pyrl/PointReach-v0")])
    with pytest.raises(ValueError, match="compute_reward= .which takes no infos. cannot"):
        compat.HerReplayBuffer(
            100,
            env.observation_space,
            env.action_space,
            env,
            copy_info_dict=True,
            compute_reward=replay.sparse_l2(0.1),
        )
    with pytest.raises(ValueError, match="should be a goal env's Dict"):
        compat.HerReplayBuffer(100, obs_space, act_space, env)
    buf = compat.HerReplayBuffer(100, env.observation_space, env.action_space, env)
    with pytest.raises(RuntimeError, match="learning_starts greater than"):
        buf.sample(4)
    assert pickle.loads(pickle.dumps(buf)).env is None  # envs are not pickled, as SB3's


def test_end_running_episodes_stores_them_cut_at_the_newest_observation():
    buf = replay.ReplayBuffer(100, {"obs": (2,), "action": ()}, seed=0)
    obs = torch.arange(2.0).repeat(2, 1)
    for t in range(4):
        buf.add(
            obs=obs + t,
            next_obs=obs + t + 1,
            reward=torch.ones(2) * t,
            terminated=torch.tensor([False, t == 1]),
            truncated=torch.zeros(2, dtype=torch.bool),
            action=torch.tensor([t, t]),
        )
    # env 0 runs 4 steps; env 1 ended after 2 and runs 2 more
    assert buf.pending_steps == 6 and buf.num_episodes == 1
    assert buf.end_running_episodes() == 2
    assert buf.pending_steps == 0 and len(buf) == 2 + 3 + 1
    table = buf.episodes()
    assert table["length"].tolist() == [2, 3, 1] and table["terminated"].tolist() == [
        True,
        False,
        False,
    ]
    buf.check()
    assert buf.end_running_episodes() == 0


# ---- issue 31: what SB3's own tests and rl_zoo3 exercise -----------------------------------------


def env_steps(venv, steps, rng):
    """SB3's collection loop on a VecEnv: add()'s arguments, final observations in next_obs."""
    venv.seed(0)
    obs = venv.reset()
    for _ in range(steps):
        action = np.array([venv.action_space.sample() for _ in range(venv.num_envs)])
        new_obs, reward, done, infos = venv.step(action)
        next_obs = new_obs.copy()
        for i in np.flatnonzero(done):
            next_obs[i] = infos[i]["terminal_observation"]
        yield obs, next_obs, action, reward, done, infos
        obs = new_obs


def test_a_model_trained_on_the_drop_in_loads_with_buffer_size_one_and_evaluates(tmp_path):
    from stable_baselines3.common.evaluation import evaluate_policy

    model = TD3(
        "MultiInputPolicy",
        "pyrl/PointReach-v0",
        replay_buffer_class=compat.HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        learning_starts=100,
        batch_size=32,
        seed=0,
        policy_kwargs=dict(net_arch=[32]),
    )
    model.learn(150)
    model.save(tmp_path / "model")
    env = model.get_env()
    loaded = TD3.load(tmp_path / "model", env=env, buffer_size=1)  # rl_zoo3's enjoy does this
    assert isinstance(loaded.replay_buffer, compat.HerReplayBuffer)
    with pytest.raises(RuntimeError):
        loaded.replay_buffer.sample(4)  # nothing stored: refused, not made up
    observation = env.reset()
    np.testing.assert_array_equal(
        loaded.predict(observation, deterministic=True)[0],
        model.predict(observation, deterministic=True)[0],
    )
    mean, _ = evaluate_policy(loaded, env, n_eval_episodes=2)
    assert np.isfinite(mean)

    obs_space, act_space = pendulum_spaces()  # a plain buffer of one transition samples it
    one = compat.ReplayBuffer(1, obs_space, act_space, seed=0)
    with pytest.raises(RuntimeError):
        one.sample(2)
    step = next(sb3_style_steps(np.random.default_rng(0), 1, 1, box_obs, random_ends(0)))
    one.add(*step)
    batch = one.sample(2)
    np.testing.assert_array_equal(batch.observations.numpy(), np.repeat(step[0], 2, axis=0))


def test_multibinary_observations_are_stored_as_the_space_gives_them():
    obs_space = gym.spaces.MultiBinary(5)
    act_space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32)
    ours = compat.ReplayBuffer(100, obs_space, act_space, n_envs=2, seed=0)
    theirs = sb3_buffers.ReplayBuffer(100, obs_space, act_space, n_envs=2)

    def bits(rng, n):
        return rng.integers(0, 2, (n, 5)).astype(np.int8)  # what the space and VecEnvs give

    stored = {}
    for step in sb3_style_steps(np.random.default_rng(1), 2, 40, bits, random_ends(39), 2):
        ours.add(*step)
        theirs.add(*step)
        for e in range(2):
            stored[(step[0][e].tobytes(), step[2][e].tobytes())] = step[1][e]
    batch, reference = ours.sample(32), theirs.sample(32)
    assert batch.observations.dtype == reference.observations.dtype == torch.int8
    assert batch.observations.shape == reference.observations.shape == (32, 5)
    for obs, action, next_obs in zip(batch.observations, batch.actions, batch.next_observations):
        np.testing.assert_array_equal(
            next_obs.numpy(), stored[(obs.numpy().tobytes(), action.numpy().tobytes())]
        )
    ours.add(*next(sb3_style_steps(np.random.default_rng(2), 2, 1, bits, random_ends(0), 2)))
    bools = next(sb3_style_steps(np.random.default_rng(3), 2, 1, bits, random_ends(0), 2))
    ours.add(bools[0].astype(bool), bools[1].astype(bool), *bools[2:])  # bools convert


def test_a_frame_stacked_image_env_goes_through_add_and_sample():
    from stable_baselines3.common.envs import FakeImageEnv
    from stable_baselines3.common.vec_env import VecFrameStack

    venv = VecFrameStack(
        DummyVecEnv([lambda: FakeImageEnv(screen_height=12, screen_width=12)] * 2), n_stack=4
    )
    ours = compat.ReplayBuffer(200, venv.observation_space, venv.action_space, n_envs=2, seed=0)
    theirs = sb3_buffers.ReplayBuffer(200, venv.observation_space, venv.action_space, n_envs=2)
    stored, ends = {}, 0
    for obs, next_obs, action, reward, done, infos in env_steps(venv, 40, None):
        ours.add(obs, next_obs, action, reward, done, infos)
        theirs.add(obs, next_obs, action, reward, done, infos)
        ends += int(done.sum())
        for e in range(2):
            stored[obs[e].tobytes()] = (next_obs[e], bool(done[e]))
    assert ends == 8  # FakeImageEnv cuts its episodes at 10 steps
    batch, reference = ours.sample(64), theirs.sample(64)
    for name in ("observations", "next_observations", "actions", "dones"):
        mine, sb3s = getattr(batch, name), getattr(reference, name)
        assert (mine.shape, mine.dtype) == (sb3s.shape, sb3s.dtype), name
    assert batch.observations.shape == (64, 12, 12, 4) and batch.observations.dtype == torch.uint8
    for obs, next_obs, done in zip(batch.observations, batch.next_observations, batch.dones):
        expected, _ = stored[obs.numpy().tobytes()]
        np.testing.assert_array_equal(next_obs.numpy(), expected)
        assert float(done) == 0.0  # time limits bootstrap


def test_a_pickled_buffer_holds_each_columns_bytes_once():
    # HalfCheetah's spaces: SB3 stores every observation twice, pyrl once plus ~42 bytes a row
    # of trees and episode bookkeeping.
    obs_space = gym.spaces.Box(-np.inf, np.inf, (17,), dtype=np.float32)
    act_space = gym.spaces.Box(-1, 1, (6,), dtype=np.float32)
    ours = compat.ReplayBuffer(5000, obs_space, act_space, seed=0)
    theirs = sb3_buffers.ReplayBuffer(5000, obs_space, act_space)

    def obs17(rng, n):
        return rng.normal(size=(n, 17)).astype(np.float32)

    steps = sb3_style_steps(np.random.default_rng(0), 1, 1000, obs17, random_ends(999), 6)
    for step in steps:
        ours.add(*step)
        theirs.add(*step)

    def own_bytes(state):
        if isinstance(state, dict):
            return sum(own_bytes(value) for value in state.values())
        if isinstance(state, torch.Tensor):
            return state.numel() * state.element_size()
        return 0

    stored = own_bytes(ours.replay.state_dict())
    size = len(pickle.dumps(ours))
    assert size <= stored * 1.02 + 64 * 1024
    assert size < len(pickle.dumps(theirs))
    loaded = pickle.loads(pickle.dumps(ours))
    for a, b in zip(ours.sample(16), loaded.sample(16)):
        if a is not None:
            assert torch.equal(a, b)


def test_nstep_settings_are_public_as_on_sb3s_nstep_buffer():
    obs_space, act_space = pendulum_spaces()
    buf = compat.ReplayBuffer(100, obs_space, act_space, n_steps=3, gamma=0.98)
    assert (buf.n_steps, buf.gamma) == (3, 0.98)
    assert (compat.ReplayBuffer(100, obs_space, act_space).n_steps) == 1


def test_her_drop_in_keeps_stored_dones_quietly_or_recomputes_them_with_terminal():
    import warnings

    env = DummyVecEnv([lambda: gym.make("pyrl/PointReach-v0")])
    obs_space, act_space = env.observation_space, env.action_space

    def ends(rng, step, n_envs):  # true terminations every 10 steps
        done = np.array([step % 10 == 9])
        return done, np.zeros(1, bool)

    def filled(**kwargs):
        buf = compat.HerReplayBuffer(500, obs_space, act_space, env, seed=0, **kwargs)
        for step in sb3_style_steps(np.random.default_rng(0), 1, 100, goal_obs, ends, 2):
            buf.add(*step)
        return buf

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = filled().sample(256)
    assert not [w for w in caught if "terminal" in str(w.message)]
    assert float(batch.dones.sum()) > 0  # the stored terminations, kept

    calls = []

    def never_done(achieved_goal, desired_goal):
        calls.append(achieved_goal.shape)
        return torch.zeros(achieved_goal.shape[0], dtype=torch.bool)

    buf = filled(terminal=never_done)
    relabeled_dones = []
    for _ in range(10):
        batch = buf.sample(256)
        stored_goal = batch.observations["desired_goal"]
        real = torch.isin(stored_goal[:, 0], torch.as_tensor(_stored_goals(buf)))
        relabeled_dones.append(batch.dones[~real].sum())
    assert calls and float(sum(relabeled_dones)) == 0.0


def _stored_goals(buf):
    return buf.stored_transitions()["observations"]["desired_goal"][:, 0].astype(np.float32)


@pytest.mark.parametrize("timeouts", [True, False])
def test_stored_transitions_are_what_sb3s_arrays_hold(timeouts):
    obs_space, act_space = pendulum_spaces()
    settings = dict(n_envs=2, handle_timeout_termination=timeouts)
    ours = compat.ReplayBuffer(1000, obs_space, act_space, seed=0, **settings)
    theirs = sb3_buffers.ReplayBuffer(1000, obs_space, act_space, **settings)
    for step in sb3_style_steps(np.random.default_rng(4), 2, 60, box_obs, random_ends(59)):
        ours.add(*step)
        theirs.add(*step)
    out = ours.stored_transitions()
    names = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    assert set(out) == set(names)
    size = theirs.size() * 2
    for name in names:
        array = getattr(theirs, name)[: theirs.size()]
        array = array.reshape(size, *array.shape[2:]).astype(np.float32)
        assert out[name].shape == array.shape and out[name].dtype == np.float32, name
        assert not out[name].flags.writeable, name

    def rows(arrays):
        return sorted(
            tuple(np.concatenate([arrays[n][i].ravel() for n in names]).tolist())
            for i in range(size)
        )

    theirs_arrays = {
        n: getattr(theirs, n)[: theirs.size()].reshape(size, -1).astype(np.float32) for n in names
    }
    assert rows(out) == rows(theirs_arrays)


ZOO_HYPERPARAMS = """\
pyrl/PointReach-v0:
  n_timesteps: 300
  policy: MultiInputPolicy
  learning_starts: 100
  batch_size: 32
  replay_buffer_class: "importlib.import_module('pyrl.compat.sb3').HerReplayBuffer"
  replay_buffer_kwargs: "dict(n_sampled_goal=4, goal_selection_strategy='future')"
  policy_kwargs: "dict(net_arch=[32])"
"""


def test_rl_zoo3_trains_enjoys_and_resumes_with_the_drop_in(tmp_path):
    """The SB3 guide's rl_zoo3 section: the zoo evaluates replay_buffer_class in its own module,
    where ``importlib`` is imported; train, enjoy (a load with buffer_size=1) and resume."""
    pytest.importorskip("rl_zoo3")
    import subprocess
    import sys

    (tmp_path / "zoo.yml").write_text(ZOO_HYPERPARAMS)
    common = ["--algo", "td3", "--env", "pyrl/PointReach-v0", "--gym-packages", "pyrl.envs"]
    common += ["-f", "logs"]

    def zoo(script, *args):
        done = subprocess.run(
            [sys.executable, "-m", f"rl_zoo3.{script}", *common, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    train = ["--conf-file", "zoo.yml", "--eval-freq", "-1", "--seed", "0"]
    zoo("train", *train)
    run = tmp_path / "logs" / "td3" / "pyrl-PointReach-v0_1"
    assert (run / "pyrl-PointReach-v0.zip").exists()
    assert "Mean episode length" in zoo("enjoy", "--exp-id", "1", "-n", "60", "--no-render")
    agent = run / "pyrl-PointReach-v0.zip"
    zoo("train", *train, "-i", str(agent), "-n", "100", "--save-replay-buffer")
    resumed = tmp_path / "logs" / "td3" / "pyrl-PointReach-v0_2"
    env = DummyVecEnv([lambda: gym.make("pyrl/PointReach-v0")])
    model = TD3.load(resumed / "pyrl-PointReach-v0.zip", env=env)
    model.load_replay_buffer(resumed / "replay_buffer.pkl")
    assert isinstance(model.replay_buffer, compat.HerReplayBuffer)
    assert len(model.replay_buffer.replay) == 100


def bitflipping_success(buffer_class, seed, steps=15_000, bits=8):
    """SB3's HER setting on its BitFlippingEnv (int8 MultiBinary goals): DQN, future goals, 4
    per transition; the success rate of the greedy policy over 100 fixed start states."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.envs import BitFlippingEnv

    model = DQN(
        "MultiInputPolicy",
        BitFlippingEnv(n_bits=bits, continuous=False, max_steps=bits),
        replay_buffer_class=buffer_class,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        learning_starts=10 * bits,
        learning_rate=1e-3,
        exploration_fraction=0.3,
        batch_size=64,
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=seed,
    )
    model.learn(steps)
    evaluation = BitFlippingEnv(n_bits=bits, continuous=False, max_steps=bits)
    wins = 0
    for episode in range(100):
        obs, _ = evaluation.reset(seed=1000 + episode)
        for _ in range(bits):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = evaluation.step(action)
            if terminated or truncated:
                break
        wins += bool(info["is_success"])
    return wins / 100


@pytest.mark.slow
def test_bitflipping_learns_with_the_drop_in_as_with_sb3s_buffer():
    """Five seeds with each buffer (about 8 minutes on 2 cores)."""
    ours = [bitflipping_success(compat.HerReplayBuffer, seed) for seed in range(5)]
    theirs = [bitflipping_success(SB3HerReplayBuffer, seed) for seed in range(5)]
    # Seeds vary widely at this budget (0.3 to 0.9 with either buffer): a mean within 0.25.
    assert np.mean(ours) >= np.mean(theirs) - 0.25, (ours, theirs)


class InfoRewardEnv:
    """A VecEnv stand-in whose compute_reward reads the infos: each relabeled reward is the
    transition's own info["step"]."""

    def env_method(self, name, achieved, desired, infos, indices):
        assert name == "compute_reward" and len(infos) == achieved.shape[0]
        return [np.array([info["step"] for info in infos], dtype=np.float32)]


def test_her_copy_info_dict_passes_each_transitions_infos_to_compute_reward(tmp_path):
    env = DummyVecEnv([lambda: gym.make("pyrl/PointReach-v0")] * 2)
    obs_space, act_space = env.observation_space, env.action_space
    buf = compat.HerReplayBuffer(
        500, obs_space, act_space, InfoRewardEnv(), n_envs=2, copy_info_dict=True, seed=0
    )
    steps = {}
    rng = np.random.default_rng(5)

    def ends(rng, step, n_envs):  # episodes of 7 and 5 steps, time limits
        done = np.array([step % 7 == 6, step % 5 == 4])
        return done, done

    def add(count, offset):
        for step, (obs, next_obs, action, reward, done, infos) in enumerate(
            sb3_style_steps(rng, 2, count, goal_obs, ends, action_dim=2), offset
        ):
            for e in range(2):
                infos[e]["step"] = 1000 * e + step
                steps[np.float32(obs["observation"][e]).tobytes()] = 1000 * e + step
            buf.add(obs, next_obs, action, reward, done, infos)

    add(60, 0)
    buf.truncate_last_trajectory()  # the running episodes are stored, their infos too
    add(1, 100)
    buf.truncate_last_trajectory()  # one-step episodes: dropped whole, their infos with them
    add(40, 200)
    reloaded = pickle.loads(pickle.dumps(buf))  # the infos are pickled, the env is not
    reloaded.set_env(InfoRewardEnv())
    for loaded in (buf, reloaded):
        batch = loaded._buffer.sample(256)  # the pyrl batch: which samples were relabeled
        loaded._finish(batch)
        relabeled = batch.is_her
        assert relabeled.any() and not relabeled.all()
        for obs, reward in zip(batch.obs["observation"][relabeled], batch.reward[relabeled]):
            assert float(reward) == steps[obs.numpy().tobytes()]
    samples = buf.sample(64)  # SB3's sample type, the same rewards
    assert samples.rewards.shape == (64, 1)
