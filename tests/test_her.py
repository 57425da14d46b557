"""Hindsight relabeling and n-step windows in the sample path: SPEC 2.4 and 3.3's worked numbers,
the reference in pyrl.reference, draw statistics, Python reward callables and bad input."""

import math

import numpy as np
import pytest
import torch

from pyrl import reference, replay
from pyrl.replay.layout import CONFIG, DRAWS, STATE, named

F64 = torch.float64
# The test buffers hold terminated episodes on purpose; test_terminal_callable_and_warning checks
# the warning itself.
pytestmark = pytest.mark.filterwarnings("ignore:ReplayBuffer. HER relabels terminated")
GOAL_SPEC = {"observation": (2,), "achieved_goal": (1,), "desired_goal": (1,), "action": (1,)}


def spec_episode_buffer(her, gamma=0.9, n=1, floating=False, terminated=False):
    """SPEC 2.4: T = 6, achieved goals 0..6, desired goal 3, sparse_l2(0.5) rewards."""
    buf = replay.ReplayBuffer(
        16, GOAL_SPEC, her=her, seed=0, nstep=replay.NStep(n, gamma, floating)
    )
    ag = torch.arange(7, dtype=torch.float32)[:, None]
    reward = reference.sparse_l2(ag[1:], torch.full((6, 1), 3.0), 0.5).float()
    assert reward.tolist() == [-1, -1, 0, -1, -1, -1]
    obs = {
        "observation": torch.zeros(7, 2),
        "achieved_goal": ag,
        "desired_goal": torch.full((7, 1), 3.0),
    }
    buf.add_episode(obs=obs, action=torch.zeros(6, 1), reward=reward, terminated=terminated)
    return buf


def goal_step(strategy, t, length, u):
    """SPEC 2.2's goal step for a sample at step t of an episode of `length` steps."""
    step = {
        "future": t + 1 + int(u * (length - t)),
        "final": length,
        "episode": 1 + int(u * length),
    }[strategy]
    return min(step, length)


def at_call(state, call):
    """Copies of a buffer's state tensors whose draw counter says `call` sample calls were made:
    an op then draws what that call of the buffer would."""
    state = [t.clone() for t in state]
    state[STATE["draws"]][DRAWS["calls"]] = call
    return state


def call_drawing(buf, rows, her_draw=None, floating=None, limit=200_000):
    """The first sample call whose counter draws make, for every given row, the same decisions
    as the wanted uniforms: relabel or not (her_draw[0] < ratio), the same goal step
    (her_draw[1]) and the same floating k. The op is a pure function of (seed, call), so the
    SPEC's worked draws are reproduced by choosing the call; pyrl.reference computes the draws."""
    table = buf.episodes()
    records = [(s, l) for s, l in zip(table["start"].tolist(), table["length"].tolist())]

    def step_of(row):
        start, length = next((s, l) for s, l in records if 0 <= (row - s) % buf.capacity <= l)
        return (row - start) % buf.capacity, length

    steps = [step_of(r) for r in rows]
    her, ratio, n = buf.her, buf.her.ratio if buf.her else 0.0, buf.nstep.n
    for call in range(limit):
        relabel, goal, lookahead = (
            reference.counter_uniforms(buf.seed, call, stream, len(rows)).tolist()
            for stream in (1, 2, 3)
        )
        ok = True
        for j, (t, length) in enumerate(steps):
            if her_draw is not None:
                wanted = her_draw[0][j] < ratio
                ok &= (relabel[j] < ratio) == wanted
                if wanted:
                    ok &= goal_step(her.strategy, t, length, goal[j]) == goal_step(
                        her.strategy, t, length, her_draw[1][j]
                    )
            if floating is not None:
                ok &= min(1 + int(lookahead[j] * n), n) == min(1 + int(float(floating[j]) * n), n)
            if not ok:
                break
        if ok:
            return call
    raise AssertionError("no call draws the wanted decisions")


