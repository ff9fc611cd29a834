"""Boundary descent: the moves it proposes, colocation, exact budgets, the optimum of a
separable objective, and the GO agent's refining phase built on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import core_env
from agents.placement import place_random
from agents.search import (
    boundary_bytes_saved,
    boundary_descent,
    boundary_moves,
    make_placement_evaluator,
)
from go_gym.generators import random_layered_graph
from tests.agents.conftest import small_cluster


class Recording:
    """An evaluator that keeps every batch it is asked to score."""

    def __init__(self, evaluate) -> None:  # type: ignore[no-untyped-def]
        self.evaluate = evaluate
        self.batches: list[np.ndarray] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return self.evaluate(batch)


def _leaders(colocation: np.ndarray) -> np.ndarray:
    """Each op's group's first member, as the envs apply colocation (slow reference)."""
    leader = np.arange(len(colocation))
    for i, g in enumerate(colocation):
        if g >= 0:
            leader[i] = int(np.flatnonzero(colocation == g)[0])
    return leader


def _boundary_moves(graph, placement: np.ndarray, leader: np.ndarray) -> set[tuple[int, int]]:
    """Every (leader, device) that puts an op's group on the device of a neighbour across an
    edge between devices: the definition, edge by edge."""
    moves = set()
    for u, v in zip(graph.edge_src.tolist(), graph.edge_dst.tolist(), strict=True):
        lu, lv = int(leader[u]), int(leader[v])
        if lu != lv and placement[lu] != placement[lv]:
            moves.add((lu, int(placement[lv])))
            moves.add((lv, int(placement[lu])))
    return moves


def test_first_round_scores_exactly_the_boundary_moves() -> None:
    """With a batch large enough, the first round scores each boundary move once, and each
    row differs from the start in exactly one colocation group, moved whole."""
    graph = random_layered_graph(60, seed=2)
    colocation = np.full(graph.n_ops, -1)
    colocation[[5, 17, 30]] = 0
    colocation[[8, 9]] = 1
    graph = graph.replace(colocation=colocation)
    leader = _leaders(colocation)
    start = place_random(graph, small_cluster(3), seed=1)[leader]
    expected = _boundary_moves(graph, start, leader)
    rec = Recording(lambda b: np.ones(len(b)))  # nothing improves: one round, then random
    boundary_descent(rec, graph, 3, 1 + len(expected), init=start, leader=leader, batch_size=10_000)
    np.testing.assert_array_equal(rec.batches[0], start[None, :])
    moves = set()
    for row in rec.batches[1]:
        np.testing.assert_array_equal(row, row[leader])  # groups stay together
        changed = np.flatnonzero(row != start)
        assert len(changed) and set(leader[changed].tolist()) == {int(leader[changed[0]])}
        moves.add((int(leader[changed[0]]), int(row[changed[0]])))
    assert len(rec.batches[1]) == len(expected) and moves == expected


def test_role_moves_shift_every_member_of_a_role_alike() -> None:
    """With roles, the first round also scores, for each boundary move of an op whose role
    has other members, that role moved whole: every member shifted by the same number of
    devices as the op. Compared with the definition, move by move."""
    graph = random_layered_graph(60, seed=5)
    d = 3
    roles = np.arange(graph.n_ops) % 20  # 20 roles of three ops each
    start = place_random(graph, small_cluster(d), seed=2)
    leader = np.arange(graph.n_ops)
    singles = _boundary_moves(graph, start, leader)
    expected_roles = {(int(roles[u]), (t - int(start[u])) % d) for u, t in singles}
    rec = Recording(lambda b: np.ones(len(b)))
    boundary_descent(
        rec,
        graph,
        d,
        1 + len(singles) + len(expected_roles),
        init=start,
        roles=roles,
        batch_size=10_000,
    )
    got_singles, got_roles = set(), set()
    for row in rec.batches[1]:
        changed = np.flatnonzero(row != start)
        if len(changed) == 1:
            got_singles.add((int(changed[0]), int(row[changed[0]])))
        else:
            (role,) = set(roles[changed].tolist())
            np.testing.assert_array_equal(changed, np.flatnonzero(roles == role))
            (shift,) = set(((row[changed] - start[changed]) % d).tolist())
            got_roles.add((role, shift))
    assert got_singles == singles and got_roles == expected_roles
    assert len(rec.batches[1]) == len(singles) + len(expected_roles)


def _bytes_saved(graph, placement: np.ndarray, op: int, device: int) -> float:
    """Transfer bytes that putting ``op`` on ``device`` takes off the links: the definition,
    edge by edge (every op leads itself)."""
    saved = 0.0
    for u, v, b in zip(graph.edge_src, graph.edge_dst, graph.edge_bytes, strict=True):
        if op in (u, v) and u != v:
            other = int(v if u == op else u)
            saved += b * (
                float(placement[other] == device) - float(placement[other] == placement[op])
            )
    return saved


def _moves_of(batch: np.ndarray, start: np.ndarray) -> list[tuple[int, int]]:
    """The (op, device) single move each row makes from ``start``."""
    moves = []
    for row in batch:
        (op,) = np.flatnonzero(row != start)
        moves.append((int(op), int(row[op])))
    return moves


def test_bytes_saved_of_single_and_role_moves_are_the_definitions() -> None:
    graph = random_layered_graph(50, seed=6)
    d = 3
    placement = place_random(graph, small_cluster(d), seed=4)
    roles = np.arange(graph.n_ops) % 10
    members = np.argsort(roles, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(roles))])
    saved = boundary_bytes_saved(
        graph.edge_src.astype(np.int64),
        graph.edge_dst.astype(np.int64),
        graph.edge_bytes,
        placement,
        members,
        start,
        d,
    )
    n = graph.n_ops
    singles = np.array([[_bytes_saved(graph, placement, o, t) for t in range(d)] for o in range(n)])
    np.testing.assert_allclose(saved[: n * d], singles.reshape(-1))
    for role in range(10):
        for shift in range(d):
            want = sum(
                singles[o, (placement[o] + shift) % d] for o in np.flatnonzero(roles == role)
            )
            assert saved[n * d + role * d + shift] == pytest.approx(want)


def test_half_the_fresh_boundary_moves_are_those_that_save_the_most_bytes() -> None:
    """A round of 8: the 4 boundary moves that save the most transfer bytes, and 4 other
    boundary moves (at random)."""
    graph = random_layered_graph(60, seed=9)
    rng = np.random.default_rng(0)
    tensor_bytes = rng.uniform(1.0, 1e6, len(graph.tensor_op))  # an edge carries a tensor
    graph = graph.replace(edge_bytes=tensor_bytes[graph.edge_tensor_id])
    start = place_random(graph, small_cluster(3), seed=5)
    boundary = _boundary_moves(graph, start, np.arange(graph.n_ops))
    by_bytes = sorted(boundary, key=lambda m: -_bytes_saved(graph, start, *m))
    assert _bytes_saved(graph, start, *by_bytes[3]) > _bytes_saved(graph, start, *by_bytes[4])
    rec = Recording(lambda b: np.ones(len(b)))
    boundary_descent(rec, graph, 3, 9, seed=1, init=start, batch_size=8)
    moves = _moves_of(rec.batches[1], start)
    assert len(moves) == len(set(moves)) == 8 and set(moves) <= boundary
    assert set(moves[:4]) == set(by_bytes[:4])


def test_balance_moves_take_the_most_time_off_the_busiest_device() -> None:
    """With ``op_time``, a round starts with the moves of the ops (or roles) with the most
    run time on the most loaded device, to the least loaded one, most time first."""
    graph = random_layered_graph(60, seed=10)
    d = 3
    rng = np.random.default_rng(1)
    op_time = rng.uniform(0.0, 1.0, graph.n_ops)
    start = place_random(graph, small_cluster(d), seed=6)
    load = np.array([op_time[start == k].sum() for k in range(d)])
    busiest, idlest = int(np.argmax(load)), int(np.argmin(load))
    on_busiest = np.flatnonzero(start == busiest)
    heaviest = on_busiest[np.argsort(-op_time[on_busiest])][:2]
    rec = Recording(lambda b: np.ones(len(b)))
    boundary_descent(rec, graph, d, 9, init=start, op_time=op_time, batch_size=8)
    assert _moves_of(rec.batches[1][:2], start) == [(int(o), idlest) for o in heaviest]
    # with roles, the role with the most time on the busiest device moves whole
    roles = np.arange(graph.n_ops) % 12
    role_time = np.bincount(roles[on_busiest], op_time[on_busiest], minlength=12)
    top = int(np.argmax(role_time))
    rec = Recording(lambda b: np.ones(len(b)))
    boundary_descent(rec, graph, d, 9, init=start, roles=roles, op_time=op_time, batch_size=8)
    members = np.flatnonzero(roles == top)
    expected = start.copy()
    expected[members] = (start[members] + (idlest - busiest)) % d
    np.testing.assert_array_equal(rec.batches[1][0], expected)


def test_reaches_the_optimum_of_a_separable_objective() -> None:
    """Cost = ops off their target device: every boundary move towards the target improves,
    so the descent must end exactly at the target (from a start with no boundary at all,
    the random moves start it)."""
    graph = random_layered_graph(80, seed=4)
    target = (graph.topo_rank >= 40).astype(np.int64)  # two halves of the graph
    rec = Recording(lambda b: (b != target).sum(axis=1).astype(float))
    res = boundary_descent(rec, graph, 2, 400, seed=0, init=np.zeros(graph.n_ops, np.int64))
    assert res.best_value == 0.0
    np.testing.assert_array_equal(res.best, target)
    # then it scores every single move from the optimum once, and stops: a local optimum
    rows = np.concatenate(rec.batches)
    changed = [np.flatnonzero(r != target) for r in rows[-graph.n_ops :]]
    assert all(len(c) == 1 for c in changed)
    assert sorted(int(c[0]) for c in changed) == list(range(graph.n_ops))
    assert res.evaluations == len(rows) < 400


@pytest.mark.parametrize("budget", [1, 2, 17, 200])
def test_budget_curve_and_determinism_on_the_simulator(budget: int) -> None:
    graph = random_layered_graph(120, seed=7)
    cluster = small_cluster(3)
    evaluate = make_placement_evaluator(graph, cluster)
    start = place_random(graph, cluster, seed=11)
    rec = Recording(evaluate)
    res = boundary_descent(rec, graph, 3, budget, seed=5, init=start)
    assert sum(len(b) for b in rec.batches) == res.evaluations == budget
    assert (np.diff(res.curve_best) <= 0).all() and res.curve_evals[-1] == budget
    assert evaluate(res.best[None])[0] == pytest.approx(res.best_value)
    again = boundary_descent(evaluate, graph, 3, budget, seed=5, init=start)
    np.testing.assert_array_equal(res.best, again.best)
    if budget == 200:
        assert res.best_value < evaluate(start[None])[0]


def test_one_device_has_nothing_to_move_and_arguments_are_checked() -> None:
    graph = random_layered_graph(30, seed=0)
    rec = Recording(lambda b: np.ones(len(b)))
    res = boundary_descent(rec, graph, 1, 50)
    assert res.evaluations == 1 and len(rec.batches) == 1
    with pytest.raises(ValueError, match="leader"):
        boundary_descent(rec, graph, 2, 5, leader=np.roll(np.arange(30), 1))
    with pytest.raises(ValueError, match="batch_size"):
        boundary_descent(rec, graph, 2, 5, batch_size=0)
    with pytest.raises(ValueError, match="op_time"):
        boundary_descent(rec, graph, 2, 5, op_time=-np.ones(30))


def test_go_refining_phase_spends_its_share_and_keeps_the_best() -> None:
    """``refine_share``: PPO spends the first part of the budget, boundary descent the rest
    from PPO's best; the budget is exact, the curve continues PPO's, and the agent's best
    decision is the curve's end."""
    graph = random_layered_graph(40, seed=3)
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(2))
    core = core_env(env)
    core.reset(seed=0)
    agent = agents.make("go", env, budget=60, samples=4, epochs=1, hidden=16, refine_share=0.5)
    report = agent.fit(env)
    assert core.evaluations == 60
    ppo_end = int(report.history[-1].graph_evaluations)
    assert ppo_end == 30 and report.curve_evals[-1] == 60
    assert (np.diff(report.curve_evals) > 0).all() and (np.diff(report.curve_best) <= 0).all()
    best_time, decision = agent.best(core)
    assert best_time == report.curve_best[-1] <= report.history[-1].best_step_time
    assert core.evaluate({"placement": decision["placement"][None]})[0] == best_time
    with pytest.raises(ValueError, match="refine_share"):
        agents.make("go", env, refine_share=1.0)


