"""What pyrl guarantees against hostile or careless input (issue: reliability): files never run
code and never corrupt memory, rejected calls change nothing, snapshots are consistent, saves
survive kill -9, and bad settings fail at construction with their name. Probes that could crash
run in subprocesses, so a crash fails the test instead of the run."""

import json
import re
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

import pyrl
from pyrl import replay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def filled_buffer(capacity=64, seed=0, **kwargs):
    buf = replay.ReplayBuffer(
        capacity,
        {"obs": (3,), "action": (2,)},
        seed=seed,
        prioritized=replay.PER(),
        nstep=replay.NStep(3, 0.9, True),
        **kwargs,
    )
    g = torch.Generator().manual_seed(seed)
    for _ in range(12):
        T = int(torch.randint(1, 8, (1,), generator=g))
        buf.add_episode(
            obs=torch.randn(T + 1, 3, generator=g),
            action=torch.randn(T, 2, generator=g),
            reward=torch.randn(T, generator=g),
            terminated=bool(T % 2),
        )
    buf.add(
        obs=torch.ones(2, 3),
        action=torch.zeros(2, 2),
        reward=torch.ones(2),
        next_obs=torch.ones(2, 3),
        terminated=[False, False],
        truncated=[False, False],
    )
    batch = buf.sample(16)
    buf.update_priorities(batch.index, batch.generation, torch.rand(16, generator=g))
    return buf


def snapshot(buf):
    state = buf.state_dict()
    flat = {k: v.clone() for k, v in state.items() if isinstance(v, torch.Tensor)}
    flat.update({f"columns.{k}": v.clone() for k, v in state["columns"].items()})
    if state["stage"] is not None:
        flat.update({f"stage.{k}": v.clone() for k, v in state["stage"].items()})
        flat["stage_length"] = state["stage_length"].clone()
    return flat


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---- 1. files are data ---------------------------------------------------------------------------


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('PYRL_PAYLOAD_MARK', '/tmp/pyrl-payload')}",))


def test_checkpoints_never_run_code(tmp_path, monkeypatch):
    mark = tmp_path / "ran"
    monkeypatch.setenv("PYRL_PAYLOAD_MARK", str(mark))
    agent = pyrl.agents.PPO("CartPole-v1", n_envs=1, n_steps=8, batch_size=8)
    agent.learn(16)
    good = tmp_path / "good.pt"
    agent.save(good)
    assert pyrl.agents.PPO.load(good).steps == 16  # a genuine checkpoint loads as data only
    evil = tmp_path / "evil.pt"
    torch.save({"algo": "ppo", "state": Payload()}, evil)
    for load in (pyrl.agents.PPO.load, replay.ReplayBuffer.load):
        with pytest.raises(ValueError, match="is not a readable pyrl file"):
            load(evil)
    assert not mark.exists()


def test_ddpg_checkpoint_round_trips_through_weights_only(tmp_path):
    agent = pyrl.agents.DDPG(
        "Pendulum-v1",
        learning_starts=50,
        buffer_size=500,
        batch_size=16,
        hidden=(8,),
        normalize_obs=True,
        noise="ou",
    )
    agent.learn(120)
    agent.save(tmp_path / "ddpg.pt")
    again = pyrl.agents.DDPG.load(tmp_path / "ddpg.pt")
    assert np.array_equal(again.noise_state, agent.noise_state)
    assert np.array_equal(again.obs_norm.mean, agent.obs_norm.mean)
    assert np.array_equal(again.obs_norm.var, agent.obs_norm.var)
    again.buffer.check()


# ---- 2. state from outside is validated, then rebuilt --------------------------------------------

CORRUPT_SCRIPT = """
import sys, torch
from pyrl import replay
outcomes = {"rejected": 0, "loaded": 0}
for path in sys.argv[1:]:
    try:
        buf = replay.ReplayBuffer.load(path)
    except ValueError:
        outcomes["rejected"] += 1
        continue
    buf.check()                         # whatever loads is consistent ...
    batch = buf.sample(32)              # ... samples only stored transitions ...
    buf.update_priorities(batch.index, batch.generation, batch.reward.abs())
    buf.add_episode(obs=torch.zeros(3, 3), action=torch.zeros(2, 2), reward=torch.zeros(2))
    buf.check()                         # ... and keeps working
    outcomes["loaded"] += 1
print(outcomes)
"""


