"""Proximal Policy Optimization (Schulman et al. 2017, https://arxiv.org/abs/1707.06347).

Each iteration collects ``n_steps`` steps of ``n_envs`` gymnasium environments, computes GAE
advantages with ``pyrl.returns.gae`` (terminated steps bootstrap nothing, truncated ones
bootstrap from V of the final observation, never of the reset one), then runs ``n_epochs`` of
minibatch updates of the clipped objective

    L = -mean min(r A, clip(r, 1 - eps, 1 + eps) A) + vf_coef * value loss - ent_coef * H

with ``r = pi(a|s) / pi_old(a|s)``. Discrete (Categorical) and continuous (diagonal Gaussian,
state-independent log std, actions clipped to the bounds) action spaces; optional running
observation normalization and reward scaling (by the std of the discounted return), optional
value clipping, and linear annealing of the learning rate and clip range. Defaults follow
Stable-Baselines3's PPO, so the same hyperparameters mean the same algorithm. Goal
environments (dict observations) feed ``[observation, desired_goal]`` to both networks.

The policy has one definition, the ``ActorCritic`` module. Acting runs its actor in numpy on
views of the module's current weights (numpy_acting.NumpyMLP), and only samples; the
log-probabilities and values the update needs are computed after the rollout, in one batch, by
the same module functions the loss uses (the weights do not change during a rollout).

``PPO(env, recurrent=True)`` builds the GRU-encoder variant, ``RecurrentPPO``
(ppo_recurrent.py), which replaces only how the heads' inputs are made (``encode``) and which
steps a minibatch holds (``batches``); the loop below is both agents'.

Example::

    agent = PPO("CartPole-v1", n_envs=8, n_steps=32, batch_size=256, n_epochs=20)
    agent.learn(total_steps=100_000)
    agent.evaluate(episodes=10)
"""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from pyrl import returns
from pyrl.agents.common import (
    Agent,
    CommonArgs,
    EnvLike,
    EpisodeStats,
    ObsLayout,
    RunningNorm,
    actor_net,
    carried_state,
    float64_array,
    final_observations,
    make_vec_env,
    mlp,
    parse_args,
)
from pyrl.agents.numpy_acting import NumpyMLP, load_numpy_weights, numpy_weights


@dataclass
class Args(CommonArgs):
    n_envs: int = 8
    """environments stepped together"""
    n_steps: int = 2048
    """steps per environment per rollout"""
    batch_size: int = 64
    """minibatch size"""
    n_epochs: int = 10
    """passes over each rollout"""
    lr: float = 3e-4
    """Adam learning rate"""
    anneal: bool = False
    """anneal the learning rate and the clip range linearly to 0 at learn()'s total_steps"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_range: float = 0.2
    """policy ratio clip epsilon"""
    clip_range_vf: Optional[float] = None
    """clip the value change around the old value by this much (None: no value clipping)"""
    normalize_advantage: bool = True
    """standardize advantages per minibatch"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """gradient norm clip"""
    hidden: tuple = (64, 64)
    """hidden layers of the (separate) policy and value MLPs"""
    activation: str = "tanh"
    """'tanh' or 'relu'"""
    log_std_init: float = 0.0
    """initial log std of a continuous policy"""
    normalize_obs: bool = False
    """normalize observations by running mean and std (clipped to +-10)"""
    normalize_reward: bool = False
    """scale rewards by the running std of the discounted return"""
    target_kl: Optional[float] = None
    """stop the epochs of an update early when the approximate KL exceeds 1.5x this"""
    recurrent: bool = False
    """a GRU encoder on the observations, read by both heads: builds a RecurrentPPO"""
    rnn_hidden: int = 64
    """recurrent: units of the GRU encoder"""


class ActorCritic(nn.Module):
    """The policy and value heads, on ``features``-wide inputs: the network inputs, or the
    state of an ``encoder`` of them (RecurrentPPO's)."""

    def __init__(
        self, features: int, action_space, args: Args, encoder: Optional[nn.Module] = None
    ):
        super().__init__()
        if encoder is not None:
            self.encoder = encoder
        self.discrete = hasattr(action_space, "n")
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.actor = actor_net([features, *args.hidden, out], args.activation, out_gain=0.01)
        self.critic = mlp([features, *args.hidden, 1], args.activation, out_gain=1.0)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((out,), float(args.log_std_init)))

    def distribution(self, obs: torch.Tensor):
        out = self.actor(obs)
        # Argument validation costs more than these small distributions' math.
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        return Normal(out, self.log_std.exp(), validate_args=False)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def log_prob_entropy(self, obs: torch.Tensor, action: torch.Tensor):
        dist = self.distribution(obs)
        if self.discrete:
            return dist.log_prob(action), dist.entropy()
        return dist.log_prob(action).sum(-1), dist.entropy().sum(-1)


