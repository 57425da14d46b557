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
Stable-Baselines3's PPO, so the same hyperparameters mean the same algorithm.

Example::

    agent = PPO("CartPole-v1", n_envs=8, n_steps=32, batch_size=256, n_epochs=20)
    agent.learn(total_steps=100_000)
    agent.evaluate(episodes=10)
"""

from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from pyrl import returns
from pyrl.agents.common import (Agent, CommonArgs, EnvLike, NumpyMLP, RunningNorm, float64_array,
                                final_observations, make_vec_env, mlp, parse_args)


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
    """anneal the learning rate and the clip range linearly from step 0 to 0 at learn()'s total_steps"""
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


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, action_space, args: Args):
        super().__init__()
        self.discrete = hasattr(action_space, "n")
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.actor = mlp([obs_dim, *args.hidden, out], args.activation, out_gain=0.01)
        self.critic = mlp([obs_dim, *args.hidden, 1], args.activation, out_gain=1.0)
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


class PPO(Agent):
    """Clipped-objective PPO with GAE; see the module docstring."""

    algo = "ppo"

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        args = parse_args(Args, "PPO", hyperparameters)
        if args.n_envs < 1 or args.n_steps < 1 or args.batch_size < 1 or args.n_epochs < 1:
            raise ValueError(f"PPO: n_envs, n_steps, batch_size and n_epochs should be >= 1, got "
                             f"{args.n_envs}, {args.n_steps}, {args.batch_size}, {args.n_epochs}")
        super().__init__(env, args, env_kwargs)
        self.env = make_vec_env(env, args.n_envs, env_kwargs)
        space = self.env.single_observation_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(f"PPO: observations should be a Box space, got {space}")
        self.obs_shape = space.shape
        self.obs_dim = int(np.prod(space.shape))
        self.action_space = self.env.single_action_space
        self.model = ActorCritic(self.obs_dim, self.action_space, args)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, eps=1e-5, fused=True)
        self.obs_norm = RunningNorm((self.obs_dim,)) if args.normalize_obs else None
        self.return_norm = RunningNorm(()) if args.normalize_reward else None
        self.discounted = np.zeros(args.n_envs)  # running discounted return, for reward scaling
        self.rng = np.random.default_rng(args.seed)
        # Acting runs the networks in numpy on views of their weights (always current: the
        # optimizer and load_state_dict write in place): µs per step instead of module calls.
        self.actor_numpy, self.critic_numpy = NumpyMLP(self.model.actor), NumpyMLP(self.model.critic)

    def _normalized(self, obs, update_norm: bool = False) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32).reshape(-1, self.obs_dim)
        if self.obs_norm is not None:
            if update_norm:
                self.obs_norm.update(x)
            x = self.obs_norm(x)
        return x

    def _act(self, x: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """An action of pi(.|x) for normalized observations ``x`` ``[N, d]``, and its log-probability."""
        out = self.actor_numpy(x)
        if self.model.discrete:
            top = out.max(axis=-1, keepdims=True)
            log_p = out - top - np.log(np.exp(out - top).sum(axis=-1, keepdims=True))
            # Gumbel-max: argmax(log p + Gumbel noise) is a draw from the categorical.
            action = out.argmax(-1) if deterministic else (log_p + self.rng.gumbel(size=out.shape)).argmax(-1)
            return action, np.take_along_axis(log_p, action[:, None], axis=1)[:, 0]
        log_std = self.model.log_std.detach().numpy()
        action = out if deterministic else out + np.exp(log_std) * self.rng.standard_normal(out.shape)
        log_prob = -0.5 * ((action - out) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
        return action.astype(np.float32), log_prob.sum(-1)

    def _env_action(self, action: np.ndarray) -> np.ndarray:
        if self.model.discrete:
            return action
        return np.clip(action, self.action_space.low, self.action_space.high)

    def predict(self, obs, deterministic: bool = True) -> np.ndarray:
        single = np.asarray(obs).ndim == len(self.obs_shape)
        action = self._env_action(self._act(self._normalized(obs), deterministic)[0])
        return action[0] if single else action

    def _scale_reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        if self.return_norm is None:
            return reward
        self.discounted = self.discounted * self.args.gamma + reward
        self.return_norm.update(self.discounted)
        self.discounted[done] = 0.0
        return np.clip(reward / np.sqrt(self.return_norm.var + self.return_norm.eps), -10, 10)

    def learn(self, total_steps: int, callback=None, progress: Optional[bool] = None) -> list[dict]:
        a, n, T = self.args, self.args.n_envs, self.args.n_steps
        stats, bar = self._begin_learning(total_steps, progress)
        try:
            while self.steps < total_steps:
                # Annealed over absolute steps, so a resumed run continues the same schedule.
                frac = 1.0 - self.steps / total_steps if a.anneal else 1.0
                for group in self.optimizer.param_groups:
                    group["lr"] = a.lr * frac
                clip = a.clip_range * frac

                # ---- rollout: T steps of n envs ----
                obs_t = np.zeros((T, n, self.obs_dim), np.float32)
                action_t = np.zeros((T, n), np.int64) if self.model.discrete \
                    else np.zeros((T, n, *self.action_space.shape), np.float32)
                logp_t, value_t, reward_t = (np.zeros((T, n), np.float32) for _ in range(3))
                term_t, trunc_t = np.zeros((T, n), bool), np.zeros((T, n), bool)
                finals: list[tuple[int, int, np.ndarray]] = []
                for t in range(T):
                    obs_t[t] = self._normalized(self.obs, update_norm=True)
                    action_t[t], logp_t[t] = self._act(obs_t[t])
                    value_t[t] = self.critic_numpy(obs_t[t])[:, 0]
                    next_obs, reward, term, trunc, info = self.env.step(self._env_action(action_t[t]))
                    done = term | trunc
                    stats.update(reward, done, info)
                    if trunc.any():
                        real_next = final_observations(next_obs, info, trunc & ~term)
                        finals += [(t, i, real_next[i]) for i in np.flatnonzero(trunc & ~term)]
                    reward_t[t] = self._scale_reward(np.asarray(reward, np.float64), done)
                    term_t[t], trunc_t[t] = term, trunc
                    self.obs = next_obs
                    self.steps += n

                # ---- ALGO LOGIC: advantages ----
                # next_value[t] = V(o_{t+1}); where an episode was cut, V of its final observation.
                next_value = np.concatenate([value_t[1:], self.critic_numpy(self._normalized(self.obs)).T])
                if finals:
                    final_value = self.critic_numpy(self._normalized(np.stack([f for _, _, f in finals])))
                    for (t, i, _), v in zip(finals, final_value[:, 0]):
                        next_value[t, i] = v
                obs_t, action_t, logp_t, value_t, reward_t, next_value, term_t, trunc_t = map(
                    torch.from_numpy, (obs_t, action_t, logp_t, value_t, reward_t, next_value, term_t, trunc_t))
                with self.timer("returns"):
                    advantage, value_target = returns.gae(reward_t, value_t, next_value, term_t, trunc_t,
                                                          a.gamma, a.gae_lambda)

                # ---- ALGO LOGIC: clipped policy and value updates ----
                b_obs = obs_t.reshape(-1, self.obs_dim)
                b_action = action_t.reshape(T * n, *action_t.shape[2:])
                b_logp, b_adv = logp_t.reshape(-1), advantage.reshape(-1)
                b_target, b_value = value_target.reshape(-1), value_t.reshape(-1)
                clip_fractions, approx_kl = [], 0.0
                for _ in range(a.n_epochs):
                    order = torch.randperm(T * n)
                    for start in range(0, T * n, a.batch_size):
                        mb = order[start:start + a.batch_size]
                        logp, entropy = self.model.log_prob_entropy(b_obs[mb], b_action[mb])
                        log_ratio = logp - b_logp[mb]
                        ratio = log_ratio.exp()
                        adv = b_adv[mb]
                        if a.normalize_advantage and len(mb) > 1:
                            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                        policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
                        value = self.model.value(b_obs[mb])
                        if a.clip_range_vf is not None:
                            value = b_value[mb] + (value - b_value[mb]).clamp(-a.clip_range_vf, a.clip_range_vf)
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

                row = {**stats.drain(), "policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                       "entropy": -entropy_loss.item(), "approx_kl": approx_kl,
                       "clip_fraction": float(np.mean(clip_fractions)), "lr": a.lr * frac}
                if not self._log(row, self.steps - T * n, callback, bar):
                    break
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "obs_norm": self.obs_norm.state_dict() if self.obs_norm else None,
                "return_norm": self.return_norm.state_dict() if self.return_norm else None,
                "rng": self.rng.bit_generator.state, "discounted": self.discounted.copy()}

    def _load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.return_norm is not None:
            self.return_norm.load_state_dict(state["return_norm"])
        self.rng.bit_generator.state = state["rng"]
        self.discounted = float64_array(state["discounted"])
