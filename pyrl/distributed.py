"""Distributed acting on Ray (Ape-X style): actor processes step environments with a recent copy
of the policy and send their experience to one learner.

    from pyrl.agents import DDPG
    from pyrl.distributed import Distributed

    learner = DDPG("pyrl/PointReach-v0", her_strategy="future", ...)
    Distributed(learner, actors=4, envs_per_actor=2).learn(100_000)

Ray runs the same code on one machine (a local cluster, started here when none is running) and
on a cluster (``ray_address=...``). It is optional: ``pip install 'pyrl[ray]'``.

How it runs:

- Each actor builds the same agent class as the learner, with its own seed, and acts through the
  agent's own acting code on numpy copies of the policy (``acting_state``).
- DDPG (off-policy, asynchronous): weights and observation statistics are broadcast every
  ``sync_every`` updates. The learner asks each actor for ``chunk`` steps at a time (two requests
  queued per actor, so an actor never waits on the learner's reply) and adds the finished
  episodes it gets back, whole, with ``add_episode``; an episode longer than
  ``max_episode_steps`` arrives in cut chunks. With ``initial_priorities`` (prioritized replay)
  each actor also computes its episodes' ``|TD|`` with its copy of the critics (Ape-X), and they
  enter the buffer at those priorities instead of the largest one.
- Rate limiting (DDPG) follows Reverb's ``SampleToInsertRatio``: with ``d = samples_per_insert *
  inserted - sampled`` (sampled counts transitions drawn by updates, inserted the transitions
  added to the buffer; the steps of requests in flight count as inserted when asking for more),
  the learner samples only while ``d`` stays above ``spi * min_size - error_buffer`` and actors
  are only asked for more while it stays below ``spi * min_size + error_buffer``: the learner
  waits for actors, or actors wait for the learner, whichever is faster.
- PPO (on-policy, synchronous): every iteration sends the current weights and normalizer
  statistics with the request, each actor collects ``n_steps`` steps of its envs (the agent's
  own ``_collect``), and the learner joins the rollouts along the env axis (a rollout of
  ``actors * envs_per_actor * n_steps`` steps), computes GAE and runs its epochs. Actors keep
  their episodes, running discounted returns and recurrent states across iterations; the moments
  of the observations and returns they normalized with are merged into the learner's
  normalizers, so the statistics cover every actor's data.
- An actor process that dies is restarted by Ray (``max_restarts``); the learner resends it the
  current weights and asks again, backing off while the new process starts (an actor whose
  requests keep failing for ``RESTART_GRACE`` seconds is left out). What it
  had sent is kept; the steps of the request it died in never reached the learner and are not
  counted.
"""

import os
import time
import warnings
from typing import Optional

import numpy as np
import torch

from pyrl.agents.common import EpisodeStats, RunningNorm

RAY_VERSION = "2.60.0"
# An actor is left out once its requests have failed MAX_FAILURES times in a row over at least
# RESTART_GRACE seconds: a process Ray restarts takes seconds to come back, minutes on a busy
# machine, and requests to it fail fast meanwhile. Between failures its requests back off.
MAX_FAILURES = 8
RESTART_GRACE = 120.0
RETRY_BACKOFF = (0.05, 2.0)  # first and longest wait, in seconds, doubling per failure