def sample_rows(buf, rows, her_draw=None, floating=None):
    """The fused op on given rows, at a call whose draws make the given HER decisions [2, B]
    (relabel, goal row) and floating k."""
    rows = torch.as_tensor(rows, dtype=torch.int64)
    call = call_drawing(buf, rows.tolist(), her_draw, floating)
    out = torch.ops.pyrl.replay_sample(
        at_call(buf.storage.state, call), buf.storage.columns, rows.shape[0], rows, buf.op_config
    )
    out = named("replay_sample", out)
    assert torch.equal(out["k"], (out["boot"] - out["index"]) % buf.capacity)  # the window's steps
    names = [f.name for f in buf.fields]
    return dict(
        {key: out[key] for key in ("reward", "discount", "boot", "her_row", "k", "terminated")},
        goal=out["fields"][names.index("desired_goal")],
        goal_boot=out["next_obs"][names.index("desired_goal")],
    )


@pytest.mark.parametrize(
    "strategy, u, goal_row, reward",
    [
        ("future", 0.0, 2, 0.0),
        ("future", 0.5, 4, -1.0),
        ("final", 0.3, 6, -1.0),
        ("episode", 0.25, 2, 0.0),
    ],
)
def test_her_relabel(strategy, u, goal_row, reward):
    buf = spec_episode_buffer(replay.HER(strategy, k=4, reward=replay.sparse_l2(0.5)))
    out = sample_rows(buf, [1], [[0.0], [u]])
    assert out["her_row"].tolist() == [goal_row]
    assert out["reward"].tolist() == [reward]  # R(ag_2 = 2, g'): the next observation's goal
    assert out["goal"].tolist() == [[goal_row]] and out["goal_boot"].tolist() == [[goal_row]]
    assert out["boot"].tolist() == [2]
    assert out["discount"].tolist() == [pytest.approx(0.9)]
    not_relabeled = sample_rows(buf, [1], [[0.9], [u]])  # v >= 0.8: keeps its goal and reward
    assert not_relabeled["her_row"].tolist() == [-1]
    assert not_relabeled["goal"].tolist() == [[3.0]] and not_relabeled["reward"].tolist() == [-1.0]


def test_her_with_floating_nstep_spec_table():
    """SPEC 3.3's HER plus floating table, gamma 0.5, n 3."""
    her = replay.HER("future", k=4, reward=replay.sparse_l2(0.5))
    for terminated in (False, True):
        buf = spec_episode_buffer(her, gamma=0.5, n=3, floating=True, terminated=terminated)
        k3 = torch.tensor([0.99, 0.99, 0.99], dtype=F64)  # k = 3 where not relabeled
        out = sample_rows(buf, [1, 0, 4], [[0.0, 0.9, 0.9], [0.0, 0.0, 0.0]], floating=k3)
        assert out["her_row"].tolist() == [2, -1, -1]
        assert out["reward"].tolist() == [0.0, -1.5, -1.5]
        assert out["discount"].tolist() == [0.5, 0.125, 0.0 if terminated else 0.25]
        assert out["boot"].tolist() == [2, 3, 6]
        assert out["goal"].flatten().tolist() == [2.0, 3.0, 3.0]


def test_ratio_and_future_histogram():
    buf = spec_episode_buffer(replay.HER("future", k=4, reward=replay.sparse_l2(0.5)))
    relabeled = sum(int(buf.sample(1000).is_her.sum()) for _ in range(100))
    assert abs(relabeled / 100_000 - 0.8) < 0.005
    rows = torch.ones(100_000, dtype=torch.int64)
    out = torch.ops.pyrl.replay_sample(
        at_call(buf.storage.state, 0), buf.storage.columns, 100_000, rows, buf.op_config
    )
    her_row = named("replay_sample", out)["her_row"]
    relabeled = her_row[her_row >= 0]
    assert abs(relabeled.shape[0] / 100_000 - 0.8) < 0.005
    offsets = relabeled - 1 - 1  # j - t - 1 at t = 1
    frequency = torch.bincount(offsets, minlength=5).double() / relabeled.shape[0]
    assert frequency.shape == (5,) and (frequency - 0.2).abs().max() < 0.005


