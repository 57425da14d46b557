"""What every agent shares: the environment set-up, running normalizers, episode bookkeeping,
the learning-curve log, evaluation, timers and checkpoints. The algorithms themselves live in
one file each (reinforce.py, ppo.py, ddpg.py, and their recurrent variants ppo_recurrent.py and
ddpg_recurrent.py) and read top to bottom.
"""

import csv
import dataclasses
import math
import os
import time
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Optional, Union

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pyrl._io import atomic_save, load_data, plain
from pyrl.envs import final_observations  # noqa: F401  (re-exported for the agents; registers the envs)

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
EnvLike = Union[str, gym.Env, gym.vector.VectorEnv, Callable[[], gym.Env]]


# ---- environments ----------------------------------------------------------------------------


def env_id_of(env: EnvLike) -> Optional[str]:
    """The registered id behind ``env``, if it has one (checkpoints store it to rebuild the env)."""
    if isinstance(env, str):
        return env
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else None


def make_vec_env(
    env: EnvLike, n_envs: int, env_kwargs: Optional[dict] = None
) -> gym.vector.VectorEnv:
    """A vector env that resets in the same step an episode ends (``info["final_obs"]`` holds the
    final observation), the layout the agents' returns and replay adds expect.

    Args:
        env: a registered id, a ``gym.Env`` (only with ``n_envs=1``), a callable making a new
            env per call, or a ready ``VectorEnv`` using gymnasium's ``SAME_STEP`` autoreset.
        n_envs: environments stepped together.
        env_kwargs: keyword arguments for ``gym.make`` when ``env`` is an id.
    """
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if isinstance(env, gym.vector.VectorEnv):
        if env.num_envs != n_envs:
            raise ValueError(f"env: the vector env has {env.num_envs} envs, but n_envs={n_envs}")
        vec = env
    elif isinstance(env, str):
        if env not in gym.registry:
            register_robotics()
        vec = None
        if gym.spec(env).vector_entry_point is not None:  # a native batched env, if it fits
            vec = gym.make_vec(
                env, n_envs, vectorization_mode="vector_entry_point", **(env_kwargs or {})
            )
            if vec.metadata.get("autoreset_mode") != same_step:
                vec.close()
                vec = None
        if vec is None:
            vec = gym.make_vec(
                env,
                n_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": same_step},
                **(env_kwargs or {}),
            )
    elif isinstance(env, gym.Env):
        if n_envs != 1:
            raise ValueError(
                f"env: a single gym.Env instance can only run with n_envs=1, got "
                f"n_envs={n_envs}; pass an env id or a callable to run several"
            )
        vec = gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=same_step)
    elif callable(env):
        vec = gym.vector.SyncVectorEnv([env] * n_envs, autoreset_mode=same_step)
    else:
        raise ValueError(
            f"env should be an env id, a gym.Env, a callable or a VectorEnv, got {env!r}"
        )
    mode = vec.metadata.get("autoreset_mode")
    if mode != same_step:
        raise ValueError(
            f"env: the vector env should reset in the same step (gymnasium "
            f"AutoresetMode.SAME_STEP), got autoreset_mode={mode}"
        )
    return vec


def register_robotics() -> None:
    """Registers gymnasium-robotics' envs (FetchReach-v4, ...) when that optional package is
    installed; ``gym.make`` then reports an unknown id as usual."""
    try:
        import gymnasium_robotics
    except ImportError:
        return
    gym.register_envs(gymnasium_robotics)


def is_goal_space(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Dict) and all(k in space.spaces for k in GOAL_KEYS)


