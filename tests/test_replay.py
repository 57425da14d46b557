"""The replay buffer and its ops against SPEC 1.2/1.3's worked numbers, the slow reference in
pyrl.reference, sampling statistics, stale updates, save/restore, threads and bad input."""

import math
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from pyrl import _C, reference, replay

F64 = torch.float64


# ---- helpers -------------------------------------------------------------------------------------


def new_trees(capacity):
    size = _C.tree_size(capacity)
    return torch.zeros(size, dtype=F64), torch.full((size,), math.inf, dtype=F64)


def tree_widths(capacity):
    """Level widths root first, as csrc/kernels/sum_tree.h lays them out."""
    widths = [(max(capacity, 1) + 7) // 8 * 8]
    while widths[-1] > 8:
        widths.append(((widths[-1] + 7) // 8 + 7) // 8 * 8)
    return [8] + widths[::-1]


def assert_trees_consistent(sum_tree, min_tree, capacity):
    """Every parent equals its 8 children summed left to right (and their min), exactly."""
    widths = tree_widths(capacity)
    offsets = np.cumsum([0] + widths[:-1])
    s, m = sum_tree.tolist(), min_tree.tolist()
    assert len(s) == sum(widths)
    for level in range(len(widths) - 1):
        for node in range((widths[level + 1] + 7) // 8):
            first = offsets[level + 1] + 8 * node
            total = 0.0
            for k in range(8):
                total += s[first + k]
            assert s[offsets[level] + node] == total
            assert m[offsets[level] + node] == min(m[first : first + 8])
    leaves = s[offsets[-1] : offsets[-1] + capacity]
    mins = m[offsets[-1] : offsets[-1] + capacity]
    assert all(mn == (lf if lf > 0 else math.inf) for lf, mn in zip(leaves, mins))


def buffer(capacity=64, spec=None, **kwargs):
    return replay.ReplayBuffer(capacity, spec or {"obs": (3,), "action": (2,)}, seed=0, **kwargs)


def episode(T, seed=0, obs_dim=3, act_dim=2, heads=None):
    g = torch.Generator().manual_seed(seed)
    reward_shape = (T,) if heads is None else (T, heads)
    return dict(
        obs=torch.randn(T + 1, obs_dim, generator=g),
        action=torch.randn(T, act_dim, generator=g),
        reward=torch.randn(reward_shape, generator=g),
    )


def snapshot(buf):
    return {
        k: (v.clone() if isinstance(v, torch.Tensor) else v)
        for k, v in buf.state_dict().items()
        if k not in ("config", "columns", "stage")
    } | {f"columns.{k}": v.clone() for k, v in buf.state_dict()["columns"].items()}


def assert_unchanged(buf, before):
    after = snapshot(buf)
    assert before.keys() == after.keys()
    for key in before:
        if isinstance(before[key], torch.Tensor):
            assert torch.equal(before[key], after[key]), key
        else:
            assert before[key] == after[key], key


# ---- SPEC 1.3: test_per_basic --------------------------------------------------------------------


def spec_tree():
    sum_tree, min_tree = new_trees(4)
    leaves = torch.tensor([1.0, 4.0, 9.0, 16.0], dtype=F64) ** 0.5  # |delta|^alpha, alpha = 0.5
    torch.ops.pyrl.tree_update(sum_tree, min_tree, 4, torch.arange(4), leaves)
    return sum_tree, min_tree


def test_per_basic_tree():
    sum_tree, min_tree = spec_tree()
    assert sum_tree[0] == 10.0 and min_tree[0] == 1.0
    uniform = torch.tensor([0.5, 0.4], dtype=F64)
    index, weight = torch.ops.pyrl.tree_sample(sum_tree, min_tree, 4, uniform, 1.0, False)
    assert index.tolist() == [1, 3]
    torch.testing.assert_close(weight, torch.tensor([0.5, 0.25]))
    _, weight = torch.ops.pyrl.tree_sample(sum_tree, min_tree, 4, uniform, 0.5, False)
    torch.testing.assert_close(weight, torch.tensor([0.7071068, 0.5]))
    _, weight = torch.ops.pyrl.tree_sample(sum_tree, min_tree, 4, uniform, 0.5, True)
    torch.testing.assert_close(weight, torch.tensor([1.0, 0.7071068]))
    torch.ops.pyrl.tree_update(
        sum_tree, min_tree, 4, torch.tensor([1]), torch.tensor([0.25], dtype=F64) ** 0.5
    )
    assert sum_tree[0] == 8.5
    assert_trees_consistent(sum_tree, min_tree, 4)


def test_per_basic_buffer():
    """The same numbers through the buffer: four 1-step episodes, transitions at rows 0, 2, 4, 6."""
    buf = buffer(8, prioritized=replay.PER(alpha=0.5, beta=1.0, beta_steps=None, eps=0.0))
    for i in range(4):
        buf.add_episode(**episode(1, seed=i))
    batch = buf.sample(1)
    buf.update_priorities(
        torch.tensor([0, 2, 4, 6]),
        buf.storage.row_episode[[0, 2, 4, 6]],
        torch.tensor([1.0, 4.0, 9.0, 16.0]),
    )
    assert buf.priorities().tolist() == [1, 0, 2, 0, 3, 0, 4, 0]
    before = buf.priorities()
    for _ in range(100):  # the original's bug: sampling moved priorities towards 1
        batch = buf.sample(2)
    assert torch.equal(buf.priorities(), before)
    assert batch.index.shape == (2,)
    reference_index, reference_weight = reference.tree_sample(
        before, torch.tensor([0.5, 0.4], dtype=F64), 1.0
    )
    assert reference_index.tolist() == [2, 6]
    torch.testing.assert_close(reference_weight, torch.tensor([0.5, 0.25]))


def test_per_frequencies_single_draws():
    """200k draws of B = 1 land on each leaf with frequency P within 0.005."""
    sum_tree, min_tree = spec_tree()
    uniform = torch.rand(200_000, dtype=F64, generator=torch.Generator().manual_seed(0))
    counts = torch.zeros(4)
    for u in uniform.split(1):
        index, _ = torch.ops.pyrl.tree_sample(sum_tree, min_tree, 4, u, 0.0, False)
        counts[index] += 1
    assert (counts / counts.sum() - torch.tensor([0.1, 0.2, 0.3, 0.4])).abs().max() < 0.005


def test_sampling_frequencies_chi_square():
    """Over a buffer with random priorities, sampled rows follow p^alpha / sum (chi-square)."""
    buf = buffer(200, prioritized=replay.PER(alpha=0.7))
    for i in range(20):
        buf.add_episode(**episode(9, seed=i))
    batch = buf.sample(len(buf))
    td = torch.rand(len(buf), generator=torch.Generator().manual_seed(1)) * 5
    buf.update_priorities(batch.index, batch.generation, td)
    leaves = buf.priorities()
    probability = leaves / leaves.sum()
    counts = torch.zeros(200, dtype=F64)
    draws = 0
    for _ in range(400):
        counts += torch.bincount(buf.sample(256).index, minlength=200).double()
        draws += 256
    valid = probability > 0
    assert counts[~valid].sum() == 0  # final rows and free rows are never drawn
    expected = probability[valid] * draws
    chi2 = float(((counts[valid] - expected) ** 2 / expected).sum())
    dof = int(valid.sum()) - 1
    # Stratified draws are less spread than independent ones, so this bound is loose.
    assert chi2 < dof + 5 * math.sqrt(2 * dof)


def test_importance_weights_formula():
    per = replay.PER(alpha=0.6, beta=0.3, beta_steps=4)
    buf = buffer(64, prioritized=per)
    for i in range(6):
        buf.add_episode(**episode(7, seed=i))
    batch = buf.sample(32)
    buf.update_priorities(batch.index, batch.generation, torch.linspace(0.1, 3.0, 32))
    leaves = buf.priorities()
    smallest = leaves[leaves > 0].min()
    for calls in range(1, 7):
        batch = buf.sample(16)
        beta = min(1.0, 0.3 + 0.7 * calls / 4)
        assert per.beta_at(calls) == reference.beta_at(0.3, 4, calls) == pytest.approx(beta)
        expected = (smallest / leaves[batch.index]) ** beta
        torch.testing.assert_close(batch.weight, expected.float())


def test_uniform_buffer_weights_are_one_and_rows_uniform():
    buf = buffer(40)
    for i in range(4):
        buf.add_episode(**episode(9, seed=i))
    counts = torch.zeros(40)
    for _ in range(200):
        batch = buf.sample(64)
        assert torch.equal(batch.weight, torch.ones(64))
        counts += torch.bincount(batch.index, minlength=40)
    valid = buf.priorities() > 0
    assert int(valid.sum()) == 36
    frequency = counts[valid] / counts.sum()
    assert (frequency - 1 / 36).abs().max() < 0.005
    with pytest.raises(ValueError, match="samples uniformly"):
        buf.update_priorities(batch.index, batch.generation, torch.ones(64))


# ---- SPEC 1.3: test_ring_evict -------------------------------------------------------------------


def test_ring_evict():
    buf = buffer(8, prioritized=replay.PER(), nstep=replay.NStep(n=2, gamma=0.5))
    a, b, c = episode(3, seed=1), episode(2, seed=2), episode(2, seed=3)
    buf.add_episode(**a)
    buf.add_episode(**b)
    assert buf.storage.counter("cursor") == 7
    buf.add_episode(**c)
    assert buf.storage.row_episode.tolist() == [2, 2, -1, -1, 1, 1, 1, 2]
    assert buf.priorities().tolist() == [1, 0, 0, 0, 1, 1, 0, 1]
    table = buf.episodes()
    assert table["id"].tolist() == [1, 2] and table["start"].tolist() == [4, 7]
    assert len(buf) == 4 and buf.num_episodes == 2
    assert torch.equal(buf.storage.columns[0][[7, 0, 1]], c["obs"])  # C wraps: rows 7, 0, 1
    assert torch.equal(buf.storage.columns[0][[4, 5, 6]], b["obs"])  # B untouched
    batch = buf.sample(64)
    rows = set(batch.index.tolist())
    assert rows == {0, 4, 5, 7}
    from_c = batch.index == 7  # t = 0 of C: the 2-step window reads rows 7 -> 0 -> 1
    assert from_c.any()
    assert torch.equal(batch.boot[from_c], torch.ones(int(from_c.sum()), dtype=torch.int64))
    expected = c["reward"][0] + 0.5 * c["reward"][1]
    torch.testing.assert_close(batch.reward[from_c], expected.expand(int(from_c.sum())))
    torch.testing.assert_close(batch.next_obs[from_c], c["obs"][2].expand(int(from_c.sum()), 3))


def test_transitions_export_every_stored_step_in_episode_order():
    buf = buffer(8)
    a, b, c = episode(3, seed=1), episode(2, seed=2), episode(2, seed=3)
    buf.add_episode(**a)
    buf.add_episode(**b, terminated=True)
    buf.add_episode(**c)  # evicts A and wraps: rows 7, 0, 1
    out = buf.transitions()
    assert torch.equal(out.obs, torch.cat([b["obs"][:2], c["obs"][:2]]))
    assert torch.equal(out.next_obs, torch.cat([b["obs"][1:], c["obs"][1:]]))
    assert torch.equal(out.action, torch.cat([b["action"], c["action"]]))
    assert torch.equal(out.reward, torch.cat([b["reward"], c["reward"]]))
    assert out.terminated.tolist() == [False, True, False, False]
    assert out.truncated.tolist() == [False, False, False, True]
    assert out.episode.tolist() == [1, 1, 2, 2]
    out.obs.add_(1)  # a copy: the buffer is untouched
    assert torch.equal(buf.transitions().obs[:2], b["obs"][:2])

    keys = ("observation", "desired_goal")
    goals = replay.ReplayBuffer(
        16, {"observation": (2,), "desired_goal": (1,), "action": ()}, obs_keys=keys, seed=0
    )
    for t in range(3):
        obs = {"observation": torch.full((2, 2), float(t)), "desired_goal": torch.ones(2, 1) * t}
        nxt = {k: v + 1 for k, v in obs.items()}
        goals.add(
            obs=obs,
            next_obs=nxt,
            action=torch.tensor([t, 10 + t]),
            reward=torch.zeros(2),
            terminated=torch.tensor([t == 1, False]),
            truncated=torch.zeros(2, dtype=torch.bool),
        )
    out = goals.transitions()  # env 0's episode of 2 steps; env 1 still runs (staged)
    assert set(out.obs) == set(keys) and set(out.next_obs) == set(keys)
    assert out.obs["observation"][:, 0].tolist() == [0.0, 1.0]
    assert out.next_obs["observation"][:, 0].tolist() == [1.0, 2.0]
    assert out.action.tolist() == [0, 1] and out.terminated.tolist() == [False, True]
    assert goals.end_running_episodes() == 1
    assert goals.transitions().action.tolist() == [0, 1, 10, 11]  # cut at the newest obs


# ---- against the reference -----------------------------------------------------------------------


def drive(buf, ref, rng, steps, envs, heads, extra_dim=0):
    """Random adds (steps of N envs with random episode ends, and whole episodes) on both."""
    reward_shape = (envs,) if heads is None else (envs, heads)
    for step in range(steps):
        if rng.random() < 0.1:
            T = int(rng.integers(1, max(2, buf.capacity // 3)))
            ep = episode(T, seed=int(rng.integers(1 << 30)), heads=heads)
            terminated = bool(rng.random() < 0.5)
            buf.add_episode(**ep, terminated=terminated)
            ref.add_episode(
                {"obs": ep["obs"]}, {"action": ep["action"], "reward": ep["reward"]}, terminated
            )
            continue
        obs = torch.from_numpy(rng.standard_normal((envs, 3)).astype(np.float32))
        next_obs = torch.from_numpy(rng.standard_normal((envs, 3)).astype(np.float32))
        action = torch.from_numpy(rng.standard_normal((envs, 2)).astype(np.float32))
        reward = torch.from_numpy(rng.standard_normal(reward_shape).astype(np.float32))
        terminated = torch.from_numpy(rng.random(envs) < 0.08)
        truncated = torch.from_numpy(rng.random(envs) < 0.08) & ~terminated
        buf.add(
            obs=obs,
            action=action,
            reward=reward,
            next_obs=next_obs,
            terminated=terminated,
            truncated=truncated,
        )
        ref.add(
            {"obs": obs},
            {"obs": next_obs},
            {"action": action, "reward": reward},
            terminated,
            truncated,
        )


def twin_draws(buf, count):
    """The uniforms the buffer's next sample() will draw, recomputed by the reference from the
    seed and the call count (streams: 0 row, 3 lookahead)."""
    uniform = reference.counter_uniforms(buf.seed, buf.sample_calls, 0, count)
    floating = None
    if buf.nstep.floating and buf.nstep.n > 1:
        floating = reference.counter_uniforms(buf.seed, buf.sample_calls, 3, count)
    assert torch.equal(uniform, buf.next_uniforms(count)["row"])
    return uniform, floating


def assert_matches_reference(buf, ref):
    assert buf.storage.row_episode.tolist() == ref.row_episode
    torch.testing.assert_close(
        buf.priorities(), torch.tensor(ref.leaves, dtype=F64), rtol=1e-12, atol=0
    )
    assert len(buf) == sum(e["length"] for e in ref.episodes.values())
    table = buf.episodes()
    assert table["id"].tolist() == sorted(ref.episodes)
    for i, start, length, term in zip(
        *(table[k].tolist() for k in ("id", "start", "length", "terminated"))
    ):
        assert ref.episodes[i] == {"start": start, "length": length, "terminated": term}
    for row, data in enumerate(ref.rows):
        if data is not None:
            for f, column in zip(buf.fields, buf.storage.columns):
                assert torch.equal(column[row], data[f.name]), (row, f.name)
    assert_trees_consistent(buf.storage.sum_tree, buf.storage.min_tree, buf.capacity)


@pytest.mark.parametrize("capacity", [7, 16, 37, 100])
@pytest.mark.parametrize("envs", [1, 3])
@pytest.mark.parametrize("heads", [None, 3])
@pytest.mark.parametrize("prioritized", [False, True])
@pytest.mark.parametrize("nstep", [(1, False), (3, True), (4, False)])
def test_matches_reference(capacity, envs, heads, prioritized, nstep):
    per = replay.PER(alpha=0.6, beta=0.4, beta_steps=50) if prioritized else None
    n, floating = nstep
    spec = {"obs": (3,), "action": (2,)}
    if heads is not None:
        spec["reward"] = (heads,)
    buf = replay.ReplayBuffer(
        capacity,
        spec,
        prioritized=per,
        seed=capacity,
        nstep=replay.NStep(n=n, gamma=0.9, floating=floating),
        max_episode_steps=capacity // 2,
    )
    ref = reference.ReplayBuffer(
        capacity, alpha=per.alpha if per else 0.0, max_episode_steps=capacity // 2
    )
    rng = np.random.default_rng(capacity * 7 + envs)
    for round_ in range(6):
        drive(buf, ref, rng, steps=15, envs=envs, heads=heads)
        assert_matches_reference(buf, ref)
        if len(buf) == 0:
            continue
        uniform, floating_uniform = twin_draws(buf, 33)
        beta = reference.beta_at(per.beta, per.beta_steps, buf.sample_calls) if per else 0.0
        direct = (
            None if per else reference.direct_rows(buf.priorities(), buf.seed, buf.sample_calls, 33)
        )
        batch = buf.sample(33)
        expected = ref.sample(uniform, floating_uniform, n, 0.9, beta, index=direct)
        for key in ("index", "generation", "boot", "action", "next_obs"):
            assert torch.equal(batch[key], expected[key]), key
        torch.testing.assert_close(batch.obs, expected["obs"])
        torch.testing.assert_close(batch.weight, expected["weight"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(batch.reward.double(), expected["reward"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            batch.discount.double(), expected["discount"], rtol=1e-6, atol=1e-7
        )
        if per is not None:
            td = (
                torch.rand(
                    (33,) if heads is None else (33, heads),
                    generator=torch.Generator().manual_seed(round_),
                )
                * 3
            )
            drive(buf, ref, rng, steps=3, envs=envs, heads=heads)  # some sampled rows go stale
            applied = buf.update_priorities(batch.index, batch.generation, td)
            assert torch.equal(applied, ref.update_priorities(batch.index, batch.generation, td))
            assert_matches_reference(buf, ref)
            buf.check()


def test_floating_k_is_uniform():
    buf = buffer(2000, nstep=replay.NStep(n=3, gamma=0.9, floating=True))
    buf.add_episode(**episode(1000))
    counts = torch.zeros(3)
    for _ in range(100):
        batch = buf.sample(1000)
        k = (batch.boot - batch.index) % 2000
        inside = batch.index < 997  # windows that the episode end does not clip
        counts += torch.bincount(k[inside], minlength=4)[1:].float()
    assert (counts / counts.sum() - 1 / 3).abs().max() < 0.005


# ---- episode mode (SPEC 1.2) ---------------------------------------------------------------------


def test_episode_mode_batches():
    mode = replay.EpisodeMode(select_count=2, max_ep_draw=3)
    buf = buffer(
        200,
        prioritized=replay.PER(alpha=1.0, eps=0.0),
        episode_mode=mode,
        nstep=replay.NStep(2, 0.5),
    )
    for i in range(10):
        buf.add_episode(**episode(9, seed=i))
    table = buf.episodes()
    for _ in range(20):
        batch = buf.sample(37)
        assert batch.index.shape == (37,)  # cut to exactly the batch size
        assert torch.equal(batch.weight, torch.ones(37))
        episode_of = batch.generation
        assert torch.equal(episode_of, buf.storage.row_episode[batch.index])
        assert (buf.priorities()[batch.index] > 0).all()  # transition rows only
        # The first group of rows comes from one episode, at most max_ep_draw distinct steps.
        first = batch.index[:1]
        group = batch.index[: int((episode_of == episode_of[0]).cumprod(0).sum())]
        assert len(group) <= 3 and len(set(group.tolist())) == len(group)
        assert int(first) in group.tolist()
    # Priority picks episodes: make one episode hold nearly all the mass.
    rows = torch.arange(int(table["start"][4]), int(table["start"][4]) + 9)
    buf.update_priorities(rows, buf.storage.row_episode[rows], torch.full((9,), 100.0))
    counts = torch.bincount(buf.sample(2000).generation, minlength=10).float()
    assert counts[4] / counts.sum() > 0.5
    n_step = batch.discount
    assert set(n_step.tolist()) <= {0.25, 0.5}


def test_episode_mode_rows_match_the_reference():
    """The compiled sample draws episode mode's rows itself; pyrl.reference recomputes them
    from the seed and the call count (a wrapped ring, priorities of every size)."""
    mode = replay.EpisodeMode(select_count=3, max_ep_draw=4)
    buf = replay.ReplayBuffer(
        61,
        {"obs": (3,), "action": (2,)},
        seed=5,
        episode_mode=mode,
        prioritized=replay.PER(alpha=0.7),
    )
    for i in range(14):
        buf.add_episode(**episode(3 + i % 5, seed=i))  # wraps and evicts
    batch = buf.sample(8)
    buf.update_priorities(batch.index, batch.generation, torch.rand(8) * 5)
    for size in (1, 7, 40):
        leaves = buf.priorities()
        call = buf.sample_calls
        expected = reference.episode_rows(
            leaves, buf.storage.row_episode, buf.episodes(), buf.seed, call, 3, 4, size
        )
        assert buf.sample(size).index.tolist() == expected.tolist()


def test_episode_mode_is_reproducible_and_saved(tmp_path):
    def make():
        buf = buffer(100, episode_mode=replay.EpisodeMode(4, 5))
        for i in range(6):
            buf.add_episode(**episode(7, seed=i))
        return buf

    a, b = make(), make()
    assert torch.equal(a.sample(20).index, b.sample(20).index)
    a.save(tmp_path / "a.pt")
    c = replay.ReplayBuffer.load(tmp_path / "a.pt")
    assert c.episode_mode == replay.EpisodeMode(4, 5)
    assert torch.equal(a.sample(20).index, c.sample(20).index)
    with pytest.raises(ValueError, match="select_count should be an int >= 1"):
        replay.EpisodeMode(select_count=0)


# ---- stale updates, duplicates, heads ------------------------------------------------------------


def test_stale_updates_are_dropped():
    buf = buffer(10, prioritized=replay.PER(alpha=1.0, eps=0.0))
    buf.add_episode(**episode(4, seed=1))  # rows 0-4
    buf.add_episode(**episode(3, seed=2))  # rows 5-8
    batch = buf.sample(64)
    buf.add_episode(**episode(2, seed=3))  # rows 9, 0, 1: evicts the first episode (rows 0-4)
    before = buf.priorities()
    buf.update_priorities(batch.index, batch.generation, torch.full((64,), 7.0))
    after = buf.priorities()
    stale = torch.tensor([r in range(5) for r in range(10)])
    assert torch.equal(after[stale], before[stale])  # rows of the evicted episode: untouched
    live = set(batch.index[batch.index >= 5].tolist())
    assert all(after[r] == 7.0 for r in live)
    assert buf.storage.max_priority.item() == 7.0


def test_repeated_rows_last_write_wins_and_heads_average():
    buf = buffer(10, prioritized=replay.PER(alpha=1.0, eps=0.0))
    buf.add_episode(**episode(5))
    index = torch.tensor([2, 3, 2])
    generation = buf.storage.row_episode[index]
    buf.update_priorities(index, generation, torch.tensor([[1.0, 3.0], [4.0, 4.0], [5.0, 7.0]]))
    assert buf.priorities()[2] == 6.0 and buf.priorities()[3] == 4.0
    buf.add_episode(**episode(2))  # new rows enter at the largest priority seen
    assert buf.priorities()[6] == 6.0


def test_priorities_are_clipped():
    buf = buffer(10, prioritized=replay.PER(alpha=1.0, eps=0.0, p_min=0.5, p_max=2.0))
    buf.add_episode(**episode(5))
    index = torch.tensor([0, 1])
    buf.update_priorities(index, buf.storage.row_episode[index], torch.tensor([0.0, 100.0]))
    assert buf.priorities()[:2].tolist() == [0.5, 2.0]


# ---- adding --------------------------------------------------------------------------------------


def test_steps_of_parallel_envs_commit_per_episode():
    buf = buffer(64, nstep=replay.NStep(n=1, gamma=0.5))
    obs = torch.arange(2 * 3, dtype=torch.float32).view(2, 3)
    for t in range(4):
        ended = torch.tensor([t in (1, 3), t == 3])
        buf.add(
            obs=obs + 10 * t,
            action=torch.full((2, 2), float(t)),
            reward=torch.tensor([t, -t]),
            next_obs=obs + 10 * t + 100,
            terminated=ended & torch.tensor([True, False]),
            truncated=ended & torch.tensor([False, True]),
        )
    table = buf.episodes()
    assert table["length"].tolist() == [2, 2, 4]  # env 0: steps 0-1 and 2-3, env 1: steps 0-3
    assert table["terminated"].tolist() == [True, True, False]
    assert len(buf) == 8 and buf.pending_steps == 0
    first = buf.storage.columns[0][table["start"][0] : table["start"][0] + 3]
    assert torch.equal(
        first, torch.stack([obs[0], obs[0] + 10, obs[0] + 110])
    )  # final row: next_obs
    assert torch.equal(
        buf.storage.columns[1][table["start"][0] + 2], torch.zeros(2)
    )  # no action there
    batch = buf.sample(64)
    ends = (table["start"] + table["length"] - 1)[table["terminated"]]
    terminal = torch.isin(batch.index, ends)  # last steps of the two terminated episodes
    assert terminal.any() and (batch.discount[terminal] == 0).all()
    assert (batch.discount[~terminal] == 0.5).all()


def test_long_episodes_commit_in_truncated_pieces():
    buf = buffer(64, max_episode_steps=5)
    for t in range(12):
        buf.add(
            obs=torch.full((1, 3), float(t)),
            action=torch.zeros(1, 2),
            reward=torch.zeros(1),
            next_obs=torch.full((1, 3), t + 1.0),
            terminated=[False],
            truncated=[False],
        )
    assert buf.episodes()["length"].tolist() == [5, 5]
    assert buf.pending_steps == 2
    assert buf.storage.columns[0][5, 0] == 5.0  # the piece's final observation, then the next piece
    assert buf.storage.columns[0][6, 0] == 5.0


def test_episode_longer_than_buffer_raises():
    buf = buffer(8)
    with pytest.raises(ValueError, match="more than the capacity 8"):
        buf.add_episode(**episode(8))
    buf.add_episode(**episode(7))
    assert len(buf) == 7


def test_dict_observations_and_numpy_input():
    spec = {
        "observation": (4,),
        "achieved_goal": (2,),
        "desired_goal": (2,),
        "action": (1,),
        "mask": ((), torch.bool),
    }
    keys = ("observation", "achieved_goal", "desired_goal")
    buf = replay.ReplayBuffer(32, spec, obs_keys=keys, seed=0)
    rng = np.random.default_rng(0)
    for t in range(6):
        obs = {k: rng.standard_normal((2, spec[k][0])) for k in keys}  # float64 numpy
        buf.add(
            obs=obs,
            next_obs=obs,
            action=rng.standard_normal((2, 1)),
            reward=[1.0, 2.0],
            mask=np.array([True, False]),
            terminated=[t == 5, False],
            truncated=[False, t == 5],
        )
    batch = buf.sample(8)
    assert set(batch.obs) == set(keys) and set(batch.next_obs) == set(keys)
    assert (
        batch.obs["achieved_goal"].shape == (8, 2)
        and batch.obs["observation"].dtype == torch.float32
    )
    assert batch.mask.dtype == torch.bool
    assert set(batch.reward.tolist()) <= {1.0, 2.0}


def test_same_seed_same_batches():
    bufs = [
        buffer(50, prioritized=replay.PER(), nstep=replay.NStep(3, 0.9, True)) for _ in range(2)
    ]
    for buf in bufs:
        for i in range(5):
            buf.add_episode(**episode(8, seed=i))
    for _ in range(3):
        a, b = (buf.sample(16) for buf in bufs)
        for key in a:
            assert torch.equal(a[key], b[key])


def assert_same_batch(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_batch(a[key], b[key])
        else:
            assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(
    "settings",
    [
        dict(),
        dict(prioritized=replay.PER(), nstep=replay.NStep(3, 0.9, True)),
        dict(
            spec={"obs": (3,), "achieved_goal": (2,), "desired_goal": (2,), "action": (2,)},
            her=replay.HER(k=4, reward=replay.sparse_l2(0.5)),
        ),
    ],
    ids=["uniform", "per-nstep", "her-dict-obs"],
)
def test_sample_into_a_reused_batch_gives_the_fresh_batches(settings):
    """sample(out=batch) refills the batch's own tensors with what a fresh sample would give
    (the same draws), restoring its keys, and a batch pickles as its fields only."""
    spec = settings.pop("spec", None)
    bufs = [buffer(60, spec, **settings) for _ in range(2)]
    for buf in bufs:
        for i in range(6):
            data = episode(8, seed=i)
            if spec is not None:
                g = torch.Generator().manual_seed(i)
                data["obs"] = dict(
                    obs=data["obs"],
                    achieved_goal=torch.randn(9, 2, generator=g),
                    desired_goal=torch.randn(9, 2, generator=g),
                )
            buf.add_episode(**data)
    fresh, reused = bufs
    batch = reused.sample(16)
    assert_same_batch(batch, fresh.sample(16))
    tensors = [id(t) for t in batch.__dict__["_outputs"]]
    batch["reward"] = None  # a key the caller replaced comes back
    for _ in range(3):
        again = reused.sample(16, out=batch)
        assert again is batch and [id(t) for t in batch.__dict__["_outputs"]] == tensors
        assert_same_batch(batch, fresh.sample(16))
    assert reused.sample_calls == fresh.sample_calls == 4
    copy = pickle.loads(pickle.dumps(batch))
    assert type(copy) is replay.Batch and "_outputs" not in copy.__dict__
    assert_same_batch(copy, batch)


def test_sample_into_a_batch_that_does_not_fit_raises_and_draws_nothing():
    buf, other = buffer(), buffer()
    for b in (buf, other):
        b.add_episode(**episode(8))
    batch = buf.sample(8)
    calls = buf.sample_calls
    with pytest.raises(ValueError, match=r"out\[0\] should be a contiguous .*\[4\]"):
        buf.sample(4, out=batch)
    batch.__dict__["_outputs"][1].resize_(3)  # resized in place by its owner: refused
    with pytest.raises(ValueError, match=r"out\[1\] should be"):
        buf.sample(8, out=batch)
    for wrong in (other.sample(8), dict(batch), replay.Batch(batch)):
        with pytest.raises(ValueError, match="out should be a Batch this buffer's sample returned"):
            buf.sample(8, out=wrong)
    assert buf.sample_calls == calls


def test_a_fresh_batch_is_one_allocation():
    buf = buffer(prioritized=replay.PER(), nstep=replay.NStep(2, 0.9))
    buf.add_episode(**episode(8))
    batch = buf.sample(8)
    storages = {t.untyped_storage().data_ptr() for t in batch.values()}
    assert len(storages) == 1
    assert all(t.is_contiguous() for t in batch.values())


# ---- save and restore ----------------------------------------------------------------------------


def filled(capacity=40, **kwargs):
    buf = buffer(
        capacity,
        prioritized=replay.PER(beta_steps=10),
        nstep=replay.NStep(3, 0.9, floating=True),
        **kwargs,
    )
    for i in range(8):
        buf.add_episode(**episode(6, seed=i))
    for t in range(3):  # an episode still running in each of 2 envs
        buf.add(
            obs=torch.full((2, 3), float(t)),
            action=torch.zeros(2, 2),
            reward=torch.ones(2),
            next_obs=torch.zeros(2, 3),
            terminated=[False, False],
            truncated=[False, False],
        )
    batch = buf.sample(8)
    buf.update_priorities(batch.index, batch.generation, torch.rand(8))
    return buf


def assert_same_future(a, b):
    for _ in range(3):
        x, y = a.sample(16), b.sample(16)
        for key in x:
            assert torch.equal(x[key], y[key]), key
        a.update_priorities(x.index, x.generation, x.reward.abs())
        b.update_priorities(y.index, y.generation, y.reward.abs())
    for buf in (a, b):  # finishing the staged episodes gives the same episode in both
        buf.add(
            obs=torch.ones(2, 3),
            action=torch.zeros(2, 2),
            reward=torch.ones(2),
            next_obs=torch.ones(2, 3),
            terminated=[True, False],
            truncated=[False, True],
        )
    assert torch.equal(a.priorities(), b.priorities())
    for ca, cb in zip(a.storage.columns, b.storage.columns):
        assert torch.equal(ca, cb)


def test_state_dict_round_trip():
    original = filled()
    state = {
        k: (v.clone() if isinstance(v, torch.Tensor) else v)
        for k, v in original.state_dict().items()
    }
    state["columns"] = {k: v.clone() for k, v in original.state_dict()["columns"].items()}
    state["stage"] = {k: v.clone() for k, v in original.state_dict()["stage"].items()}
    restored = buffer(
        40, prioritized=replay.PER(beta_steps=10), nstep=replay.NStep(3, 0.9, floating=True)
    )
    restored.load_state_dict(state)
    assert restored.pending_steps == 6
    assert_same_future(original, restored)


def test_save_load(tmp_path):
    original = filled()
    original.save(tmp_path / "buf.pt")
    restored = replay.ReplayBuffer.load(tmp_path / "buf.pt")
    assert restored.config() == original.config()
    assert_same_future(original, restored)


def test_load_state_dict_rejects_other_layouts_and_changes_nothing():
    buf = filled()
    other = filled(capacity=48)
    before = snapshot(buf)
    with pytest.raises(ValueError, match="saved from a buffer"):
        buf.load_state_dict(other.state_dict())
    state = dict(buf.state_dict())
    state["sum_tree"] = state["sum_tree"][:-1]
    with pytest.raises(ValueError, match="sum_tree should be"):
        buf.load_state_dict(state)
    assert_unchanged(buf, before)


SAVE_SCRIPT = """
import resource, sys, torch
from pyrl import replay
buf = replay.ReplayBuffer(1_000_001, {"obs": (17,), "action": (6,)}, prioritized=replay.PER())
obs, action, reward = torch.randn(1001, 17), torch.randn(1000, 6), torch.randn(1000)
for _ in range(999):
    buf.add_episode(obs=obs, action=action, reward=reward)
size = sum(t.numel() * t.element_size() for t in buf.storage.state + [buf.storage.records])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
buf.save(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(len(buf), size, after - before)
"""


@pytest.mark.slow
def test_million_transition_buffer_saves_without_copies(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SAVE_SCRIPT, str(tmp_path / "big.pt")],
        capture_output=True,
        text=True,
        check=True,
    )
    transitions, size, growth = map(int, out.stdout.split())
    assert transitions == 999_000
    assert growth < 0.25 * size, (growth, size)  # peak memory grows by far less than a copy


# ---- threads -------------------------------------------------------------------------------------


def test_one_thread_adds_while_another_samples_and_updates():
    buf = buffer(500, prioritized=replay.PER(), nstep=replay.NStep(3, 0.9, True))
    buf.add_episode(**episode(20))
    errors = []

    def adder():
        try:
            rng = np.random.default_rng(0)
            for t in range(3000):
                ended = rng.random(4) < 0.05
                buf.add(
                    obs=torch.randn(4, 3),
                    action=torch.randn(4, 2),
                    reward=torch.randn(4),
                    next_obs=torch.randn(4, 3),
                    terminated=torch.from_numpy(ended),
                    truncated=torch.zeros(4, dtype=torch.bool),
                )
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    def learner():
        try:
            for _ in range(1500):
                batch = buf.sample(32)
                assert (buf.priorities()[batch.index] >= 0).all()
                buf.update_priorities(batch.index, batch.generation, batch.reward.abs())
        except Exception as err:  # pragma: no cover
            errors.append(err)

    threads = [threading.Thread(target=adder), threading.Thread(target=learner)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert_trees_consistent(buf.storage.sum_tree, buf.storage.min_tree, buf.capacity)
    leaves = buf.priorities()
    assert int((leaves > 0).sum()) == len(buf)
    assert len(buf) == int(buf.episodes()["length"].sum())


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, -3, 1, 2.5, None])
def test_bad_capacity(capacity):
    with pytest.raises(ValueError, match="capacity should be an int >= 2"):
        replay.ReplayBuffer(capacity, {"obs": (3,)})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=1.5), "alpha should be in"),
        (dict(alpha=-0.1), "alpha should be in"),
        (dict(alpha=float("nan")), "alpha should be in"),
        (dict(beta=2.0), "beta should be in"),
        (dict(beta_steps=0), "beta_steps"),
        (dict(eps=-1.0), "eps"),
        (dict(p_min=0.0), "p_min"),
        (dict(weight_norm="max"), "weight_norm"),
    ],
)
def test_bad_per_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        replay.PER(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0, gamma=0.9), "n should be"),
        (dict(n=3, gamma=1.5), "gamma"),
        (dict(n=3), "gamma is required"),
    ],
)
def test_bad_nstep_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        replay.NStep(**kwargs)


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"obs": (3,), "discount": ()}, "reserved"),
        ({"obs": "x"}, "shape tuple"),
        ({"obs": (3,), "reward": (2, 2)}, "reward should be"),
        ({"action": (2,)}, "obs_keys"),
    ],
)
def test_bad_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        replay.ReplayBuffer(10, spec)


