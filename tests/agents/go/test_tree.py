"""Tree actions: placement offsets along a maximum spanning tree (`agents.go.tree`)."""

from __future__ import annotations

import itertools

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
import torch

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import HeuristicAgent, core_env
from agents.go.model import GOConfig
from agents.go.ppo import PPOConfig, PPOTrainer, make_policy
from agents.go.tree import SAME_LAYER_BONUS, PlacementTree
from go_gym.cluster import op_times
from go_gym.opkinds import OpKind
from go_gym.zoo import get_graph
from tests.agents.conftest import make_graph, small_cluster
from tests.agents.go.test_go import SMALL

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def colocated():
    """quick-v0/transformer-xl-2 (248 ops, 29 of them follow a colocation group's leader)
    and its leaders."""
    graph = get_graph("quick-v0/transformer-xl-2")
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3))
    leader = core_env(env)._context.leader
    assert (leader != np.arange(graph.n_ops)).any()
    return graph, leader


def _contracted(graph, leader) -> nx.Graph:
    """The reference: colocation groups as single nodes, bytes summed per pair of groups."""
    g = nx.Graph()
    g.add_nodes_from(np.unique(leader).tolist())
    for s, d, b in zip(graph.edge_src, graph.edge_dst, graph.edge_bytes, strict=True):
        u, v = int(leader[s]), int(leader[d])
        if u == v:
            continue
        w = float(b) * (1 + SAME_LAYER_BONUS * (graph.layer[s] == graph.layer[d]))
        g.add_edge(u, v, weight=(g[u][v]["weight"] if g.has_edge(u, v) else 0.0) + w)
    return g


def test_tree_is_a_maximum_spanning_tree_of_the_contracted_graph(colocated) -> None:
    graph, leader = colocated
    tree = PlacementTree.build(graph, leader, 3)
    reference = _contracted(graph, leader)
    leaders = np.flatnonzero(leader == np.arange(graph.n_ops))
    assert sorted(tree.order.tolist()) == leaders.tolist()  # every leader once
    assert (tree.parent[leader != np.arange(graph.n_ops)] == -1).all()
    position = np.empty(graph.n_ops, np.int64)
    position[tree.order] = np.arange(len(tree.order))
    children = tree.order[tree.parent[tree.order] >= 0]
    assert (position[tree.parent[children]] < position[children]).all()  # parents first
    assert all(reference.has_edge(int(c), int(tree.parent[c])) for c in children)
    roots = len(tree.order) - len(children)
    assert roots == nx.number_connected_components(reference)
    weight = sum(reference[int(c)][int(tree.parent[c])]["weight"] for c in children)
    best = nx.maximum_spanning_tree(reference).size(weight="weight")
    assert weight == pytest.approx(best, rel=1e-12)


def test_decode_adds_the_offsets_along_the_path_to_the_root(colocated) -> None:
    graph, leader = colocated
    tree = PlacementTree.build(graph, leader, 3)
    offsets = np.random.default_rng(0).integers(0, 3, (4, graph.n_ops))
    devices = tree.decode(offsets)

    def slow(k: int, op: int) -> int:  # walk up to the root
        op, total = int(leader[op]), 0
        while op >= 0:
            total += int(offsets[k, op])
            op = int(tree.parent[op])
        return total % 3

    expected = [[slow(k, i) for i in range(graph.n_ops)] for k in range(4)]
    np.testing.assert_array_equal(devices, expected)


def test_encode_inverts_decode(colocated) -> None:
    graph, leader = colocated
    tree = PlacementTree.build(graph, leader, 3)
    rng = np.random.default_rng(1)
    devices = rng.integers(0, 3, (5, graph.n_ops))
    np.testing.assert_array_equal(tree.decode(tree.encode(devices)), devices[:, leader])
    offsets = rng.integers(0, 3, (5, graph.n_ops))
    offsets[:, leader != np.arange(graph.n_ops)] = 0  # what decode ignores
    np.testing.assert_array_equal(tree.encode(tree.decode(offsets)), offsets)
    with pytest.raises(ValueError, match="actions must be"):
        tree.decode(offsets[0])
    with pytest.raises(ValueError, match=r"in \[0, 5\)"):
        tree.decode(np.full((1, graph.n_ops), 5))


def test_decode_of_solo_moves_matches_a_walk_to_the_root(colocated) -> None:
    """Against a slow reference: an op's device is the sum of the offsets of its strict
    ancestors that moved their subtrees, plus its own move (offset or solo)."""
    graph, leader = colocated
    d = 3
    tree = PlacementTree.build(graph, leader, d)
    assert tree.n_actions == 5
    actions = np.random.default_rng(2).integers(0, tree.n_actions, (6, graph.n_ops))

    def shift(a: int) -> int:  # what an action adds to the device it counts from
        return a if a < d else a - d + 1

    def slow(k: int, op: int) -> int:
        op = int(leader[op])
        total = shift(int(actions[k, op]))
        up = int(tree.parent[op])
        while up >= 0:
            if actions[k, up] < d:  # a solo move does not carry its children
                total += int(actions[k, up])
            up = int(tree.parent[up])
        return total % d

    expected = [[slow(k, i) for i in range(graph.n_ops)] for k in range(6)]
    np.testing.assert_array_equal(tree.decode(actions), expected)
    assert (actions >= d).any()  # solo moves were drawn


