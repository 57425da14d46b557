"""DDPG with a GRU encoder, R2D2-style (Kapturowski et al. 2019,
https://openreview.net/forum?id=r1lyTjAqYX): actor and critic read the encoder's state instead
of the observation, and updates learn from sampled sequences (sb3-contrib's recurrent agents
beside SB3's, CleanRL's *_lstm files beside the feed-forward ones).

``DDPG(env, recurrent=True)`` (or ``RecurrentDDPG(env)``) builds it; the other settings are
DDPG's (TD3's options included), plus ``rnn_hidden``, ``seq_len``, ``burn_in``,
``recompute_every`` and ``encoder_freeze``. What differs from DDPG:

- acting (``encode``) carries each env's state, zeroed at a reset, and the buffer stores the
  state fed into every step (``replay.Recurrent``);
- an update samples windows of ``burn_in + seq_len`` steps (``sample_sequences``): the burn-in
  runs the online and target encoders from the stored state without gradients, then the
  critic's loss covers the next ``seq_len`` steps, bootstrapping step j from the target's state
  k_j positions on;
- the encoder is trained through the critic loss only (the actor reads its state detached,
  SPEC 5.1), optionally frozen on a schedule (``encoder_freeze``); stored states are refreshed
  with the target encoder every ``recompute_every`` updates (``ReplayBuffer.recompute_hidden``),
  and the state the burn-in reached is written back to its row (``store_hidden``);
- priorities are R2D2's, per window.

Example (the velocity-masked pendulum only a memory solves)::

    agent = DDPG("pyrl/PendulumNoVel-v0", recurrent=True, rnn_hidden=64, seq_len=16, burn_in=8)
    agent.learn(total_steps=30_000)
"""

from typing import Optional

import numpy as np
import torch
from torch import nn

from pyrl.agents.common import EnvLike, gru_step, loaded_rnn_state
from pyrl.agents.ddpg import DDPG