def test_sampling_an_empty_buffer():
    buf = buffer(10)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)
    buf.add(
        obs=torch.zeros(1, 3),
        action=torch.zeros(1, 2),
        reward=torch.zeros(1),
        next_obs=torch.zeros(1, 3),
        terminated=[False],
        truncated=[False],
    )
    with pytest.raises(ValueError, match="empty"):  # a staged step is not sampleable yet
        buf.sample(4)
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(0)


STEP = dict(
    obs=torch.zeros(2, 3),
    action=torch.zeros(2, 2),
    reward=torch.zeros(2),
    next_obs=torch.zeros(2, 3),
    terminated=[False, True],
    truncated=[False, False],
)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(obs=torch.zeros(2, 4)), r"obs should have shape \[2, 3\], got \[2, 4\]"),
        (dict(action=torch.zeros(2, 2, dtype=torch.complex64)), "action should be torch.float32"),
        (dict(reward=torch.zeros(3)), r"reward should have shape \[2\]"),
        (dict(next_obs=torch.zeros(3, 3)), r"next_obs should have shape \[2, 3\]"),
        (dict(terminated=[0.5, 0.0]), "terminated should be 2 bools"),
        (dict(truncated=[False]), "truncated should be 2 bools"),
        (dict(action=None), "action should be"),
        (dict(extra=torch.zeros(2)), "unexpected"),
    ],
)
def test_bad_add_changes_nothing(change, match):
    buf = buffer(16, prioritized=replay.PER())
    buf.add(**STEP)  # allocates the stage: later adds take the fast path first
    before = snapshot(buf)
    with pytest.raises(ValueError, match=match):
        buf.add(**{**STEP, **change})
    assert_unchanged(buf, before)