class ObsLayout:
    """How an observation becomes a network input ``[N, dim]``: a Box flattened, or a goal
    dict's ``observation`` and ``desired_goal`` flattened side by side (what a goal-conditioned
    policy reads). Works on numpy arrays (acting) and on torch tensors (sampled batches)."""

    def __init__(self, space: gym.Space, algo: str):
        if is_goal_space(space):
            self.keys: Optional[tuple] = ("observation", "desired_goal")
            shapes = {key: space[key].shape for key in GOAL_KEYS}
            self.single_ndim = len(shapes["observation"])
        elif isinstance(space, gym.spaces.Box):
            self.keys, shapes = None, {"obs": space.shape}
            self.single_ndim = len(space.shape)
        else:
            raise ValueError(
                f"{algo}: observations should be a Box or a goal Dict space "
                f"({', '.join(GOAL_KEYS)}), got {space}"
            )
        self.shapes = shapes
        self.dims = {key: int(np.prod(shape)) for key, shape in shapes.items()}
        self.dim = sum(self.dims[key] for key in (self.keys or ("obs",)))

    def is_single(self, obs) -> bool:
        """Whether ``obs`` is one observation rather than a batch."""
        first = obs["observation"] if self.keys else obs
        return np.ndim(first) == self.single_ndim

    def __call__(self, obs):
        if self.keys is None:
            if isinstance(obs, torch.Tensor):
                return obs.reshape(-1, self.dim)
            return np.asarray(obs, np.float32).reshape(-1, self.dim)
        parts = [obs[key] for key in self.keys]
        if isinstance(parts[0], torch.Tensor):
            return torch.cat([x.reshape(-1, self.dims[key]) for key, x in zip(self.keys, parts)], 1)
        return np.concatenate(
            [
                np.asarray(x, np.float32).reshape(-1, self.dims[key])
                for key, x in zip(self.keys, parts)
            ],
            axis=1,
        )


def successes(info: dict, done: np.ndarray) -> list[float]:
    """``is_success`` of the episodes that ended this step, where the env reports it."""
    rows = np.flatnonzero(done)
    final = info.get("final_info")
    if isinstance(final, dict) and "is_success" in final:
        return [float(final["is_success"][i]) for i in rows]
    if "is_success" in info:
        return [float(info["is_success"][i]) for i in rows]
    return []


class EpisodeStats:
    """Returns, lengths and successes of the episodes that end, per env of a vector env."""

    def __init__(self, n_envs: int):
        self.running_return = np.zeros(n_envs)
        self.running_length = np.zeros(n_envs, dtype=np.int64)
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.successes: list[float] = []

    def update(self, reward: np.ndarray, done: np.ndarray, info: dict) -> None:
        reward = np.asarray(reward, dtype=np.float64)
        self.running_return += reward.reshape(len(self.running_return), -1).sum(axis=1)
        self.running_length += 1
        for i in np.flatnonzero(done):
            self.returns.append(float(self.running_return[i]))
            self.lengths.append(int(self.running_length[i]))
        self.successes.extend(successes(info, done))
        self.running_return[done] = 0.0
        self.running_length[done] = 0

    def take(self) -> dict:
        """The ``returns``, ``lengths`` and ``successes`` of the episodes ended since the last
        take or drain, which start anew (what an actor process reports to its learner)."""
        ended = {"returns": self.returns, "lengths": self.lengths, "successes": self.successes}
        self.returns, self.lengths, self.successes = [], [], []
        return ended

    def add(self, ended: dict) -> None:
        """Counts another env group's :meth:`take` (an actor's episodes) among these."""
        self.returns += ended["returns"]
        self.lengths += ended["lengths"]
        self.successes += ended["successes"]

    def drain(self) -> dict:
        """Summary of the episodes since the last drain (NaN when none ended)."""
        ended = self.take()
        return {
            "episodes": len(ended["returns"]),
            "return": float(np.mean(ended["returns"])) if ended["returns"] else float("nan"),
            "length": float(np.mean(ended["lengths"])) if ended["lengths"] else float("nan"),
            "success": float(np.mean(ended["successes"])) if ended["successes"] else float("nan"),
        }


# ---- networks and normalizers ----------------------------------------------------------------


def mlp(
    sizes: list[int], activation: str = "tanh", out_gain: Optional[float] = None
) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them; orthogonal init with the
    given output gain when ``out_gain`` is set (as PPO implementations do)."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = nn.Linear(fan_in, fan_out)
        if out_gain is not None:
            last = i == len(sizes) - 2
            nn.init.orthogonal_(layer.weight, out_gain if last else np.sqrt(2))
            nn.init.zeros_(layer.bias)
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def actor_net(
    sizes: list[int], activation: str, out_gain: Optional[float] = None, squash: bool = False
) -> nn.Sequential:
    """A policy MLP in named parts: ``body`` (the hidden layers, each followed by the
    activation), ``head`` (the output layer) and, with ``squash``, a final tanh. The names are
    what a cooperative sync copies by (the body) and keeps (the head); see agents.coop."""
    layers = mlp(sizes, activation, out_gain)
    parts = {"body": nn.Sequential(*layers[:-1]), "head": layers[-1]}
    if squash:
        parts["squash"] = nn.Tanh()
    return nn.Sequential(OrderedDict(parts))