def test_one_offset_moves_the_subtree_below_it() -> None:
    """A cycle 0-1-2-3-0 whose lightest edge (1, 2) is left out of the tree: the tree is
    1-0-3-2 rooted at 0, and an offset on op 3 moves ops 3 and 2 together."""
    graph = make_graph("ring", 4, [(0, 1), (1, 2), (2, 3), (0, 3)], 1e6, [10.0, 1.0, 10.0, 10.0])
    tree = PlacementTree.build(graph, np.arange(4), 2)
    assert tree.parent.tolist() == [-1, 0, 3, 0]
    np.testing.assert_array_equal(tree.decode(np.array([[0, 0, 0, 1]])), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(tree.decode(np.array([[1, 0, 0, 0]])), [[1, 1, 1, 1]])
    # Solo moves (action D - 1 + j moves by j): op 3 alone, then the root alone.
    np.testing.assert_array_equal(tree.decode(np.array([[0, 0, 0, 2]])), [[0, 0, 0, 1]])
    np.testing.assert_array_equal(tree.decode(np.array([[2, 0, 0, 0]])), [[1, 0, 0, 0]])


def test_config_checks_the_placement_actions() -> None:
    config = GOConfig(placement_actions="tree")
    assert GOConfig.from_dict(config.to_dict()) == config
    assert GOConfig.from_dict({"hidden": 64}).placement_actions == "device"  # older checkpoints
    with pytest.raises(ValueError, match="placement_actions"):
        GOConfig(placement_actions="offsets")
    with pytest.raises(ValueError, match="layer_head"):
        GOConfig(placement_actions="tree", layer_head=1.0)
    assert GOConfig(placement_actions="tree").placement_choices(4) == 4
    assert GOConfig(placement_actions="tree-solo").placement_choices(4) == 7
    assert GOConfig().placement_choices(4) == 4


@pytest.mark.parametrize(("actions", "choices"), [("tree", 3), ("tree-solo", 5)])
def test_agent_with_tree_actions_returns_devices(colocated, actions: str, choices: int) -> None:
    """The agent's best, greedy and sampled decisions are devices, with colocation applied
    (so the actions were decoded), and a warm start's prior encodes the heuristic's
    placement as offsets, so the fresh policy's argmax is that placement."""
    graph, leader = colocated
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3))
    core = core_env(env)
    agent = agents.make(
        "go", env, budget=12, samples=4, epochs=1, hidden=16, placement_actions=actions
    )
    assert agent.trainer.policy.config.placement_actions == actions
    rec = agent.trainer.record(core)
    assert rec.choices["placement"] == choices
    assert agent.trainer.logits(rec)["placement"].shape == (graph.n_ops, choices)
    agent.fit(env)
    assert core.evaluations == 12
    best_time, best = agent.best(core)
    np.testing.assert_array_equal(best["placement"], best["placement"][leader])
    assert best_time == pytest.approx(
        float(core.evaluate({"placement": best["placement"][None]})[0])
    )
    obs, _ = env.reset(seed=0)
    sampled, _ = agent.predict(obs, deterministic=False)
    np.testing.assert_array_equal(sampled, sampled[leader])

    heuristic = HeuristicAgent(core, placement="m-sct").decide(core)
    agent.trainer.set_prior(core, heuristic, 0.01)
    greedy = agent.trainer.greedy(core)["placement"]
    np.testing.assert_array_equal(greedy, heuristic["placement"][leader])
    with pytest.raises(ValueError, match="placement_actions"):
        agents.make("go", env, checkpoint="x.pt", placement_actions="tree")
    if actions == "tree-solo":  # 2D - 1 choices: 9 devices are more than 16 embeddings
        wide = core_env(gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(9)))
        with pytest.raises(ValueError, match="tree-solo actions on 9 devices are 17 choices"):
            agent.trainer.record(wide)