def test_bad_add_field_kind_and_env_count():
    spec = {"obs": (3,), "action": ((), torch.int64)}
    buf = replay.ReplayBuffer(16, spec)
    good = dict(
        obs=torch.zeros(2, 3),
        action=torch.zeros(2, dtype=torch.int64),
        reward=torch.zeros(2),
        next_obs=torch.zeros(2, 3),
        terminated=[False, False],
        truncated=[False, False],
    )
    buf.add(**good)
    before = snapshot(buf)
    with pytest.raises(ValueError, match="action should be torch.int64"):
        buf.add(**{**good, "action": torch.zeros(2)})  # a float into an integer column
    with pytest.raises(ValueError, match="3 environments, but earlier steps had 2"):
        buf.add(
            **{
                k: (v[:1].expand(3, *v.shape[1:]) if isinstance(v, torch.Tensor) else [False] * 3)
                for k, v in good.items()
            }
        )
    assert_unchanged(buf, before)
    buf.add(**{**good, "action": np.array([1, 2])})  # an integer array converts


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(obs=torch.zeros(1, 3)), "at least 1 transition"),
        (dict(action=torch.zeros(4, 2)), r"action should have shape \[5, 2\]"),
        (dict(reward=torch.zeros(5, 2)), r"reward should have shape \[5\]"),
        (dict(obs=torch.zeros(6, 3, dtype=torch.complex64)), "obs should be torch.float32"),
    ],
)
def test_bad_add_episode_changes_nothing(change, match):
    buf = buffer(16)
    buf.add_episode(**episode(5))
    before = snapshot(buf)
    with pytest.raises(ValueError, match=match):
        buf.add_episode(**{**episode(5), **change})
    assert_unchanged(buf, before)