class RunningNorm:
    """Running mean and variance (Chan et al. parallel update) to normalize inputs:
    ``clip((x - mean) / sqrt(var + eps), -clip, clip)``."""

    def __init__(self, shape: tuple, clip: float = 10.0, eps: float = 1e-8):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4
        self.clip, self.eps = clip, eps

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).reshape(-1, *self.mean.shape)
        self.merge(x.mean(axis=0), x.var(axis=0), x.shape[0])

    def merge(self, batch_mean, batch_var, n: float) -> None:
        """Adds the moments of ``n`` more samples (another normalizer's, or a batch's)."""
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (
            self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        ) / total
        self.count = total

    def __call__(self, x):
        if isinstance(x, torch.Tensor):
            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
            std = torch.as_tensor(np.sqrt(self.var + self.eps), dtype=x.dtype, device=x.device)
            return ((x - mean) / std).clamp(-self.clip, self.clip)
        return np.clip(
            (x - self.mean) / np.sqrt(self.var + self.eps), -self.clip, self.clip
        ).astype(np.float32)

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var = float64_array(state["mean"]), float64_array(state["var"])
        self.count = float(state["count"])


def float64_array(value) -> np.ndarray:
    """A float64 numpy copy of an array a checkpoint holds (as a tensor, since files are loaded
    with weights_only)."""
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    return np.array(value, dtype=np.float64)


def carried_state(next_state: Optional[np.ndarray], done: np.ndarray) -> Optional[np.ndarray]:
    """The encoder states each env's next step reads: a step's ``next_state`` zeroed where its
    episode ended (None, a feed-forward policy's state, stays None)."""
    if next_state is None:
        return None
    return np.where(done[:, None], 0.0, next_state).astype(np.float32)


def gru_step(gru: nn.GRU, x: np.ndarray, state: Optional[np.ndarray]) -> tuple:
    """``(features, next_state)`` of one acting step of a batch-first GRU encoder: its state
    after reading network inputs ``x`` ``[N, d]`` from ``state`` ``[N, H]`` (zeros, the state
    at a reset, if None), twice: the policy reads it and the next step starts from it."""
    if state is None:
        state = np.zeros((len(x), gru.hidden_size), np.float32)
    with torch.no_grad():
        h = gru(
            torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None],
            torch.from_numpy(np.ascontiguousarray(state, np.float32))[None],
        )[0][:, 0]
    return h.numpy(), h.numpy()


def loaded_rnn_state(saved, current: np.ndarray, algo: str) -> np.ndarray:
    """A checkpoint's carried encoder states, checked against the agent's ``current`` ones."""
    state = np.asarray(saved, dtype=np.float32)
    if state.shape != current.shape:
        raise ValueError(
            f"{algo}.load: rnn_state should be {list(current.shape)}, got {list(state.shape)}"
        )
    return state


# ---- the agent surface -----------------------------------------------------------------------


@dataclasses.dataclass
class CommonArgs:
    """Settings every agent has; each agent's ``Args`` adds its algorithm's."""

    seed: int = 0
    """seeds torch, the agent's generators and the environments"""
    progress: bool = False
    """show a progress bar during learn()"""
    eval_every: int = 0
    """steps between evaluations logged in the history (0: none)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    tensorboard: Optional[str] = None
    """a directory for TensorBoard event files with the history's scalars (the tensorboard extra)"""


