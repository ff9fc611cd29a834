"""What the GO agent's tests share: a small network, a 40-op graph and its envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

import go_gym  # noqa: F401  (registers the env ids)
from agents.go.model import GOConfig
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from tests.agents.conftest import small_cluster

#: A network small enough for CI: two SAGE layers, one attention layer, segments of 8.
SMALL = GOConfig(hidden=16, sage_layers=2, attn_layers=1, heads=2, segment=8, ffn=32)


@pytest.fixture(scope="module")
def graph40() -> OpGraph:
    return random_layered_graph(40, seed=3)


def go_env(env_id: str, graph: OpGraph, **kw: Any) -> gym.Env:
    """``env_id`` on ``graph`` with two small devices."""
    return gym.make(env_id, graph=graph, cluster=small_cluster(2), **kw)
