"""The replay ops on their own: opcheck, both call routes agreeing on every op, and the checks
that name the bad argument. Arguments are built from a buffer's documented hooks
(``buf.storage``, ``buf.op_config``) and the layout's slot names, never by position."""

import math

import pytest
import torch

from pyrl import _C, replay
from pyrl.replay.layout import CONFIG, STATE, named

F64 = torch.float64


def filled(capacity=40):
    buf = replay.ReplayBuffer(
        capacity,
        {"obs": (3,), "action": (2,)},
        seed=0,
        prioritized=replay.PER(beta_steps=10),
        nstep=replay.NStep(3, 0.9, floating=True),
    )
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        buf.add_episode(
            obs=torch.randn(7, 3, generator=g),
            action=torch.randn(6, 2, generator=g),
            reward=torch.randn(6, generator=g),
        )
    for t in range(3):  # an episode still running in each of 2 envs
        buf.add(
            obs=torch.full((2, 3), float(t)),
            action=torch.zeros(2, 2),
            reward=torch.ones(2),
            next_obs=torch.zeros(2, 3),
            terminated=[False, False],
            truncated=[False, False],
        )
    return buf


def trees():
    sum_tree = torch.zeros(replay.layout.tree_size(4), dtype=F64)
    min_tree = torch.full_like(sum_tree, math.inf)
    torch.ops.pyrl.tree_update(
        sum_tree, min_tree, 4, torch.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    )
    return sum_tree, min_tree


def op_samples():
    """Arguments for every op, fresh copies each call."""
    buf = filled()
    st = buf.storage
    config = buf.op_config

    def state():
        return [t.clone() for t in st.state]

    step = [torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2)]
    index = torch.tensor([0, 1, 2, 3, 7])
    sum_tree, min_tree = trees()
    return {
        "tree_update": (
            sum_tree.clone(),
            min_tree.clone(),
            4,
            torch.tensor([0, 2]),
            torch.tensor([0.5, 3.0], dtype=F64),
        ),
        "tree_sample": (sum_tree, min_tree, 4, torch.rand(5, dtype=F64), 0.5, False),
        "replay_add": (
            state(),
            [c.clone() for c in st.columns],
            step,
            step[:1],
            torch.tensor([True, False]),
            torch.tensor([False, False]),
            config,
        ),
        "replay_end_episodes": (state(), [c.clone() for c in st.columns], config),
        "replay_add_episode": (
            state(),
            [c.clone() for c in st.columns],
            [torch.zeros(4, 3), torch.zeros(3, 2), torch.ones(3)],
            True,
            config,
        ),
        "replay_add_episode_with_td_abs": (
            state(),
            [c.clone() for c in st.columns],
            [torch.zeros(4, 3), torch.zeros(3, 2), torch.ones(3)],
            True,
            config,
            torch.tensor([0.5, 2.0, 0.0], dtype=F64),
        ),
        "replay_sample": (state(), st.columns, 5, None, config),
        "replay_update_priorities": (
            state(),
            index,
            st.row_episode[index].clone(),
            torch.rand(5),
            config,
            torch.zeros(5, dtype=torch.bool),
        ),
        "replay_check": (state(),),
    }


@pytest.mark.parametrize("name", list(op_samples()))
def test_opcheck(name, sample_opchecks):
    op = getattr(torch.ops.pyrl, name.removesuffix("_with_td_abs"))
    checks = {"test_utils": sample_opchecks} if name == "replay_sample" else {}
    torch.library.opcheck(op.default, op_samples()[name], **checks)


def test_opcheck_of_a_sample_with_given_rows(sample_opchecks):
    args = list(op_samples()["replay_sample"])
    leaves = args[0][STATE["sum_tree"]][-40:]
    args[3] = (leaves > 0).nonzero()[:5, 0].contiguous()
    torch.library.opcheck(
        torch.ops.pyrl.replay_sample.default, tuple(args), test_utils=sample_opchecks
    )


def clone_state(buf):
    return [t.clone() for t in buf.storage.state], [c.clone() for c in buf.storage.columns]


def assert_same(a, b):
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert torch.equal(a, b)


