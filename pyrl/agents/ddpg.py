"""Deep Deterministic Policy Gradient (Lillicrap et al. 2015, https://arxiv.org/abs/1509.02971)
over ``pyrl.replay``: optional prioritized replay, hindsight relabeling and floating n-step.

Each step acts with the deterministic actor plus exploration noise (Gaussian or
Ornstein-Uhlenbeck, and with probability ``random_eps`` a uniform random action), stores the
step, and every ``train_every`` steps runs ``gradient_steps`` updates of batch ``batch_size``:

    y      = R + D * Q'(s', mu'(s'))           R, D, s' from the buffer's n-step sample
    critic = mean_i w_i (Q(s_i, a_i) - y_i)^2   w: IS weights (1 without PER)
    actor  = -mean Q(s, mu(s)) + action_l2 * mean (mu(s) / a_max)^2

then moves the target networks by ``tau`` and gives the buffer ``|Q - y|`` as new priorities.

Twin-critic options (Fujimoto et al. 2018, https://arxiv.org/abs/1802.09477): ``n_critics``
Q networks trained on one target built from their minimum (clipped double-Q), actor and target
updates every ``policy_delay`` critic updates, and target policy smoothing (``target_noise``,
clipped to ``target_noise_clip``, added to mu'(s')). With ``n_critics=2, policy_delay=2,
target_noise=0.2`` this agent is TD3 (the actor then follows the first critic, as TD3's does).
``D`` is gamma^k for a k-step window (0 after a true terminal), so n-step, HER and episode ends
need nothing else here. Goal environments (dict observations ``observation``, ``achieved_goal``,
``desired_goal``) feed ``[observation, desired_goal]`` to both networks; with ``her_strategy``
set the buffer relabels goals, computing rewards with the env's compiled reward when it has one
(the pyrl envs do) and with its ``compute_reward`` otherwise. ``normalize_obs`` keeps running
statistics of observations and goals (clipped to +-5, as the HER paper's implementation).
Acting runs the actor in numpy on views of the module's current weights (numpy_acting.NumpyMLP): the
module stays the policy's one definition.

``DDPG(env, recurrent=True)`` builds the R2D2-style variant, ``RecurrentDDPG``
(ddpg_recurrent.py): a GRU encoder (``make_encoder``) whose state actor and critic read, and
updates on sampled sequences (its ``update``); the acting and storing steps below are both
agents'.

Example (SPEC 8.2 H1)::

    agent = DDPG("pyrl/PointReach-v0", her_strategy="future", her_k=4, hidden=(64, 64),
                 gamma=0.98, tau=0.05, batch_size=256, train_every=500, gradient_steps=40,
                 action_l2=1.0, clip_target="goal", random_eps=0.2, noise_sigma=0.2)
    agent.learn(total_steps=30 * 500)
"""

import copy
from dataclasses import dataclass
from typing import NamedTuple, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pyrl import replay, returns
from pyrl.agents.common import (
    GOAL_KEYS,
    Agent,
    CommonArgs,
    EnvLike,
    EpisodeStats,
    ObsLayout,
    RunningNorm,
    actor_net,
    carried_state,
    final_observations,
    float64_array,
    make_vec_env,
    mlp,
    parse_args,
)
from pyrl.agents.numpy_acting import NumpyMLP, load_numpy_weights, numpy_weights


