"""Cooperative PPO + DDPG (SPEC 6): two learners share one vector env's arms, one replay pool,
one observation normalizer and, on a schedule, their policy weights.

Each round is ``ppo["n_steps"]`` steps of every arm:

* arms ``[0, d)`` act with the DDPG actor plus exploration noise, the other arms with PPO's
  stochastic policy (``d = round(ddpg_share * n_envs)``, at least one arm each);
* every arm's steps go to the shared pool, DDPG's replay buffer (PER, HER and floating n-step
  as its settings say), which DDPG samples every ``train_every`` steps; PPO's arms also form
  PPO's on-policy rollout, which PPO learns from at the end of the round;
* then the schedule syncs parameters between the two, in memory, by name: ``coop_v1`` (the
  original's 3x run) copies DDPG <- PPO after even rounds and PPO <- DDPG after odd ones;
  ``blog`` PPO <- DDPG after every round and DDPG <- PPO after every second; ``swap`` (COOP_v2)
  exchanges both ways after every third round, output layers included; ``none`` never; or
  explicit periods ``sync_ppo_from_ddpg`` / ``sync_ddpg_from_ppo`` (DDPG <- PPO after rounds
  0, P, 2P, ...; PPO <- DDPG after rounds P-1, 2P-1, ...). When both directions are due after
  the same round they exchange: each receives the other's parameters as they were. Before the
  first round PPO's actor body starts as DDPG's, as in the original.

A sync copies the parameters whose names are not excluded (``sync_exclude``: by default the
critics, the actors' output layers and PPO's log-std, so each learner keeps its own head),
in place; the names and shapes must match on both sides, or the Coop refuses to build.
Optimizer moments are kept (as the original did) unless ``reset_moments``. The networks share
their hidden sizes and activation (``hidden``, ``activation``), and the input normalizer is one
object both read and the pool's adds update.

PPO learns from its own arms only, by default. With ``ppo_uses_ddpg_data`` the DDPG arms' steps
join PPO's rollout with their behaviour log-probabilities recomputed from DDPG's exploration
policy (the actor's output with its Gaussian noise, the ``random_eps`` uniform mixture and the
warm-up's uniform actions; clipping at the bounds is ignored), never DDPG's constant head.

Example::

    agent = Coop("pyrl/PointReach-v0", n_envs=10, ddpg=dict(her_strategy="future"))
    agent.learn(total_steps=20_000)
    agent.predict(obs)                    # the DDPG actor, deterministic
    agent.predict(obs, learner="ppo")     # PPO's mean action
    agent.evaluate(episodes=20)           # both learners' returns (and successes)
"""

import math
from dataclasses import dataclass, field
from typing import Optional

import gymnasium as gym
import numpy as np
import torch

from pyrl.agents.common import (
    Agent,
    CommonArgs,
    EnvLike,
    EpisodeStats,
    RunningNorm,
    counts,
    evaluate,
    final_observations,
    make_vec_env,
    parse_args,
)
from pyrl.agents.ddpg import DDPG
from pyrl.agents.ppo import PPO, Rollout

SCHEDULES = {  # (PPO <- DDPG period, DDPG <- PPO period) in rounds
    "coop_v1": (2, 2),
    "blog": (1, 2),
    "swap": (3, 3),
    "none": (None, None),
}
DEFAULT_EXCLUDE = ("critic", "actor.head", "log_std")


