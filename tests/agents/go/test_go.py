"""The GO agent: shapes, masking, one-shot sampling, PPO on a known optimum, checkpoints."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numba
import numpy as np
import pytest
import torch

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import HeuristicAgent, core_env
from agents.go.agent import WARM_CANDIDATES, GOAgent
from agents.go.checkpoint import (
    POLICY_KEYS,
    load_checkpoint,
    policy_from_checkpoint,
    save_checkpoint,
)
from agents.go.model import LAYER_COLUMN, GOConfig, GOPolicy, padded_logits, prepare
from agents.go.ppo import PPOConfig, PPOTrainer, make_policy
from go_gym.generators import random_layered_graph
from go_gym.opkinds import OpKind
from tests.agents.conftest import make_graph, small_cluster
from tests.agents.go.conftest import SMALL, go_env

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[3]


def test_logit_shapes_single_and_joint(graph40) -> None:
    env = go_env("GOJoint-v0", graph40)
    obs, _ = env.reset(seed=0)
    policy = GOPolicy(GOConfig(**{**SMALL.to_dict(), "tasks": ("placement", "priority", "fusion")}))
    out = policy(prepare(obs), {"placement": 2, "priority": 16, "fusion": 2})
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "placement": (40, 2),
        "priority": (40, 16),
        "fusion": (40, 2),
    }
    single = GOPolicy(SMALL)(prepare(obs))
    assert tuple(single["placement"].shape) == (40, 2)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_layer_head_adds_a_lean_per_layer(graph40) -> None:
    obs, _ = go_env("GOPlacement-v0", graph40).reset(seed=0)
    inp = prepare(obs)
    layer = inp.x[:, LAYER_COLUMN]
    layers = torch.unique(layer)
    assert len(layers) > 3  # the graph has layers to tell apart
    plain = make_policy(SMALL, seed=0)
    headed = make_policy(GOConfig(**{**SMALL.to_dict(), "layer_head": 1.0}), seed=0)
    assert not hasattr(plain, "layer_head")  # off by default (and in older checkpoints)
    with torch.no_grad():
        lean = headed.layer_head(headed.layer_encoding(inp))[:, :2]
        # The head is the only difference: the rest of the network is built identically.
        torch.testing.assert_close(
            headed(inp)["placement"], plain(inp)["placement"] + lean, rtol=1e-5, atol=1e-5
        )
        per_layer = []
        for value in layers:
            rows = lean[layer == value]
            torch.testing.assert_close(rows, rows[:1].expand_as(rows))  # one lean per layer
            per_layer.append(rows[0, 0] - rows[0, 1])
        # ... and the layers lean to different devices, by logits of order one.
        assert float(torch.stack(per_layer).std()) > 0.3
    # PPO trains the head with the rest.
    core = core_env(go_env("GOPlacement-v0", graph40))
    trainer = PPOTrainer(headed, PPOConfig(samples=4, epochs=2, target_kl=None), seed=0)
    before = headed.layer_head.weight.detach().clone()
    trainer.step(core)
    assert not torch.equal(before, headed.layer_head.weight)


def test_layer_head_config_round_trips_and_is_checked(tmp_path, graph40) -> None:
    config = GOConfig(**{**SMALL.to_dict(), "layer_head": 0.5, "layer_frequencies": 3})
    assert GOConfig.from_dict(config.to_dict()) == config
    older = {k: v for k, v in SMALL.to_dict().items() if not k.startswith("layer_")}
    assert GOConfig.from_dict(older).layer_head == 0.0  # checkpoints from before the head
    with pytest.raises(ValueError, match="layer_head"):
        GOConfig(layer_head=-1.0)
    env = go_env("GOPlacement-v0", graph40)
    trainer = PPOTrainer(make_policy(SMALL, seed=0), PPOConfig(samples=4), seed=0)
    path = save_checkpoint(tmp_path / "ck.pt", trainer.state_dict())
    with pytest.raises(ValueError, match=r"layer_head shape a fresh policy; checkpoint .*ck\.pt"):
        GOAgent(env, checkpoint=path, layer_head=1.0)


def test_padded_nodes_do_not_change_real_logits(graph40) -> None:
    other = random_layered_graph(70, seed=4)
    padded_env = gym.make("GOPlacement-v0", graphs=[graph40, other], cluster=small_cluster(2))
    core = core_env(padded_env)
    alone = core_env(go_env("GOPlacement-v0", graph40))
    while True:  # an episode on the smaller, padded graph
        obs, _ = padded_env.reset()
        if core.graph.n_ops == 40:
            break
    assert obs["node_mask"].sum() == 40 and obs["node_mask"].shape[0] == 70
    torch.manual_seed(0)
    policy = GOPolicy(SMALL).eval()
    with torch.no_grad():
        a = policy(prepare(obs))["placement"]
        b = policy(prepare(alone._context.encoded.observation))["placement"]
    torch.testing.assert_close(a, b)
    full = padded_logits(a, 70)
    logp = full.log_softmax(-1)
    assert torch.all(logp[40:, 0] == 0)  # padded nodes: choice 0 with probability 1
    ent = -(logp.exp() * logp).sum(-1)
    assert torch.all(ent[40:] == 0)


def test_one_shot_sampling_counts_evaluations_exactly(graph40) -> None:
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    trainer = PPOTrainer(make_policy(SMALL, seed=0), PPOConfig(samples=8, epochs=1), seed=0)
    calls = []
    original = core.evaluate
    core.evaluate = lambda rows: calls.append(rows["placement"].shape) or original(rows)  # type: ignore[method-assign]
    stats = trainer.step(core)
    assert stats is not None
    assert calls == [(9, 40)]  # K samples + the greedy row, in one batch
    assert core.evaluations == 9 == trainer.evaluations
    history = trainer.train([core], 20)
    assert trainer.evaluations == 29 == core.evaluations  # the budget is never exceeded
    assert history[-1].evaluations == 29


def test_score_charges_every_row_and_keeps_the_best(graph40) -> None:
    """`PPOTrainer.score` is the one place that evaluates: PPO's iterations and go-warm's
    heuristics both go through it, so the budget and the best decision stay consistent."""
    core = core_env(go_env("GOPlacement-v0", graph40))
    trainer = PPOTrainer(make_policy(SMALL, seed=0), PPOConfig(samples=4, epochs=1), seed=0)
    one_device = np.zeros((1, 40), np.int64)
    alternating = (np.arange(40) % 2)[None, :].astype(np.int64)
    times = trainer.score(core, {"placement": np.concatenate([alternating, one_device])})
    assert core.evaluations == 2 == trainer.evaluations == trainer.record(core).evaluations
    best_time, best = trainer.record(core).best_time, trainer.record(core).best["placement"]
    assert best_time == times.min()
    np.testing.assert_array_equal(best, [alternating, one_device][int(np.argmin(times))][0])
    worse = alternating if times[0] > times[1] else one_device
    trainer.score(core, {"placement": worse})
    assert trainer.evaluations == 3 and trainer.record(core).best_time == best_time
    np.testing.assert_array_equal(trainer.record(core).best["placement"], best)


_THREADS_SCRIPT = """
import torch, gymnasium as gym, go_gym
from agents.base import core_env
from agents.go.model import GOConfig
from agents.go.ppo import PPOConfig, PPOTrainer, make_policy
from go_gym.generators import random_layered_graph
core = core_env(gym.make("GOPlacement-v0", graph=random_layered_graph(40, seed=3)))
torch.set_num_threads(1)
config = GOConfig(hidden=16, sage_layers=2, attn_layers=1, heads=2, segment=8, ffn=32)
trainer = PPOTrainer(make_policy(config, seed=0), PPOConfig(samples=4, epochs=1), seed=0)
assert trainer.step(core) is not None
print("torch threads", torch.get_num_threads())
"""


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_evaluations_leave_torchs_thread_count_alone() -> None:
    # numba's OpenMP layer, when it starts its threads (once per process, hence a fresh
    # process), used to hand torch its own thread count: training then ran on numba's
    # threads whatever torch was asked for, and a seed's result depended on numba's.
    # (`simulate_many` keeps torch's count; this checks what a GO user sees.)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NUMBA_NUM_THREADS", None)
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().endswith("torch threads 1"), out.stdout


def test_sampling_is_seeded(graph40) -> None:
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    rows = []
    for _ in range(2):
        trainer = PPOTrainer(make_policy(SMALL, seed=1), PPOConfig(samples=4), seed=5)
        rec = trainer.record(core)
        with torch.no_grad():
            rows.append(trainer.sample(trainer.logits(rec), 4)["placement"])
    assert torch.equal(rows[0], rows[1])


def _known_optimum_graph():
    """A fork-join of eight ops: an element-wise source, a chain of three matmuls and a
    chain of three convolutions, an element-wise sink; tensors are tiny. The optimum on two
    devices runs the two heavy chains on different devices (half the step time of one
    device); telling the chains apart needs the op kinds."""
    ew, mm, conv = int(OpKind.ELEMENTWISE), int(OpKind.MATMUL), int(OpKind.CONVOLUTION)
    edges = [(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 7)]
    flops = [1e6] + [4e10] * 6 + [1e6]
    kinds = [ew, mm, mm, mm, conv, conv, conv, ew]
    return make_graph("known-opt", 8, edges, flops, 1e3, op_kind=kinds)


def test_ppo_reaches_known_optimum() -> None:
    graph = _known_optimum_graph()
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(2))
    core = core_env(env)
    rows = np.array(list(itertools.product([0, 1], repeat=8)))
    all_times = core.evaluate({"placement": rows})
    optimum = float(all_times.min())
    assert optimum < 0.6 * float(all_times.max())  # splitting the chains halves the step
    core.evaluations = 0
    trainer = PPOTrainer(
        make_policy(SMALL, seed=0), PPOConfig(samples=16, lr=3e-3, entropy_coef=0.0), seed=0
    )
    trainer.train([core], 340)  # 20 iterations
    assert trainer.record(core).best_time == pytest.approx(optimum, rel=1e-9)
    greedy = trainer.greedy(core)["placement"]
    greedy_time = float(core.evaluate({"placement": greedy[None]})[0])
    assert greedy_time <= optimum * 1.001  # the policy itself, not just a lucky sample
    assert len(set(greedy[1:4])) == 1 and len(set(greedy[4:7])) == 1
    assert greedy[1] != greedy[4]


def _expected_deviations(trainer: PPOTrainer, core) -> float:
    """Expected number of nodes per sample off the policy's most likely device."""
    with torch.no_grad():
        probs = trainer.logits(trainer.record(core))["placement"].softmax(-1)
    return float((1 - probs.max(-1).values).sum())