def corrupted_files(tmp_path, rng):
    """Bit flips in every bookkeeping tensor, truncations and wrong configs of a genuine file."""
    buf = filled_buffer()
    genuine = tmp_path / "genuine.pt"
    buf.save(genuine)
    state = torch.load(genuine, weights_only=True)
    paths = []

    def write(name, mutated):
        path = tmp_path / f"{name}.pt"
        torch.save(mutated, path)
        paths.append(str(path))

    for key in (
        "row_episode",
        "episodes",
        "counters",
        "sum_tree",
        "min_tree",
        "max_priority",
        "draws",
        "stage_length",
    ):
        for trial in range(6):
            mutated = {**state, key: state[key].clone()}
            raw = mutated[key].view(torch.uint8).reshape(-1)
            bit = int(rng.integers(raw.numel() * 8))
            raw[bit // 8] ^= 1 << (bit % 8)
            write(f"{key}-flip{trial}", mutated)
    for key, value in (
        ("counters", torch.tensor([5, 10**6, -3, 7, 0, 0, 0])),
        ("max_priority", torch.tensor([float("nan")], dtype=torch.float64)),
        ("max_priority", torch.tensor([1e308], dtype=torch.float64)),
    ):
        write(f"{key}-value", {**state, key: value})
    episodes = state["episodes"].clone()
    episodes[:, 0] = -5  # negative starts
    write("negative-start", {**state, "episodes": episodes})
    write("huge-capacity", {**state, "config": {**state["config"], "capacity": 2**40}})
    write(
        "bad-dtype",
        {
            **state,
            "config": {
                **state["config"],
                "spec": {
                    "obs": ([3], "load"),
                    "action": ([2], "float32"),
                    "reward": ([], "float32"),
                },
            },
        },
    )
    data = genuine.read_bytes()
    for cut in (10, len(data) // 3, len(data) - 10):
        path = tmp_path / f"truncated-{cut}.pt"
        path.write_bytes(data[:cut])
        paths.append(str(path))
    return paths


def test_corrupted_files_raise_or_load_consistent(tmp_path):
    paths = corrupted_files(tmp_path, np.random.default_rng(0))
    result = run_python(CORRUPT_SCRIPT, *paths)
    assert result.returncode == 0, result.stderr[-3000:]  # no crash, no hang, no other error
    outcomes = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 (our own dict)
    assert outcomes["rejected"] + outcomes["loaded"] == len(paths)
    assert outcomes["rejected"] >= 10


def test_a_small_file_cannot_make_the_loader_allocate(tmp_path):
    buf = filled_buffer()
    state = buf.state_dict()
    state["config"] = {**state["config"], "capacity": 2**31}
    torch.save(state, tmp_path / "claims.pt")
    with pytest.raises(ValueError, match=r"row_episode should hold the capacity's 2147483648 rows"):
        replay.ReplayBuffer.load(tmp_path / "claims.pt")


def test_load_state_dict_is_all_or_nothing():
    buf = filled_buffer()
    before, draws = snapshot(buf), buf.next_uniforms(4)
    state = filled_buffer(seed=1).state_dict()
    state["episodes"] = state["episodes"].clone()
    state["episodes"][:, 1] = 10**9  # lengths past the capacity
    with pytest.raises(ValueError, match="invariant 'episode table' is broken"):
        buf.load_state_dict(state)
    assert_same(before, snapshot(buf))
    assert all(torch.equal(a, b) for a, b in zip(draws.values(), buf.next_uniforms(4).values()))


def test_stored_copies_are_rebuilt_not_trusted():
    good = filled_buffer()
    state = {**good.state_dict()}
    for key in ("row_episode", "sum_tree", "min_tree"):
        state[key] = torch.zeros_like(state[key])  # nonsense derived structures
    restored = replay.ReplayBuffer(
        64,
        {"obs": (3,), "action": (2,)},
        prioritized=replay.PER(),
        nstep=replay.NStep(3, 0.9, True),
    )
    restored.load_state_dict(state)
    restored.check()
    assert torch.equal(restored.storage.row_episode, good.storage.row_episode)
    restored.sample(64)


# ---- 3. only transition rows carry priority (tests/test_replay.py has the row kinds) -------------


def test_priorities_of_free_and_final_rows_are_dropped():
    buf = filled_buffer()
    free = (buf.storage.row_episode < 0).nonzero()[:, 0]
    table = buf.episodes()
    final = (table["start"] + table["length"]) % buf.capacity
    rows = torch.cat([free, final])
    applied = buf.update_priorities(
        rows, buf.storage.row_episode[rows], torch.full((len(rows),), 50.0)
    )
    assert not applied.any()
    buf.check()


# ---- 4. snapshots under concurrency, and kill -9 during saves ------------------------------------


def test_concurrent_adds_samples_updates_and_saves(tmp_path):
    buf = filled_buffer(capacity=300)
    stop, errors = threading.Event(), []

    def guard(fn):
        def run():
            try:
                while not stop.is_set():
                    fn()
            except Exception as err:  # noqa: BLE001 (reported below)
                errors.append(err)

        return run

    def adder(seed):
        rng = np.random.default_rng(seed)  # one generator per thread

        def add():  # two environments, as filled_buffer's
            ends = rng.random(2) < 0.2
            buf.add(
                obs=rng.standard_normal((2, 3)).astype(np.float32),
                action=rng.standard_normal((2, 2)).astype(np.float32),
                reward=rng.standard_normal(2),
                next_obs=np.zeros((2, 3), np.float32),
                terminated=ends,
                truncated=np.zeros(2, bool),
            )

        return add

    def learn():
        batch = buf.sample(32)
        buf.update_priorities(batch.index, batch.generation, batch.reward.abs())

    saved = []

    def save():
        path = tmp_path / f"snapshot-{len(saved) % 4}.pt"
        buf.save(path)
        saved.append(path)
        time.sleep(0.01)

    threads = [
        threading.Thread(target=guard(fn)) for fn in (adder(0), adder(1), learn, learn, save)
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(saved) >= 4
    for path in sorted(set(saved)):
        replay.ReplayBuffer.load(path).check()
    buf.check()


KILL_SCRIPT = """
import sys, torch
from pyrl import replay
path, kind = sys.argv[1], sys.argv[2]
if kind == "buffer":
    buf = replay.ReplayBuffer(200_001, {"obs": (64,), "action": (8,)})
    buf.add_episode(obs=torch.zeros(100_001, 64), action=torch.zeros(100_000, 8),
                    reward=torch.zeros(100_000))
    save = lambda: buf.save(path)
else:
    import pyrl.agents
    agent = pyrl.agents.DDPG("Pendulum-v1", buffer_size=200_000, learning_starts=10**9, hidden=(8,))
    agent.learn(400)
    save = lambda: agent.save(path)
save()
print("saved", flush=True)
while True:
    save()
"""


@pytest.mark.parametrize("kind", ["buffer", "agent"])
def test_kill_during_save_keeps_the_previous_file(tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    load = replay.ReplayBuffer.load if kind == "buffer" else pyrl.agents.DDPG.load
    for delay in (0.05, 0.13, 0.31):
        process = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(path), kind],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert process.stdout.readline().strip() == "saved"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        loaded = load(path)  # the last complete save
        if kind == "buffer":
            loaded.check()
            assert len(loaded) == 100_000


# ---- 5. edge settings ---------------------------------------------------------------------------


def test_edge_settings_are_capped_or_refused():
    with pytest.raises(ValueError, match=r"p_max <= 1e100"):
        replay.PER(p_max=1e308)
    with pytest.raises(ValueError, match=r"n should be an int in \[1, 2\^48\]"):
        replay.NStep(n=2**60, gamma=0.9)
    with pytest.raises(ValueError, match=r"capacity should be an int >= 2 .* at most 2\^48"):
        replay.ReplayBuffer(2**62, {"obs": (1,)})
    big_n = replay.ReplayBuffer(64, {"obs": (3,)}, nstep=replay.NStep(n=2**40, gamma=0.9))
    big_n.add_episode(obs=torch.zeros(6, 3), reward=torch.ones(5))
    batch = big_n.sample(8)  # windows stop at the episode end; the cost does not grow with n
    assert (batch.boot == 5).all()


def test_zero_environments_leave_the_buffer_working():
    buf = replay.ReplayBuffer(16, {"obs": (3,)})
    with pytest.raises(ValueError, match="at least one environment"):
        buf.add(
            obs=torch.zeros(0, 3),
            next_obs=torch.zeros(0, 3),
            reward=torch.zeros(0),
            terminated=torch.zeros(0, dtype=torch.bool),
            truncated=torch.zeros(0, dtype=torch.bool),
        )
    buf.add(
        obs=torch.zeros(2, 3),
        next_obs=torch.zeros(2, 3),
        reward=torch.zeros(2),
        terminated=[True, True],
        truncated=[False, False],
    )
    assert len(buf) == 2


# ---- 7. errors name the argument -----------------------------------------------------------------


@pytest.mark.parametrize(
    "obs, match",
    [
        ("abc", "obs should be a tensor, an array or a list of numbers, got str"),
        (None, "obs should be a tensor, an array or a list of numbers, got NoneType"),
        (torch.zeros(2, 3, device="meta"), "obs should be on the CPU like the buffer, got meta"),
        (np.zeros((2, 3), np.int64), None),  # ints convert into a float column: accepted
    ],
)
def test_bad_observations_raise_value_errors(obs, match):
    buf = replay.ReplayBuffer(16, {"obs": (3,)})
    step = dict(
        next_obs=torch.zeros(2, 3),
        reward=torch.zeros(2),
        terminated=[False, False],
        truncated=[False, False],
    )
    if match is None:
        buf.add(obs=obs, **step)
        return
    with pytest.raises(ValueError, match=match):
        buf.add(obs=obs, **step)
    assert buf.pending_steps == 0


def test_list_indices_and_bad_priorities_name_the_argument():
    buf = filled_buffer()
    assert buf.update_priorities([0, 1], [-5, -5], [1.0, 1.0]).tolist() == [False, False]
    with pytest.raises(ValueError, match="index should be an int64"):
        buf.update_priorities("rows", [0], [1.0])
    with pytest.raises(ValueError, match="td_abs should be"):
        buf.update_priorities([0], [0], [[1.0, 2.0], [3.0, 4.0]])


def test_her_callables_returning_the_wrong_shape():
    spec = {"observation": (2,), "achieved_goal": (2,), "desired_goal": (2,), "action": (1,)}
    buf = replay.ReplayBuffer(64, spec, her=replay.HER("future", 4, lambda a, g: torch.zeros(3)))
    buf.add_episode(
        obs={k: torch.zeros(6, 2) for k in ("observation", "achieved_goal", "desired_goal")},
        action=torch.zeros(5, 1),
        reward=torch.zeros(5),
    )
    with pytest.raises(ValueError, match="HER reward callable should return"):
        buf.sample(64)


def test_agent_settings_fail_at_construction():
    with pytest.raises(ValueError, match="lr should be a finite number >= 0, got inf"):
        pyrl.agents.PPO("CartPole-v1", lr=float("inf"))
    with pytest.raises(ValueError, match="train_every should be an int >= 1, got 0"):
        pyrl.agents.DDPG("Pendulum-v1", train_every=0)
    agent = pyrl.agents.PPO("CartPole-v1", n_envs=1, n_steps=8, batch_size=8)
    with pytest.raises(ValueError, match="episodes should be an int >= 1, got 0"):
        agent.evaluate(episodes=0)


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pyrl.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_cli_refuses_bad_settings_and_conflicts(tmp_path):
    out = str(tmp_path / "run")
    result = cli(
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "64",
        "--set",
        "lr=inf",
        "--out",
        out,
        "--no-progress",
    )
    assert result.returncode != 0 and "lr should be a finite number" in result.stderr
    result = cli(
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "64",
        "--seed",
        "1",
        "--set",
        "seed=2",
        "--out",
        out,
        "--no-progress",
    )
    assert result.returncode != 0 and "--seed 1 and --set seed=2 disagree" in result.stderr
    result = cli(
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "64",
        "--set",
        "n_envs=1",
        "--set",
        "n_steps=32",
        "--set",
        "batch_size=32",
        "--out",
        out,
        "--no-progress",
        "--eval-episodes",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["args"]["seed"] == 0
    result = cli(
        "train",
        "ppo",
        "--env",
        "Acrobot-v1",
        "--steps",
        "128",
        "--resume",
        "--out",
        out,
        "--no-progress",
    )
    assert (
        result.returncode != 0
        and "was trained on CartPole-v1, but --env names Acrobot-v1" in result.stderr
    )


def test_a_failed_save_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    buf = filled_buffer()
    path = tmp_path / "buffer.pt"
    buf.save(path)
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        buf.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["buffer.pt"]


def test_an_inconsistent_tree_is_refused_not_walked():
    buf = filled_buffer()
    leaves = replay.layout.tree_leaf_offset(buf.capacity)
    storage = buf.storage
    storage.sum_tree[leaves : leaves + buf.capacity] = 0.0  # parents still claim mass
    with pytest.raises(ValueError, match="not a stored transition|without priority"):
        buf.sample(64)
    with pytest.raises(ValueError, match="without priority: sum_tree's parents do not match"):
        torch.ops.pyrl.tree_sample(
            storage.sum_tree,
            storage.min_tree,
            buf.capacity,
            torch.rand(8, dtype=torch.float64),
            0.4,
            False,
        )
    with pytest.raises(replay.InvariantError, match="leaves"):
        buf.check()


def test_ops_refuse_counters_they_would_index_with():
    """Counters changed behind the buffer's back are refused by the ops that index with them,
    before any row is touched; check() still reads the state and names what is broken."""
    buf = filled_buffer()
    buf.storage.counters[replay.layout.COUNTERS["cursor"]] = 10**9
    with pytest.raises(ValueError, match="counters are inconsistent"):
        buf.add_episode(obs=torch.zeros(3, 3), action=torch.zeros(2, 2), reward=torch.zeros(2))
    with pytest.raises(ValueError, match="counters are inconsistent"):
        buf.sample(8)
    with pytest.raises(replay.InvariantError, match="'counters'"):
        buf.check()


# ---- 8. the third probe (issue 27): descents, row indices, encoder outputs, damaged fields -------


def test_helpers_and_tree_ops_validate_what_they_index_with():
    # In a subprocess: before the checks these returned a negative size or segfaulted.
    result = run_python("""
        import torch
        from pyrl import _C
        for helper in (_C.tree_size, _C.tree_leaf_offset, _C.episode_slots):
            for capacity in (2 ** 63 - 8, 2 ** 63 - 1, 2 ** 48 + 1, 0, -1):
                try:
                    helper(capacity)
                    print("accepted", helper.__name__, capacity)
                except ValueError as err:
                    assert "capacity should be in [1, 2^48]" in str(err), err
        try:
            _C.counter_uniforms(0, 0, 0, 2 ** 40)
            print("accepted counter_uniforms")
        except ValueError as err:
            assert "count should be in [0, 2^31]" in str(err), err
        g = torch.Generator().manual_seed(0)
        outcomes = set()
        for trial in range(300):  # trees whose parents do not match their children
            capacity = int(torch.randint(2, 3000, (1,), generator=g))
            size = _C.tree_size(capacity)
            exponent = int(torch.randint(0, 12, (1,), generator=g))
            scale = float(torch.rand(1, generator=g)) * 10**exponent
            sum_tree = (torch.rand(size, generator=g, dtype=torch.float64) - 0.3) * scale
            sum_tree[0] = abs(float(sum_tree[0])) + 1.0
            if trial % 3 == 0:
                sum_tree[torch.randint(0, size, (size // 4,), generator=g)] = float("nan")
            min_tree = torch.rand(size, generator=g, dtype=torch.float64)
            try:
                index, weight = torch.ops.pyrl.tree_sample(
                    sum_tree, min_tree, capacity, torch.rand(64, generator=g, dtype=torch.float64),
                    0.4, False)
                assert bool(((index >= 0) & (index < capacity)).all())
                outcomes.add("rows")
            except ValueError as err:
                message = str(err)
                assert "sum_tree's parents do not match" in message or "no priority" in message, err
                outcomes.add("refused")
        print("ok", sorted(outcomes))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "accepted" not in result.stdout and "ok" in result.stdout, result.stdout


def recurrent_buffer():
    buf = replay.ReplayBuffer(64, {"obs": (3,)}, seed=0, recurrent=replay.Recurrent((4,)))
    for length in (5, 7, 9):
        buf.add_episode(
            obs=torch.randn(length + 1, 3),
            reward=torch.randn(length),
            hidden=torch.randn(length + 1, 4),
        )
    return buf


def test_store_hidden_refuses_rows_outside_the_buffer_like_update_priorities():
    buf = recurrent_buffer()
    batch = buf.sample_sequences(3, length=2)
    before = buf.storage.column("hidden").clone()
    for bad in (64, 512, -1, -512, 2**62):
        index = batch.index.clone()
        index[1] = bad
        with pytest.raises(ValueError, match=rf"index\[1\] should be in \[0, 64\), got {bad}"):
            buf.store_hidden(index, batch.generation, torch.ones(3, 4))
        assert torch.equal(buf.storage.column("hidden"), before)
    # In range, the offset still wraps around the ring's end as a window does.
    written = buf.store_hidden(batch.index, batch.generation, torch.ones(3, 4), offset=1)
    rows = (batch.index + 1) % 64
    assert torch.equal(
        buf.storage.column("hidden")[rows[written]], torch.ones(int(written.sum()), 4)
    )


@pytest.mark.parametrize(
    "output, match",
    [
        (
            lambda x, h0: torch.zeros(*x.shape[:2], h0.shape[-1], device="meta"),
            "on cpu .* got .* meta",
        ),
        (lambda x, h0: torch.zeros(*x.shape[:2], h0.shape[-1], dtype=torch.int64), "float states"),
        (lambda x, h0: torch.full((*x.shape[:2], h0.shape[-1]), float("nan")), "not finite"),
    ],
)
def test_recompute_hidden_refuses_outputs_it_cannot_store(output, match):
    buf = recurrent_buffer()
    before = buf.storage.column("hidden").clone()
    with pytest.raises(ValueError, match=match):
        buf.recompute_hidden(output)
    assert torch.equal(buf.storage.column("hidden"), before)
    assert len(buf.episodes_due(buf.episodes()["id"], 1)) == 3  # none marked fresh


def damaged(tmp_path, change):
    agent = pyrl.agents.PPO("CartPole-v1", n_envs=1, n_steps=8, batch_size=8)
    agent.learn(8)
    agent.save(tmp_path / "good.pt")
    checkpoint = torch.load(tmp_path / "good.pt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c.update(steps="abc"), "steps"),
        (lambda c: c.update(steps=-3), "steps"),
        (lambda c: c.update(updates=2**70), None),  # a big int is an int: loads
        (lambda c: c.update(history={"not": "a list"}), "history"),
        (lambda c: c.update(torch_rng=torch.zeros(3)), "torch_rng"),
        (lambda c: c["state"].update(model={"weight": "text"}), "state.model"),
        (lambda c: c["state"].pop("optimizer"), "state.optimizer"),
        (lambda c: c["state"].update(rng={"state": {"state": 2**200}}), "state.rng"),
        (lambda c: c.update(args={"n_steps": "many"}), "args"),
    ],
)
def test_damaged_checkpoint_fields_are_value_errors_naming_file_and_field(tmp_path, change, field):
    path = damaged(tmp_path, change)
    if field is None:
        pyrl.agents.PPO.load(path)
        return
    with pytest.raises(ValueError, match=rf"bad.pt.*field '{re.escape(field)}'"):
        pyrl.agents.PPO.load(path)
