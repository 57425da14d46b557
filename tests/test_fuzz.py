"""Stateful fuzzing of the replay buffer (hypothesis): random sequences of add, add_episode,
sample, update_priorities (sampled, stale, free, final and out-of-range rows), save/load and
load_state_dict of mutated states, checked after every step against pyrl.reference.ReplayBuffer
and the buffer's own invariants (check()).

CI runs a short version; `make fuzz` runs a long one (PYRL_FUZZ_EXAMPLES, default 25 here).
"""

import os
import tempfile

import numpy as np
import torch
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pyrl import reference, replay

EXAMPLES = int(os.environ.get("PYRL_FUZZ_EXAMPLES", "25"))
STATE_KEYS = ("row_episode", "episodes", "counters", "sum_tree", "min_tree", "max_priority")


def reference_from(buf, alpha):
    """A reference buffer holding exactly what `buf` holds (after a state was rebuilt)."""
    ref = reference.ReplayBuffer(buf.capacity, alpha=alpha, max_episode_steps=buf.max_episode_steps)
    table = buf.episodes()
    columns = dict(zip(buf.storage.names, buf.storage.columns))
    for i, start, length, terminated in zip(
        *(table[k].tolist() for k in ("id", "start", "length", "terminated"))
    ):
        rows = [(start + t) % buf.capacity for t in range(length + 1)]
        ref.cursor, ref.next_id = start, i
        ref.add_episode(
            {"obs": columns["obs"][rows]},
            {"action": columns["action"][rows[:-1]], "reward": columns["reward"][rows[:-1]]},
            terminated,
        )
    ref.cursor = buf.storage.counter("cursor")
    ref.next_id = buf.storage.counter("next_episode")
    ref.leaves = buf.priorities().tolist()
    ref.max_priority = float(buf.storage.max_priority)
    return ref


