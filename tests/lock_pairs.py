"""Every pair of a buffer's public methods from two threads at once (tests/test_concurrency.py
runs this file in a subprocess): a deadlock cannot be interrupted, so faulthandler's watchdog,
which needs no GIL, dumps every thread's stack and ends the process at the deadline.

    python tests/lock_pairs.py SECONDS_PER_PAIR [ROUNDS]

Prints one line per buffer kind and ``pairs: N passed`` at the end; exits 1 on an exception."""

import faulthandler
import itertools
import os
import sys
import tempfile
import threading

import numpy as np
import torch

from pyrl import replay

HIDDEN = 4


def encoder(x, h0):
    """A deterministic recurrent encoder: states [E, L, d] from x [E, L, 3] and h0 [E, d]."""
    states, h = [], h0
    for t in range(x.shape[1]):
        h = torch.tanh(0.5 * h + x[:, t, :1])
        states.append(h)
    return torch.stack(states, 1)


def recurrent_buffer(directory: str) -> replay.ReplayBuffer:
    buf = replay.ReplayBuffer(
        256,
        {"obs": (3,), "action": (2,)},
        seed=1,
        prioritized=replay.PER(),
        nstep=replay.NStep(2, 0.9),
        max_episode_steps=6,
        recurrent=replay.Recurrent(hidden=(HIDDEN,)),
    )
    for t in range(6):
        buf.add_episode(
            obs=torch.randn(t + 3, 3),
            action=torch.randn(t + 2, 2),
            reward=torch.randn(t + 2),
            hidden=torch.zeros(t + 3, HIDDEN),
        )
    return buf


def episode_buffer(directory: str) -> replay.ReplayBuffer:
    buf = replay.ReplayBuffer(
        256,
        {"obs": (3,), "action": (2,)},
        seed=2,
        prioritized=replay.PER(),
        episode_mode=replay.EpisodeMode(select_count=2, max_ep_draw=3),
    )
    for t in range(6):
        buf.add_episode(
            obs=torch.randn(t + 3, 3), action=torch.randn(t + 2, 2), reward=torch.randn(t + 2)
        )
    return buf


def mapped_buffer(directory: str) -> replay.ReplayBuffer:
    buf = replay.ReplayBuffer(
        256,
        {"obs": (3,), "action": (2,)},
        seed=3,
        prioritized=replay.PER(),
        storage=replay.MemoryMapped(os.path.join(directory, "columns")),
    )
    for t in range(6):
        buf.add_episode(
            obs=torch.randn(t + 3, 3), action=torch.randn(t + 2, 2), reward=torch.randn(t + 2)
        )
    return buf


def methods(buf: replay.ReplayBuffer, directory: str) -> dict:
    """Name -> a call of one public method (or property) of `buf` that succeeds on its state."""
    recurrent = buf.recurrent is not None
    saved = buf.state_dict()
    saved = {**saved, **{k: v.clone() for k, v in saved.items() if isinstance(v, torch.Tensor)}}
    if "columns" in saved:
        saved["columns"] = {k: v.clone() for k, v in saved["columns"].items()}
    if saved.get("stage") is not None:
        saved["stage"] = {k: v.clone() for k, v in saved["stage"].items()}
    step = dict(
        obs=np.random.randn(2, 3).astype(np.float32),
        action=np.zeros((2, 2), np.float32),
        reward=np.ones(2, np.float32),
        next_obs=np.zeros((2, 3), np.float32),
        terminated=np.array([False, True]),
        truncated=np.array([False, False]),
    )
    if recurrent:
        step.update(hidden=torch.zeros(2, HIDDEN), next_hidden=torch.zeros(2, HIDDEN))
    episode = dict(
        obs=torch.randn(4, 3),
        action=torch.randn(3, 2),
        reward=torch.randn(3),
        **({"hidden": torch.zeros(4, HIDDEN)} if recurrent else {}),
    )
    calls = {
        "add": lambda: buf.add(**step),
        "add_episode": lambda: buf.add_episode(**episode),
        "sample+update_priorities": lambda: (
            (b := buf.sample(8)) and buf.update_priorities(b.index, b.generation, torch.rand(8))
        ),
        "state_dict": buf.state_dict,
        "load_state_dict": lambda: buf.load_state_dict(saved),
        "save": lambda: buf.save(os.path.join(directory, f"save-{threading.get_ident()}.pt")),
        "episodes": buf.episodes,
        "check": buf.check,
        "end_running_episodes": buf.end_running_episodes,
        "next_uniforms": lambda: buf.next_uniforms(4),
        "counters": lambda: (
            len(buf),
            buf.num_episodes,
            buf.sample_calls,
            buf.pending_steps,
            buf.priority_updates,
            buf.priorities(),
        ),
    }
    if recurrent:
        calls.update(
            {
                "sample_sequences": lambda: buf.sample_sequences(4, length=2),
                "recompute_hidden": lambda: buf.recompute_hidden(encoder),
                "store_hidden": lambda: (
                    (b := buf.sample_sequences(4, length=2))
                    and buf.store_hidden(b.index, b.generation, torch.ones(4, HIDDEN))
                ),
                "gather_sequences": buf.gather_sequences,
                "episodes_due": lambda: buf.episodes_due(buf.episodes()["id"], 1),
            }
        )
    return calls