def test_min_deviations_keeps_the_policy_from_collapsing() -> None:
    """Without a floor, PPO on the known-optimum graph ends with a policy that samples its
    mode every time; with ``min_deviations=1`` about one node per sample still leaves it."""
    graph = _known_optimum_graph()
    deviations = {}
    for floor in (None, 1.0):
        core = core_env(gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(2)))
        cfg = PPOConfig(samples=16, lr=3e-3, entropy_coef=0.0, min_deviations=floor)
        trainer = PPOTrainer(make_policy(SMALL, seed=0), cfg, seed=0)
        trainer.train([core], 17 * 60)
        deviations[floor] = _expected_deviations(trainer, core)
    assert deviations[None] < 0.05
    assert 0.3 < deviations[1.0] < 3.0


def test_followers_of_colocation_groups_can_be_left_out_of_the_update() -> None:
    """With ``deciding_nodes_only`` the update does not depend on what was sampled for the
    ops that follow their colocation group's first member (the env ignores those values);
    without it, it does."""
    from go_gym.zoo import get_graph

    graph = get_graph("quick-v0/transformer-xl-2")
    leader = core_env(go_env("GOPlacement-v0", graph))._context.leader
    followers = torch.as_tensor(np.flatnonzero(leader != np.arange(graph.n_ops)))
    assert followers.numel() > 0

    def weights_after_step(deciding_nodes_only: bool, scramble: bool) -> torch.Tensor:
        core = core_env(go_env("GOPlacement-v0", graph))
        cfg = PPOConfig(samples=4, epochs=2, deciding_nodes_only=deciding_nodes_only)
        trainer = PPOTrainer(make_policy(SMALL, seed=0), cfg, seed=0)
        if scramble:  # other devices for the followers, the same for every other op
            sample = trainer.sample

            def scrambled(logits, k):
                out = sample(logits, k)
                out["placement"][:, followers] = 1 - out["placement"][:, followers]
                return out

            trainer.sample = scrambled  # type: ignore[method-assign]
        trainer.step(core)
        return torch.cat([p.detach().reshape(-1) for p in trainer.policy.parameters()])

    torch.testing.assert_close(
        weights_after_step(True, scramble=True), weights_after_step(True, scramble=False),
        rtol=0, atol=0,
    )  # fmt: skip
    assert not torch.equal(weights_after_step(False, True), weights_after_step(False, False))