def test_relabeled_rewards_use_the_next_achieved_goal():
    buf = goal_buffer(replay.HER("episode", k=3, reward=replay.sparse_l2(0.3)), capacity=300)
    for _ in range(10):
        batch = buf.sample(256)
        her = batch.is_her
        assert her.any() and (~her).any()
        expected = reference.sparse_l2(
            batch.next_obs["achieved_goal"][her], batch.obs["desired_goal"][her], 0.3
        )
        assert torch.equal(batch.reward[her].double(), expected)
        assert torch.equal(batch.boot[her], (batch.index[her] + 1) % 300)
        assert torch.equal(batch.obs["desired_goal"][her], batch.next_obs["desired_goal"][her])


# ---- against the reference -----------------------------------------------------------------------


def goal_episode(T, rng, heads=None):
    ag = torch.from_numpy(rng.integers(0, 3, (T + 1, 2)).astype(np.float32))  # ties are common
    obs = {
        "observation": torch.from_numpy(rng.standard_normal((T + 1, 2)).astype(np.float32)),
        "achieved_goal": ag,
        "desired_goal": torch.from_numpy(rng.integers(0, 3, (T + 1, 2)).astype(np.float32)),
    }
    shape = (T,) if heads is None else (T, heads)
    return (
        obs,
        torch.from_numpy(rng.standard_normal((T, 1)).astype(np.float32)),
        torch.from_numpy(rng.standard_normal(shape).astype(np.float32)),
    )


