"""Tied roles: one placement choice for the ops that play one role in repeated blocks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import core_env
from agents.go.model import GOConfig
from agents.go.ppo import PPOConfig, PPOTrainer, make_policy
from agents.go.roles import role_groups
from go_gym.opkinds import OpKind
from go_gym.zoo import get_graph
from tests.agents.conftest import make_graph, small_cluster
from tests.agents.go.test_go import SMALL

torch.set_num_threads(1)

TIED = GOConfig(**{**SMALL.to_dict(), "placement_actions": "tree", "tie_roles": True})


@pytest.fixture(scope="module")
def rnnlm2():
    """quick-v0/rnnlm-2: two identical LSTM layers (611 ops)."""
    graph = get_graph("quick-v0/rnnlm-2")
    core = core_env(gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3)))
    return graph, core


def test_roles_tie_the_same_op_of_every_block() -> None:
    """Worked by hand: the k-th op of a kind in ``blocks.<i>.attn`` is one role for every
    i; only the first integer of a module path is a block index; ops with no module path
    and colocated followers are roles of their own."""
    mm, ew = int(OpKind.MATMUL), int(OpKind.ELEMENTWISE)
    scopes = [
        "embed",  # 0
        "blocks.0.attn",  # 1 matmul, 1st of the module
        "blocks.0.attn",  # 2 matmul, 2nd
        "blocks.0.attn",  # 3 elementwise
        "blocks.1.attn",  # 4 matmul, 1st -> role of 1
        "blocks.1.attn",  # 5 matmul, 2nd -> role of 2
        "blocks.1.attn",  # 6 elementwise -> role of 3
        "cells.0.ops.1",  # 7
        "cells.0.ops.3",  # 8: another op of the same cell, not tied to 7
        "cells.1.ops.1",  # 9 -> role of 7
        "",  # 10: no module path
        "",  # 11
        "blocks.2.attn",  # 12 matmul, 1st, but follows a colocation leader
    ]
    kinds = [mm, mm, mm, ew, mm, mm, ew, mm, mm, mm, mm, mm, mm]
    edges = [(i, i + 1) for i in range(12)]
    graph = make_graph("blocks", 13, edges, 1e6, 1e3, op_kind=kinds, scope=scopes)
    leader = np.arange(13)
    leader[12] = 11
    roles = role_groups(graph, leader)
    expected = [0, 1, 2, 3, 1, 2, 3, 4, 5, 4, 6, 7, 8]
    np.testing.assert_array_equal(roles, expected)
    with pytest.raises(ValueError, match="leader"):
        role_groups(graph, leader[:5])


def test_roles_of_an_lstm_tie_its_layers(rnnlm2) -> None:
    """On rnnlm-2 the two layers' weights share a role, and every tied role holds one op of
    each layer, of one kind."""
    graph, core = rnnlm2
    roles = role_groups(graph, core._context.leader)
    names = list(graph.op_names)
    weights = [names.index(f"layers.{k}.cell.kernel.weight") for k in (0, 1)]
    assert roles[weights[0]] == roles[weights[1]]
    tied = 0
    for role in np.unique(roles):
        members = np.flatnonzero(roles == role)
        if len(members) > 1:
            tied += 1
            assert len(set(graph.op_kind[members].tolist())) == 1
            assert sorted(graph.layer[members].tolist()) == [0, 1]
    assert tied > 200  # most of a layer's ops have their twin in the other layer


def test_tied_roles_sample_one_offset_per_role(rnnlm2) -> None:
    """The placement logits are one row per role, each the mean of its nodes' logits;
    every sampled decision gives the nodes of a role the same offset; the prior of a warm
    start is per role, with the mean of its nodes' deviation probabilities."""
    graph, core = rnnlm2
    trainer = PPOTrainer(make_policy(TIED, seed=0), PPOConfig(samples=4), seed=0)
    rec = trainer.record(core)
    roles = rec.roles.numpy()
    n_roles = int(roles.max()) + 1
    with torch.no_grad():
        node_logits = trainer.policy(rec.input, rec.choices)["placement"].numpy()
        logits = trainer.logits(rec)
    assert logits["placement"].shape == (n_roles, 3)
    for role in (0, int(roles[0]), n_roles - 1):
        np.testing.assert_allclose(
            logits["placement"][role].numpy(), node_logits[roles == role].mean(0), rtol=1e-5
        )
    actions = trainer.sample(logits, 8)
    assert actions["placement"].shape == (8, n_roles)
    assert trainer.log_probs(logits, actions).shape == (8, n_roles)
    devices = trainer.decisions(rec, {"placement": actions["placement"].numpy()})["placement"]
    offsets = rec.tree.encode(devices)
    leaders = np.flatnonzero(core._context.leader == np.arange(graph.n_ops))
    for role in np.unique(roles[leaders]):
        members = leaders[roles[leaders] == role]
        assert (offsets[:, members] == offsets[:, members[:1]]).all()
    assert len(np.unique(offsets[:, leaders], axis=1)) > 1  # roles still differ

    p = np.random.default_rng(0).uniform(0.01, 0.2, graph.n_ops)
    trainer.set_prior(core, {"placement": np.zeros(graph.n_ops, np.int64)}, {"placement": p})
    keep = rec.prior["placement"].softmax(-1).double().numpy()
    assert keep.shape == (n_roles, 3) and (keep.argmax(-1) == 0).all()
    mean_p = np.bincount(roles, weights=p) / np.bincount(roles)
    np.testing.assert_allclose(1 - keep[:, 0], mean_p, rtol=1e-5)
    greedy = trainer.greedy(core)["placement"]
    np.testing.assert_array_equal(greedy, np.zeros(graph.n_ops))  # the start: one device