def require_ray():
    """The ray module, or ImportError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"pyrl.distributed needs Ray ({err}): pip install 'pyrl[ray]' (ray=={RAY_VERSION})"
        ) from None
    return ray


class SampleToInsertRatio:
    """Reverb's rate limiter: keeps ``samples_per_insert * inserted - sampled`` within
    ``error_buffer`` of ``samples_per_insert * min_size``, and samples only from ``min_size``
    inserts on."""

    def __init__(self, samples_per_insert: float, min_size: int, error_buffer: float):
        if not (isinstance(samples_per_insert, (int, float)) and samples_per_insert > 0):
            raise ValueError(
                f"SampleToInsertRatio: samples_per_insert should be > 0, got {samples_per_insert!r}"
            )
        if not (type(min_size) is int and min_size >= 1):
            raise ValueError(
                f"SampleToInsertRatio: min_size should be an int >= 1, got {min_size!r}"
            )
        if not (isinstance(error_buffer, (int, float)) and error_buffer > 0):
            raise ValueError(
                f"SampleToInsertRatio: error_buffer should be > 0, got {error_buffer!r}"
            )
        self.samples_per_insert, self.min_size, self.error_buffer = (
            samples_per_insert,
            min_size,
            error_buffer,
        )
        offset = samples_per_insert * min_size
        self.min_diff, self.max_diff = offset - error_buffer, offset + error_buffer

    def can_sample(self, inserted: int, sampled: int, count: int) -> bool:
        return (
            inserted >= self.min_size
            and self.samples_per_insert * inserted - (sampled + count) >= self.min_diff
        )

    def can_insert(self, inserted: int, sampled: int, count: int) -> bool:
        return self.samples_per_insert * (inserted + count) - sampled <= self.max_diff


def actor_agent(
    algo: str, env, env_kwargs: Optional[dict], args: dict, seed: int, envs: int, **settings
):
    """The learner's agent class and settings, built in an actor process with its own seed and
    ``envs`` environments (reset), for acting only."""
    from pyrl.agents import ALGORITHMS

    import ray

    torch.set_num_threads(1)
    if ray.get_runtime_context().was_current_actor_reconstructed:
        seed += 7919 * os.getpid()  # a restarted actor does not replay its first episodes
    settings = dict(
        args, seed=seed, n_envs=envs, progress=False, eval_every=0, tensorboard=None, **settings
    )
    agent = ALGORITHMS[algo](env, env_kwargs=env_kwargs, **settings)
    agent.obs, _ = agent.env.reset(seed=seed)
    agent.rnn_state = agent.initial_state(envs)
    return agent


class EpisodeActor:
    """One actor process of an off-policy learner: ``envs`` environments stepped with the
    agent's exploration, finished episodes packed as arrays (Ray wraps this class as a remote
    actor)."""

    def __init__(
        self,
        algo: str,
        env,
        env_kwargs: Optional[dict],
        args: dict,
        seed: int,
        envs: int,
        noise_sigma: float,
        warmup_steps: int,
        max_episode_steps: int,
        priorities: bool,
    ):
        # Acting is the learner's code, on a buffer it never uses.
        self.agent = actor_agent(
            algo,
            env,
            env_kwargs,
            args,
            seed,
            envs,
            noise_sigma=noise_sigma,
            buffer_size=2,
            buffer_dir=None,
        )
        self.warmup_steps, self.max_episode_steps = warmup_steps, max_episode_steps
        self.priorities = priorities
        self.steps = 0
        self.episodes = [self._new_episode() for _ in range(envs)]
        self.stats = EpisodeStats(envs)

    def _new_episode(self) -> dict:
        return {"obs": [], "action": [], "reward": [], "hidden": []}

    def set_policy(self, state: dict) -> None:
        self.agent.load_acting_state(state)

    def collect(self, steps: int) -> dict:
        """``steps`` steps of every env; returns the episodes that ended (or were cut) in them,
        their returns and successes, and the steps taken."""
        agent, done_episodes = self.agent, []
        recurrent = agent.args.recurrent
        for _ in range(steps):
            step = agent.step(self.stats, store=False, warmup=self.steps < self.warmup_steps)
            fields, last = agent.buffer_fields(step.obs), agent.buffer_fields(step.next_obs)
            for i, episode in enumerate(self.episodes):
                episode["obs"].append({k: v[i] for k, v in fields.items()})
                episode["action"].append(step.action[i])
                episode["reward"].append(step.reward[i])
                if recurrent:
                    episode["hidden"].append(step.state[i])
                cut = len(episode["action"]) >= self.max_episode_steps
                if step.terminated[i] or step.truncated[i] or cut:
                    episode["obs"].append({k: v[i] for k, v in last.items()})
                    if recurrent:  # a cut episode's next piece goes on from the carried state
                        episode["hidden"].append(step.next_state[i])
                    done_episodes.append(self._pack(episode, bool(step.terminated[i])))
                    self.episodes[i] = self._new_episode()
            self.steps += len(self.episodes)
        return {
            "episodes": done_episodes,
            "steps": steps * len(self.episodes),
            "pid": os.getpid(),
            **self.stats.take(),
        }

    def _pack(self, episode: dict, terminated: bool) -> dict:
        """One episode as arrays; float observations as float32, what the buffer stores; with
        ``priorities``, its transitions' ``|TD|`` by this actor's copy of the critics."""
        obs = {}
        for key in episode["obs"][0]:
            column = np.stack([o[key] for o in episode["obs"]])
            obs[key] = column.astype(np.float32) if column.dtype.kind == "f" else column
        packed = {
            "obs": obs,
            "action": np.asarray(episode["action"], np.float32),
            "reward": np.asarray(episode["reward"], np.float32),
            "terminated": terminated,
        }
        if episode["hidden"]:  # recurrent: the state fed into every step, and the final one
            packed["hidden"] = np.stack(episode["hidden"]).astype(np.float32)
        if self.priorities:
            packed["td_abs"] = self.agent.initial_priorities(
                obs if self.agent.goal_env else obs["obs"],
                packed["action"],
                packed["reward"],
                terminated,
            )
        return packed


class TalliedNorm(RunningNorm):
    """An actor's copy of a learner's normalizer: normalizes and updates as the learner's would,
    and tallies the moments of what it was updated with since :meth:`reset_tally`, for the
    learner to merge into its own."""

    def __init__(self, norm: RunningNorm):
        super().__init__(norm.mean.shape, norm.clip, norm.eps)
        self.reset_tally()

    def reset_tally(self) -> None:
        self.tally = RunningNorm(self.mean.shape)
        self.tally.var[...], self.tally.count = 0.0, 0.0  # no prior: merges exactly

    def update(self, x: np.ndarray) -> None:
        super().update(x)
        self.tally.update(x)

    def moments(self) -> tuple:
        return self.tally.mean, self.tally.var, self.tally.count


class RolloutActor:
    """One actor process of an on-policy learner (PPO): ``envs`` environments, ``steps`` steps
    of each per request, collected with the agent's own rollout code."""

    NORMS = ("obs_norm", "return_norm")

    def __init__(
        self,
        algo: str,
        env,
        env_kwargs: Optional[dict],
        args: dict,
        seed: int,
        envs: int,
        steps: int,
    ):
        self.agent = actor_agent(algo, env, env_kwargs, args, seed, envs, n_steps=steps)
        for name in self.NORMS:
            if getattr(self.agent, name) is not None:
                setattr(self.agent, name, TalliedNorm(getattr(self.agent, name)))
        self.stats = EpisodeStats(envs)

    def rollout(self, state: dict) -> dict:
        """A rollout with the learner's current policy ``state`` (``acting_state``), the
        episodes that ended in it, and the moments its normalizers were updated with."""
        agent, stats = self.agent, self.stats
        agent.load_acting_state(state)
        norms = {
            name: getattr(agent, name) for name in self.NORMS if getattr(agent, name) is not None
        }
        for norm in norms.values():
            norm.reset_tally()
        rollout = agent.collect(stats)
        return {
            "rollout": rollout,
            "steps": rollout.reward.size,
            "pid": os.getpid(),
            **stats.take(),
            "moments": {name: norm.moments() for name, norm in norms.items()},
        }