def goal_buffer(her, capacity=64, heads=None, seed=0, **kwargs):
    spec = {"observation": (2,), "achieved_goal": (2,), "desired_goal": (2,), "action": (1,)}
    if heads is not None:
        spec["reward"] = (heads,)
    buf = replay.ReplayBuffer(capacity, spec, her=her, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    for _ in range(3 * capacity // 8):
        obs, action, reward = goal_episode(int(rng.integers(1, 7)), rng, heads)
        buf.add_episode(obs=obs, action=action, reward=reward, terminated=bool(rng.random() < 0.3))
    return buf


def reference_of(buf):
    """A reference buffer fed from the compiled buffer's episode table and rows."""
    ref = reference.ReplayBuffer(
        buf.capacity, obs_keys=buf.obs_keys, alpha=buf.prioritized.alpha if buf.prioritized else 0.0
    )
    table = buf.episodes()
    ref.next_id = int(table["id"][0])
    for start, length, terminated in zip(
        table["start"].tolist(), table["length"].tolist(), table["terminated"].tolist()
    ):
        rows = [(start + i) % buf.capacity for i in range(length + 1)]
        ref.cursor = start
        obs = {
            f.name: c[rows]
            for f, c in zip(buf.fields, buf.storage.columns)
            if f.name in buf.obs_keys
        }
        fields = {
            f.name: c[rows[:-1]]
            for f, c in zip(buf.fields, buf.storage.columns)
            if f.name not in buf.obs_keys
        }
        ref.add_episode(obs, fields, terminated)
    ref.leaves = buf.priorities().tolist()
    return ref


REWARDS = {
    "sparse_l2": (replay.sparse_l2(0.5), None, lambda a, g: reference.sparse_l2(a, g, 0.5)),
    "per_dim": (
        replay.per_dim([-1.5, 0.5], [-1.0, 2.0]),
        2,
        lambda a, g: reference.per_dim(a, g, [-1.5, 0.5], [-1.0, 2.0]),
    ),
}


@pytest.mark.parametrize("strategy", ["future", "final", "episode", "random"])
@pytest.mark.parametrize("reward", list(REWARDS))
@pytest.mark.parametrize("nstep", [(1, False), (3, True)])
@pytest.mark.parametrize("prioritized", [False, True])
def test_matches_reference(strategy, reward, nstep, prioritized):
    kind, heads, oracle = REWARDS[reward]
    buf = goal_buffer(
        replay.HER(strategy, k=2, reward=kind),
        capacity=37,
        heads=heads,
        nstep=replay.NStep(nstep[0], 0.9, nstep[1]),
        prioritized=replay.PER() if prioritized else None,
    )
    her = {"ratio": 2 / 3, "strategy": strategy, "reward": oracle}
    assert_samples_match_reference(buf, her, nstep[0], nstep[1], prioritized)


def assert_samples_match_reference(buf, her, n, floating, prioritized, rounds=3):
    """Three sample(50) calls of `buf` against the reference fed its rows, on the reference's own
    recomputation of the draws (streams: row, relabel, goal, lookahead); `her` is the reference's
    HER spec without its uniforms."""
    ref = reference_of(buf)
    assert ref.row_episode == buf.storage.row_episode.tolist()
    for _ in range(rounds):
        draws = [
            reference.counter_uniforms(buf.seed, buf.sample_calls, stream, 50)
            for stream in range(4)
        ]
        per = buf.prioritized
        beta = reference.beta_at(per.beta, per.beta_steps, buf.sample_calls) if prioritized else 0.0
        direct = (
            None
            if prioritized
            else reference.direct_rows(buf.priorities(), buf.seed, buf.sample_calls, 50)
        )
        batch = buf.sample(50)
        expected = ref.sample(
            draws[0],
            draws[3] if floating else None,
            n,
            0.9,
            beta,
            her={**her, "uniform": torch.stack(draws[1:3])},
            index=direct,
        )
        for key in ("index", "boot", "her_row", "generation"):
            assert torch.equal(batch[key], expected[key]), key
        for key in ("achieved_goal", "desired_goal", "observation"):
            assert torch.equal(batch.obs[key], expected[key]), key
            assert torch.equal(batch.next_obs[key], expected["next_" + key]), key
        torch.testing.assert_close(batch.reward.double(), expected["reward"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batch.discount.double(), expected["discount"])
        assert batch.is_her.any()


@pytest.mark.parametrize("reward", list(REWARDS))
def test_python_callable_gives_the_same_batch(reward):
    kind, heads, oracle = REWARDS[reward]
    built_in = goal_buffer(replay.HER("future", 4, kind), heads=heads, seed=3)
    python = goal_buffer(replay.HER("future", 4, oracle), heads=heads, seed=3)
    for _ in range(5):
        a, b = built_in.sample(64), python.sample(64)
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], dict):
                assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
            else:
                assert torch.equal(a[key], b[key]), key


def test_terminal_callable_and_warning():
    reached = lambda a, g: (a - g).norm(dim=-1) < 0.5  # noqa: E731
    buf = goal_buffer(replay.HER("future", 4, replay.sparse_l2(0.5), terminal=reached), seed=1)
    batch = buf.sample(256)
    her = batch.is_her
    done = reached(batch.next_obs["achieved_goal"][her], batch.obs["desired_goal"][her])
    assert done.any() and (~done).any()
    assert torch.equal(batch.terminated[her], done)  # the callable's ends are true terminals
    assert "discount" not in batch  # the buffer was given no gamma: it shows none
    warned = goal_buffer(replay.HER("future", 4, replay.sparse_l2(0.5)), seed=1)
    with pytest.warns(UserWarning, match="relabels terminated episodes without a terminal"):
        warned.sample(8)


def test_save_and_load_with_her(tmp_path):
    buf = goal_buffer(replay.HER("final", 2, replay.per_dim([0.5], [1.0])), heads=2)
    buf.save(tmp_path / "her.pt")
    restored = replay.ReplayBuffer.load(tmp_path / "her.pt")
    assert restored.her == buf.her
    a, b = buf.sample(32), restored.sample(32)
    assert torch.equal(a.reward, b.reward) and torch.equal(a.her_row, b.her_row)
    python = goal_buffer(replay.HER("final", 2, lambda a, g: reference.sparse_l2(a, g, 0.5)))
    python.save(tmp_path / "python.pt")
    with pytest.raises(ValueError, match="pass her=replay.HER"):
        replay.ReplayBuffer.load(tmp_path / "python.pt")
    replay.ReplayBuffer.load(tmp_path / "python.pt", her=python.her)


def test_goal_env_dict_steps():
    """gymnasium-robotics dict observations go straight in with add(); obs_keys default to them."""
    buf = replay.ReplayBuffer(
        64,
        {"observation": (3,), "achieved_goal": (2,), "desired_goal": (2,), "action": (1,)},
        her=replay.HER("future", 4, replay.sparse_l2(0.1)),
    )
    assert buf.obs_keys == ("observation", "achieved_goal", "desired_goal")
    for t in range(10):
        obs = {
            "observation": np.zeros((2, 3)),
            "achieved_goal": np.full((2, 2), t),
            "desired_goal": np.full((2, 2), 9.0),
        }
        nxt = {**obs, "achieved_goal": np.full((2, 2), t + 1)}
        buf.add(
            obs=obs,
            next_obs=nxt,
            action=np.zeros((2, 1)),
            reward=np.full(2, -1.0),
            terminated=[False, False],
            truncated=[t == 9, t == 9],
        )
    batch = buf.sample(128)
    her = batch.is_her
    goal_t = batch.obs["desired_goal"][her][:, 0]
    step_t = batch.obs["achieved_goal"][her][:, 0]
    assert (goal_t >= step_t + 1).all() and (goal_t <= 10).all()  # future goals
    assert torch.equal(batch.reward[her], torch.where(goal_t == step_t + 1, 0.0, -1.0))


def test_design_spelling_obs_plus_goal_fields():
    """DESIGN.md's buffer: {"obs": ..., "action": ...} plus the goal fields goal envs add."""
    buf = replay.ReplayBuffer(
        64,
        {"obs": (5,), "action": (2,), "achieved_goal": (2,), "desired_goal": (2,)},
        her=replay.HER("future", 4, replay.sparse_l2(0.05)),
        nstep=replay.NStep(5, 0.99, floating=True),
        seed=0,
    )
    assert buf.obs_keys == ("obs", "achieved_goal", "desired_goal")
    obs = {
        "obs": torch.randn(9, 5),
        "achieved_goal": torch.randn(9, 2),
        "desired_goal": torch.randn(9, 2),
    }
    buf.add_episode(obs=obs, action=torch.randn(8, 2), reward=-torch.ones(8))
    batch = buf.sample(32)
    assert set(batch.obs) == {"obs", "achieved_goal", "desired_goal"}
    assert batch.is_her.any()


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(strategy="past"), "strategy should be one of"),
        (dict(k=-1), "k should be an int >= 0"),
        (dict(reward=3), "reward should be"),
        (dict(terminal=1), "terminal should be"),
    ],
)
def test_bad_her_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        replay.HER(**{"reward": replay.sparse_l2(0.1), **kwargs})


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: replay.sparse_l2(0), "eps should be"),
        (lambda: replay.sparse_l2(math.nan), "eps"),
        (lambda: replay.per_dim([1.0], [1.0, 2.0]), "equal length"),
        (lambda: replay.per_dim([0.0], [1.0]), "non-zero"),
    ],
)
def test_bad_reward_kinds(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    "spec, her_reward, match",
    [
        ({"obs": (3,), "action": (1,)}, replay.sparse_l2(0.1), "HER needs observation fields"),
        ({**GOAL_SPEC, "desired_goal": (2,)}, replay.sparse_l2(0.1), "one shape and dtype"),
        (
            {**GOAL_SPEC, "desired_goal": ((1,), torch.float64)},
            replay.sparse_l2(0.1),
            r"one shape and dtype, got \[1\] torch.float32 and \[1\] torch.float64",
        ),
        (
            {
                **GOAL_SPEC,
                "achieved_goal": ((1,), torch.float16),
                "desired_goal": ((1,), torch.float16),
            },
            replay.sparse_l2(0.1),
            r"goal fields should be of one of \['float32', .*'bool'\] \(any shape\), "
            r"got torch.float16",
        ),
        ({**GOAL_SPEC, "reward": (2,)}, replay.sparse_l2(0.1), "sparse_l2 gives one reward"),
        (GOAL_SPEC, replay.per_dim([0.5], [1.0]), r"per_dim gives one reward per goal element"),
    ],
)
def test_bad_goal_fields(spec, her_reward, match):
    with pytest.raises(ValueError, match=match):
        replay.ReplayBuffer(16, spec, her=replay.HER("future", 4, her_reward))


