"""Slow, obvious pure-torch versions of every pyrl op.

They are the oracle of the tests and the baseline row of the benchmarks. Each mirrors the public
function of the same name (pyrl.returns), computes in float64 with plain Python loops over time
(and, for the window ops, over window starts), and returns the input dtype.
"""

import math
from typing import Optional

import torch
from torch import Tensor


def _flags(flag: Tensor, reward: Tensor) -> Tensor:
    """[T, N] flags as bool, broadcast over reward heads when reward is [T, N, m]."""
    flag = flag.to(device=reward.device) != 0
    return flag.unsqueeze(-1).expand(reward.shape) if reward.dim() == 3 else flag


def _per_step(x, reward: Tensor) -> Tensor:
    """gamma or lmbda as float64 per reward element: a float everywhere, or a ``[T, N]`` / ``[N]``
    tensor (the value at step t, env n), repeated over reward heads."""
    steps_by_envs = reward.shape[:2]
    if isinstance(x, Tensor):
        x = x.double().to(reward.device).expand(steps_by_envs)
    else:
        x = torch.full(steps_by_envs, float(x), dtype=torch.float64, device=reward.device)
    return x.unsqueeze(-1).expand(reward.shape) if reward.dim() == 3 else x


def gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float = 0.99,
    lmbda: float = 0.95,
) -> tuple[Tensor, Tensor]:
    r, v, nv = reward.double(), value.double(), next_value.double()
    g, lm = _per_step(gamma, reward), _per_step(lmbda, reward)
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    advantage = torch.zeros_like(r)
    next_advantage = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        bootstrap = torch.where(term[t], 0.0, nv[t])
        delta = r[t] + g[t] * bootstrap - v[t]
        ends = term[t] | trunc[t] | (t == r.shape[0] - 1)
        advantage[t] = delta + torch.where(ends, 0.0, g[t] * lm[t] * next_advantage)
        next_advantage = advantage[t]
    return advantage.to(reward.dtype), (advantage + v).to(reward.dtype)


def discounted_return(
    reward: Tensor, next_value: Tensor, terminated: Tensor, truncated: Tensor, gamma: float = 0.99
) -> Tensor:
    r, nv, g = reward.double(), next_value.double(), _per_step(gamma, reward)
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    out = torch.zeros_like(r)
    next_return = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        ends = trunc[t] | (t == r.shape[0] - 1)
        tail = torch.where(term[t], 0.0, torch.where(ends, nv[t], next_return))
        out[t] = r[t] + g[t] * tail
        next_return = out[t]
    return out.to(reward.dtype)


def lambda_return(
    reward: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float = 0.99,
    lmbda: float = 0.95,
) -> Tensor:
    r, nv = reward.double(), next_value.double()
    g, lm = _per_step(gamma, reward), _per_step(lmbda, reward)
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    out = torch.zeros_like(r)
    next_return = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        ends = trunc[t] | (t == r.shape[0] - 1)
        mixed = (1 - lm[t]) * nv[t] + lm[t] * next_return
        tail = torch.where(term[t], 0.0, torch.where(ends, nv[t], mixed))
        out[t] = r[t] + g[t] * tail
        next_return = out[t]
    return out.to(reward.dtype)


def vtrace(
    log_rho: Tensor,
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float = 0.99,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    lmbda: float = 1.0,
) -> tuple[Tensor, Tensor]:
    r, v, nv = reward.double(), value.double(), next_value.double()
    ratio = log_rho.double().exp()
    gamma = _per_step(gamma, reward)
    rho, c = ratio.clamp(max=rho_bar), _per_step(lmbda, reward) * ratio.clamp(max=c_bar)
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    T = r.shape[0]
    vs, pg = torch.zeros_like(r), torch.zeros_like(r)
    for t in reversed(range(T)):
        ends = term[t] | trunc[t] | (t == T - 1)
        bootstrap = torch.where(term[t], 0.0, nv[t])
        diff = rho[t] * (r[t] + gamma[t] * bootstrap - v[t])
        if t < T - 1:
            diff = diff + torch.where(ends, 0.0, gamma[t] * c[t] * (vs[t + 1] - v[t + 1]))
            vhat = torch.where(ends, nv[t], vs[t + 1])
        else:
            vhat = nv[t]
        vs[t] = v[t] + diff
        pg[t] = rho[t] * (r[t] + gamma[t] * torch.where(term[t], 0.0, vhat) - v[t])
    return vs.to(reward.dtype), pg.to(reward.dtype)


