"""Gymnasium environments of go_gym (registered by importing `go_gym`)."""

from go_gym.envs.graph_env import DEFAULT_GRAPH, REWARDS, GraphOptEnv
from go_gym.envs.tasks import FusionEnv, JointEnv, PlacementEnv, SchedulingEnv

__all__ = [
    "DEFAULT_GRAPH",
    "REWARDS",
    "FusionEnv",
    "GraphOptEnv",
    "JointEnv",
    "PlacementEnv",
    "SchedulingEnv",
]
