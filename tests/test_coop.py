"""Cooperative PPO+DDPG, the twin-critic (TD3) options, and acting that follows every kind of
weight change (issue 13)."""

import copy
import json
import math

import numpy as np
import pytest
import torch

from pyrl import cli
from pyrl.agents import DDPG, PPO, Coop, presets

DENSE = {"reward_type": "dense"}


def small_coop(**settings):
    base = dict(
        n_envs=4,
        ddpg_share=0.25,
        hidden=(16, 16),
        activation="relu",
        ppo=dict(n_steps=10, batch_size=20, n_epochs=2),
        ddpg=dict(learning_starts=0, train_every=20, gradient_steps=2, batch_size=16),
    )
    for key in ("ppo", "ddpg"):
        base[key].update(settings.pop(key, {}))
    return Coop("pyrl/PointReach-v0", env_kwargs=DENSE, **{**base, **settings})


def snapshot(agent: Coop) -> dict:
    """Every parameter of both learners (targets included), by ``learner:name``."""
    out = {f"ppo:{k}": p.detach().clone() for k, p in agent.ppo.model.named_parameters()}
    for part in ("actor", "critic", "actor_target", "critic_target"):
        for k, p in getattr(agent.ddpg, part).named_parameters():
            out[f"ddpg:{part}.{k}"] = p.detach().clone()
    return out


def scramble(agent: Coop) -> None:
    """Distinct values everywhere, so any copy shows."""
    with torch.no_grad():
        for i, p in enumerate(
            [
                *agent.ppo.model.parameters(),
                *agent.ddpg.actor.parameters(),
                *agent.ddpg.critic.parameters(),
                *agent.ddpg.actor_target.parameters(),
            ]
        ):
            p.copy_(torch.randn_like(p) + 10 * i)


# ---- the cooperative run -------------------------------------------------------------------------


def test_coop_point_reach_both_learners_improve_and_stay_finite():
    agent = Coop(
        "pyrl/PointReach-v0",
        env_kwargs=DENSE,
        **{
            **presets.get("coop", "pyrl/PointReach-v0"),
            "ddpg": dict(
                learning_starts=0,
                train_every=50,
                gradient_steps=4,
                tau=0.05,
                gamma=0.98,
                noise_sigma=0.2,
            ),
            "eval_every": 0,
            "seed": 0,
        },
    )
    agent.learn(12_000)
    history = agent.history
    first, last = history[:3], history[-3:]
    for learner in ("ppo", "ddpg"):
        before = np.nanmean([row[f"{learner}_return"] for row in first])
        after = np.nanmean([row[f"{learner}_return"] for row in last])
        assert after > before + 10, (learner, before, after)  # dense return is -sum of distances
    assert all(
        math.isfinite(row[key])
        for row in history
        for key in ("ppo_policy_loss", "ppo_value_loss", "ddpg_critic_loss", "ddpg_q")
    )
    assert history[-1]["syncs"] == len(history) + 1  # coop_v1: one per round, plus the start
    assert history[-1]["ppo_updates"] > 0 and history[-1]["ddpg_updates"] > 0
    result = agent.evaluate(episodes=20, seed=5)
    assert result["return"] == result["ddpg_return"] and "ppo_return" in result
    assert result["ddpg_return"] > -15  # a random policy scores about -45


def test_syncs_copy_the_bodies_and_nothing_else():
    agent = small_coop(sync_at_start=False)
    scramble(agent)
    before = snapshot(agent)
    written = agent.sync("ddpg<-ppo")
    after = snapshot(agent)
    body = [k for k in before if k.startswith("ppo:actor.body.")]
    assert body and sorted(written) == sorted(f"ddpg:{k[4:]}" for k in body)
    for key in body:  # DDPG's actor body now is PPO's
        assert torch.equal(after["ddpg:" + key[4:]], before[key])
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"ddpg:" + k[4:] for k in body}  # heads, critics, targets, PPO untouched

    scramble(agent)
    before = snapshot(agent)
    agent.sync("ppo<-ddpg")
    after = snapshot(agent)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == set(body)
    for key in body:
        assert torch.equal(after[key], before["ddpg:" + key[4:]])