def test_host_and_dispatcher_agree():
    """A CPU buffer runs its ops through pyrl._C.ReplayHost; torch.ops.pyrl runs the same C++
    functions. Every replay op, on the same state, gives the same outputs and the same state."""
    buf = filled()
    ops = torch.ops.pyrl
    config = buf.op_config
    state, columns = clone_state(buf)  # the stage columns end the state list
    step = dict(
        obs=torch.randn(2, 3),
        action=torch.randn(2, 2),
        reward=torch.randn(2),
        next_obs=torch.randn(2, 3),
        terminated=torch.tensor([True, False]),
        truncated=torch.tensor([False, False]),
    )
    buf.add(**step)
    assert (
        ops.replay_add(
            state,
            columns,
            [step["obs"], step["action"], step["reward"]],
            [step["next_obs"]],
            step["terminated"],
            step["truncated"],
            config,
        )
        == 0
    )
    ep = dict(obs=torch.randn(5, 3), action=torch.randn(4, 2), reward=torch.randn(4))
    buf.add_episode(**ep, terminated=True)
    ops.replay_add_episode(state, columns, [ep["obs"], ep["action"], ep["reward"]], True, config)
    assert_same(buf.storage.state, state)
    assert_same(buf.storage.columns, columns)

    batch = buf.sample(16)
    out = ops.replay_sample(state, columns, 16, None, config)
    out = named("replay_sample", out)
    fields, next_obs = out.pop("fields"), out.pop("next_obs")
    del out["her_row"]
    for key, value in dict(out, obs=fields[0], action=fields[1], next_obs=next_obs[0]).items():
        assert torch.equal(batch[key], value), key
    td = torch.rand(16)
    mask = buf.update_priorities(batch.index, batch.generation, td)
    applied = torch.zeros(16, dtype=torch.bool)
    ops.replay_update_priorities(state, out["index"], out["generation"], td, config, applied)
    assert torch.equal(mask, applied)
    assert_same(buf.storage.state, state)
    assert torch.equal(ops.replay_check(state), torch.tensor([0, -1]))
    buf.check()

    buf.add(**dict(step, terminated=torch.tensor([False, False])))
    ops.replay_add(
        state,
        columns,
        [step["obs"], step["action"], step["reward"]],
        [step["next_obs"]],
        torch.tensor([False, False]),
        step["truncated"],
        config,
    )
    assert buf.end_running_episodes() == ops.replay_end_episodes(state, columns, config) == 1
    assert_same(buf.storage.state, state)
    assert_same(buf.storage.columns, columns)


def test_the_state_is_tensors_the_ops_advance():
    """The draw counter and the stage are state tensors: a sample advances the counter, the
    first add sizes the stage, a full stage's cut is the add's count, and state_dict holds
    tensors only."""
    buf = filled()
    draws = buf.storage.state[STATE["draws"]]
    assert draws.tolist() == [0, 0] and buf.storage.stage_length.tolist() == [3, 3]
    buf.sample(4)
    buf.sample(4)
    assert draws.tolist() == [0, 2] == [buf.seed, buf.sample_calls]
    fresh = replay.ReplayBuffer(10, {"obs": (3,)}, max_episode_steps=2)
    assert fresh.storage.stage is None and fresh.storage.staged[0].shape == (0, 2, 3)
    st, config = fresh.storage, fresh.op_config
    step = [torch.zeros(3, 3), torch.zeros(3)]
    no = torch.zeros(3, dtype=torch.bool)
    cut = [
        int(torch.ops.pyrl.replay_add(st.state, st.columns, step, step[:1], no, no, config))
        for _ in range(2)
    ]
    assert cut == [0, 3] and st.staged[0].shape == (3, 2, 3)  # sized at the first add
    assert st.stage_length.tolist() == [0, 0, 0] and len(fresh) == 6
    state = {k: v for k, v in buf.state_dict().items() if k != "config"}
    flat = [t for v in state.values() for t in (v.values() if isinstance(v, dict) else [v])]
    assert all(isinstance(t, torch.Tensor) for t in flat)


def test_the_host_checks_the_settings_once_at_creation():
    buf = filled()
    st = buf.storage
    bad = list(buf.op_config)
    bad[CONFIG["beta_steps"]] = 2.5
    slot = CONFIG["beta_steps"]
    with pytest.raises(ValueError, match=rf"ReplayBuffer: config\[{slot}\] \(beta_steps\) should"):
        _C.ReplayHost(st.state, st.columns, bad, st.names, 1)


def test_one_conversion_rule_for_every_input():
    """Inputs that are no column's values (TD errors, states) convert in the host under the
    columns' rule: within their kind, or a ValueError naming the argument."""
    host = filled().storage.host
    out = host.convert("update_priorities", "td_abs", [1, 2], torch.float64, [2])
    assert out.dtype == torch.float64 and out.tolist() == [1.0, 2.0]
    import numpy as np

    assert (
        host.convert("store_hidden", "states", np.ones((2, 3)), torch.float32, [2, 3]).dtype
        == torch.float32
    )
    with pytest.raises(
        ValueError,
        match=r"ReplayBuffer.f: x should be torch.int64 \(or convert "
        r"to it within its kind\), got torch.float32",
    ):
        host.convert("f", "x", torch.zeros(2), torch.int64, [2])
    with pytest.raises(ValueError, match=r"ReplayBuffer.f: x should have shape \[3\], got \[2\]"):
        host.convert("f", "x", [1.0, 2.0], torch.float64, [3])
    with pytest.raises(
        ValueError, match="x should be torch.float64 values of shape \\[2\\], got str"
    ):
        host.convert("f", "x", "high", torch.float64, [2])