class RecurrentDDPG(DDPG):
    """DDPG whose actor and critic read a GRU encoder's state; see the module docstring."""

    def __init__(self, env: EnvLike, env_kwargs: Optional[dict] = None, **hyperparameters):
        if not hyperparameters.setdefault("recurrent", True):
            raise ValueError("RecurrentDDPG: recurrent should be True, got False (use DDPG)")
        super().__init__(env, env_kwargs, **hyperparameters)

    def make_encoder(self) -> nn.GRU:
        """The GRU, once the settings are checked against the env."""
        a = self.args
        if self.goal_env:
            raise ValueError(
                "DDPG: recurrent=True reads Box observations; goal envs (dict "
                "observations) are not supported by the recurrent agent yet"
            )
        if a.nstep_floating:
            raise ValueError(
                "DDPG: recurrent=True samples fixed n-step windows; set nstep_floating=False"
            )
        freeze = a.encoder_freeze
        if freeze is not None and not (
            isinstance(freeze, (tuple, list))
            and len(freeze) == 2
            and all(type(x) is int and x >= 1 for x in freeze)
        ):
            raise ValueError(
                f"DDPG: encoder_freeze should be None or (delta, count) ints >= 1, got {freeze!r}"
            )
        return nn.GRU(self.obs_dim, a.rnn_hidden, batch_first=True)

    # ---- acting -------------------------------------------------------------------------------
    def initial_state(self, n: int) -> np.ndarray:
        """Zero encoder states for ``n`` envs: the state at a reset."""
        return np.zeros((n, self.args.rnn_hidden), np.float32)

    def encode(self, x: np.ndarray, state: Optional[np.ndarray]) -> tuple:
        """``(features, next_state)``: the encoder's state after reading network inputs ``x``
        ``[N, d]`` from ``state`` (zeros if None); the actor reads it."""
        return gru_step(self.encoder, x, state)

    # ---- ALGO LOGIC: the update on sampled sequences --------------------------------------------
    def update(self) -> dict:
        """One update on sampled windows of ``burn_in + seq_len`` steps (module docstring); its
        losses."""
        a = self.args
        if a.recompute_every and self.updates % a.recompute_every == 0 and self.updates > 0:
            with self.timer("recompute"):
                self.buffer.recompute_hidden(self._stored_encoder(self.encoder_target))
        with self.timer("replay"):
            batch = self.buffer.sample_sequences(a.batch_size, a.seq_len, burn_in=a.burn_in)
        obs = self._normalized_seq(batch.obs)  # [B, W + 1, d]
        burn, h0 = a.burn_in, batch.hidden
        with torch.no_grad():
            start, start_target = h0, h0
            if burn:
                start = self.encoder(obs[:, :burn], h0[None])[1][0]
                start_target = self.encoder_target(obs[:, :burn], h0[None])[1][0]
            # Target states after positions burn .. W (the bootstraps read them at j + k).
            f_target = self.encoder_target(obs[:, burn:], start_target[None])[0]
        frozen = self._encoder_frozen()
        with torch.set_grad_enabled(not frozen):
            f = self.encoder(obs[:, burn:-1], start[None])[0]  # [B, L, H], steps burn ..
        L = a.seq_len
        mask = batch.mask[:, burn:]
        k = batch.k[:, burn:].clamp(min=1)  # positions past the end: masked
        boot = (torch.arange(L)[None, :] + k).clamp(max=L)  # index into f_target
        f_boot = f_target.gather(1, boot[..., None].expand(-1, -1, f_target.shape[-1]))
        action = batch.action[:, burn:]
        with torch.no_grad():
            s_next = f_boot.reshape(-1, f_boot.shape[-1])
            next_q = self.critic_target(s_next, self.target_action(s_next))
            next_q = next_q.min(dim=1).values.reshape(-1, L)
            target = batch.reward[:, burn:] + batch.discount[:, burn:].float() * next_q
        q = self.critic(f.reshape(-1, f.shape[-1]), action.reshape(-1, self.act_dim)).reshape(
            -1, L, a.n_critics
        )
        td = (q - target[..., None]) * mask[..., None]
        weight = batch.weight.reshape(-1, 1, 1)
        critic_loss = (weight * td.pow(2)).sum((0, 1)).div(mask.sum().clamp(min=1)).sum()
        self._critic_step(critic_loss)
        out = {"critic_loss": critic_loss.item(), "q": q[..., 0][mask].mean().item()}
        if self.updates % a.policy_delay == 0:
            out["actor_loss"] = self._actor_step(f.detach()[mask])  # the encoder learns from Q only
        with self.timer("replay"):
            # The state the burn-in reached, written back to its row (R2D2's stored-state refresh).
            if burn:
                self.buffer.store_hidden(batch.index, batch.generation, start, offset=burn)
            if a.per:
                self.buffer.update_sequence_priorities(
                    batch.index, batch.generation, td[..., 0].detach().abs(), mask
                )
        return out

    def _encoder_frozen(self) -> bool:
        """SPEC 5.1's schedule: after every `delta` trained updates, `count` frozen ones."""
        if self.args.encoder_freeze is None:
            return False
        delta, count = self.args.encoder_freeze
        return self.updates % (delta + count) >= delta

    def _normalized_seq(self, obs: torch.Tensor) -> torch.Tensor:
        if self.obs_norm is None:
            return obs
        return torch.from_numpy(self.obs_norm(obs.numpy()).astype(np.float32))

    def _stored_encoder(self, encoder: nn.GRU):
        """The recompute's encoder: the stored observations normalized as acting saw them now."""
        if self.obs_norm is None:
            return encoder
        return lambda x, h0: encoder(self._normalized_seq(x), h0[None])[0]

    def initial_priorities(self, obs, action, reward, terminated: bool) -> np.ndarray:
        raise ValueError(
            "DDPG.initial_priorities: a recurrent agent's priorities are per "
            "sampled window (R2D2), set by its updates"
        )

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "encoder": self.encoder.state_dict(),
            "encoder_target": self.encoder_target.state_dict(),
            "rnn_state": self.rnn_state,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.encoder.load_state_dict(state["encoder"])
        self.encoder_target.load_state_dict(state["encoder_target"])
        self.rnn_state = loaded_rnn_state(state.get("rnn_state"), self.rnn_state, "DDPG")
