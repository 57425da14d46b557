"""REINFORCE (Williams 1992) with a baseline, over batches of whole episodes.

Each update collects ``n_steps`` steps of ``n_envs`` environments, computes every step's return
to its episode end with ``pyrl.returns.discounted_return`` (each episode on its own: a return
never runs into the next episode, the bug SPEC 8.1 found in the forum code), and ascends

    L = -mean_t log pi(a_t|s_t) * (G_t - b(s_t)) - ent_coef * mean_t H(pi(.|s_t))

Baselines: ``"state"`` is the batch mean of G over the steps with the same observation (the
per-context baseline of SPEC 8.1, for discrete observations such as one-hot contexts);
``"value"`` a learned V(s); ``"none"`` none. Episodes still running at the end of a batch
bootstrap from V with the value baseline and are left out of the loss otherwise (their return
is not known yet); time-limit cuts bootstrap from V with the value baseline and end the return
there (bootstrap 0) without one. One-step bandit episodes are always complete.

Example (SPEC 8.1 A1, a tabular softmax policy trained with plain SGD)::

    agent = REINFORCE("pyrl/ContextualBandit-v0", n_envs=256, policy="linear", optimizer="sgd",
                      lr=10.0, baseline="state")
    agent.learn(total_steps=500 * 256)
"""

from dataclasses import dataclass
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
    final_observations,
    make_vec_env,
    mlp,
    parse_args,
)


@dataclass
class Args(CommonArgs):
    n_envs: int = 16
    """environments stepped together"""
    n_steps: int = 200
    """steps per environment per update (1 for bandits)"""
    gamma: float = 0.99
    """discount within an episode (irrelevant for one-step episodes)"""
    baseline: str = "value"
    """'state' (per-observation batch mean), 'value' (learned V) or 'none'"""
    policy: str = "mlp"
    """'mlp' (hidden layers) or 'linear' (one bias-free layer: tabular on one-hot inputs)"""
    hidden: tuple = (64, 64)
    """hidden layer sizes of the policy and value MLPs"""
    activation: str = "tanh"
    """'tanh' or 'relu'"""
    optimizer: str = "adam"
    """'adam' or 'sgd' (plain)"""
    lr: float = 1e-3
    """learning rate of the policy (and the value net)"""
    ent_coef: float = 0.0
    """entropy bonus coefficient at the start"""
    ent_coef_final: Optional[float] = None
    """if set, the entropy coefficient goes linearly to it over ent_anneal_updates"""
    ent_anneal_updates: int = 1
    """updates over which the entropy coefficient is annealed"""
    normalize_advantage: bool = False
    """divide G - b by its batch std"""
    max_grad_norm: Optional[float] = None
    """clip the gradient norm (None: no clipping)"""


class Policy(nn.Module):
    def __init__(self, obs_dim: int, action_space, args: Args):
        super().__init__()
        self.discrete = hasattr(action_space, "n")
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if args.policy == "linear":
            self.net = nn.Linear(obs_dim, out, bias=False)
            nn.init.zeros_(self.net.weight)  # uniform initial policy, as SPEC 8.1's tabular test
        elif args.policy == "mlp":
            self.net = mlp([obs_dim, *args.hidden, out], args.activation)
        else:
            raise ValueError(f"REINFORCE: policy should be 'mlp' or 'linear', got {args.policy!r}")
        if not self.discrete:
            self.log_std = nn.Parameter(torch.zeros(out))

    def distribution(self, obs: torch.Tensor):
        out = self.net(obs)
        if self.discrete:
            # log-softmax inside: no log(0) (SPEC 8.1, bug 4)
            return Categorical(logits=out, validate_args=False)
        return Normal(out, self.log_std.exp(), validate_args=False)