def test_exchange_swap_targets_and_moments():
    agent = small_coop(sync_at_start=False, schedule="swap", sync_targets=True, reset_moments=True)
    agent.learn(80)  # two rounds: optimizer moments exist, no swap yet (after round 3)
    assert agent.syncs == 0
    scramble(agent)
    before = snapshot(agent)
    agent.sync("both")
    after = snapshot(agent)
    for name in ("actor.body.0.weight", "actor.head.weight", "actor.head.bias"):  # swap: heads too
        assert torch.equal(after[f"ppo:{name}"], before[f"ddpg:{name}"])
        assert torch.equal(after[f"ddpg:{name}"], before[f"ppo:{name}"])
        assert torch.equal(after[f"ddpg:actor_target.{name[6:]}"], before[f"ppo:{name}"])
    assert torch.equal(after["ppo:log_std"], before["ppo:log_std"])
    moments = agent.ppo.optimizer.state[agent.ppo.model.actor.head.weight]
    assert not moments["exp_avg"].any() and not moments["exp_avg_sq"].any()
    assert agent.ppo.optimizer.state[agent.ppo.model.log_std]["exp_avg"].any()
    agent.learn(120)  # round 3 ends: the scheduled exchange
    assert agent.syncs == 2


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("coop_v1", ["ddpg<-ppo", "ppo<-ddpg", "ddpg<-ppo", "ppo<-ddpg", "ddpg<-ppo", "ppo<-ddpg"]),
        ("blog", ["both", "ppo<-ddpg", "both", "ppo<-ddpg", "both", "ppo<-ddpg"]),
        ("swap", [None, None, "both", None, None, "both"]),
        ("none", [None] * 6),
    ],
)
def test_schedules(schedule, expected):
    agent = small_coop(schedule=schedule, sync_at_start=False)
    calls = []
    real = agent.sync
    agent.sync = lambda direction: calls.append((agent.rounds, direction)) or real(direction)
    agent.learn(6 * 40)  # six rounds of 10 steps x 4 arms
    got = [dict(calls).get(r) for r in range(6)]
    assert got == expected
    assert agent.history[-1]["syncs"] == sum(e is not None for e in expected)


def test_explicit_periods_and_start_sync():
    agent = small_coop(sync_ppo_from_ddpg=3, sync_ddpg_from_ppo=None)
    body = agent.ppo.model.actor.body[0].weight
    assert torch.equal(body, agent.ddpg.actor.body[0].weight)  # the start sync
    calls = []
    real = agent.sync
    agent.sync = lambda direction: calls.append((agent.rounds, direction)) or real(direction)
    agent.learn(6 * 40)
    assert calls == [(2, "ppo<-ddpg"), (5, "ppo<-ddpg")]


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match="ddpg_share=0.01 of n_envs=10"):
        Coop("pyrl/PointReach-v0", ddpg_share=0.01)
    with pytest.raises(ValueError, match="ddpg_share=0.95 of n_envs=10"):
        Coop("pyrl/PointReach-v0", ddpg_share=0.95)
    with pytest.raises(ValueError, match="schedule should be one of"):
        Coop("pyrl/PointReach-v0", schedule="coop_v9")
    with pytest.raises(
        ValueError, match=r"actor.body.0.weight is \[64, 4\] in ddpg but \[32, 4\] in ppo"
    ):
        Coop("pyrl/PointReach-v0", ppo=dict(hidden=(32, 32)))
    with pytest.raises(ValueError, match=r"\['log_std'\] exist in only one learner"):
        Coop("pyrl/PointReach-v0", sync_exclude=("critic", "actor.head"))
    with pytest.raises(ValueError, match="n_envs"):
        Coop("pyrl/PointReach-v0", ppo=dict(n_envs=3))
    with pytest.raises(ValueError, match="Coop: ddpg: DDPG: noise should be"):
        Coop("pyrl/PointReach-v0", ddpg=dict(noise="pink"))
    with pytest.raises(ValueError, match="sync_ddpg_from_ppo should be None or an int >= 1"):
        Coop("pyrl/PointReach-v0", sync_ddpg_from_ppo=0)
    with pytest.raises(ValueError, match="learner should be 'ddpg' or 'ppo'"):
        small_coop().predict(np.zeros(2), learner="sac")
    with pytest.raises(ValueError, match="direction should be"):
        small_coop().sync("sideways")


