"""Searches: exact budgets, monotone curves, determinism, improvement over the start."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents.placement import place_random
from agents.scheduling import to_levels
from agents.search import (
    SEARCHERS,
    make_fusion_evaluator,
    make_placement_evaluator,
    make_priority_evaluator,
)
from go_gym.generators import random_layered_graph
from go_gym.sim import simulate
from tests.agents.conftest import small_cluster


class Counting:
    """An evaluator that counts the rows it is asked to evaluate."""

    def __init__(self, evaluate) -> None:  # type: ignore[no-untyped-def]
        self.evaluate = evaluate
        self.rows = 0
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.rows += batch.shape[0]
        self.calls += 1
        return self.evaluate(batch)


@pytest.fixture(scope="module")
def problem():  # type: ignore[no-untyped-def]
    graph = random_layered_graph(120, seed=7)
    cluster = small_cluster(3)
    return graph, cluster, make_placement_evaluator(graph, cluster)


@pytest.mark.parametrize("name", list(SEARCHERS))
@pytest.mark.parametrize("budget", [1, 7, 150])
def test_budget_is_never_exceeded_and_curve_is_monotone(name: str, budget: int, problem) -> None:
    graph, _, evaluate = problem
    ev = Counting(evaluate)
    res = SEARCHERS[name](ev, graph.n_ops, 3, budget, seed=0)
    assert ev.rows == res.evaluations <= budget
    assert res.evaluations == budget  # every search spends its whole budget
    assert (np.diff(res.curve_best) <= 0).all()
    assert (np.diff(res.curve_evals) > 0).all() and res.curve_evals[-1] == res.evaluations
    assert res.best_value == res.curve_best[-1]
    assert res.best.shape == (graph.n_ops,) and res.best.min() >= 0 and res.best.max() < 3
    assert evaluate(res.best[None])[0] == pytest.approx(res.best_value)


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_searches_are_deterministic(name: str, problem) -> None:
    graph, _, evaluate = problem
    a = SEARCHERS[name](evaluate, graph.n_ops, 3, 100, seed=3)
    b = SEARCHERS[name](evaluate, graph.n_ops, 3, 100, seed=3)
    np.testing.assert_array_equal(a.best, b.best)
    np.testing.assert_array_equal(a.curve_best, b.curve_best)


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_searches_improve_over_their_initial_solution(name: str, problem) -> None:
    graph, cluster, evaluate = problem
    init = place_random(graph, cluster, seed=11)
    start = evaluate(init[None])[0]
    res = SEARCHERS[name](evaluate, graph.n_ops, 3, 300, seed=0, init=init)
    assert res.curve_best[0] <= start
    assert res.best_value < start


def test_init_is_validated(problem) -> None:
    graph, _, evaluate = problem
    with pytest.raises(ValueError, match="init"):
        SEARCHERS["annealing"](evaluate, graph.n_ops, 3, 10, init=np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="init"):
        SEARCHERS["brkga"](evaluate, graph.n_ops, 3, 10, init=np.full(graph.n_ops, 3))
    with pytest.raises(ValueError, match="budget"):
        SEARCHERS["random-search"](evaluate, graph.n_ops, 3, 0)


@pytest.mark.parametrize("name", ["random-search", "annealing", "brkga", "boundary-descent"])
def test_search_agent_spends_the_budget_it_is_given(name: str) -> None:
    # A budget of 0 is a budget, not "the default": it must not fall back to the agent's own.
    # (The agent's own budget, 50, is below the ~130 evaluations after which boundary
    # descent reaches a local optimum on this graph and stops early.)
    env = gym.make("GOPlacement-v0", graph=random_layered_graph(40, seed=1), n_devices=2)
    agent = agents.make(name, env, seed=0, budget=50)
    core = env.unwrapped
    for budget in (1, 5):
        before = core.evaluations
        assert agent.fit(env, budget).evaluations == core.evaluations - before == budget
    with pytest.raises(ValueError, match="budget must be >= 1"):
        agent.fit(env, 0)
    assert agent.fit(env).evaluations == 50  # no budget given: the agent's own


def test_oom_rows_get_the_penalty() -> None:
    graph = random_layered_graph(50, seed=0)
    cluster = small_cluster(2, memory_bytes=1e3)
    ev = make_placement_evaluator(graph, cluster, oom_penalty_s=42.0)
    np.testing.assert_array_equal(ev(np.zeros((2, graph.n_ops), np.int64)), [42.0, 42.0])


def test_priority_and_fusion_evaluators_match_simulate() -> None:
    graph = random_layered_graph(80, seed=1)
    cluster = small_cluster(2)
    place = place_random(graph, cluster, seed=0)
    prio = to_levels(np.arange(graph.n_ops, dtype=float), levels=4)[None].repeat(2, 0)
    got = make_priority_evaluator(graph, cluster, place)(prio)
    assert got[0] == pytest.approx(simulate(graph, cluster, place, prio[0]).step_time)
    fus = np.ones((1, graph.n_ops), np.int64)
    got = make_fusion_evaluator(graph, cluster, place)(fus)
    assert got[0] == pytest.approx(simulate(graph, cluster, place, fusion=fus[0]).step_time)


@pytest.mark.parametrize(
    ("population", "elite", "mutants"), [(2, 0.75, 0.0), (4, 0.9, 0.05), (64, 0.995, 0.0)]
)
def test_brkga_with_an_elite_that_rounds_to_everyone_still_spends_its_budget(
    population: int, elite: float, mutants: float
) -> None:
    """round(elite * population) == population left no child or mutant to evaluate: every
    generation spent nothing and the loop never ended. One non-elite is always kept."""
    evaluate = Counting(lambda batch: batch.sum(axis=1).astype(np.float64))
    result = SEARCHERS["brkga"](
        evaluate, 4, 2, 40, seed=0, population=population, elite=elite, mutants=mutants
    )
    assert result.evaluations == evaluate.rows == 40


@pytest.mark.parametrize("name", ["random-search", "annealing"])
def test_an_empty_batch_is_refused(name: str) -> None:
    """batch_size=0 spent nothing per round: random search looped forever, annealing failed
    with 'attempt to get argmin of an empty sequence'."""
    with pytest.raises(ValueError, match="need batch_size >= 1, got 0"):
        SEARCHERS[name](lambda b: b.sum(axis=1).astype(np.float64), 4, 2, 10, batch_size=0)