def test_target_kl_stops_the_epochs_early(graph40) -> None:
    """A KL target no update can stay under leaves one epoch per iteration (the same weights
    as ``epochs=1``); without one every epoch runs and the weights move further."""
    weights = {}
    for name, cfg in {
        "one": PPOConfig(samples=8, epochs=1),
        "stopped": PPOConfig(samples=8, epochs=6, target_kl=1e-12),
        "all": PPOConfig(samples=8, epochs=6, target_kl=None),
    }.items():
        core = core_env(go_env("GOPlacement-v0", graph40))
        trainer = PPOTrainer(make_policy(SMALL, seed=0), cfg, seed=0)
        trainer.step(core)
        weights[name] = torch.cat([p.detach().reshape(-1) for p in trainer.policy.parameters()])
    torch.testing.assert_close(weights["stopped"], weights["one"], rtol=0, atol=0)
    assert not torch.equal(weights["all"], weights["one"])
    with pytest.raises(ValueError, match="target_kl"):
        PPOConfig(target_kl=0.0)


def test_checkpoint_round_trip(tmp_path, graph40) -> None:
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    trainer = PPOTrainer(make_policy(SMALL, seed=2), PPOConfig(samples=4, epochs=1), seed=2)
    trainer.train([core], 10)
    path = save_checkpoint(tmp_path / "ck.pt", trainer.state_dict())
    state = load_checkpoint(path)  # weights_only=True inside
    assert state["evaluations"] == 10
    loaded = policy_from_checkpoint(path)
    rec = trainer.record(core)
    trainer.policy.eval()
    with torch.no_grad():
        torch.testing.assert_close(trainer.policy(rec.input), loaded(rec.input))
    resumed = PPOTrainer(GOPolicy(SMALL), PPOConfig(samples=4, epochs=1), seed=0)
    resumed.load_state_dict(state)
    resumed.restored_best(core)
    assert resumed.evaluations == 10 and resumed.iteration == trainer.iteration
    assert resumed.record(core).best_time == trainer.record(core).best_time
    assert torch.equal(resumed.generator.get_state(), trainer.generator.get_state())


