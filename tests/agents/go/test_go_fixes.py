"""GO agent fixes: the warm start's curve point, the end-of-budget step, and conditioning the
later tasks on the placement distribution that is sampled (prior and tied roles included)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import core_env
from agents.go.agent import WARM_CANDIDATES
from agents.go.model import GOConfig, GOPolicy, role_mean
from agents.go.ppo import PPOConfig, PPOTrainer, make_policy
from go_gym.runner.cells import Cell, canonical_config, run_cell
from go_gym.runner.validate import validate_rows
from tests.agents.go.conftest import SMALL, go_env

torch.set_num_threads(1)


# --- 1. warm_start="best": the scored candidates are the curve's first point ---------------


@pytest.mark.parametrize("budget", [5, len(WARM_CANDIDATES)])
def test_warm_start_that_uses_up_the_budget_still_reports_a_curve(tmp_path, budget) -> None:
    """Before: with a budget the candidates use up, PPO never ran, the curve was empty and
    `go-gym validate` rejected the cell ("curve_evals (0,) and curve_best (0,) are not one
    curve"). Now the curve is one point: the candidates' evaluations and their best."""
    cell = Cell(
        graph="quick-v0/rnnlm-2",
        task="placement",
        agent="go",
        seed=0,
        budget=budget,
        config=canonical_config({"hidden": 16, "warm_start": "best"}),
    )
    out = run_cell(cell)
    path = tmp_path / out.row.decisions_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.decisions)
    assert validate_rows([out.row], tmp_path) == []
    with np.load(path) as arrays:
        evals, best = arrays["curve_evals"], arrays["curve_best"]
    np.testing.assert_array_equal(evals, [budget])
    assert best[0] == pytest.approx(out.row.step_time_s)


def test_warm_start_curve_starts_at_the_candidates(graph40) -> None:
    """A larger budget's curve starts at the candidates' count, with their best time, and
    PPO's points follow it."""
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    core.reset(seed=0)
    agent = agents.make("go", env, warm_start="best", samples=4, epochs=1, hidden=16)
    report = agent.fit(env, len(WARM_CANDIDATES) + 10)
    assert report.curve_evals[0] == len(WARM_CANDIDATES)
    assert len(report.curve_evals) == len(report.history) + 1
    np.testing.assert_array_equal(
        report.curve_evals[1:], [h.graph_evaluations for h in report.history]
    )
    assert report.curve_evals[-1] == core.evaluations == len(WARM_CANDIDATES) + 10
    assert np.all(np.diff(report.curve_best) <= 0)
    # a single heuristic spends nothing, so no point is added for it
    single = agents.make("go", env, warm_start="m-sct", samples=4, epochs=1, hidden=16)
    core.evaluations = 0
    report = single.fit(env, 10)
    np.testing.assert_array_equal(report.curve_evals, [h.graph_evaluations for h in report.history])


# --- 2. the end of a budget: samples and an update rather than a repeated greedy row --------


def _batches(env, agent, budget: int) -> tuple[list[np.ndarray], list]:
    core = core_env(env)
    batches: list[np.ndarray] = []
    evaluate = core.evaluate

    def logged(rows):
        batches.append(np.asarray(rows["placement"]).copy())
        return evaluate(rows)

    core.evaluate = logged
    report = agent.fit(env, budget)
    return batches, list(report.history)


def test_two_evaluations_left_are_sampled_and_learned_from(graph40) -> None:
    """Before: budget 19 with K = 16 scored batches [17, 1, 1], the last two the same greedy
    decision of an unchanged policy. Now [17, 2], the 2 samples updating the policy."""
    env = go_env("GOPlacement-v0", graph40)
    core = core_env(env)
    core.reset(seed=0)
    agent = agents.make("go", env, hidden=16, epochs=1)
    batches, history = _batches(env, agent, 19)
    assert [len(b) for b in batches] == [17, 2]
    assert core.evaluations == 19
    assert [h.graph_evaluations for h in history] == [17, 19]
    assert all(np.isfinite(h.loss) for h in history)
    assert np.isnan(history[-1].greedy_step_time)  # no greedy row in the last batch