def test_ppo_learns_from_ddpg_data_with_recomputed_behaviour():
    agent = small_coop(ppo_uses_ddpg_data=True, ddpg=dict(random_eps=0.3, noise_sigma=0.2))
    assert agent.ppo.args.n_envs == 4  # every arm's steps in PPO's rollout
    agent.learn(200)
    assert all(math.isfinite(row["ppo_policy_loss"]) for row in agent.history)
    # The behaviour density of DDPG's exploration: Gaussian around mu(s) mixed with uniform.
    obs = {
        k: np.zeros((1, 2), np.float32) for k in ("observation", "achieved_goal", "desired_goal")
    }
    mu = agent.ddpg.act(obs, explore=False)[0]
    grid = np.linspace(
        -1, 1, 2001
    )  # integrate over dim 1 (PointReach actions are [-1, 1]) at dim 0 = mu
    actions = np.stack([np.full_like(grid, mu[0, 0]), grid], 1)
    density = np.exp([agent.behaviour_log_prob(obs, a[None], warmup=False)[0] for a in actions])
    # = 0.7 N(0; 0, 0.2) P(|N(mu_1, 0.2)| <= 1) + 0.3 (1/4) 2: Gaussian mixed with uniform on
    # [-1, 1]^2.
    inside = 0.5 * (
        math.erf((1 - mu[0, 1]) / (0.2 * math.sqrt(2)))
        + math.erf((1 + mu[0, 1]) / (0.2 * math.sqrt(2)))
    )
    expected = 0.7 / (0.2 * math.sqrt(2 * math.pi)) * inside + 0.3 / 4 * 2
    assert np.trapezoid(density, grid) == pytest.approx(expected, rel=1e-3)
    with pytest.raises(ValueError, match="Gaussian noise"):
        small_coop(ppo_uses_ddpg_data=True, ddpg=dict(noise="ou"))


def test_coop_save_load_continues_the_same_run(tmp_path):
    agent = small_coop(seed=3)
    agent.learn(80)
    agent.save(tmp_path / "coop.pt")
    again = Coop.load(tmp_path / "coop.pt")
    assert (again.rounds, again.syncs, again.ppo.steps, again.ddpg.steps) == (
        agent.rounds,
        agent.syncs,
        agent.ppo.steps,
        agent.ddpg.steps,
    )
    assert again.ppo.obs_norm is again.ddpg.obs_norm is again.obs_norm
    assert np.array_equal(again.obs_norm.mean, agent.obs_norm.mean)
    for (name, p), q in zip(snapshot(agent).items(), snapshot(again).values()):
        assert torch.equal(p, q), name
    # The env's own state is not saved (a resumed run resets it), so two resumes of the same
    # checkpoint continue identically, which needs every generator and counter restored.
    again.learn(400)  # (loading restores torch's global generator too: one run at a time)
    twice = Coop.load(tmp_path / "coop.pt")
    twice.learn(400)
    assert math.isfinite(again.history[-1]["ddpg_critic_loss"])
    for key in ("ppo_policy_loss", "ddpg_critic_loss", "ddpg_q", "ppo_return", "syncs"):
        np.testing.assert_equal(again.history[-1][key], twice.history[-1][key], err_msg=key)


def test_cli_train_coop_with_group_settings_and_resume(tmp_path):
    out = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "coop",
            "--env",
            "pyrl/PointReach-v0",
            "--steps",
            "1000",
            "--out",
            str(out),
            "--no-progress",
            "--eval-episodes",
            "2",
            "--set",
            "eval_every=0",
            "--set",
            "n_envs=4",
            "--set",
            "ddpg_share=0.25",
            "--set",
            "ppo.n_steps=25",
            "--set",
            "ddpg.gradient_steps=2",
        ]
    )
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["ppo"]["n_steps"] == 25 and config["args"]["ppo"]["batch_size"] == 250
    assert config["args"]["ddpg"]["her_strategy"] == "future"  # the preset's group, merged
    header = (out / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"ppo_return", "ddpg_return", "ppo_policy_loss", "ddpg_critic_loss", "syncs"} <= set(
        header
    )
    assert (
        cli.main(
            [
                "train",
                "coop",
                "--env",
                "pyrl/PointReach-v0",
                "--steps",
                "1500",
                "--out",
                str(out),
                "--no-progress",
                "--eval-episodes",
                "2",
                "--resume",
            ]
        )
        == 0
    )
    assert json.loads((out / "eval.json").read_text())["steps"] == 1500
    with pytest.raises(SystemExit, match="is not a group"):
        cli.parse_settings(["n_envs=3", "n_envs.x=4"])


# ---- one policy definition: acting follows every weight change -----------------------------------


def goal_obs(rng, n):
    return {
        k: rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        for k in ("observation", "achieved_goal", "desired_goal")
    }


def ppo_torch_mean(agent: PPO, obs) -> np.ndarray:
    x = torch.as_tensor(agent.inputs(obs))
    first = agent.model.actor.head.weight
    with torch.no_grad():
        out = agent.model.actor(x.to(first.dtype))
    return np.clip(out.float().numpy(), agent.action_space.low, agent.action_space.high)


def ddpg_torch_action(agent: DDPG, obs) -> np.ndarray:
    x = torch.as_tensor(agent.inputs(obs))
    first = agent.actor.head.weight
    with torch.no_grad():
        out = agent.actor(x.to(first.dtype)).float().numpy()
    return agent.env_action(out)