@pytest.mark.parametrize(
    "td, match",
    [
        (
            torch.tensor([1.0, float("nan"), 1.0]),
            "td_abs should be >= 0 and not NaN, got nan at flat position 1",
        ),
        (torch.tensor([1.0, 1.0, -2.0]), "got -2 at flat position 2"),
    ],
)
def test_bad_priorities_change_nothing(td, match):
    buf = buffer(16, prioritized=replay.PER())
    buf.add_episode(**episode(5))
    batch = buf.sample(3)
    before = snapshot(buf)
    with pytest.raises(ValueError, match=match):
        buf.update_priorities(batch.index, batch.generation, td)
    with pytest.raises(ValueError, match=r"index\[0\] should be a row in \[0, 16\), got 99"):
        buf.update_priorities(torch.tensor([99, 0, 0]), batch.generation, torch.ones(3))
    with pytest.raises(ValueError, match=r"index\[1\] should be a row in \[0, 16\), got -1"):
        buf.update_priorities([0, -1, 0], batch.generation, torch.ones(3))
    with pytest.raises(ValueError, match="td_abs should be"):
        buf.update_priorities(batch.index, batch.generation, torch.ones(4))
    with pytest.raises(ValueError, match="index should be int64, got torch.float32"):
        buf.update_priorities(batch.index.float(), batch.generation, torch.ones(3))
    with pytest.raises(ValueError, match=r"generation should be 1-D \[3\], got shape \[2\]"):
        buf.update_priorities(batch.index, batch.generation[:2], torch.ones(3))
    with pytest.raises(ValueError, match="index should be an int64"):
        buf.update_priorities(None, batch.generation, torch.ones(3))
    assert_unchanged(buf, before)
    assert buf.priority_updates == {"applied": 0, "dropped": 0}


