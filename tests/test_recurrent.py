"""Recurrent replay (SPEC 5): stored hidden states, their recomputation, sequence sampling, and
the compiled ops under them compared with pyrl.reference."""

import numpy as np
import pytest
import torch
from torch import nn

from pyrl import reference, replay
from pyrl.replay import recurrent as rec
from pyrl.replay.layout import named

F64 = torch.float64


def linear_cell(c):
    """SPEC 5.3's cell h' = c h + x, as an encoder callable (state after each position)."""

    def encoder(x, h0):
        states, h = [], h0
        for p in range(x.shape[1]):
            h = c * h + x[:, p]
            states.append(h)
        return torch.stack(states, 1)

    return encoder


def spec_buffer(n_history, **settings):
    buf = replay.ReplayBuffer(
        16,
        {"obs": ((1,), F64), "action": (1,)},
        recurrent=replay.Recurrent((1,), n_history=n_history, dtype=F64),
        seed=0,
        **settings,
    )
    buf.add_episode(
        obs=torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=F64),
        reward=torch.zeros(3),
        action=torch.zeros(3, 1),
        hidden=torch.zeros(4, 1, dtype=F64),
    )
    return buf


def stored_hidden(buf, episode=0):
    table = buf.episodes()
    start, length = int(table["start"][episode]), int(table["length"][episode])
    rows = (start + torch.arange(length + 1)) % buf.capacity
    return buf.storage.column("hidden")[rows]


# ---- SPEC 5.3 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_history,expected", [(1, [0.0, 1.0, 2.5]), (2, [0.0, 0.0, 1.0])])
def test_rnn_recompute_alignment(n_history, expected):
    buf = spec_buffer(n_history)
    assert buf.recompute_hidden(linear_cell(0.5)) == {"episodes": 1, "rows": 3}
    assert stored_hidden(buf)[:3, 0].tolist() == expected
    online = reference.online_hidden(
        lambda h, x: 0.5 * h + x,
        torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=F64),
        n_history,
        torch.zeros(1, dtype=F64),
    )
    assert torch.equal(torch.stack(online), stored_hidden(buf))


def test_recompute_after_the_cell_changes_rewrites_states_and_next_hidden():
    buf = spec_buffer(1, nstep=replay.NStep(2, gamma=0.5))
    buf.recompute_hidden(linear_cell(0.5))
    buf.recompute_hidden(linear_cell(0.25))
    assert stored_hidden(buf)[:3, 0].tolist() == [0.0, 1.0, 2.25]
    batch = buf.sample(64)
    first = batch.index == 0  # t = 0, k = 2: bootstraps from row 2
    assert first.any() and (batch.boot[first] == 2).all()
    assert (batch.next_hidden[first, 0] == 2.25).all()
    assert torch.equal(batch.hidden[:, 0], stored_hidden(buf)[batch.index, 0])


def test_linear_cell_online_stepping_matches_step_helper():
    # pyrl.replay.recurrent.step on the SPEC windows: carry = state after the oldest element.
    cell = linear_cell(0.5)
    h = torch.zeros(1, 1, dtype=F64)
    outputs, carried = [], []
    for window in ([0.0, 1.0], [1.0, 2.0], [2.0, 3.0]):
        features, h = rec.step(cell, torch.tensor(window, dtype=F64).reshape(1, 2, 1), h)
        outputs.append(float(features))
        carried.append(float(h))
    assert outputs == [1.0, 2.5, 4.25] and carried == [0.0, 1.0, 2.5]


# ---- encoders against step-by-step acting ----------------------------------------------------