@dataclass
class Args(CommonArgs):
    n_envs: int = 1
    """environments stepped together"""
    buffer_size: int = 1_000_000
    """replay capacity in rows"""
    buffer_dir: Optional[str] = None
    """keep the replay columns in memory-mapped files in this directory (buffers larger than
    RAM, replay.MemoryMapped); checkpoints then refer to the files instead of copying them"""
    batch_size: int = 256
    """transitions per update"""
    learning_starts: int = 1000
    """steps of uniform random actions before the first update"""
    train_every: int = 1
    """environment steps (all envs together) between rounds of updates"""
    gradient_steps: int = 1
    """updates per round"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.005
    """target network Polyak rate"""
    actor_lr: float = 1e-3
    """actor Adam learning rate"""
    critic_lr: float = 1e-3
    """critic Adam learning rate"""
    hidden: tuple = (256, 256)
    """hidden layers of actor and critic"""
    activation: str = "relu"
    """'relu' or 'tanh' between the hidden layers"""
    n_critics: int = 1
    """Q networks trained side by side; targets use their minimum (TD3's clipped double-Q: 2)"""
    policy_delay: int = 1
    """critic updates per actor and target-network update (TD3: 2)"""
    target_noise: float = 0.0
    """std of the Gaussian noise added to mu'(s') in the target, on actions scaled to [-1, 1]
    (TD3's target policy smoothing: 0.2)"""
    target_noise_clip: float = 0.5
    """the target noise is clipped to +-this"""
    noise: str = "gaussian"
    """exploration noise: 'gaussian' or 'ou'"""
    noise_sigma: float = 0.1
    """noise std on actions scaled to [-1, 1] (as Stable-Baselines3 applies it)"""
    random_eps: float = 0.0
    """probability of a uniform random action instead of the noisy one"""
    action_l2: float = 0.0
    """actor penalty on the squared (scaled) action"""
    clip_target: Optional[str] = None
    """None, or 'goal' to clip y to [-1/(1-gamma), 0] (sparse -1/0 rewards)"""
    max_grad_norm: Optional[float] = None
    """clip gradient norms (None: no clipping)"""
    per: bool = False
    """prioritized replay"""
    per_alpha: float = 0.6
    """priority exponent"""
    per_beta: float = 0.4
    """initial IS exponent, annealed to 1 over per_beta_steps sample calls"""
    per_beta_steps: int = 100_000
    """sample calls over which beta reaches 1"""
    nstep: int = 1
    """n-step returns (1: one-step)"""
    nstep_floating: bool = False
    """draw k ~ U{1..n} per sample (floating n-step)"""
    her_strategy: Optional[str] = None
    """None (no relabeling), 'future', 'final', 'episode' or 'random'"""
    her_k: int = 4
    """relabeled samples per real one (ratio k/(k+1))"""
    her_nstep: str = "one_step"
    """'one_step' (relabeled samples take k = 1) or 'recompute' (they keep their n-step window,
    its rewards recomputed under the new goal; see replay.HER)"""
    normalize_obs: bool = False
    """normalize observations and goals by running mean and std (clipped to +-5)"""
    log_every: int = 1000
    """steps between history rows"""
    recurrent: bool = False
    """a GRU encoder on the observations, trained on sampled sequences: builds a RecurrentDDPG"""
    rnn_hidden: int = 64
    """recurrent: units of the GRU encoder"""
    seq_len: int = 20
    """recurrent: steps of each sampled window that the loss covers"""
    burn_in: int = 10
    """recurrent: steps before them that only warm the encoder state up"""
    recompute_every: int = 1000
    """recurrent: updates between refreshes of the stored states by the target encoder (0: never)"""
    encoder_freeze: Optional[tuple] = None
    """recurrent: (delta, count) freezes the encoder for `count` updates after every `delta`
    updates it trained (SPEC 5.1's freeze schedule); None trains it always"""


LOSSES = ("critic_loss", "actor_loss", "q")  # the columns an update's losses log


class Transition(NamedTuple):
    """One step of N envs, as :meth:`DDPG.step` took it: actions in [-1, 1], ``next_obs`` the
    final observation where an episode ended, the encoder states into and out of the step
    (recurrent; else None)."""

    obs: object
    action: np.ndarray
    next_obs: object
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict
    state: Optional[np.ndarray]
    next_state: Optional[np.ndarray]


def as_tensor(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, np.float32))