def join_rollouts(rollouts: list):
    """Actors' rollouts ``[T, n_i, ...]`` as one ``[T, sum n_i, ...]`` rollout, envs in order."""
    first = rollouts[0]
    joined = {}
    for name in ("obs", "action", "reward", "terminated", "truncated", "hidden"):
        parts = [getattr(r, name) for r in rollouts]
        joined[name] = None if parts[0] is None else np.concatenate(parts, axis=1)
    for name in ("last_obs", "last_hidden"):
        parts = [getattr(r, name) for r in rollouts]
        joined[name] = None if parts[0] is None else np.concatenate(parts, axis=0)
    finals, offset = [], 0
    for r in rollouts:
        finals += [(t, i + offset, *rest) for t, i, *rest in r.finals]
        offset += r.reward.shape[1]
    return type(first)(finals=finals, **joined)


def add_episodes(agent, episodes: list) -> int:
    """Adds actors' episodes (:meth:`Actor._pack`'s arrays) to a DDPG learner's buffer, its
    observation normalizer updated with their steps; returns the transitions added."""
    added = 0
    with warnings.catch_warnings():
        # Ray hands arrays over read-only (zero copy); the buffer only reads them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for episode in episodes:
            obs = episode["obs"] if agent.goal_env else episode["obs"]["obs"]
            if agent.obs_norm is not None:
                agent.obs_norm.update(agent.layout(obs)[:-1])
            hidden = {"hidden": episode["hidden"]} if "hidden" in episode else {}
            agent.buffer.add_episode(
                obs=obs,
                action=episode["action"],
                reward=episode["reward"],
                terminated=episode["terminated"],
                td_abs=episode.get("td_abs"),
                **hidden,
            )
            added += len(episode["reward"])
    return added