def test_cuda_buffer_is_refused_clearly():
    with pytest.raises(ValueError, match="not supported yet"):
        replay.ReplayBuffer(10, {"obs": (3,)}, device="meta")


# ---- the applied mask, update counts and the invariant check -------------------------------------


def test_update_priorities_returns_the_applied_mask():
    buf = buffer(16, prioritized=replay.PER(alpha=1.0, eps=0.0))
    buf.add_episode(**episode(3))  # rows 0..2 transitions, row 3 the final observation
    buf.add_episode(**episode(3))  # rows 4..6, final row 7
    batch = buf.sample(4)
    owners = buf.storage.row_episode
    index = torch.tensor([0, 3, 9, 5, 5, 2])
    generation = torch.tensor(
        [int(owners[0]), int(owners[3]), -1, int(owners[5]), int(owners[5]), 7]
    )
    applied = buf.update_priorities(index, generation, torch.tensor([1.0, 9.0, 9.0, 2.0, 4.0, 9.0]))
    # transition, final-observation row, free row (generation -1), duplicates, wrong generation
    assert applied.tolist() == [True, False, False, True, True, False]
    leaves = buf.priorities()
    assert leaves[3] == 0 and leaves[9] == 0  # neither became sampleable
    assert leaves[5] == 4.0 and leaves[0] == 1.0  # of repeated rows, the last write wins
    assert buf.priority_updates == {"applied": 3, "dropped": 3}
    buf.check()
    for _ in range(5):  # the final and free rows are never drawn
        assert not set(buf.sample(64).index.tolist()) & {3, 7, 8, 9}
    del batch