def sb3_calls(directory: str) -> dict:
    try:
        import gymnasium as gym
        from pyrl.compat import sb3
    except ImportError:
        return {}
    box = gym.spaces.Box(-1, 1, (3,), np.float32)
    buf = sb3.ReplayBuffer(64, box, gym.spaces.Box(-1, 1, (2,), np.float32), n_envs=2, seed=0)
    for _ in range(8):
        buf.add(
            np.zeros((2, 3), np.float32),
            np.zeros((2, 3), np.float32),
            np.zeros((2, 2), np.float32),
            np.ones(2),
            np.array([False, True]),
            [{}, {}],
        )
    return {
        "sb3.add": lambda: buf.add(
            np.zeros((2, 3), np.float32),
            np.zeros((2, 3), np.float32),
            np.zeros((2, 2), np.float32),
            np.ones(2),
            np.array([False, True]),
            [{}, {}],
        ),
        "sb3.sample": lambda: buf.sample(4),
        "sb3.save": lambda: buf.replay.save(
            os.path.join(directory, f"sb3-{threading.get_ident()}.pt")
        ),
        "sb3.state_dict": buf.replay.state_dict,
        "sb3.episodes": buf.replay.episodes,
    }


def run_pair(first, second, rounds: int) -> None:
    errors = []
    start = threading.Barrier(2)

    def loop(call):
        try:
            start.wait()
            for _ in range(rounds):
                call()
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=loop, args=(call,), daemon=True) for call in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def main() -> None:
    seconds = float(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    torch.manual_seed(0)
    np.random.seed(0)
    count = 0
    with tempfile.TemporaryDirectory() as directory:
        for kind, make in (
            ("recurrent", recurrent_buffer),
            ("episode_mode", episode_buffer),
            ("memory_mapped", mapped_buffer),
            ("sb3", None),
        ):
            if make is None:
                calls = sb3_calls(directory)
            else:
                buf = make(directory)
                calls = methods(buf, directory)
            for (a, first), (b, second) in itertools.combinations_with_replacement(
                calls.items(), 2
            ):
                # Re-armed per pair: a hang dumps every stack and exits with faulthandler's code.
                faulthandler.dump_traceback_later(seconds, exit=True)
                print(f"{kind}: {a} | {b}", file=sys.stderr, flush=True)
                run_pair(first, second, rounds)
                count += 1
            faulthandler.cancel_dump_traceback_later()
            if make is not None:
                buf.check()
            print(f"{kind}: {len(calls)} methods, every pair ran", flush=True)
    print(f"pairs: {count} passed, 0 failed", flush=True)


if __name__ == "__main__":
    main()