def test_ppo_with_tree_actions_splits_two_chains() -> None:
    """Two chains of five heavy ops between a source and a sink, with tensors whose transfer
    takes as long as an op: the optimum on two devices runs the chains on different ones.
    With tree actions (seed 1) PPO finds it within 20 iterations, and its argmax is it.
    (Seed 3 is 8% off it after 20 iterations: a policy that moves a subtree per offset
    can still settle early, as per-device actions can.)"""
    ew, mm, conv = int(OpKind.ELEMENTWISE), int(OpKind.MATMUL), int(OpKind.CONVOLUTION)
    edges = [(0, 1), *itertools.pairwise(range(1, 6)), (5, 11)]
    edges += [(0, 6), *itertools.pairwise(range(6, 11)), (10, 11)]
    flops = [1e6] + [4e10] * 10 + [1e6]
    graph = make_graph(
        "two-chains", 12, edges, flops, 4e7, op_kind=[ew] + [mm] * 5 + [conv] * 5 + [ew]
    )
    core = core_env(gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(2)))
    split = np.array([[0] + [1] * 5 + [0] * 6])
    optimum = float(core.evaluate({"placement": split})[0])
    assert optimum < 0.6 * float(core.evaluate({"placement": np.zeros((1, 12), int)})[0])
    core.evaluations = 0
    config = GOConfig(**{**SMALL.to_dict(), "placement_actions": "tree"})
    trainer = PPOTrainer(
        make_policy(config, seed=1), PPOConfig(samples=16, lr=3e-3, entropy_coef=0.0), seed=1
    )
    trainer.train([core], 340)
    assert trainer.record(core).best_time == pytest.approx(optimum, rel=1e-9)
    greedy = trainer.greedy(core)["placement"]
    assert float(core.evaluate({"placement": greedy[None]})[0]) == pytest.approx(optimum, rel=1e-9)


def test_balance_is_how_evenly_each_subtree_splits_the_work(colocated) -> None:
    """Against a slow reference: each leader's descendants in the tree (networkx), their
    weights summed with every op counted at its leader."""
    graph, leader = colocated
    tree = PlacementTree.build(graph, leader, 3)
    weight = np.random.default_rng(2).random(graph.n_ops)
    balance = tree.balance(weight)
    children = tree.order[tree.parent[tree.order] >= 0]
    edges = [(int(tree.parent[c]), int(c)) for c in children]
    forest = nx.DiGraph(edges)
    forest.add_nodes_from(tree.order.tolist())
    work = {int(i): 0.0 for i in tree.order}
    for op in range(graph.n_ops):
        work[int(leader[op])] += float(weight[op])
    total = sum(work.values())
    for op in range(graph.n_ops):
        if tree.parent[op] < 0:  # a root (moves a whole component) or a colocated follower
            assert balance[op] == 0.0
            continue
        share = (work[op] + sum(work[d] for d in nx.descendants(forest, op))) / total
        assert balance[op] == pytest.approx(min(share, 1 - share), rel=1e-9)
    # the ring of test_one_offset_moves_the_subtree_below_it: tree 1-0-3-2 rooted at 0
    ring = make_graph("ring", 4, [(0, 1), (1, 2), (2, 3), (0, 3)], 1e6, [10.0, 1.0, 10.0, 10.0])
    small = PlacementTree.build(ring, np.arange(4), 2)
    np.testing.assert_allclose(small.balance(np.array([1.0, 2.0, 3.0, 4.0])), [0, 0.2, 0.3, 0.3])
    with pytest.raises(ValueError, match="op_weight"):
        small.balance(np.ones(3))


def test_subtree_proposal_puts_the_deviations_where_a_move_splits_the_work(colocated) -> None:
    """``warm_proposal="subtrees"``: the prior keeps each op's start with probability
    1 - p, the p sum to the uniform prior's expected deviations (16, at most 5% of the ops:
    12.4 of 248 here), and an op whose subtree splits the work more evenly deviates more
    often."""
    graph, _ = colocated
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3))
    core = core_env(env)
    agent = agents.make(
        "go",
        env,
        budget=8,
        samples=4,
        epochs=1,
        hidden=16,
        placement_actions="tree",
        warm_start="single-device",
        warm_proposal="subtrees",
    )
    agent.fit(env)
    rec = agent.trainer.record(core)
    keep = rec.prior["placement"].softmax(-1)
    assert (keep.argmax(-1) == 0).all()  # single device: every offset 0
    p = 1 - keep[:, 0].double().numpy()
    assert p.sum() == pytest.approx(0.05 * graph.n_ops, rel=1e-4)
    balance = rec.tree.balance(op_times(graph, core.cluster).mean(axis=1))
    movable = rec.tree.parent >= 0
    order = np.argsort(balance[movable], kind="stable")
    assert (np.diff(p[movable][order]) >= -1e-6).all()  # more balance, more deviation
    assert p[movable].max() > 5 * np.median(p[movable])  # not spread evenly
    assert p[movable].max() > 20 * p[~movable].max()
    with pytest.raises(ValueError, match="warm_proposal"):
        agents.make("go", env, warm_start="single-device", warm_proposal="subtrees")
    with pytest.raises(ValueError, match="warm_proposal"):
        agents.make("go", env, placement_actions="tree", warm_proposal="subtrees")
    with pytest.raises(ValueError, match="warm_proposal"):
        agents.make("go", env, warm_proposal="branches")
    with pytest.raises(ValueError, match="deviate of placement"):
        agent.trainer.set_prior(
            core, {"placement": np.zeros(graph.n_ops, int)}, {"placement": p[:5]}
        )