def test_goal_fields_missing_from_a_step():
    buf = replay.ReplayBuffer(16, GOAL_SPEC, her=replay.HER("future", 4, replay.sparse_l2(0.1)))
    with pytest.raises(ValueError, match="obs should be a dict with keys"):
        buf.add(
            obs={"observation": torch.zeros(1, 2)},
            next_obs={},
            action=torch.zeros(1, 1),
            reward=torch.zeros(1),
            terminated=[False],
            truncated=[True],
        )


def test_opcheck_with_relabeling(sample_opchecks):
    buf = goal_buffer(
        replay.HER("future", 4, replay.per_dim([0.5], [1.0])),
        heads=2,
        nstep=replay.NStep(3, 0.9, True),
    )
    args = (at_call(buf.storage.state, 5), buf.storage.columns, 20, None, buf.op_config)
    torch.library.opcheck(torch.ops.pyrl.replay_sample.default, args, test_utils=sample_opchecks)
    bad = list(buf.op_config)
    bad[CONFIG["achieved_goal"]] = 7  # not an observation column
    with pytest.raises(
        ValueError, match=r"achieved_goal should index an observation column, in \[0, 3\), got 7"
    ):
        torch.ops.pyrl.replay_sample(*args[:4], bad)


# ---- HER(nstep="recompute"): relabeled windows keep k, rewards recomputed under the new goal -----