def test_initial_priorities_of_an_episode_are_what_an_update_would_set():
    """add_episode(td_abs=...): an actor's initial priorities (Ape-X), wrapped around the ring."""
    per = replay.PER(alpha=0.5, eps=0.01)
    given, updated = buffer(8, prioritized=per), buffer(8, prioritized=per)
    for buf in (given, updated):
        buf.add_episode(**episode(4))  # rows 0..4; the next episode wraps to rows 5..7, 0..1
    td = torch.tensor([0.5, 4.0, 0.0, 2.5], dtype=torch.float64)
    given.add_episode(**episode(4), td_abs=td)
    updated.add_episode(**episode(4))
    rows = torch.tensor([5, 6, 7, 0])
    updated.update_priorities(rows, torch.full((4,), 1), td)
    assert torch.equal(given.priorities(), updated.priorities())
    assert float(given.storage.max_priority) == pytest.approx(4.01)  # later adds enter there
    assert given.priority_updates == {"applied": 0, "dropped": 0}  # not an update
    given.check()
    before = snapshot(given)
    for td_abs, match in (
        (torch.ones(3), r"td_abs should have shape \[4\], got \[3\]"),
        ([1.0, float("nan"), 0, 0], "td_abs should be >= 0 and not NaN, got nan"),
        ([1.0, 0, -1, 0], "got -1 at position 2; nothing was added"),
        ("high", "td_abs should be torch.float64"),
    ):
        with pytest.raises(ValueError, match=match):
            given.add_episode(**episode(4), td_abs=td_abs)
    assert_unchanged(given, before)
    with pytest.raises(ValueError, match="td_abs needs a prioritized buffer"):
        buffer(8).add_episode(**episode(4), td_abs=td)


