"""pyrl inside other people's loops (issue 17, first part): the public gymnasium helper, buffers
built from spaces, SB3-style calls and non-tensor inputs that get one-line errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from pyrl import replay, returns
from pyrl.envs import final_observations


def test_final_observations_under_both_autoreset_modes():
    same = gym.make_vec(
        "CartPole-v1",
        3,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    obs, _ = same.reset(seed=0)
    for _ in range(500):
        next_obs, _, term, trunc, infos = same.step(np.ones(3, dtype=np.int64))  # falls over soon
        done = term | trunc
        if done.any():
            break
    assert done.any()
    real = final_observations(next_obs, infos, done)
    for i in np.flatnonzero(done):
        np.testing.assert_array_equal(real[i], infos["final_obs"][i])
        assert not np.array_equal(real[i], next_obs[i])  # next_obs holds the reset observation
    for i in np.flatnonzero(~done):
        np.testing.assert_array_equal(real[i], next_obs[i])
    assert final_observations(next_obs, infos, np.zeros(3, bool)) is next_obs

    nxt = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")  # gymnasium's NEXT_STEP default
    obs, _ = nxt.reset(seed=0)
    next_obs, _, term, trunc, infos = nxt.step(np.zeros(2, dtype=np.int64))
    assert final_observations(next_obs, infos, np.ones(2, bool)) is next_obs  # already final there

    goal = {"observation": np.zeros((2, 3)), "desired_goal": np.zeros((2, 2))}
    infos = {"final_obs": np.array([None, {"observation": np.ones(3), "desired_goal": np.ones(2)}])}
    real = final_observations(goal, infos, np.array([False, True]))
    assert real["observation"][1].tolist() == [1, 1, 1] and not real["observation"][0].any()
    assert not goal["observation"].any()  # the input is not modified


def fields(buf) -> dict:
    return {f.name: (f.shape, f.dtype) for f in buf.fields}


def test_from_spaces_box_discrete_goal_and_images():
    cartpole = gym.make("CartPole-v1")
    buf = replay.ReplayBuffer.from_spaces(
        100, cartpole.observation_space, cartpole.action_space, seed=0
    )
    assert fields(buf)["obs"] == ((4,), torch.float32) and fields(buf)["action"] == (
        (),
        torch.int64,
    )
    for step in range(20):
        buf.add(
            obs=np.random.rand(2, 4),
            next_obs=np.random.rand(2, 4),
            reward=np.ones(2),
            terminated=np.array([step == 9, False]),
            truncated=np.array([False, step == 19]),
            action=np.array([0, 1]),
        )
    batch = buf.sample(8)
    assert batch.action.dtype == torch.int64 and set(batch.action.tolist()) <= {0, 1}

    goal = gym.make("pyrl/PointReach-v0")
    buf = replay.ReplayBuffer.from_spaces(
        100,
        goal.observation_space,
        goal.action_space,
        her=replay.HER("future", k=4, reward=replay.sparse_l2(0.05)),
    )
    assert buf.obs_keys == ("observation", "achieved_goal", "desired_goal")
    assert fields(buf)["action"] == ((2,), torch.float32)

    images = gym.spaces.Box(0, 255, (3, 8, 8), np.uint8)
    buf = replay.ReplayBuffer.from_spaces(10, images, gym.spaces.MultiDiscrete([3, 4]))
    assert fields(buf)["obs"] == ((3, 8, 8), torch.uint8) and fields(buf)["action"] == (
        (2,),
        torch.int64,
    )
    with pytest.raises(ValueError, match=r"action_space \(action\) should be a Box, Discrete"):
        replay.ReplayBuffer.from_spaces(10, images, gym.spaces.Text(5))


def test_sb3_style_positional_call_shows_the_pyrl_call():
    env = gym.make("Pendulum-v1")
    with pytest.raises(
        ValueError, match=r"ReplayBuffer.from_spaces\(capacity, observation_space, action_space"
    ):
        replay.ReplayBuffer(1000, env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="got spec=Box"):
        replay.ReplayBuffer(1000, env.observation_space)
    with pytest.raises(ValueError, match="1 more positional argument"):
        replay.ReplayBuffer(1000, {"obs": (3,)}, "cpu")


@pytest.mark.parametrize(
    "bad, says",
    [
        (
            np.zeros((4, 2), np.float32),
            "got a numpy array (4, 2) float32; torch.from_numpy(reward) wraps it",
        ),
        (None, "got None"),
        ([[0.0, 1.0]] * 4, "got list; torch.as_tensor(reward) converts it"),
    ],
)
def test_returns_name_a_non_tensor_argument_in_one_line(bad, says):
    ok = torch.zeros(4, 2)
    flags = torch.zeros(4, 2, dtype=torch.bool)
    calls = {
        "gae": lambda r: returns.gae(r, ok, ok, flags, flags),
        "discounted_return": lambda r: returns.discounted_return(r, ok, flags, flags),
        "lambda_return": lambda r: returns.lambda_return(r, ok, flags, flags),
        "nstep_return": lambda r: returns.nstep_return(r, flags, flags, n=2),
        "nstep_gae": lambda r: returns.nstep_gae(r, ok, ok, flags, flags, n=2),
        "vtrace": lambda r: returns.vtrace(ok, r, ok, ok, flags, flags),
        "retrace": lambda r: returns.retrace(ok, r, ok, ok, flags, flags),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as error:
            call(bad)
        message = str(error.value)
        assert message.startswith(f"{name}: reward should be a torch.Tensor, ") and says in message
        assert "\n" not in message
    with pytest.raises(ValueError, match="gae: truncated should be a torch.Tensor, got None"):
        returns.gae(ok, ok, ok, flags, None)


def test_buffers_with_columns_of_several_dtypes_save_and_restore(tmp_path):
    # The columns are views of one record buffer; torch.save refused views of several dtypes.
    spec = {
        "obs": (3,),
        "action": ((), torch.int64),
        "mask": ((2,), torch.bool),
        "pixels": ((4,), torch.uint8),
    }
    buf = replay.ReplayBuffer(64, spec, seed=3)
    for step in range(23):  # stored episodes and steps still staged
        buf.add(
            obs=torch.rand(2, 3),
            next_obs=torch.rand(2, 3),
            reward=torch.rand(2),
            terminated=torch.tensor([step % 10 == 9, False]),
            truncated=torch.tensor([False, step == 19]),
            action=torch.full((2,), step),
            mask=torch.rand(2, 2) < 0.5,
            pixels=torch.randint(0, 255, (2, 4), dtype=torch.uint8),
        )
    buf.save(tmp_path / "mixed.pt")
    again = replay.ReplayBuffer.load(tmp_path / "mixed.pt")
    again.check()
    assert again.pending_steps == buf.pending_steps
    for a, b in ((buf.sample(32), again.sample(32)), (buf.sample(32), again.sample(32))):
        for key in ("obs", "action", "mask", "pixels", "reward", "index"):
            assert torch.equal(a[key], b[key]), key


def test_returns_are_targets_outside_the_graph():
    value = torch.randn(6, 3, requires_grad=True)
    log_rho = torch.randn(6, 3, requires_grad=True)
    reward, flags = torch.randn(6, 3), torch.zeros(6, 3, dtype=torch.bool)
    outputs = [
        *returns.gae(reward, value, value, flags, flags),
        returns.discounted_return(reward, value, flags, flags),
        returns.lambda_return(reward, value, flags, flags),
        *returns.nstep_gae(reward, value, value, flags, flags, n=2),
        *returns.vtrace(log_rho, reward, value, value, flags, flags),
        returns.retrace(log_rho, reward, value, value, flags, flags),
    ]
    assert not any(out.requires_grad for out in outputs)
    advantage, _ = returns.gae(reward, value, value, flags, flags)
    loss = (value * advantage).sum()  # the intended use: the advantage as a constant weight
    loss.backward()
    assert torch.equal(value.grad, advantage)


def test_a_stage_filled_without_flags_warns_once():
    buf = replay.ReplayBuffer(100, {"obs": (2,)}, max_episode_steps=5)
    no = torch.zeros(2, dtype=torch.bool)
    step = dict(obs=torch.zeros(2, 2), next_obs=torch.zeros(2, 2), reward=torch.zeros(2))
    with pytest.warns(UserWarning, match="max_episode_steps=5 .* pass its truncated flags"):
        for _ in range(5):
            buf.add(**step, terminated=no, truncated=no)
    assert buf.num_episodes == 2  # both envs' pieces were committed, as truncated
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only, and never when the flags end episodes
        for _ in range(5):
            buf.add(**step, terminated=no, truncated=no)
        flagged = replay.ReplayBuffer(100, {"obs": (2,)}, max_episode_steps=5)
        for t in range(10):
            flagged.add(**step, terminated=no, truncated=torch.full((2,), t % 5 == 4))
        for t in range(5):  # uint8 flags are read the same way
            flagged.add(
                **step,
                terminated=torch.zeros(2, dtype=torch.uint8),
                truncated=torch.full((2,), t == 4, dtype=torch.uint8),
            )


def _run_autoreset(mode, steps=300, explicit=False):
    """CartPole x3 under one autoreset mode, a deterministic policy, every step added with infos."""
    import gymnasium as gym

    kwargs = {} if mode is None else {"vector_kwargs": {"autoreset_mode": mode}}
    env = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync", **kwargs)
    buf = replay.ReplayBuffer.from_spaces(
        5000, env.single_observation_space, env.single_action_space
    )
    obs, _ = env.reset(seed=7)
    for _ in range(steps):
        action = (obs[:, 0] > 0).astype(np.int64)  # a poor policy: short episodes
        next_obs, reward, term, trunc, infos = env.step(action)
        buf.add(
            obs=obs,
            action=action,
            reward=reward,
            next_obs=next_obs,
            terminated=term,
            truncated=trunc,
            infos=infos,
            autoreset_mode=mode if explicit else None,
        )
        obs = next_obs
    return buf


def test_add_with_infos_handles_both_autoreset_modes_alike():
    import gymnasium as gym

    same = _run_autoreset(gym.vector.AutoresetMode.SAME_STEP)
    with pytest.warns(UserWarning, match="NEXT_STEP autoreset"):
        nxt = _run_autoreset(None)  # gymnasium's default, detected from infos
    told = _run_autoreset(gym.vector.AutoresetMode.NEXT_STEP, explicit=True)
    # Each env's episodes are the same whichever mode steps it (same seeds, same policy); NEXT_STEP
    # spends a step on each reset, so it stores fewer in 300 steps, and never the reset step.
    a, b, c = (buf.episodes() for buf in (same, nxt, told))
    assert torch.equal(b["length"], c["length"]) and len(b["length"]) >= 3
    assert all(int(length) > 1 for length in b["length"])
    for table_a, buf_a, table_b, buf_b in ((a, same, b, nxt),):
        by_start = {}
        for start, length in zip(table_a["start"].tolist(), table_a["length"].tolist()):
            rows = buf_a.storage.column("obs")[start : start + length + 1]
            by_start[tuple(rows[0].tolist())] = rows
        matched = 0
        for start, length in zip(table_b["start"].tolist(), table_b["length"].tolist()):
            rows = buf_b.storage.column("obs")[start : start + length + 1]
            twin = by_start.get(tuple(rows[0].tolist()))
            if twin is not None:
                assert torch.equal(twin, rows)  # the final observation included
                matched += 1
        assert matched == len(table_b["length"])
    assert (a["length"].sum() + 0) >= b["length"].sum()


def test_add_with_infos_refuses_what_it_cannot_handle():
    buf = replay.ReplayBuffer(100, {"obs": (2,)})
    step = dict(
        obs=np.zeros((2, 2), np.float32),
        next_obs=np.ones((2, 2), np.float32),
        reward=np.zeros(2),
        terminated=np.array([True, False]),
        truncated=np.zeros(2, bool),
    )
    with pytest.raises(ValueError, match="autoreset_mode should be"):
        buf.add(**step, infos={}, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="infos should be the info dict"):
        buf.add(**step, infos=[{}, {}])
    with pytest.raises(ValueError, match="has no 'final_obs'"):
        buf.add(**step, infos={}, autoreset_mode="same_step")
    assert len(buf) == 0 and buf.pending_steps == 0
    buf.add(**step, infos={}, autoreset_mode="disabled")  # you reset yourself: stored as given
    assert len(buf) == 1 and torch.equal(buf.sample(1).next_obs, torch.ones(1, 2))


@pytest.mark.parametrize("heads", [(), (2,)])
@pytest.mark.parametrize("form", ["[N]", "[1, N]"])
def test_returns_take_the_bootstrap_value_and_final_values(heads, form):
    gen = torch.Generator().manual_seed(0)
    T, N = 9, 3
    reward, value = (
        torch.randn(T, N, *heads, generator=gen),
        torch.randn(T, N, *heads, generator=gen),
    )
    log_rho = torch.randn(T, N, generator=gen)
    terminated = torch.zeros(T, N, dtype=torch.bool)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    terminated[2, 0], truncated[4, 1], truncated[T - 1, 2] = True, True, True
    final_value = torch.randn(T, N, *heads, generator=gen)
    boot = torch.randn(N, *heads, generator=gen)
    given = boot if form == "[N]" else boot[None]
    cut = truncated[..., None] if heads else truncated
    full = torch.where(cut, final_value, torch.cat([value[1:], boot[None]]))
    for ours, theirs in (
        (
            returns.gae(reward, value, given, terminated, truncated, final_value=final_value),
            returns.gae(reward, value, full, terminated, truncated),
        ),
        (
            returns.discounted_return(
                reward, given, terminated, truncated, final_value=final_value
            ),
            returns.discounted_return(reward, full, terminated, truncated),
        ),
        (
            returns.nstep_gae(
                reward, value, given, terminated, truncated, n=3, final_value=final_value
            ),
            returns.nstep_gae(reward, value, full, terminated, truncated, n=3),
        ),
    ):
        for a, b in zip(ours, theirs) if isinstance(ours, tuple) else ((ours, theirs),):
            assert torch.equal(a, b)
    if not heads:
        assert all(
            torch.equal(a, b)
            for a, b in zip(
                returns.vtrace(
                    log_rho, reward, value, given, terminated, truncated, final_value=final_value
                ),
                returns.vtrace(log_rho, reward, value, full, terminated, truncated),
            )
        )
    # final_value is spliced into a full next_value too.
    assert torch.equal(
        returns.gae(
            reward,
            value,
            torch.cat([value[1:], boot[None]]),
            terminated,
            truncated,
            final_value=final_value,
        )[0],
        returns.gae(reward, value, full, terminated, truncated)[0],
    )


def test_a_bootstrap_value_without_final_values_refuses_truncations():
    T, N = 6, 2
    reward, value = torch.randn(T, N), torch.randn(T, N)
    none = torch.zeros(T, N, dtype=torch.bool)
    cut = none.clone()
    cut[2, 1] = True
    returns.gae(reward, value, torch.randn(N), none, none)  # no cut: nothing is missing
    with pytest.raises(ValueError, match=r"gae: 1 truncated step\(s\).*final_value"):
        returns.gae(reward, value, torch.randn(N), none, cut)
    with pytest.raises(RuntimeError, match=r"next_value should have reward's shape \[6, 2\]"):
        returns.gae(reward, value, torch.randn(3), none, none)  # neither form: the op names it
    with pytest.raises(ValueError, match=r"final_value should have reward's shape \[6, 2\]"):
        returns.gae(reward, value, torch.randn(N), none, cut, final_value=torch.randn(N))
    with pytest.raises(ValueError, match="final_value should be a torch.Tensor"):
        returns.discounted_return(reward, torch.randn(N), none, cut, final_value=np.zeros((T, N)))


def test_numpy_steps_read_in_place_store_what_the_general_path_stores():
    # Arrays of the columns' dtypes (and float64 into float32) are read in place; lists, ints
    # and other dtypes take the converting path. Both must store the same bytes.
    spec = {
        "observation": (3,),
        "achieved_goal": (2,),
        "desired_goal": (2,),
        "action": ((2,), torch.int64),
    }
    rng = np.random.default_rng(0)
    fast, general = (replay.ReplayBuffer(64, spec, seed=1, max_episode_steps=5) for _ in range(2))
    for step in range(12):
        obs = {
            k: rng.standard_normal((2, *s))
            for k, s in (("observation", (3,)), ("achieved_goal", (2,)), ("desired_goal", (2,)))
        }
        nxt = {k: v + 1 for k, v in obs.items()}
        action = rng.integers(0, 5, (2, 2))
        reward = rng.standard_normal(2)  # float64, as gymnasium gives it
        term, trunc = np.array([step % 4 == 3, False]), np.array([False, step % 6 == 5])
        fast.add(
            obs={k: v.astype(np.float32) for k, v in obs.items()},
            next_obs={k: v.astype(np.float32) for k, v in nxt.items()},
            reward=reward,
            terminated=term,
            truncated=trunc,
            action=action,
        )
        general.add(
            obs={k: v.astype(np.float32).tolist() for k, v in obs.items()},
            next_obs={k: v.astype(np.float32).tolist() for k, v in nxt.items()},
            reward=reward.astype(np.float32).tolist(),
            terminated=term.astype(np.int64),
            truncated=trunc.tolist(),
            action=action.tolist(),
        )
    a, b = fast.state_dict(), general.state_dict()
    for key in ("row_episode", "episodes", "counters", "sum_tree", "stage_length"):
        assert torch.equal(a[key], b[key]), key
    for name in a["columns"]:
        assert torch.equal(a["columns"][name], b["columns"][name]), name
        assert torch.equal(a["stage"][name], b["stage"][name]), name
    assert fast.num_episodes >= 3


def test_no_silent_gamma():
    with pytest.raises(ValueError, match="gamma is required"):
        replay.NStep(3)
    episode = dict(obs=torch.arange(7.0)[:, None], reward=torch.ones(6))
    plain = replay.ReplayBuffer(40, {"obs": (1,)}, seed=0)
    plain.add_episode(**episode, terminated=True)
    batch = plain.sample(64)
    assert "discount" not in batch and batch.k.eq(1).all()
    assert torch.equal(batch.terminated, batch.index == 5)  # only the last step ends the episode
    with pytest.raises(AttributeError, match=r"gamma \*\* batch.k \* ~batch.terminated"):
        batch.discount
    for gamma in (0.9, 0.0):
        buf = replay.ReplayBuffer(40, {"obs": (1,)}, seed=0, nstep=replay.NStep(3, gamma))
        buf.add_episode(**episode, terminated=True)
        batch = buf.sample(64)
        assert torch.equal(batch.k, torch.clamp(6 - batch.index, max=3))
        assert torch.equal(batch.terminated, batch.index + batch.k == 6)
        want = torch.where(batch.terminated, 0.0, gamma ** batch.k.double()).float()
        assert torch.allclose(batch.discount, want)


def test_arrays_in_another_byte_order_are_refused_not_misread():
    buf = replay.ReplayBuffer(20, {"obs": (2,)})
    swapped = np.ones((1, 2), dtype=">f4")  # big-endian: read as native bytes it would be garbage
    with pytest.raises(ValueError, match="obs has a byte order other than this machine's"):
        buf.add(
            obs=swapped,
            next_obs=swapped,
            reward=np.zeros(1),
            terminated=np.ones(1, bool),
            truncated=np.zeros(1, bool),
        )
    assert len(buf) == 0 and buf.pending_steps == 0
    native = swapped.astype(swapped.dtype.newbyteorder("="))
    buf.add(
        obs=native,
        next_obs=native,
        reward=np.zeros(1),
        terminated=np.ones(1, bool),
        truncated=np.zeros(1, bool),
    )
    assert torch.equal(buf.sample(1).obs, torch.ones(1, 2))