def test_recompute_spec_table_twin():
    """SPEC 3.3's HER-plus-floating table with the relabeled sample's window recomputed: at t = 1
    with goal ag_2 = 2 and k = 3, the rewards of reaching ag 2, 3, 4 are 0, -1, -1."""
    k3 = torch.tensor([0.99, 0.99, 0.99, 0.99], dtype=F64)
    draws = [[0.0, 0.0, 0.9, 0.9], [0.0, 0.5, 0.0, 0.0]]  # future u = 0 (goal 2), u = 0.5 (goal 4)
    for terminated in (False, True):
        buf = spec_episode_buffer(
            replay.HER("future", k=4, reward=replay.sparse_l2(0.5), nstep="recompute"),
            gamma=0.5,
            n=3,
            floating=True,
            terminated=terminated,
        )
        out = sample_rows(buf, [1, 1, 0, 4], draws, floating=k3)
        assert out["her_row"].tolist() == [2, 4, -1, -1]
        assert out["reward"].tolist() == [0 - 0.5 - 0.25, -1 - 0.5 + 0, -1.5, -1.5]
        assert out["discount"].tolist() == [0.125, 0.125, 0.125, 0.0 if terminated else 0.25]
        assert out["boot"].tolist() == [4, 4, 3, 6]
        assert out["goal"].flatten().tolist() == [2.0, 4.0, 3.0, 3.0]
        assert out["goal_boot"].flatten().tolist() == [2.0, 4.0, 3.0, 3.0]
        # terminal_on_success: the first window reaches its goal at its first step, the second at
        # its last; both become true terminals there.
        her = replay.HER(
            "future", k=4, reward=replay.sparse_l2(0.5), nstep="recompute", terminal_on_success=True
        )
        buf = spec_episode_buffer(her, gamma=0.5, n=3, floating=True, terminated=terminated)
        out = sample_rows(buf, [1, 1, 0, 4], draws, floating=k3)
        assert out["reward"].tolist() == [0.0, -1.5, -1.5, -1.5]
        assert out["discount"].tolist() == [0.0, 0.0, 0.125, 0.0 if terminated else 0.25]
        assert out["boot"].tolist() == [2, 4, 3, 6]
        assert out["k"].tolist() == [1, 3, 3, 2]
        assert out["terminated"].tolist() == [True, True, False, terminated]


RECOMPUTE = {
    "sparse_l2": (
        replay.sparse_l2(0.5),
        None,
        lambda a, g: reference.sparse_l2(a, g, 0.5),
        lambda a, g: (a - g).norm(dim=-1) < 0.5,
    ),
    "per_dim": (
        replay.per_dim([-1.5, 0.5], [-1.0, 2.0]),
        2,
        lambda a, g: reference.per_dim(a, g, [-1.5, 0.5], [-1.0, 2.0]),
        None,
    ),
}