@pytest.mark.parametrize("greedy_row", [True, False])
def test_no_budget_is_exceeded_nor_a_greedy_decision_scored_twice(graph40, greedy_row) -> None:
    """Every budget: spent exactly; a one-row step only as the very last one (with one
    evaluation left), never two greedy-only steps in a row."""
    for budget in range(1, 16):
        env = go_env("GOPlacement-v0", graph40)
        core = core_env(env)
        core.reset(seed=0)
        agent = agents.make("go", env, hidden=16, samples=4, epochs=1, greedy_row=greedy_row)
        batches, history = _batches(env, agent, budget)
        sizes = [len(b) for b in batches]
        assert sum(sizes) == core.evaluations == budget, (budget, sizes)
        assert all(s >= 2 for s in sizes[:-1]), (budget, sizes)
        if sizes[-1] == 1:  # greedy-only: the last evaluation, after a step that updated
            assert budget == 1 or sum(sizes[:-1]) == budget - 1
        assert all(np.isfinite(h.loss) for h, s in zip(history, sizes, strict=True) if s >= 2)


def test_step_with_two_left_drops_the_greedy_row(graph40) -> None:
    core = core_env(go_env("GOPlacement-v0", graph40))
    core.reset(seed=0)
    config = GOConfig(**{**SMALL.to_dict(), "tasks": ("placement",)})
    trainer = PPOTrainer(make_policy(config, seed=0), PPOConfig(samples=4, epochs=1))
    stats = trainer.step(core, budget_left=2)
    assert stats is not None and stats.graph_evaluations == 2 and np.isfinite(stats.loss)
    stats = trainer.step(core, budget_left=1)  # one left: the greedy row, no update
    assert stats is not None and stats.graph_evaluations == 3 and np.isnan(stats.loss)
    assert np.isfinite(stats.greedy_step_time)


# --- 3. later tasks are conditioned on the placement distribution that is sampled ----------


def test_a_placement_prior_moves_what_priority_is_conditioned_on(graph40) -> None:
    """Before: a prior moving P(device 1) from about 0.5 to 0.99 left the priority logits
    exactly as they were (the forward conditioned on the network's raw placement logits)."""
    env = go_env("GOJoint-v0", graph40)
    core = core_env(env)
    core.reset(seed=0)
    agent = agents.make("go", env, budget=0, hidden=16)
    trainer = agent.trainer
    rec = trainer.record(core)
    with torch.no_grad():
        before = trainer.logits(rec)
    trainer.set_prior(core, {"placement": np.ones(40, np.int64)}, {"placement": 0.01})
    with torch.no_grad():
        after = trainer.logits(rec)
        raw = trainer.policy(rec.input, rec.choices)
    assert after["placement"].softmax(-1)[:, 1].mean() > 0.95
    # placement comes first: its logits are the network's plus the prior, as before
    torch.testing.assert_close(after["placement"] - before["placement"], rec.prior["placement"])
    assert not torch.equal(after["priority"], before["priority"])
    assert not torch.equal(after["fusion"], before["fusion"])
    torch.testing.assert_close(before["priority"], raw["priority"], rtol=0, atol=0)
    with torch.no_grad():  # what the trainer passes: the prior, inside the forward
        direct = trainer.policy(rec.input, rec.choices, prior=rec.prior)
    for task in core.decides:
        torch.testing.assert_close(after[task], direct[task], rtol=0, atol=0)


def test_tied_roles_condition_on_the_role_rows() -> None:
    """With tied roles the placement logits are one row per role, and the next pass reads
    the distribution each node samples from: its role's row (plus the prior)."""
    config = GOConfig(
        **{
            **SMALL.to_dict(),
            "tasks": ("placement", "priority", "fusion"),
            "placement_actions": "tree",
            "tie_roles": True,
        }
    )
    core = core_env(gym.make("GOJoint-v0", graph="quick-v0/rnnlm-2"))  # repeated blocks
    core.reset(seed=0)
    trainer = PPOTrainer(make_policy(config, seed=0), PPOConfig(samples=4, epochs=1))
    rec = trainer.record(core)
    assert rec.roles is not None
    with torch.no_grad():
        tied = trainer.logits(rec)
        untied = trainer.policy(rec.input, rec.choices)
    n_roles = int(rec.roles.max()) + 1
    assert tied["placement"].shape == (n_roles, rec.choices["placement"])
    torch.testing.assert_close(
        tied["placement"], role_mean(untied["placement"], rec.roles), rtol=0, atol=0
    )
    # a role of several nodes: the conditioning differs from the raw one
    assert n_roles < core.graph.n_ops
    assert not torch.equal(tied["priority"], untied["priority"])
    stats = trainer.step(core)
    assert stats is not None and np.isfinite(stats.loss)


def test_forward_says_what_conditioning_means() -> None:
    doc = GOPolicy.forward.__doc__ or ""
    assert "Conditioning" in doc and "prior" in doc and "roles" in doc