class REINFORCE(Agent):
    """Monte-Carlo policy gradient with a baseline; see the module docstring."""

    algo = "reinforce"

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        args = parse_args(Args, "REINFORCE", hyperparameters)
        if args.baseline not in ("state", "value", "none"):
            raise ValueError(
                f"REINFORCE: baseline should be 'state', 'value' or 'none', got {args.baseline!r}"
            )
        if args.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"REINFORCE: optimizer should be 'adam' or 'sgd', got {args.optimizer!r}"
            )
        super().__init__(env, args, env_kwargs)
        self.env = make_vec_env(env, args.n_envs, env_kwargs)
        self.obs_dim = int(np.prod(self.env.single_observation_space.shape))
        self.action_space = self.env.single_action_space
        self.policy = Policy(self.obs_dim, self.action_space, args)
        self.value = (
            mlp([self.obs_dim, *args.hidden, 1], args.activation)
            if args.baseline == "value"
            else None
        )
        params = list(self.policy.parameters()) + (
            list(self.value.parameters()) if self.value else []
        )
        self.optimizer = (
            torch.optim.SGD(params, lr=args.lr)
            if args.optimizer == "sgd"
            else torch.optim.Adam(params, lr=args.lr)
        )

    def _tensor(self, obs) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(-1, self.obs_dim)

    def predict(self, obs, deterministic: bool = True) -> np.ndarray:
        single = np.asarray(obs).ndim == len(self.env.single_observation_space.shape)
        with torch.no_grad():
            dist = self.policy.distribution(self._tensor(obs))
            action = (
                (dist.probs.argmax(-1) if self.policy.discrete else dist.mean)
                if deterministic
                else dist.sample()
            )
        action = action.numpy()
        if not self.policy.discrete:
            action = np.clip(action, self.action_space.low, self.action_space.high)
        return action[0] if single else action

    def entropy_coef(self) -> float:
        a = self.args
        if a.ent_coef_final is None:
            return a.ent_coef
        frac = min(1.0, self.updates / max(1, a.ent_anneal_updates))
        return a.ent_coef + frac * (a.ent_coef_final - a.ent_coef)

    def learn(self, total_steps: int, callback=None, progress: Optional[bool] = None) -> list[dict]:
        a, n = self.args, self.args.n_envs
        stats, bar = self.begin_learning(total_steps, progress)
        try:
            while self.steps < total_steps:
                # ---- collect n_steps x n_envs ----
                obs_t = torch.zeros(a.n_steps, n, self.obs_dim)
                actions, rewards, terminated, truncated = [], [], [], []
                finals: list[tuple[int, int, np.ndarray]] = []
                for t in range(a.n_steps):
                    obs_t[t] = self._tensor(self.obs)
                    with torch.no_grad():
                        action = self.policy.distribution(obs_t[t]).sample()
                    env_action = action.numpy()
                    if not self.policy.discrete:
                        env_action = np.clip(
                            env_action, self.action_space.low, self.action_space.high
                        )
                    next_obs, reward, term, trunc, info = self.env.step(env_action)
                    done = term | trunc
                    stats.update(reward, done, info)
                    cut = trunc & ~term
                    if self.value is not None and cut.any():  # only a value baseline bootstraps
                        real_next = final_observations(next_obs, info, cut)
                        finals += [(t, i, real_next[i]) for i in np.flatnonzero(cut)]
                    actions.append(action)
                    rewards.append(torch.as_tensor(reward, dtype=torch.float32))
                    terminated.append(torch.as_tensor(term))
                    truncated.append(torch.as_tensor(trunc))
                    self.obs = next_obs
                    self.steps += n
                action_t = torch.stack(actions)
                reward_t = torch.stack(rewards).reshape(a.n_steps, n)
                term_t, trunc_t = torch.stack(terminated), torch.stack(truncated)

                # ---- ALGO LOGIC: returns, baseline, policy gradient ----
                # The batch's last step is cut by the collector; with a value baseline it and
                # time-limit cuts bootstrap from V, without one their episodes leave the loss.
                next_value = torch.zeros(a.n_steps, n)
                complete = torch.ones(a.n_steps, n, dtype=torch.bool)
                if self.value is not None:
                    with torch.no_grad():
                        next_value[-1] = self.value(self._tensor(self.obs)).squeeze(-1)
                        if finals:
                            final_value = self.value(
                                self._tensor(np.stack([f for _, _, f in finals]))
                            )
                            for (t, i, _), v in zip(finals, final_value.squeeze(-1)):
                                next_value[t, i] = v
                else:
                    open_episode = torch.ones(n, dtype=torch.bool)
                    for t in reversed(range(a.n_steps)):  # steps after the last end of each env
                        open_episode &= ~(term_t[t] | trunc_t[t])
                        complete[t] = ~open_episode
                with self.timer("returns"):
                    ret = returns.discounted_return(reward_t, next_value, term_t, trunc_t, a.gamma)

                flat_obs = obs_t.reshape(-1, self.obs_dim)
                dist = self.policy.distribution(flat_obs)
                log_prob = dist.log_prob(action_t.reshape(-1, *action_t.shape[2:]))
                entropy = dist.entropy()
                if not self.policy.discrete:
                    log_prob, entropy = log_prob.sum(-1), entropy.sum(-1)
                mask = complete.reshape(-1)
                g = ret.reshape(-1)
                value_loss = torch.zeros(())
                if a.baseline == "state":
                    baseline = per_state_mean(flat_obs[mask], g[mask])
                elif a.baseline == "value":
                    v = self.value(flat_obs[mask]).squeeze(-1)
                    value_loss = 0.5 * (v - g[mask]).pow(2).mean()
                    baseline = v.detach()
                else:
                    baseline = torch.zeros(())
                advantage = g[mask] - baseline
                if a.normalize_advantage and advantage.numel() > 1:
                    advantage = advantage / (advantage.std() + 1e-8)
                ent_coef = self.entropy_coef()
                policy_loss = (
                    -(log_prob[mask] * advantage).mean() if mask.any() else torch.zeros(())
                )
                entropy_mean = entropy[mask].mean() if mask.any() else torch.zeros(())
                loss = policy_loss - ent_coef * entropy_mean + value_loss
                self.optimizer.zero_grad()
                loss.backward()
                if a.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(
                        self.optimizer.param_groups[0]["params"], a.max_grad_norm
                    )
                self.optimizer.step()
                self.updates += 1

                row = {
                    **stats.drain(),
                    "policy_loss": policy_loss.item(),
                    "value_loss": value_loss.item(),
                    "entropy": entropy_mean.item(),
                    "ent_coef": ent_coef,
                }
                if not self.log(row, self.steps - a.n_steps * n, callback, bar):
                    break
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def probabilities(self, obs) -> np.ndarray:
        """pi(.|obs) of a discrete policy, ``[B, actions]``."""
        with torch.no_grad():
            return self.policy.distribution(self._tensor(obs)).probs.numpy()

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "value": self.value.state_dict() if self.value is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])


def per_state_mean(obs: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """For each step, the mean of ``g`` over the batch's steps with the same observation."""
    if g.numel() == 0:
        return g
    _, group = torch.unique(obs, dim=0, return_inverse=True)
    groups = int(group.max()) + 1
    total = torch.zeros(groups).index_add_(0, group, g)
    count = torch.zeros(groups).index_add_(0, group, torch.ones_like(g))
    return (total / count)[group]