@dataclass
class Rollout:
    """``T`` steps of ``n`` envs, as the update reads them."""

    obs: np.ndarray
    """``[T, n, d]`` network inputs (normalized when the step was taken)"""
    action: np.ndarray
    """``[T, n]`` (discrete) or ``[T, n, *action shape]``, as sampled (before clipping)"""
    reward: np.ndarray
    """``[T, n]``, scaled where ``normalize_reward`` is on"""
    terminated: np.ndarray
    truncated: np.ndarray
    last_obs: np.ndarray
    """``[n, d]`` network inputs after the last step (their values bootstrap the rollout)"""
    finals: list = field(default_factory=list)
    """``(t, i, input)`` of each episode cut at step t in env i: V(final observation) bootstraps
    it; with ``hidden``: ``(t, i, input, state)``, the state to read the final observation from"""
    behaviour_log_prob: Optional[np.ndarray] = None
    """``[T, n]`` log-probabilities where another policy acted (agents.coop), NaN where this
    one did; None: this policy took every step"""
    hidden: Optional[np.ndarray] = None
    """recurrent: ``[T, n, H]`` the encoder state fed into each step (zero at a reset)"""
    last_hidden: Optional[np.ndarray] = None
    """recurrent: ``[n, H]`` the state fed into the step after the rollout"""


class Steps:
    """A rollout's steps as the update reads them: every step's heads' input is its network
    input, and a minibatch is any ``batch_size`` of them."""

    def __init__(self, rollout: Rollout):
        T, n, d = rollout.obs.shape
        self.obs = torch.from_numpy(rollout.obs.reshape(T * n, d))

    def features(self, model: ActorCritic) -> torch.Tensor:
        """The heads' inputs of every step ``[T * n, d]``, by flat index ``t * n + env``."""
        return self.obs

    def minibatches(self, model: ActorCritic, batch_size: int):
        """``(steps, heads' inputs)`` of each minibatch of one epoch, the steps shuffled."""
        order = torch.randperm(self.obs.shape[0])
        for start in range(0, len(order), batch_size):
            mb = order[start : start + batch_size]
            yield mb, self.obs[mb]