def test_ops_name_the_bad_argument():
    sum_tree, min_tree = trees()
    with pytest.raises(
        ValueError, match=r"pyrl::tree_sample: sum_tree should have shape \[16\], got \[15\]"
    ):
        torch.ops.pyrl.tree_sample(sum_tree[:-1], min_tree, 4, torch.rand(2, dtype=F64), 1.0, False)
    with pytest.raises(ValueError, match="uniform should be Double, got Float"):
        torch.ops.pyrl.tree_sample(sum_tree, min_tree, 4, torch.rand(2), 1.0, False)
    with pytest.raises(ValueError, match=r"uniform\[0\] should be in \[0, 1\), got nan"):
        torch.ops.pyrl.tree_sample(
            sum_tree, min_tree, 4, torch.tensor([math.nan], dtype=F64), 1.0, False
        )
    with pytest.raises(ValueError, match="beta should be in"):
        torch.ops.pyrl.tree_sample(sum_tree, min_tree, 4, torch.rand(2, dtype=F64), 1.5, False)
    with pytest.raises(ValueError, match=r"index\[1\] should be in \[0, 4\), got 4"):
        torch.ops.pyrl.tree_update(
            sum_tree, min_tree, 4, torch.tensor([0, 4]), torch.ones(2, dtype=F64)
        )
    with pytest.raises(ValueError, match=r"leaf\[0\] should be finite"):
        torch.ops.pyrl.tree_update(
            sum_tree, min_tree, 4, torch.tensor([0]), torch.tensor([math.inf], dtype=F64)
        )
    with pytest.raises(ValueError, match=r"capacity should be in \[1, 2\^48\]"):
        torch.ops.pyrl.tree_update(
            sum_tree, min_tree, 2**62, torch.tensor([0]), torch.ones(1, dtype=F64)
        )
    empty_sum = torch.zeros_like(sum_tree)
    with pytest.raises(ValueError, match="no priority mass"):
        torch.ops.pyrl.tree_sample(empty_sum, min_tree, 4, torch.rand(2, dtype=F64), 1.0, False)

    state, columns, batch_size, _, config = op_samples()["replay_sample"]
    bad = list(config)
    bad[CONFIG["n"]] = 0
    with pytest.raises(ValueError, match="n should be at least 1, got 0"):
        torch.ops.pyrl.replay_sample(state, columns, batch_size, None, bad)
    for slot, value, message in [
        ("beta_steps", 2.5, "should be a whole number, got 2.5"),
        ("her_recompute", 2.0, "should be 0 or 1, got 2"),
    ]:
        bad = list(config)
        bad[CONFIG[slot]] = value
        with pytest.raises(ValueError, match=rf"config\[{CONFIG[slot]}\] \({slot}\) {message}"):
            torch.ops.pyrl.replay_sample(state, columns, batch_size, None, bad)
    bad = list(config)
    bad[CONFIG["her_params"]] = 3
    with pytest.raises(
        ValueError, match=f"config should hold {len(CONFIG)} values and the 3 HER reward"
    ):
        torch.ops.pyrl.replay_sample(state, columns, batch_size, None, bad)
    for slot, value in (("seed", -1), ("calls", -3)):
        bad_draws = [t.clone() for t in state]
        bad_draws[STATE["draws"]][replay.layout.DRAWS[slot]] = value
        with pytest.raises(ValueError, match=r"draws should be \[seed, calls\], both >= 0"):
            torch.ops.pyrl.replay_sample(bad_draws, columns, batch_size, None, config)
    with pytest.raises(ValueError, match="state should hold 8 tensors .*, then the stage columns"):
        torch.ops.pyrl.replay_sample(state[:5], columns, batch_size, None, config)
    with pytest.raises(ValueError, match=r"counters should have shape \[7\], got \[5\]"):
        short = list(state)
        short[STATE["counters"]] = torch.zeros(5, dtype=torch.int64)
        torch.ops.pyrl.replay_sample(short, columns, batch_size, None, config)
    leaves = state[STATE["sum_tree"]][-40:]
    valid, final = (leaves > 0).nonzero()[:, 0], (leaves == 0).nonzero()[0, 0]
    rows = torch.stack([valid[0], final, valid[1], valid[2], valid[3]])
    with pytest.raises(
        ValueError, match=rf"rows\[1\] should be a stored transition row, got {int(final)}"
    ):
        torch.ops.pyrl.replay_sample(state, columns, 5, rows, config)  # a final row


def test_op_outputs_are_exported_by_name_from_their_schemas():
    from pyrl.replay import layout

    for op in ("replay_sample", "replay_sample_windows", "replay_gather_windows", "gae"):
        schema = getattr(torch.ops.pyrl, op).default._schema
        assert layout.OUTPUTS[op] == tuple(r.name for r in schema.returns)
    values = tuple(range(len(layout.OUTPUTS["replay_sample"])))
    out = layout.named("replay_sample", values)
    assert layout.ordered("replay_sample", out) == values
    assert layout.picker("replay_sample", "k", "index")(values) == (out["k"], out["index"])
    with pytest.raises(ValueError, match=r"replay_sample has no outputs \['idx'\]"):
        layout.picker("replay_sample", "idx")
    with pytest.raises(ValueError, match="replay_sample returned 2 values, its schema names 11"):
        layout.named("replay_sample", (1, 2))