# What each numeric hyperparameter may be, by name (any agent); every other float must be finite.
AT_LEAST_ONE = {
    "n_envs",
    "n_steps",
    "batch_size",
    "n_epochs",
    "buffer_size",
    "train_every",
    "gradient_steps",
    "nstep",
    "log_every",
    "eval_episodes",
    "per_beta_steps",
    "n_critics",
    "policy_delay",
    "rnn_hidden",
    "seq_len",
}
# lr 0 freezes a network, which tests use
NOT_NEGATIVE = {
    "seed",
    "eval_every",
    "learning_starts",
    "her_k",
    "ent_anneal_updates",
    "ent_coef",
    "ent_coef_final",
    "vf_coef",
    "action_l2",
    "noise_sigma",
    "lr",
    "actor_lr",
    "critic_lr",
    "target_noise",
    "target_noise_clip",
    "burn_in",
    "recompute_every",
}
POSITIVE = {"clip_range", "clip_range_vf", "max_grad_norm", "target_kl"}
UNIT_INTERVAL = {"gamma", "gae_lambda", "tau", "per_alpha", "per_beta", "random_eps"}


def check_hyperparameters(algo: str, args) -> None:
    """Every numeric setting against its kind and range, so a bad one fails at construction with
    its name (not mid-run)."""
    for field in dataclasses.fields(args):
        name, value = field.name, getattr(args, field.name)
        kind = field.type
        optional = getattr(kind, "__origin__", None) is Union
        if optional:
            if value is None:
                continue
            kind = next(k for k in kind.__args__ if k is not type(None))
        if kind is bool:
            ok = isinstance(value, bool)
            want = "a bool"
        elif kind is int:
            ok = type(value) is int and (
                value >= 1 if name in AT_LEAST_ONE else value >= 0 if name in NOT_NEGATIVE else True
            )
            want = (
                "an int >= 1"
                if name in AT_LEAST_ONE
                else "an int >= 0"
                if name in NOT_NEGATIVE
                else "an int"
            )
        elif kind is float:
            finite = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if name in POSITIVE:
                ok, want = finite and value > 0, "a finite number > 0"
            elif name in NOT_NEGATIVE:
                ok, want = finite and value >= 0, "a finite number >= 0"
            elif name in UNIT_INTERVAL:
                ok, want = finite and 0 <= value <= 1, "a number in [0, 1]"
            else:
                ok, want = finite, "a finite number"
        elif kind is tuple:
            ok = isinstance(value, tuple) and all(type(v) is int and v >= 1 for v in value)
            want = "a tuple of layer widths >= 1"
        else:
            continue
        if not ok:
            raise ValueError(f"{algo}: {name} should be {want}, got {value!r}")


def parse_args(args_class, algo: str, hyperparameters: dict):
    """``args_class(**hyperparameters)``, with unknown names reported as a ValueError that lists
    the known ones, and every value checked (:func:`check_hyperparameters`)."""
    known = {f.name for f in dataclasses.fields(args_class)}
    unknown = sorted(set(hyperparameters) - known)
    if unknown:
        raise ValueError(f"{algo}: unknown hyperparameters {unknown}; known: {sorted(known)}")
    args = args_class(**hyperparameters)
    check_hyperparameters(algo, args)
    return args