@pytest.mark.parametrize("strategy", ["future", "final", "episode", "random"])
@pytest.mark.parametrize(
    "reward, on_success",  # per_dim has no success test of its own
    [("sparse_l2", False), ("sparse_l2", True), ("per_dim", False)],
)
@pytest.mark.parametrize("prioritized", [False, True])
def test_recompute_matches_reference(strategy, reward, on_success, prioritized):
    kind, heads, oracle, success = RECOMPUTE[reward]
    her = replay.HER(strategy, k=2, reward=kind, nstep="recompute", terminal_on_success=on_success)
    buf = goal_buffer(
        her,
        capacity=37,
        heads=heads,
        nstep=replay.NStep(3, 0.9, True),
        prioritized=replay.PER() if prioritized else None,
    )
    spec = {"ratio": 2 / 3, "strategy": strategy, "reward": oracle, "nstep": "recompute"}
    if on_success:
        spec["success"] = success
    assert_samples_match_reference(buf, spec, 3, True, prioritized)


@pytest.mark.parametrize("reward", list(RECOMPUTE))
def test_recompute_python_callables_give_the_same_batch(reward):
    kind, heads, oracle, success = RECOMPUTE[reward]
    built_in = goal_buffer(
        replay.HER("future", 4, kind, nstep="recompute"),
        heads=heads,
        seed=3,
        nstep=replay.NStep(4, 0.9, True),
    )
    python = goal_buffer(
        replay.HER("future", 4, oracle, nstep="recompute"),
        heads=heads,
        seed=3,
        nstep=replay.NStep(4, 0.9, True),
    )
    pairs = [(built_in, python)]
    if success is not None:  # a terminal callable that tests the same success
        pairs.append(
            (
                goal_buffer(
                    replay.HER("future", 4, kind, nstep="recompute", terminal_on_success=True),
                    seed=3,
                    nstep=replay.NStep(4, 0.9, True),
                ),
                goal_buffer(
                    replay.HER("future", 4, oracle, terminal=success, nstep="recompute"),
                    seed=3,
                    nstep=replay.NStep(4, 0.9, True),
                ),
            )
        )
    for a_buf, b_buf in pairs:
        for _ in range(5):
            a, b = a_buf.sample(64), b_buf.sample(64)
            for key in ("index", "boot", "her_row", "discount"):
                assert torch.equal(a[key], b[key]), key
            torch.testing.assert_close(a.reward, b.reward)
            for key in a.next_obs:
                assert torch.equal(a.next_obs[key], b.next_obs[key]), key


def test_recompute_settings_are_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="nstep should be 'one_step' or 'recompute'"):
        replay.HER("future", 4, replay.sparse_l2(0.1), nstep="allow")
    with pytest.raises(ValueError, match="terminal_on_success needs a success test"):
        replay.HER("future", 4, replay.per_dim([0.5], [1.0]), terminal_on_success=True)
    her = replay.HER(
        "future", 4, replay.sparse_l2(0.1), nstep="recompute", terminal_on_success=True
    )
    buf = goal_buffer(her, seed=1, nstep=replay.NStep(3, 0.9, True))
    buf.save(tmp_path / "her.pt")
    loaded = replay.ReplayBuffer.load(tmp_path / "her.pt")
    assert loaded.her == her
    a, b = buf.sample(32), loaded.sample(32)
    assert torch.equal(a.reward, b.reward) and torch.equal(a.discount, b.discount)


# ---- goals of any dtype and shape (issue 31) -------------------------------------------------