def test_boot_rows_are_refused_as_priorities():
    """batch.boot passed instead of batch.index: final rows stay final, nothing becomes a
    transition with a zero action."""
    buf = buffer(16, prioritized=replay.PER())
    buf.add_episode(**episode(1))
    batch = buf.sample(8)
    applied = buf.update_priorities(batch.boot, batch.generation, torch.ones(8))
    assert not applied.any()
    assert buf.priorities()[1] == 0
    buf.check()


def test_check_names_the_broken_invariant():
    buf = filled()
    assert buf.check() is None
    storage = buf.storage
    corruptions = {
        "sum tree parents": lambda: storage.sum_tree.__setitem__(0, storage.sum_tree[0] + 1),
        "leaves": lambda: storage.sum_tree.__setitem__(
            replay.layout.tree_leaf_offset(buf.capacity)
            + int(buf.episodes()["start"][0])
            + int(buf.episodes()["length"][0]),
            0.5,
        ),
        "row owners": lambda: storage.row_episode.__setitem__(
            int(buf.episodes()["start"][0]), 10**6
        ),
        "episode table": lambda: storage.episodes.__setitem__(
            (int(buf.episodes()["id"][0]) % storage.episodes.shape[0], 1), 0
        ),
        "counters": lambda: storage.counters.__setitem__(replay.layout.COUNTERS["cursor"], -1),
    }
    for name, corrupt in corruptions.items():
        fresh = filled()
        storage = fresh.storage
        corrupt()
        with pytest.raises(replay.InvariantError, match=f"invariant '{name}' is broken at index"):
            fresh.check()