def test_tied_roles_with_solo_moves(rnnlm2) -> None:
    """With ``tree-solo`` actions a role has 2D - 1 choices, and its sampled action (an
    offset or a solo move) is every member's, decoded along the tree."""
    _, core = rnnlm2
    solo = GOConfig(**{**TIED.to_dict(), "placement_actions": "tree-solo"})
    trainer = PPOTrainer(make_policy(solo, seed=0), PPOConfig(samples=4), seed=0)
    rec = trainer.record(core)
    roles = rec.roles.numpy()
    with torch.no_grad():
        logits = trainer.logits(rec)
    assert logits["placement"].shape == (int(roles.max()) + 1, 5)
    actions = trainer.sample(logits, 16)["placement"].numpy()
    assert actions.max() >= 3  # solo moves are drawn
    devices = trainer.decisions(rec, {"placement": actions})["placement"]
    np.testing.assert_array_equal(devices, rec.tree.decode(actions[:, roles]))


def test_agent_with_tied_roles_from_one_device(rnnlm2) -> None:
    """The README's tree setting with tied roles trains within its budget and its best
    decision keeps the ties; the option needs tree actions and a fresh policy."""
    graph, core = rnnlm2
    env = gym.make("GOPlacement-v0", graph=graph, cluster=small_cluster(3))
    agent = agents.make(
        "go",
        env,
        budget=15,
        samples=4,
        epochs=1,
        hidden=16,
        placement_actions="tree",
        tie_roles=True,
        warm_start="single-device",
        warm_proposal="subtrees",
    )
    agent.fit(env)
    fitted = core_env(env)
    assert fitted.evaluations == 15
    rec = agent.trainer.record(fitted)
    _, best = agent.best(fitted)
    offsets = rec.tree.encode(best["placement"][None])[0]
    names = list(graph.op_names)
    weights = [names.index(f"layers.{k}.cell.kernel.weight") for k in (0, 1)]
    assert offsets[weights[0]] == offsets[weights[1]]
    with pytest.raises(ValueError, match="tie_roles"):
        GOConfig(tie_roles=True)
    with pytest.raises(ValueError, match="tie_roles"):
        agents.make("go", env, checkpoint="x.pt", tie_roles=True)
    deciding = PPOTrainer(make_policy(TIED), PPOConfig(deciding_nodes_only=True))
    with pytest.raises(ValueError, match="deciding_nodes_only"):
        deciding.record(core)
    assert GOConfig.from_dict({"hidden": 64}).tie_roles is False  # older checkpoints