@dataclass
class Args(CommonArgs):
    n_envs: int = 10
    """arms stepped together, split between the two learners"""
    ddpg_share: float = 0.1
    """share of the arms the DDPG actor drives (rounded; each learner keeps at least one)"""
    schedule: str = "coop_v1"
    """weight syncs: 'coop_v1', 'blog', 'swap' or 'none' (see the module docstring)"""
    sync_ppo_from_ddpg: Optional[int] = None
    """if set, PPO <- DDPG every this many rounds (with sync_ddpg_from_ppo: for the schedule)"""
    sync_ddpg_from_ppo: Optional[int] = None
    """if set, DDPG <- PPO every this many rounds"""
    sync_exclude: Optional[tuple[str, ...]] = None
    """parameter names (or name prefixes before a '.') a sync leaves alone; None: the
    schedule's default, ('critic', 'actor.head', 'log_std'), or ('critic', 'log_std') for swap"""
    sync_targets: bool = False
    """a sync into DDPG also writes its target actor (else the target follows by soft updates)"""
    sync_at_start: bool = True
    """PPO <- DDPG once before the first round, so both start from the same actor body"""
    reset_moments: bool = False
    """zero the Adam moments of the parameters a sync overwrites"""
    ppo_uses_ddpg_data: bool = False
    """PPO also learns from the DDPG arms, with recomputed behaviour log-probabilities"""
    hidden: tuple = (64, 64)
    """hidden layers of both learners' networks (a sync needs them equal)"""
    activation: str = "tanh"
    """'tanh' or 'relu', for both learners"""
    normalize_obs: bool = True
    """one running normalizer of the network inputs, shared by both learners"""
    ppo: dict = field(default_factory=dict)
    """PPO hyperparameters, its n_steps being the round length; n_envs, seed and so on are Coop's"""
    ddpg: dict = field(default_factory=dict)
    """DDPG hyperparameters, its buffer being the shared pool; n_envs, seed and so on are Coop's"""