def weight_changes(module: torch.nn.Module):
    """Each kind of weight change, applied in turn (a generator: the test checks after each)."""
    with torch.no_grad():  # in place, as an optimizer step
        for p in module.parameters():
            p.add_(0.1)
    yield "in place"
    fresh = {k: torch.randn_like(v) for k, v in module.state_dict().items()}
    module.load_state_dict(fresh, assign=True)
    yield "load_state_dict(assign=True)"
    for p in module.parameters():
        p.data = torch.randn_like(p)
    yield "p.data = tensor"
    module.double()
    yield "moved to float64"
    module.float()
    module.share_memory()
    yield "share_memory"
    module.to(torch.bfloat16)
    yield "bfloat16 (numpy cannot view it: the module runs)"
    module.float()


@pytest.mark.parametrize("algo", ["ppo", "ddpg"])
def test_acting_follows_every_weight_change(algo):
    if algo == "ppo":
        agent = PPO(
            "pyrl/PointReach-v0", n_envs=2, n_steps=8, batch_size=8, n_epochs=1, normalize_obs=True
        )
        module, torch_action = agent.model, ppo_torch_mean
    else:
        agent = DDPG(
            "pyrl/PointReach-v0", learning_starts=0, batch_size=8, hidden=(16,), normalize_obs=True
        )
        module, torch_action = agent.actor, ddpg_torch_action
    obs = goal_obs(np.random.default_rng(0), 5)
    agent.learn(60)
    for change in weight_changes(module):
        tol = 2e-2 if "bfloat16" in change else 1e-5
        np.testing.assert_allclose(
            agent.predict(obs), torch_action(agent, obs), atol=tol, err_msg=change
        )
    agent.learn(120)  # training after the changes: the rollouts act with the module too
    np.testing.assert_allclose(agent.predict(obs), torch_action(agent, obs), atol=1e-5)


def test_coop_acting_follows_syncs():
    agent = small_coop(schedule="blog")
    rng = np.random.default_rng(2)
    obs = goal_obs(rng, 5)
    agent.learn(80)
    agent.sync("both")
    np.testing.assert_allclose(agent.predict(obs), ddpg_torch_action(agent.ddpg, obs), atol=1e-5)
    np.testing.assert_allclose(
        agent.predict(obs, learner="ppo"), ppo_torch_mean(agent.ppo, obs), atol=1e-5
    )
    # A sync that assigns new tensors instead of copying is followed too.
    state = {k: v.clone() + 1 for k, v in agent.ddpg.actor.state_dict().items()}
    agent.ddpg.actor.load_state_dict(state, assign=True)
    np.testing.assert_allclose(agent.predict(obs), ddpg_torch_action(agent.ddpg, obs), atol=1e-5)


# ---- TD3 options ---------------------------------------------------------------------------------


def test_td3_target_uses_the_minimum_of_smoothed_twin_critics():
    agent = DDPG(
        "Pendulum-v1",
        n_critics=2,
        policy_delay=2,
        target_noise=0.2,
        target_noise_clip=0.5,
        learning_starts=200,
        batch_size=32,
        hidden=(16,),
        gamma=0.9,
    )
    agent.learn(221)  # updates from step 200, when the first episode is stored
    assert agent.updates == 22
    assert int(agent.actor_opt.state[agent.actor.head.weight]["step"]) == 11  # every second
    assert int(agent.critic_opt.state[agent.critic.nets[1][0].weight]["step"]) == 22
    # One more update, checked against the TD3 loss computed here on the same batch.
    buffer = copy.deepcopy(agent.buffer)  # the same draws: they depend on the seed and call count
    batch = buffer.sample(32)
    critic, critic_target, actor_target = map(
        copy.deepcopy, (agent.critic, agent.critic_target, agent.actor_target)
    )
    torch_state = torch.get_rng_state()
    s, s_next = agent.inputs(batch.obs), agent.inputs(batch.next_obs)
    with torch.no_grad():
        next_action = actor_target(s_next)
        noise = (torch.randn_like(next_action) * 0.2).clamp(-0.5, 0.5)
        next_q = critic_target(s_next, (next_action + noise).clamp(-1, 1))
        target = (
            batch.reward.reshape(-1, 1)
            + batch.discount.reshape(-1, 1).float() * next_q.min(1, keepdim=True).values
        )
        expected = (critic(s, batch.action) - target).pow(2).mean(0).sum().item()
    torch.set_rng_state(torch_state)
    loss = agent.update()
    assert loss["critic_loss"] == pytest.approx(expected, rel=1e-5)
    assert "actor_loss" not in loss  # update 23: the actor waits for the even update
    assert "actor_loss" in agent.update()
