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
log-probabilities
and values the update needs are computed after the rollout, in one batch, by the same module
functions the loss uses (the weights do not change during a rollout).

With ``recurrent=True`` a GRU encoder (``rnn_hidden`` units) reads the observations and both
heads read its state. Acting carries each env's state (zeroed at a reset) and stores the state
fed into every step; the update cuts the rollout into its episode pieces and, in every epoch,
recomputes the states of each minibatch's pieces with the current weights, as whole sequences
from their stored first state (zero at a reset, the carried state where the rollout began), so
gradients flow through time (truncated at the rollout's edges).

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
    """a GRU encoder on the observations, read by both heads (see the module docstring)"""
    rnn_hidden: int = 64
    """units of the GRU encoder"""


class ActorCritic(nn.Module):
    """The policy and value heads, on the observation or (recurrent) on the GRU encoder's state:
    the heads' methods take those features."""

    def __init__(self, obs_dim: int, action_space, args: Args):
        super().__init__()
        self.discrete = hasattr(action_space, "n")
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.encoder = (
            nn.GRU(obs_dim, args.rnn_hidden, batch_first=True) if args.recurrent else None
        )
        features = args.rnn_hidden if args.recurrent else obs_dim
        self.actor = actor_net([features, *args.hidden, out], args.activation, out_gain=0.01)
        self.critic = mlp([features, *args.hidden, 1], args.activation, out_gain=1.0)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((out,), float(args.log_std_init)))

    def encode(self, obs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The encoder's state after each step of ``obs`` ``[B, L, d]`` from ``hidden``
        ``[B, H]``: ``[B, L, H]``, the heads' input."""
        return self.encoder(obs, hidden[None].contiguous())[0]

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
    it; recurrent: ``(t, i, input, state)``, the state to read the final observation from"""
    behaviour_log_prob: Optional[np.ndarray] = None
    """``[T, n]`` log-probabilities where another policy acted (agents.coop), NaN where this
    one did; None: this policy took every step"""
    hidden: Optional[np.ndarray] = None
    """recurrent: ``[T, n, H]`` the encoder state fed into each step (zero at a reset)"""
    last_hidden: Optional[np.ndarray] = None
    """recurrent: ``[n, H]`` the state fed into the step after the rollout"""


class Pieces:
    """A recurrent rollout cut into its episode pieces (an env's steps between resets and the
    rollout's edges), padded to the longest: ``obs`` ``[S, L, d]``, ``h0`` ``[S, H]`` (the state
    fed into each piece's first step), ``step`` ``[S, L]`` (the flat index ``t * n + env`` of
    each position) and ``valid`` ``[S, L]``."""

    def __init__(self, rollout: Rollout):
        T, n = rollout.reward.shape
        done = rollout.terminated | rollout.truncated
        env, start, length = [], [], []
        for i in range(n):
            firsts = [0, *(np.flatnonzero(done[:-1, i]) + 1)]
            for first, end in zip(firsts, [*firsts[1:], T]):
                env.append(i), start.append(first), length.append(end - first)
        env, start, length = (torch.tensor(v) for v in (env, start, length))
        positions = torch.arange(int(length.max()))
        self.valid = positions[None, :] < length[:, None]
        time = (start[:, None] + positions[None, :]).clamp(max=T - 1)
        self.step = time * n + env[:, None]
        self.obs = (
            torch.from_numpy(rollout.obs.reshape(T * n, -1))[self.step] * self.valid[..., None]
        )
        self.h0 = torch.from_numpy(rollout.hidden[start, env])
        self.count = len(length)

    def features(self, model: ActorCritic, pieces: Optional[torch.Tensor] = None):
        """The encoder states over the pieces (all, or the ones given), from their first
        states: ``(steps [k], features [k, H])`` for their k valid positions."""
        pieces = torch.arange(self.count) if pieces is None else pieces
        states = model.encode(self.obs[pieces], self.h0[pieces])
        valid = self.valid[pieces]
        return self.step[pieces][valid], states[valid]


class PPO(Agent):
    """Clipped-objective PPO with GAE; see the module docstring."""

    algo = "ppo"

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        args = parse_args(Args, "PPO", hyperparameters)
        if args.activation not in ("tanh", "relu"):
            raise ValueError(f"PPO: activation should be 'tanh' or 'relu', got {args.activation!r}")
        if not (type(args.rnn_hidden) is int and args.rnn_hidden >= 1):
            raise ValueError(f"PPO: rnn_hidden should be an int >= 1, got {args.rnn_hidden!r}")
        super().__init__(env, args, env_kwargs)
        self.env = make_vec_env(env, args.n_envs, env_kwargs)
        self.layout = ObsLayout(self.env.single_observation_space, "PPO")
        self.obs_dim = self.layout.dim
        self.action_space = self.env.single_action_space
        self.model = ActorCritic(self.obs_dim, self.action_space, args)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, eps=1e-5, fused=True)
        self.obs_norm = RunningNorm((self.obs_dim,)) if args.normalize_obs else None
        self.return_norm = RunningNorm(()) if args.normalize_reward else None
        self.discounted = np.zeros(args.n_envs)  # running discounted return, for reward scaling
        self.rng = np.random.default_rng(args.seed)
        self.actor_numpy = NumpyMLP(self.model.actor)
        self.rnn_state = self.initial_state(args.n_envs)  # the state fed into each env's next step

    def initial_state(self, n: int) -> Optional[np.ndarray]:
        """Zero encoder states for ``n`` envs (recurrent); None for a feed-forward policy."""
        return np.zeros((n, self.args.rnn_hidden), np.float32) if self.args.recurrent else None

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

    def _features(self, x: np.ndarray, state: Optional[np.ndarray]) -> np.ndarray:
        """The heads' input for network inputs ``x`` ``[N, d]``: x itself, or (recurrent) the
        encoder's state after reading x from ``state``, which is also the next step's state."""
        if state is None:
            return x
        with torch.no_grad():
            return self.model.encode(torch.from_numpy(x)[:, None], torch.from_numpy(state))[
                :, 0
            ].numpy()

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
        if self.args.recurrent and state is None:
            state = self.initial_state(len(self.layout(obs)))
        features = self._features(self.inputs(obs), state if self.args.recurrent else None)
        return self._act(
            features, deterministic=not explore
        ), features if self.args.recurrent else None

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
        hidden_t = (
            np.zeros((T, n, self.args.rnn_hidden), np.float32) if self.args.recurrent else None
        )
        finals: list[tuple] = []
        for t in range(T):
            obs_t[t] = self.inputs(self.obs, update_norm=True)
            if hidden_t is not None:
                hidden_t[t] = self.rnn_state
            features = self._features(obs_t[t], self.rnn_state)
            action_t[t] = self._act(features)
            next_obs, reward, term, trunc, info = self.env.step(self.env_action(action_t[t]))
            done = term | trunc
            stats.update(reward, done, info)
            cut = trunc & ~term
            if cut.any():
                real_next = self.inputs(final_observations(next_obs, info, cut))
                finals += [
                    (t, i, real_next[i], *((features[i],) if hidden_t is not None else ()))
                    for i in np.flatnonzero(cut)
                ]
            reward_t[t] = self.scale_reward(np.asarray(reward, np.float64), done)
            term_t[t], trunc_t[t] = term, trunc
            if hidden_t is not None:
                self.rnn_state = np.where(done[:, None], 0.0, features).astype(np.float32)
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
        b_obs = torch.from_numpy(rollout.obs.reshape(T * n, self.obs_dim))
        b_action = torch.from_numpy(rollout.action.reshape(T * n, *rollout.action.shape[2:]))
        pieces = Pieces(rollout) if a.recurrent else None

        # ---- ALGO LOGIC: old log-probabilities, values and advantages (one batch) ----
        with torch.no_grad():
            b_features = b_obs
            if pieces is not None:
                steps, states = pieces.features(self.model)
                b_features = states.new_empty((T * n, states.shape[1]))
                b_features[steps] = states
            b_logp = self.model.log_prob_entropy(b_features, b_action)[0]
            if rollout.behaviour_log_prob is not None:
                behaviour = torch.from_numpy(rollout.behaviour_log_prob.reshape(-1)).to(
                    b_logp.dtype
                )
                b_logp = torch.where(behaviour.isnan(), b_logp, behaviour)
            value_t = self.model.value(b_features).reshape(T, n)
            # next_value[t] = V(o_{t+1}); where an episode was cut, V of its final observation.
            last = torch.from_numpy(self._features(rollout.last_obs, rollout.last_hidden))
            next_value = torch.cat([value_t[1:], self.model.value(last)[None]])
            if rollout.finals:
                inputs = np.stack([f[2] for f in rollout.finals])
                states = np.stack([f[3] for f in rollout.finals]) if pieces is not None else None
                final_value = self.model.value(torch.from_numpy(self._features(inputs, states)))
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
            for mb, features in self._minibatches(b_obs, pieces):
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

    def _minibatches(self, b_obs: torch.Tensor, pieces: Optional[Pieces]):
        """``(steps, heads' inputs)`` of each minibatch of one epoch: shuffled steps, or
        (recurrent) shuffled episode pieces of about ``batch_size`` steps in all, their states
        recomputed from their first states with the current weights."""
        total = b_obs.shape[0]
        if pieces is None:
            order = torch.randperm(total)
            for start in range(0, total, self.args.batch_size):
                mb = order[start : start + self.args.batch_size]
                yield mb, b_obs[mb]
            return
        groups = max(1, min(pieces.count, round(total / self.args.batch_size)))
        for group in torch.randperm(pieces.count).tensor_split(groups):
            yield pieces.features(self.model, group)

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
        if self.args.recurrent:
            rnn_state = np.asarray(state.get("rnn_state"), dtype=np.float32)
            if rnn_state.shape != self.rnn_state.shape:
                raise ValueError(
                    f"PPO.load: rnn_state should be {list(self.rnn_state.shape)}, got "
                    f"{list(rnn_state.shape)}"
                )
            self.rnn_state = rnn_state