def typed_goal_buffers(dtype, shape, her, heads=None, nstep=None):
    """Twin buffers filled with the same episodes: goals of `dtype` and `shape`, and the same
    goal values as float32 ``[g]`` (g elements). Goal elements are 0, 1 or 2, exact in any dtype
    (0 or 1 for bool), so both see the same distances."""
    g = math.prod(shape)
    rng = np.random.default_rng(7)
    top = 2 if dtype == torch.bool else 3
    bufs = []
    for goal_shape, goal_dtype in ((shape, dtype), ((g,), torch.float32)):
        spec = {
            "observation": (2,),
            "achieved_goal": (goal_shape, goal_dtype),
            "desired_goal": (goal_shape, goal_dtype),
            "action": (1,),
        }
        if heads is not None:
            spec["reward"] = (heads,)
        bufs.append(replay.ReplayBuffer(64, spec, her=her, seed=5, nstep=nstep))
    for _ in range(20):
        T = int(rng.integers(1, 7))
        achieved = rng.integers(0, top, (T + 1, g))
        desired = np.repeat(rng.integers(0, top, (1, g)), T + 1, axis=0)
        reward = rng.normal(size=(T,) if heads is None else (T, heads))
        for buf, goal_shape in zip(bufs, (shape, (g,))):
            goal_dtype = buf.fields[[f.name for f in buf.fields].index("achieved_goal")].dtype
            obs = {
                "observation": torch.zeros(T + 1, 2),
                "achieved_goal": torch.tensor(achieved).reshape(T + 1, *goal_shape).to(goal_dtype),
                "desired_goal": torch.tensor(desired).reshape(T + 1, *goal_shape).to(goal_dtype),
            }
            buf.add_episode(
                obs=obs,
                action=torch.zeros(T, 1),
                reward=torch.tensor(reward, dtype=torch.float32),
                terminated=False,
            )
    return bufs


GOAL_TYPES = [
    torch.float64,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
]


@pytest.mark.parametrize("dtype", GOAL_TYPES)
@pytest.mark.parametrize("shape", [(), (3,), (1, 2, 3)])
def test_goals_of_any_dtype_and_shape_relabel_as_float32_goals(dtype, shape):
    g = math.prod(shape)
    settings = [
        (replay.HER("future", 4, replay.sparse_l2(0.5)), None, None),
        (
            replay.HER(
                "future", 4, replay.sparse_l2(1.2), nstep="recompute", terminal_on_success=True
            ),
            None,
            replay.NStep(3, 0.9, True),
        ),
        (replay.HER("episode", 4, replay.per_dim([-0.5, 1.5], [-1.0, 2.0])), g, None),
    ]
    for her, heads, nstep in settings:
        typed, floats = typed_goal_buffers(dtype, shape, her, heads, nstep)
        for _ in range(4):
            a, b = typed.sample(128), floats.sample(128)
            assert a.is_her.any() and not a.is_her.all()
            assert a.keys() == b.keys()
            for key in a:
                if not isinstance(a[key], dict):  # rows, goals' rows, k, rewards, discounts
                    assert torch.equal(a[key], b[key]), key
            for side in ("obs", "next_obs"):
                for key in ("achieved_goal", "desired_goal"):
                    goal = a[side][key]
                    assert goal.dtype == dtype and goal.shape == (128, *shape)
                    assert torch.equal(goal.reshape(128, g).float(), b[side][key]), (side, key)


@pytest.mark.parametrize("nstep", [None, "recompute"])
def test_python_rewards_see_goals_of_their_own_dtype_and_shape(nstep):
    seen = []

    def reward(achieved, desired):
        seen.append((achieved.dtype, tuple(achieved.shape[1:]), tuple(desired.shape[1:])))
        distance = (achieved.double() - desired.double()).reshape(len(achieved), -1).norm(dim=1)
        return torch.where(distance < 0.5, 0.0, -1.0)

    window = replay.NStep(3, 0.9, True) if nstep else None
    options = dict(nstep="recompute") if nstep else {}
    python, _ = typed_goal_buffers(
        torch.int8, (2, 3), replay.HER("future", 4, reward, **options), nstep=window
    )
    built_in, _ = typed_goal_buffers(
        torch.int8, (2, 3), replay.HER("future", 4, replay.sparse_l2(0.5), **options), nstep=window
    )
    for _ in range(3):
        a, b = python.sample(64), built_in.sample(64)
        torch.testing.assert_close(a.reward, b.reward)
        assert torch.equal(a.her_row, b.her_row)
    assert seen and set(seen) == {(torch.int8, (2, 3), (2, 3))}