def retrace(
    log_rho: Tensor,
    reward: Tensor,
    q: Tensor,
    next_v: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float = 0.99,
    lmbda: float = 1.0,
) -> Tensor:
    r, q, nv = reward.double(), q.double(), next_v.double()
    ratio = log_rho.double().exp().clamp(max=1.0)
    g, lm = _per_step(gamma, reward), _per_step(lmbda, reward)  # lmbda_t weighs the trace of t + 1
    term, trunc = _flags(terminated, reward), _flags(truncated, reward)
    T = r.shape[0]
    target = torch.zeros_like(r)
    for t in reversed(range(T)):
        ends = term[t] | trunc[t] | (t == T - 1)
        tail = nv[t]
        if t < T - 1:
            trace = lm[t] * ratio[t + 1]
            tail = tail + torch.where(ends, 0.0, trace * (target[t + 1] - q[t + 1]))
        target[t] = r[t] + g[t] * torch.where(term[t], 0.0, tail)
    return target.to(reward.dtype)


def floating_k(uniform: Optional[Tensor], n: int, shape) -> Tensor:
    """k per window: n, or uniform on {1..n} from u in [0, 1)."""
    if uniform is None:
        return torch.full(shape, n, dtype=torch.int64)
    k = 1 + (uniform.double() * n).to(torch.int64)
    return k.clamp(1, n).cpu()


def _window(terminated: Tensor, truncated: Tensor, t: int, env: int, k: int) -> tuple[int, bool]:
    """(length, ends terminal) of the window of up to k steps starting at (t, env)."""
    steps = terminated.shape[0]
    for length in range(1, k + 1):
        s = t + length - 1
        if terminated[s, env]:
            return length, True
        if truncated[s, env] or s == steps - 1:
            return length, False
    return k, False


