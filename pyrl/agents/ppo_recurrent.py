"""PPO with a GRU encoder: both heads read the encoder's state instead of the observation, for
partially observed tasks (CleanRL's ppo_atari_lstm.py beside ppo_atari.py, sb3-contrib's
RecurrentPPO beside SB3's PPO).

``PPO(env, recurrent=True)`` (or ``RecurrentPPO(env)``) builds it; every other setting is
PPO's, and the encoder has ``rnn_hidden`` units. It changes two things in PPO's loop:

- acting (``encode``) carries each env's state, zeroed at a reset, and the rollout stores the
  state fed into every step (``Rollout.hidden``);
- the update (``batches``) cuts the rollout into its episode pieces (an env's steps between
  resets and the rollout's edges) and, in every epoch, recomputes the states of each
  minibatch's pieces with the current weights, as whole sequences from their stored first state
  (zero at a reset, the carried state where the rollout began), so gradients flow through time,
  truncated at the rollout's edges. A minibatch is whole pieces, about ``batch_size`` steps.

Example (the velocity-masked CartPole only a memory solves)::

    agent = PPO("pyrl/CartPoleNoVel-v0", recurrent=True, rnn_hidden=64, n_envs=8, n_steps=128)
    agent.learn(total_steps=200_000)
    action, state = agent.predict(obs, state=state)  # zero the state at each reset
"""

from typing import Optional

import numpy as np
import torch
from torch import nn

from pyrl.agents.common import EnvLike, gru_step, loaded_rnn_state
from pyrl.agents.ppo import PPO, ActorCritic, Args, Rollout


class RecurrentActorCritic(ActorCritic):
    """PPO's heads on the state of a GRU encoder of the network inputs."""

    def __init__(self, obs_dim: int, action_space, args: Args):
        encoder = nn.GRU(obs_dim, args.rnn_hidden, batch_first=True)
        super().__init__(args.rnn_hidden, action_space, args, encoder)

    def encode(self, obs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The encoder's state after each step of ``obs`` ``[B, L, d]`` from ``hidden``
        ``[B, H]``: ``[B, L, H]``, the heads' input."""
        return self.encoder(obs, hidden[None].contiguous())[0]


class Pieces:
    """A rollout cut into its episode pieces, padded to the longest: ``obs`` ``[S, L, d]``,
    ``h0`` ``[S, H]`` (the state fed into each piece's first step), ``step`` ``[S, L]`` (the
    flat index ``t * n + env`` of each position) and ``valid`` ``[S, L]``."""

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
        self.total = T * n

    def states(self, model: RecurrentActorCritic, pieces: Optional[torch.Tensor] = None):
        """The encoder states over the pieces (all, or the ones given), from their first
        states: ``(steps [k], states [k, H])`` for their k valid positions."""
        pieces = torch.arange(self.count) if pieces is None else pieces
        states = model.encode(self.obs[pieces], self.h0[pieces])
        valid = self.valid[pieces]
        return self.step[pieces][valid], states[valid]

    def features(self, model: RecurrentActorCritic) -> torch.Tensor:
        """The heads' inputs of every step ``[T * n, H]``, by flat index ``t * n + env``."""
        steps, states = self.states(model)
        features = states.new_empty((self.total, states.shape[1]))
        features[steps] = states
        return features

    def minibatches(self, model: RecurrentActorCritic, batch_size: int):
        """``(steps, heads' inputs)`` of each minibatch of one epoch: shuffled pieces of about
        ``batch_size`` steps in all, their states recomputed with the current weights."""
        groups = max(1, min(self.count, round(self.total / batch_size)))
        for group in torch.randperm(self.count).tensor_split(groups):
            yield self.states(model, group)


class RecurrentPPO(PPO):
    """PPO whose heads read a GRU encoder's state; see the module docstring."""

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        if not hyperparameters.setdefault("recurrent", True):
            raise ValueError("RecurrentPPO: recurrent should be True, got False (use PPO)")
        super().__init__(env, env_kwargs, **hyperparameters)

    def make_model(self) -> RecurrentActorCritic:
        return RecurrentActorCritic(self.obs_dim, self.action_space, self.args)

    def initial_state(self, n: int) -> np.ndarray:
        """Zero encoder states for ``n`` envs: the state at a reset."""
        return np.zeros((n, self.args.rnn_hidden), np.float32)

    def encode(self, x: np.ndarray, state: Optional[np.ndarray]) -> tuple:
        """``(features, next_state)``: the encoder's state after reading network inputs ``x``
        ``[N, d]`` from ``state`` (zeros if None); the heads read it."""
        return gru_step(self.model.encoder, x, state)

    def batches(self, rollout: Rollout) -> Pieces:
        return Pieces(rollout)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rnn_state = loaded_rnn_state(state.get("rnn_state"), self.rnn_state, "PPO")