class PPO(Agent):
    """Clipped-objective PPO with GAE; see the module docstring."""

    algo = "ppo"

    def __new__(cls, *args, **hyperparameters):
        if cls is PPO and hyperparameters.get("recurrent"):
            from pyrl.agents.ppo_recurrent import RecurrentPPO

            cls = RecurrentPPO
        return super().__new__(cls)

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        args = parse_args(Args, "PPO", hyperparameters)
        if args.activation not in ("tanh", "relu"):
            raise ValueError(f"PPO: activation should be 'tanh' or 'relu', got {args.activation!r}")
        super().__init__(env, args, env_kwargs)
        self.env = make_vec_env(env, args.n_envs, env_kwargs)
        self.layout = ObsLayout(self.env.single_observation_space, "PPO")
        self.obs_dim = self.layout.dim
        self.action_space = self.env.single_action_space
        self.model = self.make_model()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, eps=1e-5, fused=True)
        self.obs_norm = RunningNorm((self.obs_dim,)) if args.normalize_obs else None
        self.return_norm = RunningNorm(()) if args.normalize_reward else None
        self.discounted = np.zeros(args.n_envs)  # running discounted return, for reward scaling
        self.rng = np.random.default_rng(args.seed)
        self.actor_numpy = NumpyMLP(self.model.actor)
        self.rnn_state = self.initial_state(args.n_envs)  # the state fed into each env's next step

    def make_model(self) -> ActorCritic:
        """The policy and value networks (RecurrentPPO's add the encoder)."""
        return ActorCritic(self.obs_dim, self.action_space, self.args)

    # ---- acting -------------------------------------------------------------------------------
    def inputs(self, obs, update_norm: bool = False) -> np.ndarray:
        """The network inputs of environment observations ``[N, d]``: flattened (goal envs:
        observation and desired goal) and normalized (``update_norm``: the statistics first
        take them in, as a rollout step does)."""
        x = self.layout(obs)
        if self.obs_norm is not None:
            if update_norm:
                self.obs_norm.update(x)
            x = self.obs_norm(x)
        return x

    def encode(self, x: np.ndarray, state: Optional[np.ndarray]) -> tuple:
        """``(features, next_state)``: the heads' inputs for network inputs ``x`` ``[N, d]`` read
        from encoder states ``state``, and the state the next step reads. A feed-forward policy
        has no state: ``(x, None)``."""
        return x, None

    def _act(self, x: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """An action of pi(.|x) for the heads' inputs ``x`` ``[N, d]``."""
        out = self.actor_numpy(x)
        if self.model.discrete:
            # Gumbel-max: argmax(logits + Gumbel noise) is a draw from the categorical.
            return (
                out.argmax(-1)
                if deterministic
                else (out + self.rng.gumbel(size=out.shape)).argmax(-1)
            )
        if deterministic:
            return out.astype(np.float32)
        std = np.exp(self.model.log_std.detach().cpu().numpy())
        return (out + std * self.rng.standard_normal(out.shape)).astype(np.float32)

    def act(self, obs, state: Optional[np.ndarray] = None, explore: bool = True):
        """The policy's actions for a batch of environment observations: ``(action, state)``,
        a draw of pi(.|s) (``explore=False``: its mode) as the rollout stores it, and (recurrent)
        the encoder's state after reading ``obs`` from ``state``, the next step's state; None
        for a feed-forward policy. ``env_action(action)`` is what ``env.step`` takes."""
        features, state = self.encode(self.inputs(obs), state)
        return self._act(features, deterministic=not explore), state

    def env_action(self, action: np.ndarray) -> np.ndarray:
        """An action of :meth:`act` as the environment takes it (clipped to a Box's bounds)."""
        if self.model.discrete:
            return action
        return np.clip(action, self.action_space.low, self.action_space.high)

    def predict(self, obs, deterministic: bool = True, state: Optional[np.ndarray] = None):
        """The action for ``obs`` (one observation or a batch). A recurrent policy also takes
        and returns the encoder state: ``action, state = predict(obs, state=state)``, starting
        from ``initial_state(n)`` (or None, zeros) and zeroed by the caller at each reset."""
        single = self.layout.is_single(obs)
        action, state = self.act(obs, state, explore=not deterministic)
        action = self.env_action(action)
        action = action[0] if single else action
        return (action, state) if self.args.recurrent else action

    def scale_reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """One step's rewards as the rollout stores them: divided by the running std of the
        discounted return with ``normalize_reward`` (which this step updates), else as given."""
        if self.return_norm is None:
            return reward
        self.discounted = self.discounted * self.args.gamma + reward
        self.return_norm.update(self.discounted)
        self.discounted[done] = 0.0
        return np.clip(reward / np.sqrt(self.return_norm.var + self.return_norm.eps), -10, 10)

    # ---- learning -----------------------------------------------------------------------------
    def learn(self, total_steps: int, callback=None, progress: Optional[bool] = None) -> list[dict]:
        a = self.args
        stats, bar = self.begin_learning(total_steps, progress)
        try:
            while self.steps < total_steps:
                # Annealed over absolute steps, so a resumed run continues the same schedule.
                frac = 1.0 - self.steps / total_steps if a.anneal else 1.0
                rollout = self.collect(stats)
                row = {**stats.drain(), **self.train_round(rollout, frac)}
                if not self.log(row, self.steps - a.n_steps * a.n_envs, callback, bar):
                    break
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def collect(self, stats: Optional[EpisodeStats] = None) -> Rollout:
        """``n_steps`` steps of the envs, acting with the current policy (the episodes that end
        go into ``stats``); the rollout :meth:`train_round` learns from."""
        stats = stats if stats is not None else EpisodeStats(self.args.n_envs)
        self.start()
        n, T = self.args.n_envs, self.args.n_steps
        obs_t, action_t, reward_t, term_t, trunc_t = self.empty_rollout(T, n)
        hidden_t = None  # the state fed into each step (a recurrent policy's)
        if self.rnn_state is not None:
            hidden_t = np.zeros((T, *self.rnn_state.shape), np.float32)
        finals: list[tuple] = []
        for t in range(T):
            obs_t[t] = self.inputs(self.obs, update_norm=True)
            if hidden_t is not None:
                hidden_t[t] = self.rnn_state
            features, next_state = self.encode(obs_t[t], self.rnn_state)
            action_t[t] = self._act(features)
            next_obs, reward, term, trunc, info = self.env.step(self.env_action(action_t[t]))
            done = term | trunc
            stats.update(reward, done, info)
            cut = trunc & ~term
            if cut.any():
                real_next = self.inputs(final_observations(next_obs, info, cut))
                finals += [
                    (t, i, real_next[i], *(() if next_state is None else (next_state[i],)))
                    for i in np.flatnonzero(cut)
                ]
            reward_t[t] = self.scale_reward(np.asarray(reward, np.float64), done)
            term_t[t], trunc_t[t] = term, trunc
            self.rnn_state = carried_state(next_state, done)
            self.obs = next_obs
            self.steps += n
        return Rollout(
            obs_t,
            action_t,
            reward_t,
            term_t,
            trunc_t,
            self.inputs(self.obs),
            finals,
            hidden=hidden_t,
            last_hidden=None if hidden_t is None else self.rnn_state.copy(),
        )

    def empty_rollout(self, T: int, n: int) -> tuple:
        """Zeroed ``obs, action, reward, terminated, truncated``: ``T`` steps of ``n`` envs."""
        action = (
            np.zeros((T, n), np.int64)
            if self.model.discrete
            else np.zeros((T, n, *self.action_space.shape), np.float32)
        )
        return (
            np.zeros((T, n, self.obs_dim), np.float32),
            action,
            np.zeros((T, n), np.float32),
            np.zeros((T, n), bool),
            np.zeros((T, n), bool),
        )

    def train_round(self, rollout: Rollout, frac: float = 1.0) -> dict:
        """GAE and ``n_epochs`` of clipped updates on one rollout, learning rate and clip range
        scaled by ``frac`` (the annealing); returns the losses' row."""
        a = self.args
        for group in self.optimizer.param_groups:
            group["lr"] = a.lr * frac
        clip = a.clip_range * frac
        T, n = rollout.reward.shape
        b_action = torch.from_numpy(rollout.action.reshape(T * n, *rollout.action.shape[2:]))
        batches = self.batches(rollout)

        # ---- ALGO LOGIC: old log-probabilities, values and advantages (one batch) ----
        with torch.no_grad():
            b_features = batches.features(self.model)
            b_logp = self.model.log_prob_entropy(b_features, b_action)[0]
            if rollout.behaviour_log_prob is not None:
                behaviour = torch.from_numpy(rollout.behaviour_log_prob.reshape(-1)).to(
                    b_logp.dtype
                )
                b_logp = torch.where(behaviour.isnan(), b_logp, behaviour)
            value_t = self.model.value(b_features).reshape(T, n)
            # next_value[t] = V(o_{t+1}); where an episode was cut, V of its final observation.
            last = torch.from_numpy(self.encode(rollout.last_obs, rollout.last_hidden)[0])
            next_value = torch.cat([value_t[1:], self.model.value(last)[None]])
            if rollout.finals:
                inputs = np.stack([f[2] for f in rollout.finals])
                states = None
                if rollout.hidden is not None:
                    states = np.stack([f[3] for f in rollout.finals])
                final_value = self.model.value(torch.from_numpy(self.encode(inputs, states)[0]))
                for (t, i, *_), v in zip(rollout.finals, final_value):
                    next_value[t, i] = v
        reward_t, term_t, trunc_t = map(
            torch.from_numpy, (rollout.reward, rollout.terminated, rollout.truncated)
        )
        with self.timer("returns"):
            advantage, value_target = returns.gae(
                reward_t, value_t, next_value, term_t, trunc_t, a.gamma, a.gae_lambda
            )

        # ---- ALGO LOGIC: clipped policy and value updates ----
        b_adv, b_target, b_value = (
            advantage.reshape(-1),
            value_target.reshape(-1),
            value_t.reshape(-1),
        )
        clip_fractions, approx_kl = [], 0.0
        for _ in range(a.n_epochs):
            for mb, features in batches.minibatches(self.model, a.batch_size):
                logp, entropy = self.model.log_prob_entropy(features, b_action[mb])
                log_ratio = logp - b_logp[mb]
                ratio = log_ratio.exp()
                adv = b_adv[mb]
                if a.normalize_advantage and len(mb) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
                value = self.model.value(features)
                if a.clip_range_vf is not None:
                    value = b_value[mb] + (value - b_value[mb]).clamp(
                        -a.clip_range_vf, a.clip_range_vf
                    )
                value_loss = (b_target[mb] - value).pow(2).mean()
                entropy_loss = -entropy.mean()
                loss = policy_loss + a.vf_coef * value_loss + a.ent_coef * entropy_loss
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), a.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    approx_kl = float(((ratio - 1) - log_ratio).mean())
                    clip_fractions.append(float(((ratio - 1).abs() > clip).float().mean()))
            self.updates += 1
            if a.target_kl is not None and approx_kl > 1.5 * a.target_kl:
                break
        return {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": -entropy_loss.item(),
            "approx_kl": approx_kl,
            "clip_fraction": float(np.mean(clip_fractions)),
            "lr": a.lr * frac,
        }

    def batches(self, rollout: Rollout) -> Steps:
        """The rollout's steps as :meth:`train_round` batches them (RecurrentPPO: its episode
        pieces)."""
        return Steps(rollout)

    # ---- actor processes (pyrl.distributed) -----------------------------------------------------
    def acting_state(self) -> dict:
        """What acting needs, as numpy arrays for another process: the model's weights and the
        observation and return statistics."""
        return {
            "model": numpy_weights(self.model),
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm is not None else None,
            "return_norm": self.return_norm.state_dict() if self.return_norm is not None else None,
        }

    def load_acting_state(self, state: dict) -> None:
        """Loads :meth:`acting_state` (in place: the numpy acting views stay valid)."""
        load_numpy_weights(self.model, state["model"])
        for name in ("obs_norm", "return_norm"):
            if getattr(self, name) is not None:
                getattr(self, name).load_state_dict(state[name])

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm else None,
            "return_norm": self.return_norm.state_dict() if self.return_norm else None,
            "rng": self.rng.bit_generator.state,
            "discounted": self.discounted.copy(),
            "rnn_state": self.rnn_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.return_norm is not None:
            self.return_norm.load_state_dict(state["return_norm"])
        self.rng.bit_generator.state = state["rng"]
        self.discounted = float64_array(state["discounted"])