def nstep_return(
    reward: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    n: int = 5,
    gamma: float = 0.99,
    uniform: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r = reward.double().cpu()
    g = _per_step(gamma, r[..., 0] if r.dim() == 3 else r).tolist()  # g[t][env], per step
    term, trunc = terminated.cpu() != 0, truncated.cpu() != 0
    steps, envs = r.shape[:2]
    k = floating_k(uniform, n, (steps, envs))
    ret = torch.zeros_like(r)
    discount = torch.zeros(steps, envs, dtype=torch.float64)
    boot = torch.zeros(steps, envs, dtype=torch.int64)
    for t in range(steps):
        for env in range(envs):
            length, terminal = _window(term, trunc, t, env, int(k[t, env]))
            factor = 1.0  # the product of the window's gammas so far
            for l in range(length):
                ret[t, env] += factor * r[t + l, env]
                factor *= g[t + l][env]
            discount[t, env] = 0.0 if terminal else factor
            boot[t, env] = t + length - 1
    to = dict(device=reward.device)
    return ret.to(reward.dtype).to(**to), discount.to(reward.dtype).to(**to), boot.to(**to)


def nstep_gae(
    reward: Tensor,
    value: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    n: int = 5,
    gamma: float = 0.99,
    lmbda: float = 0.95,
    uniform: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The k-step-truncated lambda-return of SPEC 4.2, as credit C and bootstrap discount D:
    C = G^lambda_{t:t+k} - D * V(s_{t+k}),  D = gamma (gamma lmbda)^(k-1) (per-step gammas
    and lambdas: the product of the window's gamma lmbda but the last step's gamma alone)."""
    r, v, nv = reward.double().cpu(), value.double().cpu(), next_value.double().cpu()
    per_env = r[..., 0] if r.dim() == 3 else r
    g, lm = _per_step(gamma, per_env).tolist(), _per_step(lmbda, per_env).tolist()
    term, trunc = terminated.cpu() != 0, truncated.cpu() != 0
    steps, envs = r.shape[:2]
    k = floating_k(uniform, n, (steps, envs))
    credit = torch.zeros_like(r)
    discount = torch.zeros(steps, envs, dtype=torch.float64)
    boot = torch.zeros(steps, envs, dtype=torch.int64)
    for t in range(steps):
        for env in range(envs):
            length, terminal = _window(term, trunc, t, env, int(k[t, env]))
            end = t + length - 1
            weight = 1.0
            for l in range(length):
                s = t + l
                bootstrap = 0.0 if term[s, env] else nv[s, env]
                delta = r[s, env] + g[s][env] * bootstrap - v[s, env]
                credit[t, env] += weight * delta
                weight *= g[s][env] * lm[s][env]
            d = math.prod(g[t + l][env] * lm[t + l][env] for l in range(length - 1)) * g[end][env]
            last = 0.0 if terminal else nv[end, env]
            credit[t, env] += v[t, env] - d * last
            discount[t, env] = 0.0 if terminal else d
            boot[t, env] = end
    to = dict(device=reward.device)
    return credit.to(reward.dtype).to(**to), discount.to(reward.dtype).to(**to), boot.to(**to)


# ---- replay (SPEC 1.2, 1.3, 3.2) ---------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    """SplitMix64's finaliser on Python ints (wrapping at 64 bits)."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def counter_uniforms(seed: int, call: int, stream: int, count: int) -> Tensor:
    """The uniforms of a replay sample call (DESIGN decision 3): sample j of `stream` in call
    `call` of a buffer seeded `seed` draws (mix(key ^ mix(stream << 40 ^ j)) >> 11) * 2^-53 with
    key = mix(mix(seed) ^ call). Streams: 0 row, 1 relabel, 2 goal, 3 lookahead."""
    key = _mix64(_mix64(seed & _MASK64) ^ (call & _MASK64))
    values = [
        (_mix64(key ^ _mix64(((stream << 40) ^ j) & _MASK64)) >> 11) * 2.0**-53
        for j in range(count)
    ]
    return torch.tensor(values, dtype=torch.float64)


def tree_sample(
    leaves: Tensor, uniform: Tensor, beta: float, batch_max: bool = False
) -> tuple[Tensor, Tensor]:
    """Stratified proportional draw over `leaves` (priority^alpha per row) by a cumulative sum.

    Sample j takes the mass u_j = (j + uniform[j]) * S / B and lands on the first row whose
    cumulative sum passes it; its weight is (P_min / P)^beta, or P^-beta over the batch maximum.
    """
    leaves = leaves.double()
    total = float(leaves.sum())
    cumulative = torch.cumsum(leaves, 0).tolist()
    count = uniform.shape[0]
    index = []
    for j in range(count):
        u = min((j + float(uniform[j])) * total / count, math.nextafter(total, 0.0))
        row = next(i for i, c in enumerate(cumulative) if c > u and leaves[i] > 0)
        index.append(row)
    index = torch.tensor(index, dtype=torch.int64)
    smallest = float(leaves[leaves > 0].min())
    weight = (smallest / leaves[index]) ** beta
    if batch_max:
        weight = weight / weight.max()
    return index, weight.float()


def direct_rows(
    leaves: Tensor, seed: int, call: int, count: int, tries: int = 16, min_fill: int = 4
) -> Tensor:
    """A uniform buffer's draw (alpha 0, every transition leaf 1): sample j tries rows
    floor(u * C) with u = counter_uniforms(seed, call, 0, ...)[a * count + j] for attempts
    a = 0, 1, ... until one is a transition; after `tries` misses it takes the stratified
    draw of :func:`tree_sample` with its first uniform. A ring under 1/`min_fill` full takes
    the stratified draw for every sample."""
    leaves = leaves.double()
    capacity = leaves.shape[0]
    u = counter_uniforms(seed, call, 0, tries * count).tolist()
    fallback = tree_sample(leaves, torch.tensor(u[:count], dtype=torch.float64), 0.0)[0].tolist()
    if float(leaves.sum()) * min_fill < capacity:
        return torch.tensor(fallback, dtype=torch.int64)
    rows = []
    for j in range(count):
        candidates = (min(int(u[a * count + j] * capacity), capacity - 1) for a in range(tries))
        rows.append(next((r for r in candidates if leaves[r] > 0), fallback[j]))
    return torch.tensor(rows, dtype=torch.int64)


def beta_at(beta: float, beta_steps: Optional[int], calls: int) -> float:
    """The IS exponent of the sample call after `calls` earlier ones: beta, rising linearly to
    1 over `beta_steps` calls (None or 0: fixed)."""
    if not beta_steps:
        return beta
    return beta + (1.0 - beta) * min(1.0, calls / beta_steps)


def episode_rows(
    leaves: Tensor,
    row_episode: Tensor,
    table: dict,
    seed: int,
    call: int,
    select_count: int,
    max_ep_draw: int,
    count: int,
) -> Tensor:
    """Episode mode's rows of one sample call (SPEC 1.2): rounds of `select_count` stratified
    draws by priority (:func:`tree_sample`), their distinct episodes in ascending id order, and
    m = 1 + floor(u * min(T, max_ep_draw)) distinct steps of each (the first m of its steps
    ordered by a uniform each), until `count` rows are drawn; cut to `count`. Every draw takes
    the next stream past the fused sample's four (counter_uniforms). `table` is
    ``ReplayBuffer.episodes()``."""
    capacity = leaves.shape[0]
    record = {
        int(i): (int(s), int(t)) for i, s, t in zip(table["id"], table["start"], table["length"])
    }
    stream = 4
    rows: list[int] = []

    def draw(n):
        nonlocal stream
        stream += 1
        return counter_uniforms(seed, call, stream - 1, n)

    while len(rows) < count:
        drawn = tree_sample(leaves, draw(select_count), 0.0)[0]
        episodes = sorted(set(row_episode[drawn].tolist()))
        takes = draw(len(episodes)).tolist()
        for episode, u in zip(episodes, takes):
            start, length = record[episode]
            take = 1 + int(u * min(length, max_ep_draw))
            order = sorted(range(length), key=draw(length).tolist().__getitem__)
            rows.extend((start + t) % capacity for t in order[:take])
    return torch.tensor(rows[:count], dtype=torch.int64)


class ReplayBuffer:
    """The replay storage of SPEC 1.2 in plain Python lists, one row at a time.

    It mirrors pyrl.replay.ReplayBuffer's observable behaviour for the tests: whole-episode
    eviction, wrap-around, leaves (priority^alpha, 0 on final and free rows), stratified sampling
    from explicitly given uniforms, n-step windows and stale-update dropping. Fields are stored
    as one tensor per row; ``obs_keys`` name the observation fields, the others are given per
    transition.
    """

    def __init__(
        self,
        capacity: int,
        obs_keys=("obs",),
        alpha: float = 0.0,
        eps: float = 1e-6,
        p_min: float = 1e-10,
        p_max: float = 1e2,
        max_episode_steps: int = 1000,
    ):
        self.capacity, self.obs_keys, self.alpha = capacity, tuple(obs_keys), alpha
        self.eps, self.p_min, self.p_max = eps, p_min, p_max
        self.max_episode_steps = min(max_episode_steps, capacity - 1)
        self.rows: list[Optional[dict]] = [None] * capacity
        self.row_episode = [-1] * capacity
        self.leaves = [0.0] * capacity
        self.episodes: dict[int, dict] = {}  # alive episodes by id: start, length, terminated
        self.next_id, self.cursor, self.max_priority = 0, 0, 1.0
        self.staged: dict[int, list[dict]] = {}

    def add_episode(self, obs: dict, fields: dict, terminated: bool, td_abs=None) -> None:
        """obs: key -> [T + 1, ...]; fields (reward included): key -> [T, ...]; td_abs: [T]
        initial priorities (as an update would set them), or None for the largest so far."""
        steps = next(iter(obs.values())).shape[0] - 1
        rows = [
            {
                **{k: v[t] for k, v in obs.items()},
                **{k: (v[t] if t < steps else torch.zeros_like(v[0])) for k, v in fields.items()},
            }
            for t in range(steps + 1)
        ]
        start = self.cursor
        self._commit(rows, terminated)
        for t, delta in enumerate([] if td_abs is None else td_abs.tolist()):
            p = min(max(delta + self.eps, self.p_min), self.p_max)
            self.max_priority = max(self.max_priority, p)
            self.leaves[(start + t) % self.capacity] = p**self.alpha

    def add(self, obs: dict, next_obs: dict, fields: dict, terminated, truncated) -> None:
        """One step of N environments: obs/next_obs key -> [N, ...], fields key -> [N, ...]."""
        envs = next(iter(obs.values())).shape[0]
        for e in range(envs):
            steps = self.staged.setdefault(e, [])
            steps.append(
                {**{k: v[e] for k, v in obs.items()}, **{k: v[e] for k, v in fields.items()}}
            )
            if bool(terminated[e]) or bool(truncated[e]) or len(steps) == self.max_episode_steps:
                final = {
                    **{k: v[e] for k, v in next_obs.items()},
                    **{k: torch.zeros_like(v[e]) for k, v in fields.items()},
                }
                self._commit(steps + [final], bool(terminated[e]))
                self.staged[e] = []

    def _commit(self, rows: list[dict], terminated: bool) -> None:
        assert len(rows) <= self.capacity
        targets = [(self.cursor + i) % self.capacity for i in range(len(rows))]
        for victim in {self.row_episode[r] for r in targets} - {-1}:  # evicted whole
            episode = self.episodes.pop(victim)
            for i in range(episode["length"] + 1):
                r = (episode["start"] + i) % self.capacity
                self.row_episode[r], self.leaves[r], self.rows[r] = -1, 0.0, None
        leaf = self.max_priority**self.alpha
        for i, (r, row) in enumerate(zip(targets, rows)):
            self.rows[r], self.row_episode[r] = row, self.next_id
            self.leaves[r] = leaf if i < len(rows) - 1 else 0.0
        self.episodes[self.next_id] = {
            "start": self.cursor,
            "length": len(rows) - 1,
            "terminated": terminated,
        }
        self.next_id += 1
        self.cursor = (self.cursor + len(rows)) % self.capacity

    def sample(
        self,
        uniform: Tensor,
        floating_uniform: Optional[Tensor],
        n: int,
        gamma: float,
        beta: float,
        batch_max: bool = False,
        her: Optional[dict] = None,
        index: Optional[Tensor] = None,
    ) -> dict:
        """`her`: {"uniform": [2, B], "ratio", "strategy", "reward": fn(achieved, goal)} and
        optionally "nstep": "recompute" and "success": fn(achieved, goal) -> bool (a window ends
        at its first success, as a terminal); `index`: rows drawn already (a uniform buffer's
        direct draw), instead of `uniform`."""
        leaves = torch.tensor(self.leaves, dtype=torch.float64)
        if index is None:
            index, weight = tree_sample(leaves, uniform, beta, batch_max)
        else:
            weight = torch.ones(index.shape[0], dtype=torch.float32)  # every leaf is 1
        k = floating_k(floating_uniform, n, index.shape)
        out = {
            "index": index,
            "weight": weight,
            "generation": [],
            "reward": [],
            "discount": [],
            "boot": [],
            "her_row": [],
        }
        for j, row in enumerate(index.tolist()):
            episode = self.episodes[self.row_episode[row]]
            t = (row - episode["start"]) % self.capacity
            her_row = -1
            if her is not None and float(her["uniform"][0, j]) < her["ratio"]:
                her_row = self._her_row(her["strategy"], episode, t, float(her["uniform"][1, j]))
                if her.get("nstep", "one_step") != "recompute":
                    k[j] = 1
            steps = min(int(k[j]), episode["length"] - t)
            rows = [(row + i) % self.capacity for i in range(steps)]
            success = False
            if her_row >= 0:  # every step's reward under the new goal, up to the first success
                goal = self.rows[her_row]["achieved_goal"]
                total = 0.0
                for i in range(steps):
                    reached = self.rows[(row + i + 1) % self.capacity]["achieved_goal"]
                    total = (
                        total
                        + gamma**i
                        * torch.as_tensor(her["reward"](reached[None], goal[None]))[0].double()
                    )
                    if "success" in her and bool(her["success"](reached[None], goal[None])):
                        success, steps = True, i + 1
                        break
                out["reward"].append(total)
            else:
                out["reward"].append(
                    sum(gamma**i * self.rows[r]["reward"].double() for i, r in enumerate(rows))
                )
            terminal = success or (episode["terminated"] and t + steps == episode["length"])
            out["discount"].append(0.0 if terminal else gamma**steps)
            out["boot"].append((row + steps) % self.capacity)
            out["generation"].append(self.row_episode[row])
            out["her_row"].append(her_row)
        for key in self.rows[index[0]]:
            if key != "reward":
                out[key] = torch.stack([self.rows[r][key] for r in index.tolist()])
        for key in self.obs_keys:
            out["next_" + key] = torch.stack([self.rows[r][key] for r in out["boot"]])
        for j, her_row in enumerate(out["her_row"]):
            if her_row >= 0:  # the relabeled goal, seen at the step and at the bootstrap step
                out["desired_goal"][j] = out["next_desired_goal"][j] = self.rows[her_row][
                    "achieved_goal"
                ]
        out["reward"] = torch.stack(out["reward"])
        for key in ("generation", "boot", "her_row"):
            out[key] = torch.tensor(out[key], dtype=torch.int64)
        out["discount"] = torch.tensor(out["discount"], dtype=torch.float64)
        return out

    def _her_row(self, strategy: str, episode: dict, t: int, u: float) -> int:
        """SPEC 2.2's goal row for a sample at step t."""
        length = episode["length"]
        if strategy == "random":  # a uniform row, moved on to the next stored one
            row = min(int(u * self.capacity), self.capacity - 1)
            while self.row_episode[row] < 0:
                row = (row + 1) % self.capacity
            return row
        step = {
            "future": t + 1 + int(u * (length - t)),
            "final": length,
            "episode": 1 + int(u * length),
        }[strategy]
        return (episode["start"] + min(step, length)) % self.capacity

    def update_priorities(self, index: Tensor, generation: Tensor, td_abs: Tensor) -> Tensor:
        """Returns the applied mask: True where the row is a transition of that generation."""
        td = td_abs.double().reshape(td_abs.shape[0], -1).mean(1)
        applied = []
        for row, gen, delta in zip(index.tolist(), generation.tolist(), td.tolist()):
            episode = self.episodes.get(gen) if gen >= 0 and self.row_episode[row] == gen else None
            # Overwritten since it was sampled, free, or an episode's final-observation row.
            live = (
                episode is not None and (row - episode["start"]) % self.capacity < episode["length"]
            )
            applied.append(live)
            if not live:
                continue
            p = min(max(delta + self.eps, self.p_min), self.p_max)
            self.max_priority = max(self.max_priority, p)
            self.leaves[row] = p**self.alpha
        return torch.tensor(applied, dtype=torch.bool)


def sparse_l2(achieved_goal: Tensor, desired_goal: Tensor, eps: float) -> Tensor:
    """0 where ||achieved - desired||_2 < eps, else -1; [B, g] -> [B]."""
    distance = (achieved_goal.double() - desired_goal.double()).norm(dim=-1)
    return torch.where(distance < eps, 0.0, -1.0)


def per_dim(achieved_goal: Tensor, desired_goal: Tensor, thresholds, values) -> Tensor:
    """SPEC 7.1's banded reward per goal dimension; [B, g] -> [B, g]."""
    error = (achieved_goal.double() - desired_goal.double()).abs()
    reward = torch.zeros_like(error)
    for threshold, value in zip(thresholds, values):
        passes = error < threshold if threshold > 0 else error > -threshold
        reward += value * passes
    return reward


# ---- recurrent replay (SPEC 5) ----------------------------------------------------------------
# `table` below is a buffer's episode table as ReplayBuffer.episodes() gives it: id, start,
# length and terminated of every stored episode; ids not in it are evicted.


def _record(table: dict, episode_id: int) -> Optional[tuple[int, int, bool]]:
    ids = table["id"].tolist()
    if episode_id not in ids:
        return None
    at = ids.index(episode_id)
    return int(table["start"][at]), int(table["length"][at]), bool(table["terminated"][at])


def gather_episodes(
    column: Tensor, table: dict, episode_ids, pad: int, positions: int
) -> tuple[Tensor, Tensor]:
    """Each episode's padded sequence: `pad` zeros, then rows start .. start + T (mod C)."""
    capacity = column.shape[0]
    out = torch.zeros((len(episode_ids), positions, *column.shape[1:]), dtype=column.dtype)
    lengths = torch.zeros(len(episode_ids), dtype=torch.int64)
    for e, episode_id in enumerate(episode_ids):
        record = _record(table, int(episode_id))
        if record is None:
            continue
        start, length, _ = record
        lengths[e] = pad + length + 1
        for t in range(length + 1):
            if pad + t < positions:
                out[e, pad + t] = column[(start + t) % capacity]
    return out, lengths


def online_hidden(cell, observations: Tensor, n_history: int, hidden: Tensor) -> list[Tensor]:
    """hidden_in[0 .. T] of one episode as acting computes it (SPEC 5.1), one step at a time:
    at step t the encoder reads the window o_{t-n_h+1} .. o_t (zeros before o_0) from
    hidden_in[t], and hidden_in[t + 1] is its state after the window's oldest element.
    `cell(h [d], x [d_o]) -> h'` is one encoder step; observations is [T + 1, d_o]."""
    states = [hidden]
    pads = torch.zeros((n_history - 1, observations.shape[1]), dtype=observations.dtype)
    padded = torch.cat([pads, observations])
    for t in range(observations.shape[0] - 1):
        window = padded[t : t + n_history]
        states.append(cell(states[-1], window[0]))
    return states


def gather_windows(
    columns: dict,
    reward: Tensor,
    obs_names: tuple,
    row_episode: Tensor,
    table: dict,
    start,
    steps: int,
    n: int,
    gamma: float,
) -> dict:
    """sample_sequences' windows from start rows: observations at positions 0 .. steps, other
    fields at 0 .. steps - 1 (zeros past the episode), and per step the n-step return, gamma^k
    (0 at a terminal) and k = min(n, T - t_j, steps - j)."""
    capacity = reward.shape[0]
    count = len(start)
    out = {
        name: torch.zeros((count, steps + (name in obs_names), *c.shape[1:]), dtype=c.dtype)
        for name, c in columns.items()
    }
    ret = torch.zeros((count, steps, *reward.shape[1:]), dtype=torch.float64)
    discount = torch.zeros((count, steps), dtype=torch.float64)
    k = torch.zeros((count, steps), dtype=torch.int64)
    mask = torch.zeros((count, steps), dtype=torch.bool)
    for b, row in enumerate(int(r) for r in start):
        first, length, terminated = _record(table, int(row_episode[row]))
        t0 = (row - first) % capacity
        for name, column in columns.items():
            for p in range(out[name].shape[1]):
                if t0 + p <= length - (name not in obs_names):
                    out[name][b, p] = column[(row + p) % capacity]
        for j in range(steps):
            if t0 + j >= length:
                continue
            mask[b, j] = True
            k[b, j] = min(n, length - t0 - j, steps - j)
            for step in range(int(k[b, j])):
                ret[b, j] += gamma**step * reward[(row + j + step) % capacity].double()
            ends = terminated and t0 + j + int(k[b, j]) == length
            discount[b, j] = 0.0 if ends else gamma ** int(k[b, j])
    return {
        **out,
        "mask": mask,
        "reward": ret.to(reward.dtype),
        "discount": discount.to(reward.dtype),
        "k": k,
    }