class Arms(gym.vector.VectorEnv):
    """Arms ``[start, stop)`` of a vector env, as a learner that the Coop steps sees them: the
    spaces, metadata and sub-envs (HER reads ``compute_reward`` there); the Coop steps the whole
    env itself."""

    def __init__(self, env: gym.vector.VectorEnv, start: int, stop: int):
        self.parent, self.num_envs = env, stop - start
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.observation_space = gym.vector.utils.batch_space(
            env.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(env.single_action_space, self.num_envs)
        self.metadata, self.spec = env.metadata, env.spec
        if hasattr(env, "envs"):
            self.envs = env.envs[start:stop]

    def reset(self, **kwargs):
        raise RuntimeError("Arms: the Coop agent steps and resets the whole vector env")

    def step(self, actions):
        raise RuntimeError("Arms: the Coop agent steps and resets the whole vector env")


class Coop(Agent):
    """PPO and DDPG learning together; see the module docstring."""

    algo = "coop"
    single_env_ok = False  # two learners need two arms at least

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        args = parse_args(Args, "Coop", hyperparameters)
        n_ddpg = int(round(args.ddpg_share * args.n_envs))
        if not (math.isfinite(args.ddpg_share) and 1 <= n_ddpg <= args.n_envs - 1):
            raise ValueError(
                f"Coop: ddpg_share={args.ddpg_share} of n_envs={args.n_envs} arms gives "
                f"DDPG {n_ddpg} arms and PPO {args.n_envs - n_ddpg}; each learner needs "
                f"at least one (n_envs >= 2, 0 < ddpg_share < 1)"
            )
        if args.schedule not in SCHEDULES:
            raise ValueError(
                f"Coop: schedule should be one of {sorted(SCHEDULES)}, got {args.schedule!r}"
            )
        for name in ("sync_ppo_from_ddpg", "sync_ddpg_from_ppo"):
            value = getattr(args, name)
            if value is not None and not (type(value) is int and value >= 1):
                raise ValueError(
                    f"Coop: {name} should be None or an int >= 1 (rounds), got {value!r}"
                )
        if args.sync_exclude is not None and not (
            isinstance(args.sync_exclude, tuple)
            and all(isinstance(name, str) and name for name in args.sync_exclude)
        ):
            raise ValueError(
                "Coop: sync_exclude should be a tuple of parameter names, got "
                f"{args.sync_exclude!r}"
            )
        for learner in ("ppo", "ddpg"):
            taken = sorted({"n_envs", "seed", "normalize_obs"} & set(getattr(args, learner)))
            if taken:
                raise ValueError(
                    f"Coop: {learner}={{...}} sets {taken}; those are the Coop's own "
                    f"settings (n_envs, ddpg_share, seed, normalize_obs)"
                )
            if getattr(args, learner).get("recurrent"):
                raise ValueError(
                    f"Coop: {learner}={{'recurrent': True}}: the cooperative mode syncs "
                    f"feed-forward networks; recurrent learners are not supported in it"
                )
        super().__init__(env, args, env_kwargs)
        self.env = make_vec_env(env, args.n_envs, env_kwargs)
        self.n_ddpg = n_ddpg
        n_ppo_data = args.n_envs if args.ppo_uses_ddpg_data else args.n_envs - n_ddpg
        shared = dict(hidden=args.hidden, activation=args.activation, normalize_obs=False)
        self.ppo = self._learner(
            PPO,
            "ppo",
            Arms(self.env, args.n_envs - n_ppo_data, args.n_envs),
            dict(shared, **args.ppo, n_envs=n_ppo_data, seed=args.seed),
        )
        self.ddpg = self._learner(
            DDPG,
            "ddpg",
            Arms(self.env, 0, n_ddpg),
            dict(shared, **args.ddpg, n_envs=n_ddpg, seed=args.seed + 1),
        )
        if args.ppo_uses_ddpg_data and self.ddpg.args.noise != "gaussian":
            raise ValueError(
                "Coop: ppo_uses_ddpg_data needs DDPG's Gaussian noise (its behaviour "
                "log-probabilities are recomputed from it), got noise='ou'"
            )
        self.obs_norm = RunningNorm((self.ppo.obs_dim,), clip=5.0) if args.normalize_obs else None
        self.ppo.obs_norm = self.ddpg.obs_norm = self.obs_norm
        self.ppo_from_ddpg, self.ddpg_from_ppo = SCHEDULES[args.schedule]
        self.exchange = args.schedule == "swap"  # both directions due in the same rounds
        if args.sync_ppo_from_ddpg is not None or args.sync_ddpg_from_ppo is not None:
            self.ppo_from_ddpg, self.ddpg_from_ppo = (
                args.sync_ppo_from_ddpg,
                args.sync_ddpg_from_ppo,
            )
            self.exchange = False
        default = ("critic", "log_std") if args.schedule == "swap" else DEFAULT_EXCLUDE
        self.exclude = args.sync_exclude if args.sync_exclude is not None else default
        self.rounds = 0
        self.syncs = 0
        # A scheduled sync that cannot work fails now, naming the parameter, not rounds into a run.
        for direction, period in (
            ("ppo<-ddpg", self.ppo_from_ddpg),
            ("ddpg<-ppo", self.ddpg_from_ppo),
        ):
            if period is not None:
                self._sync_plan(direction)
        if args.sync_at_start and self.ppo_from_ddpg is not None:
            self.sync("ppo<-ddpg")

    def _learner(self, cls, name: str, arms: Arms, settings: dict):
        try:
            return cls(arms, env_kwargs=self.env_kwargs, **settings)
        except ValueError as err:
            raise ValueError(f"Coop: {name}: {err}") from None

    # ---- syncs --------------------------------------------------------------------------------
    def _parameters(self, learner: str, targets: bool = False) -> dict:
        """The learner's parameters by sync name: ``actor.*``, ``critic.*`` (PPO: ``log_std``)."""
        if learner == "ppo":
            return dict(self.ppo.model.named_parameters())
        actor, critic = (
            (self.ddpg.actor_target, self.ddpg.critic_target)
            if targets
            else (self.ddpg.actor, self.ddpg.critic)
        )
        return {
            **{f"actor.{k}": p for k, p in actor.named_parameters()},
            **{f"critic.{k}": p for k, p in critic.named_parameters()},
        }

    def _excluded(self, name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in self.exclude)

    def _sync_plan(self, direction: str) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """``(name, source, destination)`` of every parameter a sync in ``direction`` copies."""
        target, source = direction.split("<-")
        src = {k: p for k, p in self._parameters(source).items() if not self._excluded(k)}
        dst = {k: p for k, p in self._parameters(target).items() if not self._excluded(k)}
        only = sorted(set(src) ^ set(dst))
        if only:
            raise ValueError(
                f"Coop: cannot sync {direction}: {only} exist in only one learner; "
                f"exclude them (sync_exclude) or give both the same networks"
            )
        for name in src:
            if src[name].shape != dst[name].shape:
                raise ValueError(
                    f"Coop: cannot sync {direction}: {name} is {list(src[name].shape)} "
                    f"in {source} but {list(dst[name].shape)} in {target}; give both "
                    f"learners the same hidden sizes"
                )
        return [(name, src[name], dst[name]) for name in src]

    def sync(self, direction: str) -> list[str]:
        """Copies ``"ppo<-ddpg"`` or ``"ddpg<-ppo"`` in place, or exchanges both ways at once
        (``"both"``: each receives the other's parameters as they were before the sync);
        returns the names written, ``receiver:name``."""
        directions = {"both": ("ppo<-ddpg", "ddpg<-ppo")}.get(direction, (direction,))
        if any(d not in ("ppo<-ddpg", "ddpg<-ppo") for d in directions):
            raise ValueError(
                f"Coop.sync: direction should be 'ppo<-ddpg', 'ddpg<-ppo' or 'both', "
                f"got {direction!r}"
            )
        plans = {d: self._sync_plan(d) for d in directions}
        with torch.no_grad():
            sources = {d: [src.clone() for _, src, _ in plan] for d, plan in plans.items()}
            for d, plan in plans.items():
                receiver = d.split("<-")[0]
                targets = (
                    self._parameters("ddpg", targets=True)
                    if receiver == "ddpg" and self.args.sync_targets
                    else {}
                )
                for (name, _, dst), value in zip(plan, sources[d]):
                    dst.copy_(value)
                    if name.startswith("actor.") and name in targets:
                        targets[name].copy_(value)
                if self.args.reset_moments:
                    self._reset_moments(receiver, [dst for _, _, dst in plan])
        self.syncs += 1
        return [f"{d.split('<-')[0]}:{name}" for d, plan in plans.items() for name, _, _ in plan]

    def _reset_moments(self, learner: str, params: list) -> None:
        optimizers = (
            [self.ppo.optimizer]
            if learner == "ppo"
            else [self.ddpg.actor_opt, self.ddpg.critic_opt]
        )
        for optimizer in optimizers:
            for p in params:
                for moment in ("exp_avg", "exp_avg_sq"):
                    if moment in optimizer.state.get(p, {}):
                        optimizer.state[p][moment].zero_()

    def _scheduled_syncs(self, finished_round: int) -> None:
        """The syncs due after round ``finished_round`` (both at once when both are due)."""
        r, ppo_period, ddpg_period = finished_round, self.ppo_from_ddpg, self.ddpg_from_ppo
        due = [
            d
            for d, due in (
                ("ppo<-ddpg", ppo_period is not None and r % ppo_period == ppo_period - 1),
                (
                    "ddpg<-ppo",
                    ddpg_period is not None
                    and r % ddpg_period == (ddpg_period - 1 if self.exchange else 0),
                ),
            )
            if due
        ]
        if due:
            self.sync("both" if len(due) == 2 else due[0])

    # ---- acting -------------------------------------------------------------------------------
    def predict(self, obs, deterministic: bool = True, learner: str = "ddpg") -> np.ndarray:
        """An action of the DDPG actor (default) or of PPO's policy (``learner="ppo"``)."""
        if learner not in ("ddpg", "ppo"):
            raise ValueError(f"Coop.predict: learner should be 'ddpg' or 'ppo', got {learner!r}")
        return (self.ddpg if learner == "ddpg" else self.ppo).predict(obs, deterministic)

    def evaluate(
        self,
        episodes: int = 10,
        seed: Optional[int] = None,
        env: Optional[EnvLike] = None,
        deterministic: bool = True,
    ) -> dict:
        """Both learners over the same episodes: ``return`` and ``success`` are the DDPG actor's
        (what ``predict`` uses), ``ddpg_*`` and ``ppo_*`` each learner's."""
        source = env if env is not None else self._eval_source()
        results = {
            name: evaluate(learner, source, episodes, seed, deterministic, self.env_kwargs)
            for name, learner in (("ddpg", self.ddpg), ("ppo", self.ppo))
        }
        return {
            **results["ddpg"],
            **{f"{name}_{k}": v for name, result in results.items() for k, v in result.items()},
        }

    def _eval_row(self, result: dict) -> dict:
        return {
            **super()._eval_row(result),
            **{
                f"{name}_eval_{key}": result[f"{name}_{key}"]
                for name in ("ppo", "ddpg")
                for key in ("return", "success")
            },
        }

    # ---- learning -----------------------------------------------------------------------------
    def learn(self, total_steps: int, callback=None, progress: Optional[bool] = None) -> list[dict]:
        a, ppo, ddpg, d = self.args, self.ppo, self.ddpg, self.n_ddpg
        n, T = a.n_envs, ppo.args.n_steps
        stats, bar = self.begin_learning(total_steps, progress)
        arm_stats = {"ddpg": EpisodeStats(d), "ppo": EpisodeStats(n - d)}
        ppo_rows = slice(n - ppo.args.n_envs, n)  # PPO's rollout columns: its arms (or all arms)
        try:
            while self.steps < total_steps:
                frac = 1.0 - self.steps / total_steps if ppo.args.anneal else 1.0
                losses: dict[str, list] = {"critic_loss": [], "actor_loss": [], "q": []}
                obs_t, action_t, reward_t, term_t, trunc_t = ppo.empty_rollout(T, n)
                behaviour_t = np.full((T, n), np.nan, np.float32)
                finals: list[tuple[int, int, np.ndarray]] = []
                for t in range(T):
                    # ---- act: DDPG's arms with exploration noise, PPO's with its policy ----
                    warmup = self.steps < ddpg.args.learning_starts
                    ddpg_obs = arms(self.obs, 0, d)
                    unit_action = ddpg.act(ddpg_obs, warmup=warmup)[0]
                    obs_t[t] = ppo.inputs(self.obs)
                    action_t[t, d:] = ppo.act(arms(self.obs, d, n))[0]
                    ppo_env_action = ppo.env_action(action_t[t, d:])
                    env_action = np.concatenate([ddpg.env_action(unit_action), ppo_env_action])
                    if a.ppo_uses_ddpg_data:
                        action_t[t, :d] = env_action[:d]
                        behaviour_t[t, :d] = self.behaviour_log_prob(ddpg_obs, unit_action, warmup)
                    next_obs, reward, term, trunc, info = self.env.step(env_action)
                    done = term | trunc
                    stats.update(reward, done, info)
                    for name, (lo, hi) in (("ddpg", (0, d)), ("ppo", (d, n))):
                        arm_stats[name].update(
                            reward[lo:hi], done[lo:hi], info_rows(info, lo, hi, n)
                        )

                    # ---- every arm's step into the shared pool (DDPG's buffer) ----
                    real_next = final_observations(next_obs, info, done)
                    ddpg.store(
                        self.obs,
                        np.concatenate([unit_action, ddpg.from_env_action(ppo_env_action)]),
                        real_next,
                        reward,
                        term,
                        trunc,
                    )
                    ddpg.noise_state[done[:d]] = 0.0

                    # ---- PPO's rollout ----
                    cut = trunc & ~term
                    for i in np.flatnonzero(cut[ppo_rows]):
                        finals.append(
                            (
                                t,
                                int(i),
                                ppo.inputs(
                                    arms(real_next, ppo_rows.start + i, ppo_rows.start + i + 1)
                                )[0],
                            )
                        )
                    reward_t[t, ppo_rows] = ppo.scale_reward(
                        np.asarray(reward, np.float64)[ppo_rows], done[ppo_rows]
                    )
                    term_t[t], trunc_t[t] = term, trunc
                    self.obs = next_obs
                    before = self.steps
                    self.steps += n
                    ppo.steps += n - d
                    ddpg.steps += d

                    # ---- DDPG learns from the pool on its own schedule ----
                    if (
                        self.steps >= ddpg.args.learning_starts
                        and self.steps // ddpg.args.train_every != before // ddpg.args.train_every
                    ):
                        ddpg.train_round(losses)

                # ---- end of round: PPO learns on-policy, then the scheduled syncs ----
                rollout = Rollout(
                    obs_t[:, ppo_rows],
                    action_t[:, ppo_rows],
                    reward_t[:, ppo_rows],
                    term_t[:, ppo_rows],
                    trunc_t[:, ppo_rows],
                    ppo.inputs(arms(self.obs, ppo_rows.start, n)),
                    finals,
                    behaviour_t[:, ppo_rows] if a.ppo_uses_ddpg_data else None,
                )
                ppo_losses = ppo.train_round(rollout, frac)
                self._scheduled_syncs(self.rounds)
                self.rounds += 1
                self.updates = ppo.updates + ddpg.updates
                for name, learner in (("ppo", ppo), ("ddpg", ddpg)):
                    self.timers.update({f"{name}_{k}": v for k, v in learner.timers.items()})

                row = {**stats.drain()}
                for name in ("ppo", "ddpg"):
                    row.update({f"{name}_{k}": v for k, v in arm_stats[name].drain().items()})
                row.update({f"ppo_{k}": v for k, v in ppo_losses.items()})
                row.update(
                    {
                        f"ddpg_{k}": float(np.mean(v)) if v else float("nan")
                        for k, v in losses.items()
                    }
                )
                row.update(ppo_updates=ppo.updates, ddpg_updates=ddpg.updates, syncs=self.syncs)
                if not self.log(row, self.steps - T * n, callback, bar):
                    break
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def behaviour_log_prob(self, obs, unit_action: np.ndarray, warmup: bool) -> np.ndarray:
        """log mu(a|s) of DDPG's exploration, in PPO's (env) action units: the actor's output with
        Gaussian noise, mixed with random_eps uniform actions (uniform during warm-up)."""
        ddpg = self.ddpg
        log_uniform = -ddpg.act_dim * np.log(2.0)  # uniform on [-1, 1]^d
        if warmup:
            log_unit = np.full(len(unit_action), log_uniform)
        else:
            sigma = ddpg.args.noise_sigma
            gauss = (
                -0.5 * ((unit_action - ddpg.act(obs, explore=False)[0]) / sigma) ** 2
                - np.log(sigma)
                - 0.5 * np.log(2 * np.pi)
            ).sum(-1)
            eps = ddpg.args.random_eps
            log_unit = (
                np.logaddexp(np.log1p(-eps) + gauss, np.log(eps) + log_uniform)
                if eps > 0
                else gauss
            )
        # Env actions are an affine map of unit ones: the density scales by the inverse Jacobian.
        return log_unit - np.log(0.5 * (ddpg.act_high - ddpg.act_low)).sum()

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "ppo": self.ppo.state_dict(),
            "ddpg": self.ddpg.state_dict(),
            "ppo_counts": (self.ppo.steps, self.ppo.updates),
            "ddpg_counts": (self.ddpg.steps, self.ddpg.updates),
            "ppo_timers": self.ppo.timers,
            "ddpg_timers": self.ddpg.timers,
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm else None,
            "rounds": self.rounds,
            "syncs": self.syncs,
        }

    def close(self, remove_new_files: bool = False) -> None:
        """Releases the DDPG half's ``buffer_dir`` (see DDPG.close)."""
        self.ddpg.close(remove_new_files=remove_new_files)

    def load_state_dict(self, state: dict) -> None:
        self.ppo.load_state_dict(state["ppo"])
        self.ddpg.load_state_dict(state["ddpg"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        self.ppo.steps, self.ppo.updates = counts(state["ppo_counts"], 2)
        self.ddpg.steps, self.ddpg.updates = counts(state["ddpg_counts"], 2)
        self.ppo.timers, self.ddpg.timers = dict(state["ppo_timers"]), dict(state["ddpg_timers"])
        self.rounds, self.syncs = counts(state["rounds"]), counts(state["syncs"])


def arms(obs, start: int, stop: int):
    """Rows ``[start, stop)`` of a batch of observations (a dict of them for goal envs)."""
    if isinstance(obs, dict):
        return {key: value[start:stop] for key, value in obs.items()}
    return obs[start:stop]


def info_rows(info: dict, start: int, stop: int, n: int) -> dict:
    """Rows ``[start, stop)`` of a vector env's info dict (arrays of length ``n``, nested dicts)."""
    out = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = info_rows(value, start, stop, n)
        elif isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n:
            out[key] = value[start:stop]
        else:
            out[key] = value
    return out