class Distributed:
    """Trains a DDPG or PPO learner on experience from Ray actors; see the module docstring.

    Args:
        agent: the learner (``pyrl.agents.DDPG`` or ``PPO``); its buffer, networks, steps and
            history are the run's, so its ``save``/``load`` checkpoint (the buffer included)
            resumes it.
        actors: actor processes.
        envs_per_actor: environments each actor steps side by side; default 1 (DDPG), or the
            agent's ``n_envs / actors`` (PPO: the rollout keeps the single-process size).
        ray_address: a Ray cluster's address; None starts a local one (or joins the running one).
        max_restarts: restarts Ray grants a dying actor process (-1: unlimited).
        samples_per_insert: (DDPG; PPO's rollouts are synchronous, each step used by one
            iteration's epochs) transitions sampled per env step; default the agent's own
            ratio, ``gradient_steps * batch_size / train_every``.
        error_buffer: (DDPG) the rate limiter's tolerance, in sampled transitions; default one
            round of requests from every actor (or two batches, whichever is larger).
        min_size: (DDPG) transitions in the buffer before learning starts; default the agent's
            ``learning_starts`` (at least one request's steps).
        sync_every: (DDPG) updates between weight broadcasts (default 100).
        chunk: (DDPG) steps per env in one actor request (default 50).
        noise_ladder: (DDPG) per-actor exploration noise from 0.5x to 1.5x the agent's
            ``noise_sigma`` (Ape-X's spread of exploration); False gives every actor the agent's.
        initial_priorities: (DDPG with ``per``) actors compute their episodes' ``|TD|``, and
            the episodes enter the buffer at those priorities.
    """

    def __init__(
        self,
        agent,
        actors: int = 2,
        envs_per_actor: Optional[int] = None,
        ray_address: Optional[str] = None,
        max_restarts: int = -1,
        samples_per_insert: Optional[float] = None,
        error_buffer: Optional[float] = None,
        min_size: Optional[int] = None,
        sync_every: Optional[int] = None,
        chunk: Optional[int] = None,
        noise_ladder: bool = False,
        initial_priorities: bool = False,
    ):
        ray = require_ray()
        a = agent.args
        if agent.algo not in ("ddpg", "ppo"):
            raise ValueError(
                f"Distributed: actors feed a DDPG learner (replay) or a PPO learner "
                f"(rollouts); got {agent.algo}"
            )
        if agent.algo == "ddpg" and a.recurrent and initial_priorities:
            raise ValueError(
                "Distributed: initial_priorities: a recurrent learner's priorities "
                "are per sampled window (R2D2), set by its updates"
            )
        if agent.env_id is None:
            raise ValueError(
                "Distributed: actors make their envs from a registered env id; the "
                "learner's env has none"
            )
        self.on_policy = agent.algo == "ppo"
        if self.on_policy:
            given = [
                name
                for name, value in (
                    ("samples_per_insert", samples_per_insert),
                    ("error_buffer", error_buffer),
                    ("min_size", min_size),
                    ("sync_every", sync_every),
                    ("chunk", chunk),
                    ("noise_ladder", noise_ladder or None),
                    ("initial_priorities", initial_priorities or None),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"Distributed: {', '.join(given)} apply to a DDPG learner; PPO "
                    f"gathers one synchronous rollout per iteration"
                )
            if envs_per_actor is None and type(actors) is int and actors >= 1:
                envs_per_actor = max(1, round(a.n_envs / actors))
        envs_per_actor = 1 if envs_per_actor is None else envs_per_actor
        sync_every = 100 if sync_every is None else sync_every
        chunk = 50 if chunk is None else chunk
        for name, value, low in (
            ("actors", actors, 1),
            ("envs_per_actor", envs_per_actor, 1),
            ("sync_every", sync_every, 1),
            ("chunk", chunk, 1),
            ("max_restarts", max_restarts, -1),
        ):
            if not (type(value) is int and value >= low):
                raise ValueError(f"Distributed: {name} should be an int >= {low}, got {value!r}")
        if initial_priorities and not a.per:
            raise ValueError(
                "Distributed: initial_priorities needs a prioritized learner (per=True)"
            )
        self.agent, self.actors, self.envs_per_actor = agent, actors, envs_per_actor
        self.chunk, self.sync_every = chunk, sync_every
        self.request_steps = request_steps = (
            a.n_steps if self.on_policy else chunk
        ) * envs_per_actor
        if not self.on_policy:
            spi = (
                samples_per_insert
                if samples_per_insert is not None
                else a.gradient_steps * a.batch_size / a.train_every
            )
            buffer = (
                error_buffer
                if error_buffer is not None
                else max(spi * request_steps * actors, 2 * a.batch_size)
            )
            size = min_size if min_size is not None else max(a.learning_starts, request_steps)
            self.limiter = SampleToInsertRatio(spi, size, buffer)
            if buffer < max(a.batch_size, spi * request_steps):
                raise ValueError(
                    f"Distributed: error_buffer should hold at least one batch and one "
                    f"request (max({a.batch_size}, {spi:g} * {request_steps})), got "
                    f"{buffer!r}: with less, neither side could move"
                )

        if not ray.is_initialized():
            if ray_address is None:
                ray.init(
                    num_cpus=max(2, actors),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
        self.ray = ray
        args = dict(vars(a))
        self.workers = []
        remote = ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=0)
        for i in range(actors):
            if self.on_policy:
                # Actor 0 steps the learner's own seed: one actor with the learner's n_envs
                # collects what the single-process agent would.
                self.workers.append(
                    remote(RolloutActor).remote(
                        agent.algo,
                        agent.env_id,
                        agent.env_kwargs,
                        args,
                        a.seed + i,
                        envs_per_actor,
                        a.n_steps,
                    )
                )
                continue
            sigma = (
                a.noise_sigma * (0.5 + i / max(actors - 1, 1)) if noise_ladder else a.noise_sigma
            )
            self.workers.append(
                remote(EpisodeActor).remote(
                    agent.algo,
                    agent.env_id,
                    agent.env_kwargs,
                    args,
                    a.seed + 1 + i,
                    envs_per_actor,
                    sigma,
                    a.learning_starts // actors,
                    agent.buffer.max_episode_steps,
                    initial_priorities,
                )
            )
        self.initial_priorities = initial_priorities
        self.inserted = 0  # transitions added to the buffer (or rollouts) from actors
        self.sampled = 0  # transitions drawn by updates (PPO: rollout steps x epochs)
        self.restarts = 0  # actor processes seen coming back (a new process id in its results)
        self.steps_by_actor = [0] * actors
        self.active = [True] * actors  # False once an actor is left out (see RESTART_GRACE)
        self._failures = [0] * actors  # requests failed since the actor's last result
        self._failing_since = [0.0] * actors  # time.monotonic() of the streak's first failure
        self._retry_at = [0.0] * actors  # no request to the actor before this time
        self._pids: list = [None] * actors
        self.learner_wait = 0.0  # seconds the learner waited for actors with nothing to train

    # ---- weights ---------------------------------------------------------------------------------

    def _policy(self) -> dict:
        if self.on_policy:
            return self.agent.acting_state()
        return self.agent.acting_state(critics=self.initial_priorities)

    def _broadcast(self) -> None:
        state = self.ray.put(self._policy())
        for worker in self.workers:
            worker.set_policy.remote(state)

    def _received(self, i: int, result: dict) -> bool:
        """Bookkeeping of a result from actor i; True when it comes from a new process (Ray
        restarted the actor)."""
        self._failures[i] = 0
        self.steps_by_actor[i] += result["steps"]
        restarted = self._pids[i] is not None and result["pid"] != self._pids[i]
        self.restarts += restarted
        self._pids[i] = result["pid"]
        return restarted

    def _failed(self, i: int) -> None:
        """A request of actor i failed (its process died; Ray restarts it): its next request
        waits a backoff; an actor failing MAX_FAILURES requests in a row over RESTART_GRACE
        seconds (its restarts are used up) is left out, and the run stops when none is left."""
        now = time.monotonic()
        if self._failures[i] == 0:
            self._failing_since[i] = now
        self._failures[i] += 1
        first, longest = RETRY_BACKOFF
        self._retry_at[i] = now + min(first * 2 ** (self._failures[i] - 1), longest)
        if self._failures[i] >= MAX_FAILURES and now - self._failing_since[i] >= RESTART_GRACE:
            self.active[i] = False
            warnings.warn(
                f"Distributed: actor {i} failed {self._failures[i]} requests in a row over "
                f"{now - self._failing_since[i]:.0f} s and is left out ({sum(self.active)} of "
                f"{self.actors} actors left)",
                stacklevel=3,
            )
            if not any(self.active):
                raise RuntimeError(
                    "Distributed: every actor failed; see the Ray logs "
                    "(/tmp/ray/session_latest/logs)"
                )

    # ---- the learner's loop ----------------------------------------------------------------------

    def learn(self, total_steps: int, callback=None, progress: Optional[bool] = None) -> list[dict]:
        """Trains until the agent has ``total_steps`` env steps (over all actors); returns the
        history. ``callback(agent, row)`` runs at each log point, as in ``agent.learn``."""
        stats, bar = self.agent.begin_learning(total_steps, progress)
        try:
            if self.on_policy:
                self._learn_rollouts(total_steps, callback, stats, bar)
            else:
                self._learn_replay(total_steps, callback, stats, bar)
        finally:
            if bar is not None:
                bar.close()
        return self.agent.history

    def _learn_rollouts(self, total_steps: int, callback, stats, bar) -> None:
        """PPO: one synchronous rollout from every actor per iteration, trained on here."""
        agent, a = self.agent, self.agent.args
        while agent.steps < total_steps:
            # Annealed over absolute steps, so a resumed run continues the same schedule.
            frac = 1.0 - agent.steps / total_steps if a.anneal else 1.0
            mark = (agent.steps, agent.updates, time.perf_counter())
            results = self._gather_rollouts()
            for result in results:
                for name, (mean, var, count) in result["moments"].items():
                    if count > 0:
                        getattr(agent, name).merge(mean, var, count)
                stats.add(result)
            rollout = join_rollouts([result["rollout"] for result in results])
            steps = rollout.reward.size
            before, updates = agent.steps, agent.updates
            agent.steps += steps
            self.inserted += steps
            row = {**stats.drain(), **agent.train_round(rollout, frac)}
            self.sampled += (agent.updates - updates) * steps  # each epoch reads every step
            row.update(self._rates(mark))
            if not agent.log(row, before, callback, bar):
                return

    def _gather_rollouts(self) -> list[dict]:
        """A rollout from every active actor with the current policy, in actor order; an actor
        whose process died is asked again (Ray restarts it) until it answers or is left out."""
        ray = self.ray
        state = ray.put(self._policy())
        pending = {
            self.workers[i].rollout.remote(state): i for i in range(self.actors) if self.active[i]
        }
        results = {}
        start = time.perf_counter()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                self._failed(i)
                if self.active[i]:
                    time.sleep(max(0.0, self._retry_at[i] - time.monotonic()))
                    pending[self.workers[i].rollout.remote(state)] = i
                continue
            self._received(i, result)
            results[i] = result
        self.learner_wait += time.perf_counter() - start
        return [results[i] for i in sorted(results)]

    def _learn_replay(self, total_steps: int, callback, stats, bar) -> None:
        """DDPG: actors' episodes into the buffer, updates as the rate limiter allows."""
        ray, agent, a = self.ray, self.agent, self.agent.args
        losses: dict[str, list] = {"critic_loss": [], "actor_loss": [], "q": []}
        request_steps = self.request_steps
        in_flight: dict = {}  # request ref -> worker index
        queued = [0] * self.actors
        requested = 0  # env steps asked for and not yet received
        self._broadcast()
        log_mark = (agent.steps, agent.updates, time.perf_counter())
        while agent.steps < total_steps:
            # Keep every actor busy (two requests queued) while inserting keeps the ratio.
            for i in range(self.actors):
                while (
                    self.active[i]
                    and queued[i] < 2
                    and time.monotonic() >= self._retry_at[i]
                    and agent.steps + requested < total_steps
                    and self.limiter.can_insert(
                        self.inserted + requested, self.sampled, request_steps
                    )
                ):
                    in_flight[self.workers[i].collect.remote(self.chunk)] = i
                    queued[i] += 1
                    requested += request_steps
            trained = self._train(losses)
            if not in_flight:
                if trained:
                    continue
                waits = [t for t, on in zip(self._retry_at, self.active) if on]
                if waits and min(waits) > time.monotonic():  # every actor is backing off
                    time.sleep(max(0.0, min(waits) - time.monotonic()))
                    continue
                raise RuntimeError(
                    f"Distributed: the rate limiter stalled (inserted "
                    f"{self.inserted}, sampled {self.sampled}); report this"
                )
            start = time.perf_counter()
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0 if trained else None)
            if not trained:
                self.learner_wait += time.perf_counter() - start
            for ref in ready:
                i = in_flight.pop(ref)
                queued[i] -= 1
                requested -= request_steps
                try:
                    result = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    self._failed(i)
                    if self._failures[i] == 1:  # the restarted process needs the weights
                        self.workers[i].set_policy.remote(ray.put(self._policy()))
                    continue
                if self._received(i, result):  # restarted: it needs the weights
                    self.workers[i].set_policy.remote(ray.put(self._policy()))
                before = agent.steps
                self._insert(result, stats)
                if (
                    agent.steps // a.log_every != before // a.log_every
                    or agent.steps >= total_steps
                ):
                    row = {
                        **stats.drain(),
                        **{k: float(np.mean(v)) if v else float("nan") for k, v in losses.items()},
                        **self._rates(log_mark),
                    }
                    log_mark = (agent.steps, agent.updates, time.perf_counter())
                    losses = {k: [] for k in losses}
                    if not agent.log(row, before, callback, bar):
                        return

    def _train(self, losses: dict) -> int:
        """Updates while the rate limiter allows (at most one chunk's worth, so results keep
        flowing in); returns how many ran."""
        agent, a = self.agent, self.agent.args
        if agent.buffer.num_episodes == 0:
            return 0
        ran = 0
        limit = max(1, int(self.limiter.samples_per_insert * self.request_steps / a.batch_size))
        while ran < limit and self.limiter.can_sample(self.inserted, self.sampled, a.batch_size):
            for key, value in agent.update().items():
                losses[key].append(value)
            self.sampled += a.batch_size
            ran += 1
            if agent.updates % self.sync_every == 0:
                self._broadcast()
        return ran

    def _insert(self, result: dict, stats) -> None:
        agent = self.agent
        with agent.timer("replay"):
            self.inserted += add_episodes(agent, result["episodes"])
        agent.steps += result["steps"]
        stats.add(result)

    def _rates(self, mark: tuple) -> dict:
        steps, updates, start = mark
        seconds = max(time.perf_counter() - start, 1e-9)
        buffer = getattr(self.agent, "buffer", None)
        counts = buffer.priority_updates if buffer is not None and buffer.prioritized else None
        stale = (
            (counts["dropped"] / max(1, counts["applied"] + counts["dropped"])) if counts else 0.0
        )
        return {
            "actors": self.actors,
            "env_steps_per_s": (self.agent.steps - steps) / seconds,
            "updates_per_s": (self.agent.updates - updates) / seconds,
            "samples_per_insert": self.sampled / max(1, self.inserted),
            "stale_update_share": stale,
            "actor_restarts": self.restarts,
            "learner_wait_s": self.learner_wait,
        }

    def close(self) -> None:
        """Stops the actor processes (the Ray cluster stays up)."""
        for worker in self.workers:
            self.ray.kill(worker, no_restart=True)
        self.workers = []