def test_draws_are_the_reference_counter_uniforms():
    buf = filled()
    calls = buf.sample_calls
    expected = {
        name: reference.counter_uniforms(buf.seed, calls, stream, 7)
        for stream, name in enumerate(("row", "relabel", "goal", "lookahead"))
    }
    drawn = buf.next_uniforms(7)
    assert drawn.keys() == expected.keys()
    for name in expected:
        assert torch.equal(drawn[name], expected[name]), name
    assert buf.sample_calls == calls  # peeking draws nothing


def test_batches_do_not_depend_on_the_thread_count():
    batches = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            torch.manual_seed(0)  # filled() updates priorities with torch.rand
            buf = filled()
            batches.append([buf.sample(64) for _ in range(3)])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*batches):
        for key in ("index", "reward", "discount", "weight", "boot"):
            assert torch.equal(a[key], b[key]), key


def test_deepcopy_and_pickle_continue_exactly():
    import copy
    import pickle

    buf = filled()
    for clone in (copy.deepcopy(buf), pickle.loads(pickle.dumps(buf))):
        clone.check()
        assert torch.equal(clone.sample(8).index, copy.deepcopy(buf).sample(8).index)
        clone.add_episode(**episode(3))  # independent storage
        assert len(clone) != len(buf)


@pytest.mark.parametrize("episodes", [3, 40])  # under and over a quarter of the ring
def test_uniform_draws_follow_the_reference_at_low_and_high_fill(episodes):
    """A ring under a quarter full descends the tree for every sample (direct draws would miss
    most attempts there); a fuller one draws rows directly. Both are uniform over the
    transitions and are exactly what reference.direct_rows says."""
    buf = replay.ReplayBuffer(500, {"obs": (1,)}, seed=5)
    for e in range(episodes):
        buf.add_episode(obs=torch.arange(11.0)[:, None] + 100 * e, reward=torch.zeros(10))
    assert (len(buf) * 4 < 500) == (episodes == 3)
    counts = torch.zeros(500)
    for _ in range(200):
        expected = reference.direct_rows(buf.priorities(), buf.seed, buf.sample_calls, 64)
        batch = buf.sample(64)
        assert torch.equal(batch.index, expected)
        counts += torch.bincount(batch.index, minlength=500)
    stored = buf.priorities() > 0
    assert counts[~stored].sum() == 0
    mean = counts[stored].mean()
    chi2 = float(((counts[stored] - mean) ** 2 / mean).sum())
    dof = int(stored.sum()) - 1
    assert chi2 < dof + 5 * (2 * dof) ** 0.5