def act_and_store(buf, encoder, episodes, n_history, envs=3, seed=0):
    """Steps `envs` environments with random observations through rec.step, storing every
    step's hidden state as acting does; returns each finished episode's observations."""
    gen = torch.Generator().manual_seed(seed)
    d_o, d = buf.fields[0].shape[0], buf.recurrent.hidden[0]
    hidden = torch.zeros(envs, d, dtype=F64)
    windows = torch.zeros(envs, n_history, d_o, dtype=F64)
    obs = torch.randn(envs, d_o, generator=gen, dtype=F64)
    windows[:, -1] = obs
    lengths = torch.randint(1, 9, (envs * episodes,), generator=gen).tolist()
    remaining = [lengths[e * episodes] for e in range(envs)]
    done_count = [0] * envs
    finished, current = [], [[obs[e]] for e in range(envs)]
    while min(done_count) < episodes:
        with torch.no_grad():
            _, next_hidden = rec.step(encoder, windows, hidden)
        next_obs = torch.randn(envs, d_o, generator=gen, dtype=F64)
        ends = torch.tensor([r == 1 for r in remaining])
        buf.add(
            obs=obs,
            next_obs=next_obs,
            reward=torch.randn(envs),
            terminated=ends,
            truncated=torch.zeros(envs, dtype=torch.bool),
            action=torch.zeros(envs, 1),
            hidden=hidden,
            next_hidden=next_hidden,
        )
        windows = torch.cat([windows[:, 1:], next_obs[:, None]], 1)
        hidden = next_hidden
        for e in range(envs):
            current[e].append(next_obs[e])
            remaining[e] -= 1
            if remaining[e] == 0:
                finished.append(torch.stack(current[e]))
                done_count[e] += 1
                remaining[e] = lengths[(e * episodes + done_count[e]) % len(lengths)]
                hidden[e] = 0
                windows[e] = 0
                windows[e, -1] = next_obs[e]
                current[e] = [next_obs[e]]
        obs = next_obs
    return finished


def expected_states(encoder, observations, n_history, d):
    """hidden_in[0 .. T] from stepping `encoder` over one episode with rec.step."""
    pads = torch.zeros(n_history - 1, observations.shape[1], dtype=F64)
    padded = torch.cat([pads, observations])
    states = [torch.zeros(1, d, dtype=F64)]
    with torch.no_grad():
        for t in range(observations.shape[0] - 1):
            _, h = rec.step(encoder, padded[None, t : t + n_history], states[-1])
            states.append(h)
    return torch.cat(states)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_two_layer_rnn_recompute_agrees_with_stepping(kind):
    torch.manual_seed(0)
    make = nn.GRU if kind == "gru" else nn.LSTM
    acting, current = (make(3, 4, num_layers=2, batch_first=True).double() for _ in range(2))
    d = rec.state_size(acting)
    buf = replay.ReplayBuffer(
        400,
        {"obs": ((3,), F64), "action": (1,)},
        recurrent=replay.Recurrent((d,), n_history=3, dtype=F64),
        seed=1,
    )
    episodes = act_and_store(buf, acting, episodes=6, n_history=3)
    table = buf.episodes()
    assert len(episodes) >= len(table["id"]) and len(table["id"]) >= 12
    by_start = {}
    for obs in episodes:  # match episodes by their stored observations
        by_start[tuple(obs[0].tolist())] = obs
    for e in range(len(table["id"])):  # acting's stored states == stepping the acting encoder
        obs = by_start[tuple(buf.storage.column("obs")[int(table["start"][e])].tolist())]
        assert torch.allclose(
            stored_hidden(buf, e), expected_states(acting, obs, 3, d), atol=1e-12, rtol=0
        )
    result = buf.recompute_hidden(current, chunk=5)
    assert result["episodes"] == len(table["id"])
    assert result["rows"] == int(table["length"].sum())
    for e in range(len(table["id"])):
        obs = by_start[tuple(buf.storage.column("obs")[int(table["start"][e])].tolist())]
        assert torch.allclose(
            stored_hidden(buf, e), expected_states(current, obs, 3, d), atol=1e-10, rtol=0
        )
    buf.check()


# ---- the ops against the reference -----------------------------------------------------------