def test_boundary_descent_baseline_starts_from_the_expert_and_places_only() -> None:
    """The registered baseline: the human expert's placement is its first evaluation and
    it never ends worse; an env that decides anything but placement is refused."""
    graph = random_layered_graph(60, seed=1)
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3))
    core = core_env(env)
    core.reset(seed=0)
    expert = agents.make("human-expert", env).decide(core)["placement"]
    expert_time = core.evaluate({"placement": expert[None]})[0]
    core.evaluations = 0
    agent = agents.make("boundary-descent", env, budget=40)
    result = agent.fit(env)
    assert core.evaluations == result.evaluations <= 40
    assert result.curve_best[0] == expert_time >= result.best_value
    with pytest.raises(ValueError, match="placements"):
        agents.make("boundary-descent", gym.make("GOScheduling-v0", graph=graph))


def test_boundary_moves_are_the_definitions() -> None:
    """`boundary_moves` (the descent's proposals and ``benchmarks/boundary_moves.py``'s
    count) lists each boundary move of the definition once."""
    graph = random_layered_graph(70, seed=8)
    start = place_random(graph, small_cluster(4), seed=3)
    moves = boundary_moves(graph.edge_src, graph.edge_dst, start)
    assert {(int(o), int(d)) for o, d in moves} == _boundary_moves(
        graph, start, np.arange(graph.n_ops)
    )
    assert len(moves) == len({(int(o), int(d)) for o, d in moves})