def test_checkpoint_rejects_other_files(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    torch.save({"hello": 1}, bad)
    with pytest.raises(ValueError, match="not a GO checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_registry_go_and_zeroshot(tmp_path, graph40) -> None:
    assert {"go", "go-zeroshot"} <= set(agents.names())
    env = go_env("GOPlacement-v0", graph40)
    agent = agents.make("go", env, budget=20, samples=4, epochs=1, hidden=16)
    assert isinstance(agent, GOAgent)
    obs, _ = env.reset(seed=0)
    action, _ = agent.predict(obs)  # trains with the default budget first
    assert core_env(env).evaluations == 20
    _, reward, *_ = env.step(action)
    assert np.isfinite(reward)
    path = save_checkpoint(tmp_path / "ck.pt", agent.trainer.state_dict())
    zs = agents.make("go-zeroshot", env, checkpoint=str(path))
    before = core_env(env).evaluations
    action, _ = zs.predict(obs)
    assert core_env(env).evaluations == before  # zero-shot spends nothing
    assert not callable(getattr(zs, "fit", None))  # so the runner cannot make it train
    assert action.shape == (40,)
    sampled, _ = zs.predict(obs, deterministic=False)
    assert sampled.shape == (40,)


def test_warm_start_scores_every_heuristic_and_starts_from_the_best(graph40) -> None:
    """go-warm: each candidate heuristic costs one evaluation of the budget, the best one is
    the starting point (never lost), and the prior puts the policy's argmax on it."""
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    core.reset(seed=0)
    rows = np.stack(
        [HeuristicAgent(core, placement=name).decide(core)["placement"] for name in WARM_CANDIDATES]
    )
    times = core.evaluate({"placement": rows})
    best = int(np.argmin(times))
    core.evaluations = 0

    budget = len(WARM_CANDIDATES) + 8
    agent = agents.make("go-warm", env, budget=budget, samples=4, epochs=1, hidden=16)
    report = agent.fit(env)
    assert core.evaluations == budget  # the candidates' scores are charged, nothing more
    # the curve starts after the candidates' scores, PPO's iterations follow
    assert report.curve_evals[0] == len(WARM_CANDIDATES) < report.curve_evals[1]
    assert report.curve_evals[-1] == budget
    best_time, decision = agent.best(core)
    assert best_time <= times[best]
    if best_time == times[best]:
        np.testing.assert_array_equal(decision["placement"], rows[best])
    # the prior holds the policy on the winning heuristic (PPO's two iterations since moved
    # the network's own logits a little at most)
    greedy = agent.trainer.greedy(core)["placement"]
    assert (greedy == rows[best]).mean() >= 0.9


@pytest.mark.parametrize("budget", [1, 3, len(WARM_CANDIDATES) - 1])
def test_warm_start_below_the_candidates_scores_only_what_the_budget_pays(graph40, budget) -> None:
    """Before: fit(env, 5) scored all eight candidates (8 evaluations), which the runner
    reports as over budget. Now the first ``budget`` candidates, in `WARM_CANDIDATES` order."""
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    core.reset(seed=0)
    rows = np.stack(
        [
            HeuristicAgent(core, placement=name).decide(core)["placement"]
            for name in WARM_CANDIDATES[:budget]
        ]
    )
    times = core.evaluate({"placement": rows})
    core.evaluations = 0
    agent = agents.make("go-warm", env, samples=4, epochs=1, hidden=16)
    agent.fit(env, budget)
    assert core.evaluations == budget
    if budget > 1:  # every evaluation went to a candidate, the best of them is kept
        best_time, decision = agent.best(core)
        assert best_time == times.min()
        np.testing.assert_array_equal(decision["placement"], rows[int(np.argmin(times))])
    else:  # one candidate is the start without a score; PPO's greedy row is that decision
        np.testing.assert_array_equal(agent.trainer.greedy(core)["placement"], rows[0])


def test_warm_start_must_name_a_heuristic_of_the_env(graph40) -> None:
    """Before: an unknown name silently warm-started from the default (m-SCT)."""
    with pytest.raises(ValueError, match=r"warm_start 'nope' is no heuristic of \['placement'\]"):
        agents.make("go", go_env("GOPlacement-v0", graph40), warm_start="nope", hidden=16)
    with pytest.raises(ValueError, match=r"warm_start 'fifo' is no heuristic of \['placement'\]"):
        agents.make("go", go_env("GOPlacement-v0", graph40), warm_start="fifo", hidden=16)
    agents.make("go", go_env("GOScheduling-v0", graph40), warm_start="fifo", hidden=16)
    agents.make("go", go_env("GOJoint-v0", graph40), warm_start="xla-greedy", hidden=16)


@pytest.mark.parametrize(
    "option",
    [
        {"refine_share": 0.3},
        {"samples": 8},
        {"lr": 1e-4},
        {"warm_start": "m-sct"},
        {"budget": 100},
        {"hidden": 16},
        {"bogus_kw": 1},
    ],
)
def test_zeroshot_refuses_options_that_only_shape_training(graph40, option) -> None:
    """Before: go-zeroshot took every option of go and ignored those of training."""
    env = go_env("GOPlacement-v0", graph40)
    name = next(iter(option))
    with pytest.raises(TypeError, match=rf"go-zeroshot got unexpected option\(s\) \['{name}'\]"):
        agents.make("go-zeroshot", env, **option)


def test_go_predict_refuses_an_observation_of_another_graph(graph40) -> None:
    """Deterministic or sampled, zero-shot or trained: the decision is the env's graph's."""
    env = go_env("GOPlacement-v0", graph40)
    other = go_env("GOPlacement-v0", graph40.replace(name="wider", flops=graph40.flops * 4))
    zero_shot = agents.make("go-zeroshot", env, seed=1, threads=1, device="cpu")
    obs, _ = env.reset(seed=0)
    other_obs, _ = other.reset(seed=0)
    assert zero_shot.predict(obs)[0].shape == (40,)
    for deterministic in (True, False):
        with pytest.raises(ValueError, match="its node_features entry differs"):
            zero_shot.predict(other_obs, deterministic=deterministic)
    go = agents.make("go", env, budget=8, samples=4, epochs=1, hidden=16)
    with pytest.raises(ValueError, match="not of it"):
        go.predict(other_obs)
    assert core_env(env).evaluations == 0  # refused before training


def test_prior_sets_the_start_distribution(graph40) -> None:
    """`set_prior`: with equal network logits every node keeps the given choice with
    probability 1 - deviate exactly, and the rest is spread evenly over the other choices."""
    env = go_env("GOJoint-v0", graph40)
    core = core_env(env)
    core.reset(seed=0)
    agent = agents.make("go", env, budget=0, hidden=16)
    trainer = agent.trainer
    rng = np.random.default_rng(0)
    chosen = {t: rng.integers(0, core.n_choices(t), 40) for t in core.decides}
    trainer.set_prior(core, chosen, 0.1)
    rec = trainer.record(core)
    for task, offset in rec.prior.items():
        a = core.n_choices(task)
        probs = offset.softmax(-1)  # the prior alone = the policy with equal logits
        kept = probs[torch.arange(40), torch.as_tensor(chosen[task])]
        torch.testing.assert_close(kept, torch.full((40,), 0.9))
        torch.testing.assert_close(probs.sum(-1), torch.ones(40))
        others = probs.clone()
        others[torch.arange(40), torch.as_tensor(chosen[task])] = 0
        torch.testing.assert_close(others.sum(-1), torch.full((40,), 0.1))
        assert torch.allclose(others[others > 0], torch.tensor(0.1 / (a - 1)))
    with torch.no_grad():
        raw = agent.trainer.policy(rec.input, rec.choices)
        with_prior = trainer.logits(rec)
    # placement, the first pass, is the network's logits plus its prior; the later passes
    # are conditioned on that distribution, so theirs move too (test_go_fixes.py)
    torch.testing.assert_close(with_prior["placement"] - raw["placement"], rec.prior["placement"])
    with pytest.raises(ValueError, match="deviate"):
        trainer.set_prior(core, chosen, 1.0)


def _train_a_little(trainer: PPOTrainer, core, warm: bool) -> tuple[list, dict]:
    """Three PPO iterations (after a prior, if ``warm``) and the greedy decision."""
    if warm:
        rng = np.random.default_rng(0)
        start = {t: rng.integers(0, core.n_choices(t), core.graph.n_ops) for t in core.decides}
        trainer.set_prior(core, start, 0.1)
    stats = [trainer.step(core) for _ in range(3)]
    return [(s.best_step_time, s.loss, s.entropy) for s in stats], trainer.greedy(core)


@pytest.mark.parametrize(
    ("env_id", "model", "ppo"),
    [
        ("GOJoint-v0", {}, {"deciding_nodes_only": True, "min_deviations": 4.0}),
        ("GOPlacement-v0", {"placement_actions": "tree", "tie_roles": True}, {}),
        ("GOPlacement-v0", {"layer_head": 1.0}, {}),
    ],
)
def test_trainer_makes_every_tensor_on_its_own_device(graph40, env_id, model, ppo) -> None:
    """The GPU path, checked without a GPU: inside ``torch.device("meta")`` every tensor made
    without naming a device lands on the meta device, which holds no data, so a single one
    in the network, the trainer or a prior would fail the run or change its numbers. Here
    the run inside equals the run outside, iteration for iteration."""
    tasks = ("placement", "priority", "fusion") if env_id == "GOJoint-v0" else ("placement",)
    config = GOConfig(**{**SMALL.to_dict(), "tasks": tasks, **model})
    runs = []
    for inside in (False, True):
        core = core_env(go_env(env_id, graph40))
        core.reset(seed=0)
        trainer = PPOTrainer(
            make_policy(config, seed=1), PPOConfig(samples=4, epochs=2, **ppo), device="cpu"
        )
        if inside:
            with torch.device("meta"):
                runs.append(_train_a_little(trainer, core, warm=True))
        else:
            runs.append(_train_a_little(trainer, core, warm=True))
        assert all(p.device.type == "cpu" for p in trainer.policy.parameters())
    assert runs[0][0] == runs[1][0]
    for task, row in runs[0][1].items():
        np.testing.assert_array_equal(row, runs[1][1][task])


def test_agent_refines_with_every_tensor_on_its_own_device(graph40) -> None:
    """``go`` with a warm start and refining, inside ``torch.device("meta")`` as above."""
    found = []
    for inside in (False, True):
        env = go_env("GOPlacement-v0", graph40)
        env.reset(seed=0)
        agent = agents.make(
            "go", env, budget=30, samples=4, epochs=1, hidden=16, device="cpu",
            warm_start="m-sct", refine_share=0.5,
        )  # fmt: skip
        if inside:
            with torch.device("meta"):
                agent.fit(env)
        else:
            agent.fit(env)
        found.append(agent.best(core_env(env)))
    assert found[0] is not None and found[1] is not None
    assert found[0][0] == found[1][0]
    np.testing.assert_array_equal(found[0][1]["placement"], found[1][1]["placement"])


def test_torch_device_reads_names_and_refuses_what_is_not_here(graph40, tmp_path, capsys) -> None:
    from agents.go import train
    from agents.go.ppo import torch_device

    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad, message in (("gpu0", "not a torch device"), ("meta", "runs on cpu, cuda or mps")):
        with pytest.raises(ValueError, match=message):
            torch_device(bad)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA GPU"):
            torch_device(f"cuda:{torch.cuda.device_count()}")
        return
    with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
        torch_device("cuda")
    env = go_env("GOPlacement-v0", graph40)
    with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
        agents.make("go", env, device="cuda")
    out = tmp_path / "run"
    code = train.main(["--graphs", "", "--synthetic", "1", "--device", "cuda", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "--device: device 'cuda': torch sees no CUDA GPU" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_policy_matches_the_cpu_one(graph40) -> None:
    """On a GPU: the same logits as on the CPU (to float tolerance), and an iteration
    charges its K + 1 evaluations and keeps the policy on the GPU."""
    env = go_env("GOJoint-v0", graph40)
    obs, _ = env.reset(seed=0)
    config = GOConfig(**{**SMALL.to_dict(), "tasks": ("placement", "priority", "fusion")})
    policy = make_policy(config, seed=1)
    with torch.no_grad():
        on_cpu = policy(prepare(obs))
        gpu = make_policy(config, seed=1).to("cuda")
        on_gpu = gpu(prepare(obs, device="cuda"))
    for task, logits in on_cpu.items():
        torch.testing.assert_close(on_gpu[task].cpu(), logits, atol=1e-4, rtol=1e-4)
    trainer = PPOTrainer(make_policy(config, seed=1), PPOConfig(samples=4), device="cuda")
    stats = trainer.step(core_env(env))
    assert stats is not None and stats.evaluations == 5
    assert all(p.device.type == "cuda" for p in trainer.policy.parameters())


def test_joint_agent_decides_every_task(graph40) -> None:
    env = go_env("GOJoint-v0", graph40)
    agent = agents.make("go", env, budget=10, samples=4, epochs=1, hidden=16)
    obs, _ = env.reset(seed=0)
    action, _ = agent.predict(obs)
    assert set(action) == {"placement", "priority", "fusion"}
    env.step(action)


def test_train_synthetic_device_counts_cycle() -> None:
    import argparse

    from agents.go import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--synthetic-devices", "2,4, 8"])
    assert args.synthetic_devices == (2, 4, 8)
    envs = train.make_envs("", "placement", 5, 30, args.synthetic_devices)
    assert [env.cluster.n_devices for env in envs] == [2, 4, 8, 2, 4]
    for bad in ("", "2,x", "0,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            train.device_counts(bad)


def test_train_sees_the_env_the_benchmark_measures() -> None:
    """Scheduling and fusion train with the human-expert placement fixed, as `go-gym bench`
    measures them; the envs' default, one device, would leave a schedule nothing to do."""
    from agents.go import train
    from agents.placement import place_human_expert

    (env,) = train.make_envs("quick-v0/rnnlm-2", "priority")
    assert env.decides == ("priority",)
    expert = place_human_expert(env.graph, env.cluster)
    np.testing.assert_array_equal(env.fixed_decisions["placement"], expert)
    assert len(set(expert.tolist())) > 1
    (fusion,) = train.make_envs("", "fusion", synthetic=1, synthetic_ops=40)
    assert fusion.decides == ("fusion",) and fusion.fixed_decisions["placement"].any()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "-5"], "argument --budget: must be >= 0, got -5"),
        (["--save-every", "0"], "argument --save-every: must be >= 1, got 0"),
        (["--snapshot-every", "-1"], "argument --snapshot-every: must be >= 0, got -1"),
        (["--threads", "x"], "argument --threads: not an integer: 'x'"),
        (["--graphs", "nope/x"], "error: unknown graph id 'nope/x'"),
        (["--samples", "1"], "error: PPOConfig.samples must be an integer >= 2"),
        (["--init", "missing.pt"], "error: --init: no GO checkpoint at"),
    ],
)
def test_train_cli_bad_options_are_usage_errors(tmp_path, capsys, argv, message) -> None:
    """A bad option exits with status 2 and one line that names it, before anything is
    written (not a traceback, and not a run with the option silently ignored)."""
    from agents.go import train

    out = tmp_path / "run"
    try:
        code = train.main([*argv, "--out", str(out), "--quiet"])
    except SystemExit as exc:  # argparse's usage error
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not out.exists()


def test_train_cli_resume(tmp_path, capsys) -> None:
    import argparse

    from agents.go import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    common = [
        "--graphs",
        "",
        "--synthetic",
        "1",
        "--synthetic-ops",
        "30",
        "--samples",
        "4",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--layer-head",
        "0.5",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert train.run(parser.parse_args([*common, "--budget", "10"])) == 0
    assert train.run(parser.parse_args([*common, "--budget", "20", "--resume"])) == 0
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["evaluations"] == 20
    assert state["ppo_config"]["min_deviations"] is None
    assert state["model_config"]["layer_head"] == 0.5  # resumed with its head
    assert len((tmp_path / "progress.csv").read_text().splitlines()) == 1 + 4
    best = np.load(tmp_path / "best.npz")
    assert best["synthetic-0/placement"].shape == (30,)
    # The policy alone: no optimiser or RNG, the training graphs named, loadable zero-shot.
    policy = load_checkpoint(tmp_path / "policy.pt")
    assert set(policy) == {"format_version", *POLICY_KEYS, "trained_on", "checksum"}
    assert policy["trained_on"] == ["synthetic-0"] and policy["evaluations"] == 20
    for name, weights in state["model"].items():
        assert torch.equal(policy["model"][name], weights)
    graph = random_layered_graph(30, seed=5)
    env = gym.make("GOPlacement-v0", graph=graph, cluster="p100", n_devices=2)
    observation, _ = env.reset(seed=0)
    zero_shot = agents.make("go-zeroshot", env, checkpoint=str(tmp_path / "policy.pt"))
    action, _ = zero_shot.predict(observation)
    assert np.asarray(action).shape == (30,)
    # A head of another scale cannot be grafted onto a checkpoint: an error, not ignored.
    grafted = [*common[:-2], str(tmp_path / "grafted"), "--quiet", "--budget", "10"]
    grafted[grafted.index("--layer-head") + 1] = "1.0"
    assert train.run(parser.parse_args([*grafted, "--init", str(tmp_path / "checkpoint.pt")])) == 2
    assert "--layer-head 1.0 shapes a fresh policy" in capsys.readouterr().err
    # Nor can tree actions (the checkpoint's network picks devices); a fresh policy can.
    tree = [*common[:-2], str(tmp_path / "tree"), "--quiet", "--budget", "10"]
    tree[tree.index("--layer-head") + 1] = "0"
    tree += ["--placement-actions", "tree"]
    assert train.run(parser.parse_args([*tree, "--init", str(tmp_path / "checkpoint.pt")])) == 2
    assert "--placement-actions tree shapes a fresh policy" in capsys.readouterr().err
    with_head = [*tree[: tree.index("--layer-head")], *tree[tree.index("--layer-head") + 2 :]]
    assert train.run(parser.parse_args([*with_head, "--layer-head", "1.0"])) == 2
    assert "layer_head leans devices" in capsys.readouterr().err
    assert train.run(parser.parse_args(tree)) == 0
    saved_tree = load_checkpoint(tmp_path / "tree" / "checkpoint.pt")["model_config"]
    assert saved_tree["placement_actions"] == "tree"
    tied = [
        *tree[: tree.index("--out") + 1],
        str(tmp_path / "tied"),
        *tree[tree.index("--out") + 2 :],
    ]
    assert train.run(parser.parse_args([*tied, "--tie-roles"])) == 0
    assert load_checkpoint(tmp_path / "tied" / "checkpoint.pt")["model_config"]["tie_roles"]
    untied = [*tied[: tied.index("--placement-actions")], "--tie-roles"]
    assert train.run(parser.parse_args(untied)) == 2
    assert "tie_roles ties offsets" in capsys.readouterr().err
    options = ["--deciding-nodes-only", "--min-deviations", "2"]
    other = [*common[:-2], str(tmp_path / "options"), "--quiet", "--budget", "10", *options]
    assert train.run(parser.parse_args(other)) == 0
    saved = load_checkpoint(tmp_path / "options" / "checkpoint.pt")["ppo_config"]
    assert saved["deciding_nodes_only"] is True and saved["min_deviations"] == 2.0


def test_train_cli_resume_after_a_kill_continues_the_uninterrupted_run(tmp_path, capsys) -> None:
    """Killed after its checkpoint (no ``finally`` ran), a run resumed from that checkpoint
    ends where the uninterrupted run ends: the same weights and the same logged iterations,
    once each. The split is mid-round: the checkpoint is at iteration 4 of three graphs.
    Resuming with other graphs or PPO settings is an error, not another run."""
    import argparse
    import csv

    from agents.go import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)

    def run(out: Path, budget: int, *extra: str, code: int = 0) -> None:
        args = ["--graphs", "", "--synthetic", "3", "--synthetic-ops", "30", "--samples", "4"]
        args += ["--epochs", "2", "--hidden", "16", "--quiet", "--out", str(out)]
        assert train.run(parser.parse_args([*args, "--budget", str(budget), *extra])) == code

    def logged(out: Path) -> list[dict[str, str]]:
        with (out / "progress.csv").open(newline="") as file:
            return [
                {k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)
            ]

    run(tmp_path / "straight", 50)  # 10 iterations of K + 1 = 5 evaluations
    killed = tmp_path / "killed"
    run(killed, 20)  # its checkpoint: 4 iterations, the next graph is synthetic-1
    straight_log = (tmp_path / "straight" / "progress.csv").read_text().splitlines()
    with (killed / "progress.csv").open("a") as file:  # it went on to iteration 6, then died
        file.write("\n".join(straight_log[5:7]) + "\n")
    assert len(logged(killed)) == 6
    run(killed, 50, "--resume", "--synthetic", "2", code=2)
    assert "trained on synthetic-0, synthetic-1, synthetic-2; these options give synthetic-0, " in (
        capsys.readouterr().err
    )
    run(killed, 50, "--resume", "--synthetic-ops", "31", code=2)  # same names, other graphs
    assert "cannot resume" in capsys.readouterr().err
    run(killed, 50, "--resume", "--samples", "8", code=2)
    assert "its PPO settings differ: samples=4 (here 8)" in capsys.readouterr().err
    run(killed, 50, "--resume")
    assert logged(killed) == logged(tmp_path / "straight")
    assert [row["graph"] for row in logged(killed)][4:7] == [
        "synthetic-1",
        "synthetic-2",
        "synthetic-0",
    ]
    resumed = load_checkpoint(killed / "checkpoint.pt")["model"]
    for name, weights in load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model"].items():
        assert torch.equal(resumed[name], weights), name
    # A fresh run into the same directory starts its log anew.
    run(killed, 10)
    assert logged(killed) == logged(tmp_path / "straight")[:2]


def test_train_cli_snapshots_keep_the_policy_along_the_run(tmp_path, capsys) -> None:
    """``--snapshot-every 12`` keeps the policy each time the run passes a multiple of 12
    evaluations (iterations of K + 1 = 5, so after 15, 25, 40, 50), resumed runs included,
    and taking them changes nothing: the run ends with the weights of a run without them, and
    a snapshot holds the weights the run had then."""
    import argparse

    from agents.go import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)

    def run(out: Path, budget: int, *extra: str) -> None:
        args = ["--graphs", "", "--synthetic", "2", "--synthetic-ops", "30", "--samples", "4"]
        args += ["--epochs", "2", "--hidden", "16", "--quiet", "--out", str(out)]
        assert train.run(parser.parse_args([*args, "--budget", str(budget), *extra])) == 0

    run(tmp_path / "plain", 50)
    run(tmp_path / "plain-25", 25)
    snapped = tmp_path / "snapped"
    run(snapped, 30, "--snapshot-every", "12")
    run(snapped, 50, "--snapshot-every", "12", "--resume")
    snapshots = sorted((snapped / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert [p.name for p in snapshots] == [f"policy-{n}.pt" for n in (15, 25, 40, 50)]
    final = load_checkpoint(tmp_path / "plain" / "policy.pt")["model"]
    for name, weights in load_checkpoint(snapped / "policy.pt")["model"].items():
        assert torch.equal(final[name], weights), name
    at_25 = load_checkpoint(snapped / "snapshots" / "policy-25.pt")
    assert at_25["evaluations"] == 25 and at_25["trained_on"] == ["synthetic-0", "synthetic-1"]
    for name, weights in load_checkpoint(tmp_path / "plain-25" / "policy.pt")["model"].items():
        assert torch.equal(at_25["model"][name], weights), name


def test_go_agent_benchmark_measures_a_small_graph() -> None:
    from agents.go.model import count_parameters
    from tests.benchmark_scripts import load_benchmark

    measured = load_benchmark("go_agent").measure("synthetic:50", "placement", 1, 1, "cpu")
    assert measured["ops"] == 50
    assert measured["params"] == count_parameters(GOPolicy(GOConfig()))
    assert measured["fwd_s"] > 0 and measured["fwd_bwd_s"] > 0
