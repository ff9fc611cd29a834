"""The SB3 integration: NodeCategorical against SB3's own per-dimension distribution, the
masking of padded nodes, and PPO learning a placement whose optimum is known."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import MultiCategoricalDistribution

import go_gym  # noqa: F401  (registers the envs)
from agents.sb3 import GraphEncoder, GraphPolicy, NodeCategorical
from go_gym import Cluster, OpGraph, OpKind
from go_gym.generators import random_layered_graph
from go_gym.sim import simulate


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensors: one thread is ~10x faster than two on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_node_categorical_matches_sb3_multicategorical():
    torch.manual_seed(0)
    batch, nodes, choices = 5, 7, 3
    logits = torch.randn(batch, nodes * choices)
    ours = NodeCategorical(nodes, choices).proba_distribution(logits)
    reference = MultiCategoricalDistribution([choices] * nodes).proba_distribution(logits)
    actions = torch.randint(0, choices, (batch, nodes))
    assert torch.allclose(ours.log_prob(actions), reference.log_prob(actions), atol=1e-5)
    assert torch.allclose(ours.entropy(), reference.entropy(), atol=1e-5)
    assert torch.equal(ours.mode(), reference.mode())
    assert ours.sample().shape == (batch, nodes)


def hetero_problem() -> tuple[OpGraph, Cluster]:
    """A source, four matmuls and four memory-bound ops in parallel, a sink; one device is
    fast at arithmetic, the other at memory. The unique optimum puts every matmul on the
    first and every elementwise op on the second: only a policy that reads op kinds finds it."""
    mm, ew = int(OpKind.MATMUL), int(OpKind.ELEMENTWISE)
    kinds = [int(OpKind.INPUT)] + [mm, ew] * 4 + [ew]
    traffic = [0.0] + [1e6, 1e9] * 4 + [1e3]
    edges = [(0, i) for i in range(1, 9)] + [(i, 9) for i in range(1, 9)]
    graph = OpGraph(
        name="hetero-10",
        op_names=[f"op{i}" for i in range(10)],
        op_kind=kinds,
        flops=[0.0] + [1e11, 1e6] * 4 + [1e3],
        bytes_read=traffic,
        bytes_written=traffic,
        edge_src=[a for a, _ in edges],
        edge_dst=[b for _, b in edges],
        edge_bytes=[1e3] * len(edges),
    )
    cluster = Cluster(
        name="compute+memory",
        device_names=("compute", "memory"),
        peak_flops=[1e13, 1e12],
        mem_bandwidth=[1e11, 1e12],
        memory_bytes=[1e10, 1e10],
        launch_overhead_s=[0.0, 0.0],
        link_bandwidth=[[0, 1e10], [1e10, 0]],
        link_latency_s=[[0, 1e-5], [1e-5, 0]],
    )
    return graph, cluster


def test_ppo_with_graph_policy_reaches_the_known_optimum_and_random_does_not():
    graph, cluster = hetero_problem()
    times = {
        p: simulate(graph, cluster, np.array(p)).step_time
        for p in itertools.product([0, 1], repeat=graph.n_ops)
    }
    best = min(times.values())
    optimum = [p for p, t in times.items() if t == best]
    assert optimum == [(0, 0, 1, 0, 1, 0, 1, 0, 1, 0)]  # the problem is posed as described
    assert np.mean(list(times.values())) > 5 * best  # random placement is far from it

    env = gym.make("GOPlacement-v0", graph=graph, cluster=cluster)
    model = PPO(
        GraphPolicy,
        env,
        n_steps=64,
        batch_size=64,
        n_epochs=4,
        learning_rate=3e-3,
        gamma=1.0,
        seed=0,
        policy_kwargs={"hidden": 32},
    )
    model.learn(total_timesteps=2048)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert tuple(action.tolist()) == optimum[0]


def test_padded_nodes_are_masked_out():
    graphs = [random_layered_graph(12, seed=1, width=3), random_layered_graph(20, seed=2, width=3)]
    env = gym.make("GOPlacement-v0", graphs=graphs, n_devices=2)
    model = PPO(GraphPolicy, env, n_steps=8, batch_size=8, seed=0, policy_kwargs={"hidden": 16})
    policy = model.policy
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        if info["n_ops"] != 12:
            continue
        tensor, _ = policy.obs_to_tensor(obs)
        dist = policy.get_distribution(tensor)
        probs = dist.distribution.probs[0]
        assert torch.all(probs[12:, 0] == 1.0)  # padded nodes always take choice 0
        assert torch.allclose(dist.distribution.entropy()[0, 12:], torch.zeros(8))
        # Real nodes' logits do not depend on what sits in the padding.
        changed = {k: v.clone() for k, v in tensor.items()}
        changed["node_features"][0, 12:] = 5.0
        other = policy.get_distribution(changed).distribution.probs[0]
        assert torch.allclose(other[:12], probs[:12])
        return
    pytest.fail("never drew the small graph")


def test_graph_encoder_output_layout():
    env = gym.make("GOPlacement-v0", graph=random_layered_graph(30, seed=0), n_devices=2)
    encoder = GraphEncoder(env.observation_space, hidden=8)
    obs, _ = env.reset(seed=0)
    batch = {k: torch.as_tensor(v)[None].float() for k, v in obs.items()}
    out = encoder(batch)
    assert out.shape == (1, 30 * 8 + 30 + 8) == (1, encoder.features_dim)


def test_graph_policy_rejects_unequal_choices_per_node():
    env = gym.make("GOPlacement-v0", graph=random_layered_graph(40, seed=0), n_devices=2)
    mixed = gym.spaces.MultiDiscrete([2, 3] * 5)
    with pytest.raises(ValueError, match="GraphPolicy needs a MultiDiscrete action space"):
        GraphPolicy(env.observation_space, mixed, lambda _: 1e-3)