def as_tensors(fields: dict) -> dict:
    return {key: as_tensor(value) for key, value in fields.items()}


class Critics(nn.Module):
    """``n`` Q(s, a) networks side by side: ``critics(s, a)`` is ``[B, n]``."""

    def __init__(self, in_dim: int, hidden: tuple, n: int, activation: str):
        super().__init__()
        self.nets = nn.ModuleList(mlp([in_dim, *hidden, 1], activation) for _ in range(n))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([s, a], 1)
        return torch.cat([net(x) for net in self.nets], 1)


class DDPG(Agent):
    """DDPG (TD3 with the twin-critic options) on pyrl's replay buffer; see the module docstring."""

    algo = "ddpg"

    def __new__(cls, *args, **hyperparameters):
        if cls is DDPG and hyperparameters.get("recurrent"):
            from pyrl.agents.ddpg_recurrent import RecurrentDDPG

            cls = RecurrentDDPG
        return super().__new__(cls)

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        args = parse_args(Args, "DDPG", hyperparameters)
        for name, allowed in (
            ("noise", ("gaussian", "ou")),
            ("clip_target", (None, "goal")),
            ("activation", ("relu", "tanh")),
        ):
            if getattr(args, name) not in allowed:
                raise ValueError(
                    f"DDPG: {name} should be one of {allowed}, got {getattr(args, name)!r}"
                )
        super().__init__(env, args, env_kwargs)
        self.env = make_vec_env(env, args.n_envs, env_kwargs)
        obs_space, self.action_space = (
            self.env.single_observation_space,
            self.env.single_action_space,
        )
        if not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"DDPG: actions should be a Box space, got {self.action_space}")
        self.layout = ObsLayout(obs_space, "DDPG")
        self.goal_env = self.layout.keys is not None
        if args.her_strategy is not None and not self.goal_env:
            raise ValueError(
                f"DDPG: her_strategy={args.her_strategy!r} needs a goal env (dict "
                f"observations {GOAL_KEYS}), got {obs_space}"
            )
        self.obs_dim = self.layout.dim
        self.obs_norm = RunningNorm((self.obs_dim,), clip=5.0) if args.normalize_obs else None
        self.act_dim = int(np.prod(self.action_space.shape))
        self.act_low, self.act_high = self.action_space.low, self.action_space.high

        self.encoder = self.make_encoder()  # None: actor and critic read the network inputs
        features = self.obs_dim if self.encoder is None else self.encoder.hidden_size
        self.actor = actor_net([features, *args.hidden, self.act_dim], args.activation, squash=True)
        self.critic = Critics(features + self.act_dim, args.hidden, args.n_critics, args.activation)
        self.actor_target, self.critic_target, self.encoder_target = (
            copy.deepcopy(self.actor),
            copy.deepcopy(self.critic),
            copy.deepcopy(self.encoder),
        )
        # Each network with the target that follows it by tau.
        self.target_pairs = [(self.actor, self.actor_target), (self.critic, self.critic_target)]
        if self.encoder is not None:
            self.target_pairs.append((self.encoder, self.encoder_target))
        for _, target_net in self.target_pairs:
            target_net.requires_grad_(False)
        self.actor_numpy = NumpyMLP(self.actor)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=args.actor_lr, fused=True)
        # An encoder learns through the critic's loss only (SPEC 5.1).
        critic_params = [
            *self.critic.parameters(),
            *(self.encoder.parameters() if self.encoder is not None else ()),
        ]
        self.critic_opt = torch.optim.Adam(critic_params, lr=args.critic_lr, fused=True)
        self.rnn_state = self.initial_state(args.n_envs)  # the state fed into each env's next step

        spec = dict(self.layout.shapes, action=self.action_space.shape)
        her = None
        if args.her_strategy is not None:
            unwrapped = self._single_env()
            reward = getattr(unwrapped, "compiled_reward", None)
            if reward is None:  # gymnasium-robotics style: compute_reward(ag, dg, info), batched
                reward = lambda achieved, desired: torch.as_tensor(  # noqa: E731
                    unwrapped.compute_reward(achieved.numpy(), desired.numpy(), {})
                )
            her = replay.HER(
                strategy=args.her_strategy, k=args.her_k, reward=reward, nstep=args.her_nstep
            )
        self.buffer = replay.ReplayBuffer(
            args.buffer_size,
            spec,
            seed=args.seed,
            her=her,
            prioritized=replay.PER(
                alpha=args.per_alpha, beta=args.per_beta, beta_steps=args.per_beta_steps
            )
            if args.per
            else None,
            nstep=replay.NStep(n=args.nstep, gamma=args.gamma, floating=args.nstep_floating),
            recurrent=None if self.encoder is None else replay.Recurrent((features,)),
            storage=replay.MemoryMapped.reuse(args.buffer_dir) if args.buffer_dir else None,
        )
        self.noise_state = np.zeros((args.n_envs, self.act_dim))
        self.rng = np.random.default_rng(args.seed)

    def make_encoder(self) -> Optional[nn.GRU]:
        """The encoder whose state actor and critic read (RecurrentDDPG's GRU); None here."""
        return None

    def _single_env(self):
        if hasattr(self.env, "envs"):
            return self.env.envs[0].unwrapped
        raise ValueError("DDPG: HER needs the env's compute_reward; use a sync vector env")

    # ---- the step protocol: act, store, step, update, train_round ----------------------------
    def inputs(self, obs):
        """The network inputs of environment observations: ``obs`` (or ``observation`` +
        ``desired_goal``), normalized."""
        x = self.layout(obs)
        return self.obs_norm(x) if self.obs_norm is not None else x

    def buffer_fields(self, obs) -> dict:
        """Environment observations as the buffer's observation columns."""
        return {key: obs[key] for key in GOAL_KEYS} if self.goal_env else {"obs": obs}

    def act(
        self,
        obs,
        state: Optional[np.ndarray] = None,
        explore: bool = True,
        warmup: Optional[bool] = None,
    ):
        """Actions in [-1, 1] ``[N, act_dim]`` for a batch of environment observations, as the
        buffer stores them (:meth:`env_action` maps them to the env's bounds): mu(s), plus
        exploration noise and ``random_eps`` uniform actions with ``explore``, uniform during
        the warm-up (``warmup``; by default while this agent has taken fewer than
        ``learning_starts`` steps). Returns ``(action, state)``: recurrent, the encoder's state
        after reading ``obs`` from ``state`` (zeros if None), the next step's state; None for a
        feed-forward policy."""
        x, state = self.encode(self.inputs(obs), state)
        if not explore:
            return self.actor_numpy(x), state
        return self._explore(
            x, self.steps < self.args.learning_starts if warmup is None else warmup
        ), state

    def env_action(self, action: np.ndarray) -> np.ndarray:
        """Actions in [-1, 1] as the environment takes them (its Box bounds)."""
        return self.act_low + (action + 1.0) * 0.5 * (self.act_high - self.act_low)

    def from_env_action(self, action: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`env_action`: env actions in [-1, 1] (what the buffer and the
        critic hold)."""
        action = np.clip(action, self.act_low, self.act_high)
        return 2.0 * (action - self.act_low) / (self.act_high - self.act_low) - 1.0

    def store(
        self,
        obs,
        action,
        next_obs,
        reward,
        terminated,
        truncated,
        state: Optional[np.ndarray] = None,
        next_state: Optional[np.ndarray] = None,
    ) -> None:
        """One step of N envs into the normalizer and the replay buffer: actions in [-1, 1],
        ``next_obs`` the final observation where an episode ended (``final_observations``);
        recurrent: with the states fed into the step and out of it (:meth:`act`'s)."""
        if self.obs_norm is not None:
            self.obs_norm.update(self.layout(obs))
        # Tensors of the stored dtypes take the buffer's pybind11 fast path.
        obs_t, next_t = (
            as_tensors(self.buffer_fields(obs)),
            as_tensors(self.buffer_fields(next_obs)),
        )
        states = {}
        if state is not None:
            states = dict(hidden=torch.from_numpy(state), next_hidden=torch.from_numpy(next_state))
        with self.timer("replay"):
            self.buffer.add(
                obs=obs_t if self.goal_env else obs_t["obs"],
                next_obs=next_t if self.goal_env else next_t["obs"],
                reward=as_tensor(reward),
                terminated=torch.from_numpy(np.asarray(terminated)),
                truncated=torch.from_numpy(np.asarray(truncated)),
                action=as_tensor(action),
                **states,
            )

    def step(
        self,
        stats: Optional[EpisodeStats] = None,
        store: bool = True,
        warmup: Optional[bool] = None,
    ) -> "Transition":
        """One exploring step of this agent's envs: :meth:`act`, ``env.step``, :meth:`store`
        (``store=False``: only returned), then the encoder states and the noise carried over
        episode ends; the episodes that end go into ``stats``. Returns the step's transition."""
        self.start()
        obs, state = self.obs, self.rnn_state
        action, next_state = self.act(obs, state, warmup=warmup)
        next_obs, reward, term, trunc, info = self.env.step(self.env_action(action))
        done = term | trunc
        if stats is not None:
            stats.update(reward, done, info)
        real_next = final_observations(next_obs, info, done)
        if store:
            self.store(obs, action, real_next, reward, term, trunc, state, next_state)
        self.rnn_state = carried_state(next_state, done)
        self.noise_state[done] = 0.0
        self.obs = next_obs
        self.steps += self.args.n_envs
        return Transition(obs, action, real_next, reward, term, trunc, info, state, next_state)

    def train_round(self, losses: Optional[dict] = None) -> dict:
        """``gradient_steps`` updates (once the buffer holds an episode), each one's losses
        appended to ``losses`` (a dict of lists; a new one if None), which it returns."""
        losses = losses if losses is not None else {key: [] for key in LOSSES}
        if self.buffer.num_episodes == 0:
            return losses
        for _ in range(self.args.gradient_steps):
            for key, value in self.update().items():
                losses.setdefault(key, []).append(value)
        return losses

    def predict(self, obs, deterministic: bool = True, state: Optional[np.ndarray] = None):
        """The action for ``obs`` (one observation or a batch), in the env's bounds. A recurrent
        policy also takes and returns the encoder state: ``action, state = predict(obs,
        state=state)``, starting from ``initial_state(n)`` (or None, zeros) and zeroed by the
        caller at each reset."""
        single = self.layout.is_single(obs)
        action, state = self.act(obs, state, explore=False)
        if not deterministic:
            action = np.clip(
                action + self.args.noise_sigma * self.rng.standard_normal(action.shape), -1, 1
            )
        action = self.env_action(action)
        action = action[0] if single else action
        return (action, state) if self.args.recurrent else action

    def encode(self, x: np.ndarray, state: Optional[np.ndarray]) -> tuple:
        """``(features, next_state)``: the actor's inputs for network inputs ``x`` ``[N, d]``
        read from encoder states ``state``, and the state the next step reads. A feed-forward
        policy has no state: ``(x, None)``."""
        return x, None

    def _explore(self, x: np.ndarray, warmup: bool) -> np.ndarray:
        """Exploratory actions in [-1, 1] for the actor's inputs ``x``: uniform during warm-up,
        else mu plus noise."""
        a, n = self.args, len(x)
        if warmup:
            return self.rng.uniform(-1, 1, (n, self.act_dim))
        action = self.actor_numpy(x)
        if a.noise == "ou":  # Ornstein-Uhlenbeck, theta 0.15, dt 1e-2, as in the DDPG paper
            if n != len(self.noise_state):
                raise ValueError(
                    f"DDPG.act: noise='ou' keeps one process per env "
                    f"({len(self.noise_state)}); got a batch of {n}"
                )
            self.noise_state += -0.15 * self.noise_state * 1e-2 + a.noise_sigma * np.sqrt(
                1e-2
            ) * self.rng.standard_normal(self.noise_state.shape)
            noise = self.noise_state
        else:
            noise = a.noise_sigma * self.rng.standard_normal(action.shape)
        action = np.clip(action + noise, -1.0, 1.0)
        random = self.rng.random(n) < a.random_eps
        action[random] = self.rng.uniform(-1, 1, (int(random.sum()), self.act_dim))
        return action

    # ---- learning -----------------------------------------------------------------------------
    def learn(self, total_steps: int, callback=None, progress: Optional[bool] = None) -> list[dict]:
        a = self.args
        stats, bar = self.begin_learning(total_steps, progress)
        losses = {key: [] for key in LOSSES}
        try:
            while self.steps < total_steps:
                before = self.steps
                self.step(stats)
                if (
                    self.steps >= a.learning_starts
                    and self.steps // a.train_every != before // a.train_every
                ):
                    self.train_round(losses)
                if self.steps // a.log_every != before // a.log_every or self.steps >= total_steps:
                    row = {
                        **stats.drain(),
                        **{k: float(np.mean(v)) if v else float("nan") for k, v in losses.items()},
                    }
                    losses = {key: [] for key in LOSSES}
                    if not self.log(row, before, callback, bar):
                        break
        finally:
            if bar is not None:
                bar.close()
        return self.history

    # ---- ALGO LOGIC: one update: the critics on the n-step target, then the actor ------------
    def update(self) -> dict:
        """One gradient update on a sampled batch; its losses."""
        a = self.args
        with self.timer("replay"):
            batch = self.buffer.sample(a.batch_size)
        s, s_next = self.inputs(batch.obs), self.inputs(batch.next_obs)
        target = self._bootstrap_target(batch.reward.reshape(-1), batch.discount, s_next)[:, None]
        q = self.critic(s, batch.action)  # [B, n_critics]
        td = q - target
        critic_loss = (batch.weight.reshape(-1, 1).to(torch.float32) * td.pow(2)).mean(0).sum()
        self._critic_step(critic_loss)
        out = {"critic_loss": critic_loss.item(), "q": q[:, 0].mean().item()}
        if self.updates % a.policy_delay == 0:
            out["actor_loss"] = self._actor_step(s)
        if a.per:
            with self.timer("replay"):
                self.buffer.update_priorities(
                    batch.index, batch.generation, td[:, 0].detach().abs()
                )
        return out

    def _bootstrap_target(
        self,
        reward: torch.Tensor,
        discount: torch.Tensor,
        s_next: torch.Tensor,
        smooth: bool = True,
    ) -> torch.Tensor:
        """``y = R + D * min_c Q'_c(s', mu'(s'))`` ``[B]`` (no gradient), clipped to the goal
        range with ``clip_target="goal"``; ``smooth``: TD3's target policy smoothing on mu'."""
        a = self.args
        with torch.no_grad():
            next_action = self.target_action(s_next) if smooth else self.actor_target(s_next)
            next_q = self.critic_target(s_next, next_action).min(dim=1).values
            target = reward + discount.to(torch.float32) * next_q
            if a.clip_target == "goal":
                target = target.clamp(-1.0 / (1.0 - a.gamma), 0.0)
        return target

    def target_action(self, s_next: torch.Tensor) -> torch.Tensor:
        """mu'(s'), with TD3's clipped target policy smoothing when ``target_noise`` > 0."""
        a = self.args
        next_action = self.actor_target(s_next)
        if a.target_noise > 0:
            noise = (torch.randn_like(next_action) * a.target_noise).clamp(
                -a.target_noise_clip, a.target_noise_clip
            )
            next_action = (next_action + noise).clamp(-1.0, 1.0)
        return next_action

    def _critic_step(self, critic_loss: torch.Tensor) -> None:
        """One step of the critics (and the encoder, which learns through them)."""
        self.critic_opt.zero_grad()
        critic_loss.backward()
        if self.args.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(
                self.critic_opt.param_groups[0]["params"], self.args.max_grad_norm
            )
        self.critic_opt.step()
        self.updates += 1

    def _actor_step(self, s: torch.Tensor) -> float:
        """The deterministic policy gradient through the first critic on inputs ``s``, then every
        target network moves by ``tau``; returns the actor loss."""
        a = self.args
        mu = self.actor(s)
        q_mu = self.critic.nets[0](torch.cat([s, mu], 1))
        actor_loss = -q_mu.mean() + a.action_l2 * mu.pow(2).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        if a.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.actor.parameters(), a.max_grad_norm)
        self.actor_opt.step()
        with torch.no_grad():
            for net, target_net in self.target_pairs:
                for p, p_target in zip(net.parameters(), target_net.parameters()):
                    p_target.lerp_(p, a.tau)
        return actor_loss.item()

    # ---- actor processes (pyrl.distributed) -----------------------------------------------------
    def acting_state(self, critics: bool = False) -> dict:
        """What acting needs, as numpy arrays for another process: the actor's (and encoder's)
        weights and the observation statistics; with ``critics`` also the critics and target
        networks, for :meth:`initial_priorities`."""
        nets = ("actor", "critic", "actor_target", "critic_target") if critics else ("actor",)
        nets += ("encoder",) if self.encoder is not None else ()
        return {
            **{name: numpy_weights(getattr(self, name)) for name in nets},
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm is not None else None,
        }

    def load_acting_state(self, state: dict) -> None:
        """Loads :meth:`acting_state` (in place: the numpy acting views stay valid)."""
        for name in ("actor", "critic", "actor_target", "critic_target", "encoder"):
            if name in state:
                load_numpy_weights(getattr(self, name), state[name])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])

    def initial_priorities(self, obs, action, reward, terminated: bool) -> np.ndarray:
        """``|Q(s, a) - y|`` of each transition of one finished episode (``add_episode``'s
        arrays; actions in [-1, 1]), ``y`` the target an update builds, over fixed ``nstep``
        windows with the stored goals and without target smoothing: the initial priorities an
        Ape-X actor computes. (Floating windows and relabeled goals are drawn at sampling; the
        learner's updates then set those samples' priorities.)"""
        a = self.args
        x = torch.from_numpy(np.ascontiguousarray(self.inputs(obs), np.float32))  # [T + 1, d]
        reward = torch.as_tensor(np.asarray(reward, np.float32)).reshape(-1, 1)
        steps = reward.shape[0]
        ends = torch.zeros(steps, 1, dtype=torch.bool)
        ends[-1] = True
        ret, discount, boot = returns.nstep_return(
            reward, ends & terminated, ends & (not terminated), n=a.nstep, gamma=a.gamma
        )
        target = self._bootstrap_target(ret[:, 0], discount[:, 0], x[boot[:, 0] + 1], smooth=False)
        with torch.no_grad():
            q = self.critic(x[:-1], torch.as_tensor(np.asarray(action, np.float32)))[:, 0]
        return (q - target).abs().double().numpy()

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm else None,
            "buffer": self.buffer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "noise_state": self.noise_state.copy(),
        }

    def close(self, remove_new_files: bool = False) -> None:
        """Releases a ``buffer_dir`` to the next opener (ReplayBuffer.close); with
        ``remove_new_files`` also deletes the column files this agent created."""
        self.buffer.close(remove_new_files=remove_new_files)

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        self.buffer.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        self.noise_state = float64_array(state["noise_state"])