def random_buffer(
    seed,
    capacity,
    reward_shape=(),
    reward_dtype=torch.float32,
    n_history=1,
    episodes=30,
    nstep=None,
):
    gen = torch.Generator().manual_seed(seed)
    buf = replay.ReplayBuffer(
        capacity,
        {"obs": (3,), "action": ((2,), torch.int64), "reward": (reward_shape, reward_dtype)},
        recurrent=replay.Recurrent((5,), n_history=n_history),
        seed=seed,
        nstep=nstep,
    )
    for _ in range(episodes):
        length = int(torch.randint(1, capacity // 3, (1,), generator=gen))
        buf.add_episode(
            obs=torch.randn(length + 1, 3, generator=gen),
            reward=torch.randn((length, *reward_shape), generator=gen),
            terminated=bool(torch.rand(1, generator=gen) < 0.5),
            action=torch.randint(0, 9, (length, 2), generator=gen),
            hidden=torch.randn(length + 1, 5, generator=gen),
        )
    return buf


@pytest.mark.parametrize("seed,capacity,n_history", [(0, 37, 1), (1, 64, 3), (2, 11, 2)])
def test_gather_sequences_matches_reference(seed, capacity, n_history):
    buf = random_buffer(seed, capacity, n_history=n_history)
    table = buf.episodes()
    ids = torch.cat([table["id"], torch.tensor([0, -5, 10**6])])  # evicted and unknown ids
    for key in ("obs", "hidden"):
        for positions in (None, 1, 4):
            seq, lengths = buf.gather_sequences(ids, key=key, positions=positions)
            want_positions = seq.shape[1]
            expected, expected_lengths = reference.gather_episodes(
                buf.storage.column(key), table, ids.tolist(), n_history - 1, want_positions
            )
            assert torch.equal(seq, expected) and torch.equal(lengths, expected_lengths)


@pytest.mark.parametrize(
    "seed,capacity,reward_shape,reward_dtype,n,steps",
    [
        (0, 41, (), torch.float32, 1, 5),
        (1, 64, (2,), torch.float64, 3, 8),
        (2, 23, (), torch.float64, 5, 3),
        (3, 100, (3,), torch.float32, 2, 1),
    ],
)
def test_sample_sequences_matches_reference(seed, capacity, reward_shape, reward_dtype, n, steps):
    buf = random_buffer(
        seed, capacity, reward_shape, reward_dtype, nstep=replay.NStep(n, gamma=0.9)
    )
    burn_in = 1 if steps > 1 else 0
    batch = buf.sample_sequences(40, length=steps - burn_in, burn_in=burn_in)
    table = buf.episodes()
    columns = {name: buf.storage.column(name) for name in ("obs", "hidden", "action")}
    expected = reference.gather_windows(
        columns,
        buf.storage.column("reward"),
        ("obs", "hidden"),
        buf.storage.row_episode,
        table,
        batch.index,
        steps,
        n,
        0.9,
    )
    assert torch.equal(batch.obs, expected["obs"]) and torch.equal(batch.action, expected["action"])
    assert torch.equal(batch.hidden, expected["hidden"][:, 0])
    for key in ("mask", "k"):
        assert torch.equal(batch[key], expected[key]), key
    for key in ("reward", "discount"):
        assert batch[key].dtype == reward_dtype
        torch.testing.assert_close(batch[key], expected[key], rtol=1e-6, atol=1e-6)
    assert torch.equal(batch.generation, buf.storage.row_episode[batch.index])
    assert (batch.k[batch.mask] >= 1).all() and (batch.k <= steps - torch.arange(steps)).all()


def test_prioritized_sequences_follow_the_window_priority():
    buf2 = replay.ReplayBuffer(
        200,
        {"obs": (3,), "action": ((2,), torch.int64)},
        recurrent=replay.Recurrent((5,)),
        seed=0,
        prioritized=replay.PER(alpha=1.0, beta=1.0, beta_steps=None),
    )
    for _ in range(3):
        buf2.add_episode(
            obs=torch.randn(11, 3),
            reward=torch.zeros(10),
            action=torch.zeros(10, 2, dtype=torch.int64),
            hidden=torch.zeros(11, 5),
        )
    batch = buf2.sample_sequences(8, length=4)
    td = torch.rand(8, 4)
    mask = batch.mask.clone()
    mask[:, 0] = False
    applied = buf2.update_sequence_priorities(batch.index, batch.generation, td, mask)
    # Of repeated rows the last write wins.
    last = {int(r): j for j, r in enumerate(batch.index)}
    for row, j in last.items():
        kept = td[j][mask[j]]
        want = 0.9 * kept.max() + 0.1 * kept.mean() if kept.numel() else torch.tensor(0.0)
        assert applied[j]
        assert buf2.priorities()[row] == pytest.approx(float(want) + 1e-6, rel=1e-6)
    # Draws now follow those priorities: a row with all the mass takes every draw.
    rows = buf2.priorities().nonzero()[:, 0]
    buf2.update_priorities(rows, buf2.storage.row_episode[rows], torch.full((len(rows),), 1e-12))
    favourite = int(rows[3])
    buf2.update_priorities([favourite], [int(buf2.storage.row_episode[favourite])], [5.0])
    assert (buf2.sample_sequences(16, length=2).index == favourite).all()


# ---- concurrency: eviction, wrap-around, the generation guard --------------------------------


def test_episodes_evicted_during_a_recompute_are_skipped():
    buf = replay.ReplayBuffer(
        30, {"obs": (1,), "action": (1,)}, recurrent=replay.Recurrent((1,)), seed=0
    )

    def episode(value, length):
        buf.add_episode(
            obs=torch.full((length + 1, 1), value),
            reward=torch.zeros(length),
            action=torch.zeros(length, 1),
            hidden=torch.full((length + 1, 1), -1.0),
        )

    for value in range(1, 5):
        episode(float(value), 5)  # 24 of 30 rows
    episode(5.0, 7)  # rows 24 .. 1: wraps around the end and evicts episode 0
    table = buf.episodes()
    assert table["id"].tolist() == [1, 2, 3, 4] and int(table["start"][-1]) == 24

    def evicting_encoder(x, h0):
        episode(9.0, 6)  # rows 2 .. 8, evicting episode 1 while the encoder runs
        return torch.cumsum(x, 1) + h0[:, None]

    result = buf.recompute_hidden(evicting_encoder, episodes=[1, 2, 3, 4], chunk=8)
    table = buf.episodes()
    assert table["id"].tolist() == [2, 3, 4, 5]
    assert result == {"episodes": 3, "rows": 5 + 5 + 7}
    for e, episode_id in enumerate(table["id"].tolist()):
        hidden = stored_hidden(buf, e)[:, 0]
        obs = buf.gather_sequences([episode_id])[0][0, :, 0]
        if episode_id != 5:  # refreshed: h0 = the stored first state (-1), then -1 + cumsum
            assert torch.equal(hidden, torch.cat([torch.tensor([-1.0]), -1.0 + obs[:-1].cumsum(0)]))
        else:  # the episode added meanwhile keeps its own states
            assert (hidden == -1.0).all()
    buf.check()


def test_store_hidden_writes_only_rows_of_the_sampled_generation():
    buf = replay.ReplayBuffer(
        20, {"obs": (1,), "action": (1,)}, recurrent=replay.Recurrent((2,)), seed=3
    )
    for _ in range(3):
        buf.add_episode(
            obs=torch.zeros(6, 1),
            reward=torch.zeros(5),
            action=torch.zeros(5, 1),
            hidden=torch.zeros(6, 2),
        )
    batch = buf.sample_sequences(6, length=3, burn_in=2)
    states = torch.arange(12.0).reshape(6, 2)
    applied = buf.store_hidden(batch.index, batch.generation, states, offset=2)
    rows = (batch.index + 2) % 20
    # A window starting 4 steps into its episode reaches past the final row: not its rows.
    assert torch.equal(applied, buf.storage.row_episode[rows] == batch.generation) and applied.any()
    last = {int(r): j for j, r in enumerate(rows) if applied[j]}
    for row, j in last.items():
        assert torch.equal(buf.storage.column("hidden")[row], states[j])
    buf.add_episode(
        obs=torch.zeros(11, 1),
        reward=torch.zeros(10),
        action=torch.zeros(10, 1),
        hidden=torch.full((11, 2), 7.0),
    )  # overwrites the oldest rows
    before = buf.storage.column("hidden").clone()
    applied = buf.store_hidden(batch.index, batch.generation, states + 100, offset=2)
    alive = buf.storage.row_episode[rows] == batch.generation
    assert torch.equal(applied, alive) and not alive.all() and alive.any()
    assert torch.equal(buf.storage.column("hidden")[rows[~alive]], before[rows[~alive]])


def test_recalc_delta_refreshes_sampled_episodes_when_due():
    buf = replay.ReplayBuffer(
        100,
        {"obs": ((1,), F64), "action": (1,)},
        seed=0,
        recurrent=replay.Recurrent((1,), dtype=F64, recalc_delta=3),
    )
    for _ in range(4):
        buf.add_episode(
            obs=torch.ones(6, 1, dtype=F64),
            reward=torch.zeros(5),
            action=torch.zeros(5, 1),
            hidden=torch.zeros(6, 1, dtype=F64),
        )
    calls = []

    def encoder(x, h0):
        calls.append(x.shape[0])
        return linear_cell(0.5)(x, h0)

    batch = buf.sample_sequences(32, length=2, encoder=encoder)
    assert sum(calls) == len(torch.unique(batch.generation))  # never refreshed: all due
    expected = stored_hidden(buf, 0)
    assert torch.equal(batch.hidden[:, 0], buf.storage.column("hidden")[batch.index, 0])
    assert expected[1:, 0].tolist() == [1.0, 1.5, 1.75, 1.875, 1.9375]
    calls.clear()
    buf.sample_sequences(32, length=2, encoder=encoder)  # refreshed 1 call ago: not due
    assert calls == []
    for _ in range(2):
        buf.sample_sequences(4, length=2)
    buf.sample_sequences(32, length=2, encoder=encoder)
    assert sum(calls) >= 1


# ---- add paths, HER, save and restore --------------------------------------------------------


def test_step_adds_store_hidden_and_the_final_state():
    buf = replay.ReplayBuffer(
        50,
        {"obs": (2,), "action": (1,)},
        recurrent=replay.Recurrent((3,)),
        seed=0,
        nstep=replay.NStep(3, gamma=0.99),
    )
    hidden = torch.zeros(2, 3)
    for t in range(4):
        buf.add(
            obs=np.full((2, 2), t, np.float32),
            next_obs=np.full((2, 2), t + 1, np.float32),
            reward=[0.0, 0.0],
            terminated=[False, t == 3],
            truncated=[t == 3, False],
            action=np.zeros((2, 1)),
            hidden=hidden,
            next_hidden=hidden + 1,
        )
        hidden = hidden + 1
    assert len(buf) == 8
    h = stored_hidden(buf, 0)[:, 0]
    assert h.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the final row holds next_hidden
    batch = buf.sample(16)
    assert torch.equal(batch.next_hidden, buf.storage.column("hidden")[batch.boot])


def test_her_samples_carry_hidden_at_the_bootstrap_row():
    spec = {"observation": (2,), "achieved_goal": (2,), "desired_goal": (2,), "action": (1,)}
    buf = replay.ReplayBuffer(
        200,
        spec,
        recurrent=replay.Recurrent((4,)),
        seed=0,
        her=replay.HER("future", 4, replay.sparse_l2(0.05)),
        nstep=replay.NStep(3, gamma=0.98, floating=True),
    )
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        obs = {k: torch.randn(9, 2, generator=gen) for k in spec if k != "action"}
        buf.add_episode(
            obs=obs,
            reward=torch.full((8,), -1.0),
            action=torch.zeros(8, 1),
            hidden=torch.randn(9, 4, generator=gen),
        )
    batch = buf.sample(256)
    assert batch.is_her.any() if "is_her" in batch else (batch.her_row >= 0).any()
    column = buf.storage.column("hidden")
    assert torch.equal(batch.hidden, column[batch.index])
    assert torch.equal(batch.next_hidden, column[batch.boot])
    assert "hidden" not in batch.obs and "hidden" not in batch.next_obs


def test_save_and_load_restore_states_and_settings(tmp_path):
    buf = random_buffer(5, 60, n_history=2)
    buf.recompute_hidden(nn.GRU(3, 5, batch_first=True))
    path = tmp_path / "recurrent.pt"
    buf.save(path)
    loaded = replay.ReplayBuffer.load(path)
    assert loaded.recurrent == buf.recurrent
    assert torch.equal(loaded.storage.column("hidden"), buf.storage.column("hidden"))
    a, b = buf.sample_sequences(8, 3), loaded.sample_sequences(8, 3)
    assert all(torch.equal(a[k], b[k]) for k in ("obs", "hidden", "reward", "index"))
    plain = replay.ReplayBuffer(60, {"obs": (3,)})
    with pytest.raises(ValueError, match="state was saved from a buffer"):
        plain.load_state_dict(buf.state_dict())


# ---- bad inputs: named, and nothing changes --------------------------------------------------


def test_bad_inputs_name_the_argument_and_change_nothing():
    buf = random_buffer(6, 50)
    snapshot = {k: v.clone() for k, v in buf.storage.state_dict()["columns"].items()}
    state_before = [t.clone() for t in buf.storage.state]

    def unchanged():
        columns = buf.storage.state_dict()["columns"]
        assert all(torch.equal(columns[k], v) for k, v in snapshot.items())
        assert all(torch.equal(a, b) for a, b in zip(buf.storage.state, state_before))

    episode = dict(
        obs=torch.zeros(4, 3), reward=torch.zeros(3), action=torch.zeros(3, 2, dtype=torch.int64)
    )
    with pytest.raises(ValueError, match="hidden"):
        buf.add_episode(**episode)  # no hidden
    with pytest.raises(ValueError, match=r"hidden.*shape"):
        buf.add_episode(**episode, hidden=torch.zeros(4, 6))
    with pytest.raises(ValueError, match=r"hidden.*float32"):
        buf.add_episode(**episode, hidden=torch.zeros(4, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match="next_hidden"):
        buf.add(
            obs=torch.zeros(1, 3),
            next_obs=torch.zeros(1, 3),
            reward=[0.0],
            terminated=[True],
            truncated=[False],
            action=torch.zeros(1, 2, dtype=torch.int64),
            hidden=torch.zeros(1, 5),
        )
    with pytest.raises(ValueError, match=r"encoder: should return .*\[.*5\]"):
        buf.recompute_hidden(lambda x, h0: torch.zeros(x.shape[0], x.shape[1], 4))
    with pytest.raises(ValueError, match="encoder: a GRU with 1 layer"):
        buf.recompute_hidden(nn.GRU(3, 7, batch_first=True))
    with pytest.raises(ValueError, match="batch_first"):
        buf.recompute_hidden(nn.GRU(3, 5))
    with pytest.raises(ValueError, match="encoder: should be"):
        buf.recompute_hidden("gru")
    with pytest.raises(ValueError, match="episodes should be"):
        buf.recompute_hidden(nn.GRU(3, 5, batch_first=True), episodes=[0.5])
    with pytest.raises(ValueError, match="chunk"):
        buf.recompute_hidden(nn.GRU(3, 5, batch_first=True), chunk=0)
    with pytest.raises(ValueError, match="burn_in"):
        buf.sample_sequences(4, 3, burn_in=-1)
    with pytest.raises(ValueError, match="length"):
        buf.sample_sequences(4, 0)
    with pytest.raises(ValueError, match="states should have shape"):
        buf.store_hidden([0], [0], torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"ReplayBuffer.store_hidden: index should be int64"):
        buf.store_hidden([0.5], [0], torch.zeros(1, 5))
    with pytest.raises(ValueError, match="td_abs should be"):
        buf.update_sequence_priorities([0], [0], torch.zeros(3))
    unchanged()
    with pytest.raises(ValueError, match="stores no hidden states"):
        replay.ReplayBuffer(10, {"obs": (3,)}).sample_sequences(2, 2)
    for bad, match in (
        (dict(hidden=(0,)), "hidden"),
        (dict(hidden=(4,), n_history=0), "n_history"),
        (dict(hidden=(4,), dtype=torch.int32), "dtype"),
        (dict(hidden=(4,), recalc_delta=-1), "recalc_delta"),
    ):
        with pytest.raises(ValueError, match=match):
            replay.Recurrent(**bad)
    with pytest.raises(ValueError, match="Recurrent.key"):
        replay.ReplayBuffer(
            10,
            {"obs": (3,), "image": (2, 2)},
            obs_keys=("obs", "image"),
            recurrent=replay.Recurrent((4,), key="image"),
        )
    with pytest.raises(ValueError, match="reserved"):
        replay.ReplayBuffer(10, {"obs": (3,), "hidden": (3,)})


def test_ops_check_rows_and_ids():
    buf = random_buffer(7, 40)
    state, hidden = buf.storage.state, buf.storage.column("hidden")
    ops = torch.ops.pyrl
    with pytest.raises(ValueError, match=r"index\[1\] should be in \[0, 40\)"):
        ops.replay_write_rows(
            state, hidden, torch.tensor([0, 40]), torch.tensor([0, 0]), torch.zeros(2, 5)
        )
    final_row = int(buf.episodes()["start"][0] + buf.episodes()["length"][0]) % 40
    with pytest.raises(ValueError, match=r"start\[0\] should be a stored transition's row"):
        columns = [buf.storage.column(n) for n in buf.storage.names if n != "hidden"]
        ops.replay_gather_windows(state, columns, torch.tensor([final_row]), 2, buf.op_config)
    with pytest.raises(ValueError, match="values hold 1 positions"):
        ops.replay_scatter_episodes(
            state, hidden, buf.episodes()["id"][:1], torch.zeros(1, 1, 5), 0
        )
    with pytest.raises(ValueError, match="values should have the column's dtype"):
        ops.replay_scatter_episodes(
            state, hidden, torch.tensor([0]), torch.zeros(1, 50, 5, dtype=F64), 0
        )


def test_opcheck_sequence_ops():
    buf = random_buffer(8, 40)
    state = buf.storage.state
    hidden = buf.storage.column("hidden")
    ids = buf.episodes()["id"]
    start = buf.sample(5).index
    opcheck = torch.library.opcheck
    opcheck(torch.ops.pyrl.replay_gather_episodes.default, (state, hidden, ids, 1, 9))
    windowed = [buf.storage.column(n) for n in buf.storage.names if n != "hidden"]
    opcheck(
        torch.ops.pyrl.replay_gather_windows.default, (state, windowed, start, 4, buf.op_config)
    )
    values = torch.zeros(len(ids), 40, 5)
    opcheck(
        torch.ops.pyrl.replay_scatter_episodes.default,
        (state, hidden.clone(), ids, values, 1),
        test_utils=("test_schema", "test_faketensor"),
    )
    opcheck(
        torch.ops.pyrl.replay_write_rows.default,
        (state, hidden.clone(), start, buf.storage.row_episode[start], torch.zeros(5, 5)),
        test_utils=("test_schema", "test_faketensor"),
    )


def test_host_and_dispatcher_routes_agree_and_empty_buffers_say_so(sample_opchecks):
    buf = random_buffer(9, 80, nstep=replay.NStep(2, gamma=0.9))
    names = [n for n in buf.storage.names if n != "hidden"]
    columns = [buf.storage.column(n) for n in names]
    state = [t.clone() for t in buf.storage.state]  # the buffer's next call draws the same
    args = (state, columns, buf.storage.column("hidden"), 16, 5, buf.op_config)
    out = named("replay_sample_windows", torch.ops.pyrl.replay_sample_windows(*args))
    batch = buf.sample_sequences(16, length=4, burn_in=1)
    assert torch.equal(batch.hidden, out["hidden_first"])
    assert torch.equal(batch.obs, out["fields"][0]) and torch.equal(batch.action, out["fields"][1])
    for key in ("index", "mask", "reward", "discount", "k", "terminated", "generation", "weight"):
        assert torch.equal(batch[key], out[key]), key
    torch.library.opcheck(
        torch.ops.pyrl.replay_sample_windows.default, args, test_utils=sample_opchecks
    )
    empty = replay.ReplayBuffer(10, {"obs": (3,)}, recurrent=replay.Recurrent((2,)))
    with pytest.raises(ValueError, match="the buffer is empty"):
        empty.sample_sequences(2, 2)


def test_sequence_terminals_do_not_depend_on_gamma():
    # With gamma 0 every discount is 0: terminated then comes from the episode table, and must
    # match what a buffer with another gamma (same data, same draws) reports.
    a, b = (random_buffer(11, 90, nstep=replay.NStep(2, gamma)) for gamma in (0.5, 0.0))
    x, y = a.sample_sequences(32, length=5), b.sample_sequences(32, length=5)
    assert torch.equal(x.index, y.index) and x.terminated.any()
    assert torch.equal(x.terminated, y.terminated)
    assert torch.equal(x.terminated, (x.discount == 0) & x.mask)
    assert "discount" not in random_buffer(11, 90).sample_sequences(4, length=2)