class ReplayMachine(RuleBasedStateMachine):
    @initialize(
        capacity=st.integers(4, 48),
        envs=st.integers(1, 3),
        prioritized=st.booleans(),
        n=st.integers(1, 4),
        floating=st.booleans(),
        seed=st.integers(0, 2**32),
    )
    def build(self, capacity, envs, prioritized, n, floating, seed):
        self.alpha = 0.7 if prioritized else 0.0
        self.kwargs = dict(
            capacity=capacity,
            spec={"obs": (2,), "action": (1,)},
            seed=seed,
            prioritized=replay.PER(alpha=0.7) if prioritized else None,
            nstep=replay.NStep(n, 0.9, floating),
            max_episode_steps=max(1, capacity // 3),
        )
        self.buf = replay.ReplayBuffer(**self.kwargs)
        self.ref = reference.ReplayBuffer(
            capacity, alpha=self.alpha, max_episode_steps=max(1, capacity // 3)
        )
        self.envs, self.rng = envs, np.random.default_rng(seed)
        self.last = None  # the last batch

    # -- adding ---------------------------------------------------------------------------------
    @rule(p_end=st.sampled_from([0.0, 0.3, 1.0]))
    def add(self, p_end):
        e, rng = self.envs, self.rng
        obs, next_obs = (
            torch.from_numpy(rng.standard_normal((e, 2)).astype(np.float32)) for _ in range(2)
        )
        action = torch.from_numpy(rng.standard_normal((e, 1)).astype(np.float32))
        reward = torch.from_numpy(rng.standard_normal(e).astype(np.float32))
        ends = rng.random(e) < p_end
        terminated = torch.from_numpy(ends & (rng.random(e) < 0.5))
        truncated = torch.from_numpy(ends) & ~terminated
        self.buf.add(
            obs=obs,
            action=action,
            reward=reward,
            next_obs=next_obs,
            terminated=terminated,
            truncated=truncated,
        )
        self.ref.add(
            {"obs": obs},
            {"obs": next_obs},
            {"action": action, "reward": reward},
            terminated,
            truncated,
        )

    @rule(length=st.integers(1, 60), terminated=st.booleans())
    def add_episode(self, length, terminated):
        obs = torch.randn(length + 1, 2)
        action, reward = torch.randn(length, 1), torch.randn(length)
        if length + 1 > self.buf.capacity:
            try:
                self.buf.add_episode(obs=obs, action=action, reward=reward, terminated=terminated)
            except ValueError:
                return
            raise AssertionError("an episode longer than the buffer was accepted")
        # Prioritized buffers get the episode's initial priorities half the time (Ape-X actors).
        td_abs = (
            torch.rand(length, dtype=torch.float64) * 3
            if self.kwargs["prioritized"] is not None and self.rng.random() < 0.5
            else None
        )
        self.buf.add_episode(
            obs=obs, action=action, reward=reward, terminated=terminated, td_abs=td_abs
        )
        self.ref.add_episode({"obs": obs}, {"action": action, "reward": reward}, terminated, td_abs)

    # -- sampling and priorities -------------------------------------------------------------------
    @precondition(lambda self: len(self.buf) > 0)
    @rule(batch=st.integers(1, 40))
    def sample(self, batch):
        buf = self.buf
        uniforms = buf.next_uniforms(batch)
        per = self.kwargs["prioritized"]
        nstep = self.kwargs["nstep"]
        beta = (
            reference.beta_at(per.beta, per.beta_steps, buf.sample_calls)
            if per is not None
            else 0.0
        )
        floating = uniforms["lookahead"] if nstep.floating and nstep.n > 1 else None
        direct = (
            None
            if per is not None
            else reference.direct_rows(buf.priorities(), buf.seed, buf.sample_calls, batch)
        )
        got = buf.sample(batch)
        expected = self.ref.sample(uniforms["row"], floating, nstep.n, 0.9, beta, index=direct)
        for key in ("index", "generation", "boot", "action", "obs", "next_obs"):
            assert torch.equal(got[key], expected[key]), key
        torch.testing.assert_close(got.reward.double(), expected["reward"], rtol=1e-5, atol=1e-5)
        self.last = got

    @precondition(lambda self: self.last is not None and self.kwargs["prioritized"] is not None)
    @rule(
        kind=st.sampled_from(
            ["sampled", "free", "final", "wrong_generation", "out_of_range", "nan"]
        )
    )
    def update(self, kind):
        buf, batch = self.buf, self.last
        index, generation = batch.index.clone(), batch.generation.clone()
        td = torch.rand(index.shape[0]) * 3
        owners = buf.storage.row_episode
        if kind == "free" and (owners < 0).any():
            index[0] = int((owners < 0).nonzero()[0, 0])
            generation[0] = -1
        elif kind == "final" and buf.num_episodes:
            table = buf.episodes()
            index[0] = int((table["start"][0] + table["length"][0]) % buf.capacity)
            generation[0] = int(table["id"][0])
        elif kind == "wrong_generation":
            generation += 1
        elif kind in ("out_of_range", "nan"):
            if kind == "out_of_range":
                index[-1] = buf.capacity
            else:
                td[-1] = float("nan")
            before = buf.priorities()
            try:
                buf.update_priorities(index, generation, td)
            except ValueError:
                assert torch.equal(before, buf.priorities())  # rejected: nothing changed
                return
            raise AssertionError("a bad update was accepted")
        applied = buf.update_priorities(index, generation, td)
        assert torch.equal(applied, self.ref.update_priorities(index, generation, td))

    # -- save, load and mutated states -------------------------------------------------------------
    @rule()
    def save_and_load(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "buffer.pt")
            self.buf.save(path)
            loaded = replay.ReplayBuffer.load(path)
        for key in ("row", "lookahead"):
            assert torch.equal(loaded.next_uniforms(5)[key], self.buf.next_uniforms(5)[key])
        self.buf = loaded

    @rule(
        key=st.sampled_from(STATE_KEYS),
        position=st.integers(0, 10**6),
        value=st.sampled_from([-1, 0, 1, 7, 10**9, float("nan"), float("inf"), -0.5]),
    )
    def load_mutated_state(self, key, position, value):
        buf = self.buf
        state = buf.state_dict()
        mutated = {**state, key: state[key].clone()}
        flat = mutated[key].view(-1)
        flat[position % flat.numel()] = (
            value
            if flat.is_floating_point()
            else int(value if value == value and abs(value) != float("inf") else -1)
        )
        before = {k: v.clone() for k, v in buf.state_dict().items() if isinstance(v, torch.Tensor)}
        try:
            buf.load_state_dict(mutated)
        except ValueError:
            after = {k: v for k, v in buf.state_dict().items() if isinstance(v, torch.Tensor)}
            assert all(torch.equal(before[k], after[k]) for k in before)  # all or nothing
            return
        staged = self.ref.staged  # stages are not mutated here: the episodes in progress go on
        self.ref = reference_from(buf, self.alpha)  # accepted: rebuilt into a consistent state
        self.ref.staged = staged
        self.last = None

    # -- after every step --------------------------------------------------------------------------
    @invariant()
    def consistent(self):
        if not hasattr(self, "buf"):
            return
        self.buf.check()
        assert self.buf.storage.row_episode.tolist() == self.ref.row_episode
        torch.testing.assert_close(
            self.buf.priorities(),
            torch.tensor(self.ref.leaves, dtype=torch.float64),
            rtol=1e-12,
            atol=0,
        )
        assert len(self.buf) == sum(e["length"] for e in self.ref.episodes.values())


ReplayMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestReplayFuzz = ReplayMachine.TestCase