class Agent:
    """The surface every agent shares. Subclasses set ``algo`` and implement ``learn``,
    ``predict``, ``state_dict`` and ``load_state_dict``, and the public steps their loops are
    made of (the API reference's step protocol).

    ``learn(total_steps)`` trains until the agent has taken ``total_steps`` environment steps in
    all, so a loaded checkpoint continues the same run to the same total.
    """

    algo = "agent"
    single_env_ok = True  # a gym.Env instance may stand in for n_envs > 1 (run as one env)

    def __init__(self, env: EnvLike, args, env_kwargs: Optional[dict] = None):
        if isinstance(env, gym.Env) and args.n_envs != 1:
            # Stable-Baselines3 users pass one env instance; it cannot be copied safely.
            if not self.single_env_ok:
                raise ValueError(
                    f"{self.algo}: a single gym.Env instance is one env, and this agent "
                    f"needs n_envs={args.n_envs}; pass an env id or a callable that "
                    f"makes one (env=lambda: MyEnv())"
                )
            warnings.warn(
                f"{self.algo}: a single gym.Env instance runs as one env (n_envs={args.n_envs} "
                f"asked); pass an env id or a callable (env=lambda: MyEnv()) to run "
                f"{args.n_envs} side by side",
                stacklevel=3,
            )
            args.n_envs = 1
        self.args = args
        self._writer = (
            None  # made at the first history row (a loaded agent that only acts writes none)
        )
        if args.tensorboard is not None:
            try:
                import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
            except ImportError as err:
                raise ValueError(
                    f"{self.algo}: tensorboard={args.tensorboard!r} needs the tensorboard "
                    f"package (pip install 'pyrl[tensorboard]'): {err}"
                ) from None
        self.env_id = env_id_of(env)
        self.env_kwargs = dict(env_kwargs or {})
        self._env_source = env
        self.steps = 0
        self.updates = 0
        self.history: list[dict] = []
        self.timers: dict[str, float] = {}
        self.env: Optional[gym.vector.VectorEnv] = None  # the subclass builds it
        self.obs = None  # the envs' current observations, once reset
        self._start = time.perf_counter()
        torch.manual_seed(args.seed)

    # -- logging --------------------------------------------------------------------------------
    @contextmanager
    def timer(self, name: str):
        """Accumulates wall-clock seconds spent in the block under ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timers[name] = self.timers.get(name, 0.0) + time.perf_counter() - start

    def log(self, row: dict, steps_before: int, callback, progress) -> bool:
        """Appends a history row, with an evaluation when the steps since ``steps_before`` crossed
        a multiple of ``eval_every``; returns False when the callback asks to stop."""
        every = self.args.eval_every
        if every and self.steps // every != steps_before // every:
            row.update(
                self._eval_row(self.evaluate(self.args.eval_episodes, seed=10_000 + self.steps))
            )
        now = round(time.perf_counter() - self._start, 3)
        if self.history:
            previous = self.history[-1]
            row["steps_per_second"] = (self.steps - previous["step"]) / max(
                now - previous["time"], 1e-9
            )
        row.update({f"{name}_seconds": value for name, value in self.timers.items()})
        row = {"step": self.steps, "time": now, **row}
        self.history.append(row)
        if self.args.tensorboard is not None:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(self.args.tensorboard)
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and value == value:
                    self._writer.add_scalar(key, value, self.steps)
            self._writer.flush()
        if progress is not None:
            progress.update(self.steps - progress.n)
            shown = {
                k: f"{row[k]:.3g}"
                for k in ("return", "success", "eval_return", "eval_success")
                if k in row and row[k] == row[k]
            }
            progress.set_postfix(shown, refresh=False)
        return not (callback is not None and callback(self, row) is False)

    def initial_state(self, n: int) -> Optional[np.ndarray]:
        """A recurrent policy's zero states for ``n`` envs (``predict`` then takes and returns
        them); None for a feed-forward one."""
        return None

    def _eval_row(self, result: dict) -> dict:
        """The history columns of an evaluation result."""
        return {"eval_return": result["return"], "eval_success": result["success"]}

    def start(self) -> None:
        """Resets the agent's envs (seeded) on the first call only, so later steps continue the
        episodes in progress; the steps that act in them (``step``, ``collect``) call it."""
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=self.args.seed + self.steps)
            self.rnn_state = self.initial_state(self.args.n_envs)

    def begin_learning(self, total_steps: int, show_progress: Optional[bool]):
        """Episode statistics and a progress bar (or None) for one learn() call, the envs
        started (:meth:`start`)."""
        self.start()
        return EpisodeStats(self.args.n_envs), self._progress(total_steps, show_progress)

    def _progress(self, total_steps: int, show: Optional[bool]):
        if not (show if show is not None else self.args.progress):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total_steps, initial=self.steps, unit="step", dynamic_ncols=True)

    def write_csv(self, path) -> None:
        """The learning curve: one row per log point, the union of their columns."""
        columns: list[str] = []
        for row in self.history:
            columns += [k for k in row if k not in columns]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(
        self,
        episodes: int = 10,
        seed: Optional[int] = None,
        env: Optional[EnvLike] = None,
        deterministic: bool = True,
    ) -> dict:
        """Mean return (and success rate where the env reports ``is_success``) over ``episodes``
        episodes, run side by side in a vector env."""
        return evaluate(
            self,
            env if env is not None else self._eval_source(),
            episodes,
            seed,
            deterministic,
            self.env_kwargs,
        )

    def _eval_source(self) -> EnvLike:
        if self.env_id is not None:
            return self.env_id
        if callable(self._env_source) and not isinstance(
            self._env_source, (gym.Env, gym.vector.VectorEnv)
        ):
            return self._env_source
        raise ValueError(f"{self.algo}.evaluate: the training env has no registered id; pass env=")

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, path) -> None:
        """Everything needed to continue: hyperparameters, networks, optimizers, normalizers,
        step counts, history, random generators (and the replay buffer for DDPG). A
        ``buffer_dir`` is stored relative to the checkpoint, so a copied run uses its own copy."""
        where = os.path.dirname(os.path.abspath(os.fspath(path)))
        args = _buffer_dirs(
            dataclasses.asdict(self.args), lambda d: os.path.relpath(os.path.abspath(d), where)
        )
        checkpoint = {
            "algo": self.algo,
            "args": args,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "steps": self.steps,
            "updates": self.updates,
            "history": self.history,
            "timers": self.timers,
            "torch_rng": torch.get_rng_state(),
            "state": self.state_dict(),
        }
        # A run killed mid-save keeps its previous checkpoint.
        atomic_save(plain(checkpoint), path, where=f"{self.algo}.save")

    @classmethod
    def saved_env_id(cls, path) -> Optional[str]:
        """The env id a checkpoint was trained on (None for an unregistered env)."""
        return cls._read_checkpoint(path)["env_id"]

    @classmethod
    def _read_checkpoint(cls, path) -> dict:
        """A checkpoint's fields, each checked for its type: a damaged one raises ValueError
        naming the file and the field."""
        checkpoint = load_data(path, f"{cls.algo}.load")  # data only: no code runs from a file
        if not isinstance(checkpoint, dict) or "algo" not in checkpoint:
            raise ValueError(f"{cls.algo}.load: {path} is not an agent checkpoint")
        if checkpoint["algo"] != cls.algo:
            raise ValueError(f"{cls.algo}.load: {path} holds a {checkpoint['algo']!r} checkpoint")
        fields = {
            "args": (dict,),
            "env_id": (str, type(None)),
            "env_kwargs": (dict, type(None)),
            "steps": (int,),
            "updates": (int,),
            "history": (list,),
            "timers": (dict,),
            "torch_rng": (torch.Tensor,),
            "state": (dict,),
        }
        for name, kinds in fields.items():
            value = checkpoint.get(name)
            if type(value) not in kinds and not (
                name == "torch_rng" and isinstance(value, torch.Tensor)
            ):
                names = " or ".join(k.__name__ for k in kinds)
                raise ValueError(
                    f"{cls.algo}.load: {path}: field {name!r} should be {names}, got "
                    f"{type(value).__name__} {str(value)[:60]!r}"
                )
        for name in ("steps", "updates"):
            if checkpoint[name] < 0:
                raise ValueError(
                    f"{cls.algo}.load: {path}: field {name!r} should be >= 0, got "
                    f"{checkpoint[name]}"
                )
        if not all(isinstance(row, dict) for row in checkpoint["history"]):
            raise ValueError(f"{cls.algo}.load: {path}: field 'history' should be a list of dicts")
        return checkpoint

    @classmethod
    def load(cls, path, env: Optional[EnvLike] = None, **overrides) -> "Agent":
        """Rebuilds a saved agent; ``env`` defaults to the saved env id, ``overrides`` replace
        saved hyperparameters (``total_steps`` and logging settings, say). A checkpoint that
        does not fit raises ValueError naming the file and the field, and leaves no files
        behind (a new ``buffer_dir`` made for it is removed again)."""
        checkpoint = cls._read_checkpoint(path)
        env = env if env is not None else checkpoint["env_id"]
        if env is None:
            raise ValueError(
                f"{cls.algo}.load: {path} was trained on an unregistered env; pass env="
            )
        where = os.path.dirname(os.path.abspath(os.fspath(path)))
        args = _buffer_dirs(dict(checkpoint["args"]), lambda d: os.path.join(where, d))
        for key, value in overrides.items():  # a dict-valued setting (Coop's ppo=...) merges
            both = isinstance(value, dict) and isinstance(args.get(key), dict)
            args[key] = {**args[key], **value} if both else value
        try:
            agent = cls(env, env_kwargs=checkpoint["env_kwargs"], **args)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{cls.algo}.load: {path}: field 'args' does not make a {cls.algo} agent ({err})"
            ) from None
        state = _ReadFields(checkpoint["state"])
        try:
            agent.load_state_dict(state)
            state.last = "torch_rng"
            torch.set_rng_state(checkpoint["torch_rng"])
        except Exception as err:  # other networks, another pyrl's layout, or a damaged field
            agent.close(remove_new_files=True)
            field = "torch_rng" if state.last == "torch_rng" else f"state.{state.last}"
            raise ValueError(
                f"{cls.algo}.load: {path}: field {field!r} does not fit this agent "
                f"({type(err).__name__}: {str(err)[:300]}); was it saved by another "
                f"pyrl version?"
            ) from None
        agent.steps, agent.updates = checkpoint["steps"], checkpoint["updates"]
        agent.history, agent.timers = checkpoint["history"], checkpoint["timers"]
        if agent.history:  # the time column runs on across the resume
            agent._start -= agent.history[-1].get("time", 0.0)
        return agent

    def close(self, remove_new_files: bool = False) -> None:
        """Releases what the agent holds outside the process's memory (DDPG's ``buffer_dir``;
        nothing for the others); ``remove_new_files`` also deletes files it created."""

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


def evaluate(
    agent,
    env: EnvLike,
    episodes: int = 10,
    seed: Optional[int] = None,
    deterministic: bool = True,
    env_kwargs: Optional[dict] = None,
) -> dict:
    """Runs ``episodes`` episodes of ``agent.predict`` side by side, one per env of a vector env,
    and returns ``{"return", "return_std", "length", "success"}`` (success NaN when the env does
    not report ``is_success``)."""
    if not (type(episodes) is int and episodes >= 1):
        raise ValueError(f"evaluate: episodes should be an int >= 1, got {episodes!r}")
    vec = make_vec_env(env, episodes, env_kwargs)
    try:
        obs, _ = vec.reset(seed=seed)
        running = np.zeros(episodes)
        length = np.zeros(episodes, dtype=np.int64)
        finished = np.zeros(episodes, dtype=bool)
        returns, lengths, success = (
            np.zeros(episodes),
            np.zeros(episodes),
            np.full(episodes, np.nan),
        )
        state = agent.initial_state(episodes) if hasattr(agent, "initial_state") else None
        while not finished.all():
            if state is None:
                action = agent.predict(obs, deterministic=deterministic)
            else:
                action, state = agent.predict(obs, deterministic=deterministic, state=state)
            obs, reward, terminated, truncated, info = vec.step(action)
            if state is not None:
                state = np.where((terminated | truncated)[:, None], 0.0, state).astype(state.dtype)
            running += np.asarray(reward, np.float64).reshape(episodes, -1).sum(axis=1)
            length += 1
            done = (terminated | truncated) & ~finished
            for i, s in zip(
                np.flatnonzero(done), successes(info, done) or [np.nan] * int(done.sum())
            ):
                returns[i], lengths[i], success[i] = running[i], length[i], s
            finished |= done
    finally:
        vec.close()
    return {
        "return": float(returns.mean()),
        "return_std": float(returns.std()),
        "length": float(lengths.mean()),
        "success": float(np.nanmean(success)) if not np.isnan(success).all() else float("nan"),
    }


def counts(value, n: Optional[int] = None):
    """A saved count (an int >= 0), or `n` of them; anything else raises ValueError."""
    values = (value,) if n is None else value
    if not (
        isinstance(values, (tuple, list))
        and len(values) == (n or 1)
        and all(type(v) is int and v >= 0 for v in values)
    ):
        raise ValueError(
            f"should be {'an int' if n is None else f'{n} ints'} >= 0, got {value!r:.60}"
        )
    return value if n is None else tuple(values)


class _ReadFields(dict):
    """A checkpoint's state that remembers the field read last (named when loading it fails)."""

    last: Optional[str] = None

    def __getitem__(self, key):
        self.last = key
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.last = key
        return super().get(key, default)


def _buffer_dirs(args: dict, move: Callable[[str], str]) -> dict:
    """`args` with every ``buffer_dir`` (Coop's ``ddpg`` ones included) passed through `move`."""
    out = dict(args)
    for key, value in args.items():
        if key == "buffer_dir" and isinstance(value, (str, os.PathLike)):
            out[key] = move(os.fspath(value))
        elif isinstance(value, dict):
            out[key] = _buffer_dirs(value, move)
    return out
