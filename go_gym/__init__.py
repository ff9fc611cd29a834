"""go_gym: Gymnasium environments and simulators for learned ML-compiler graph optimisation.

Importing go_gym does no I/O: it exposes the graph and cluster types and the file helpers,
and registers the environments (Gymnasium 1.x has no plugin entry points, so registration
happens here). Entry points are strings: nothing of the envs is imported until `gym.make`.
"""

import gymnasium

from go_gym.cluster import Cluster
from go_gym.graph import GraphError, OpGraph
from go_gym.io import (
    from_networkx,
    graph_from_json,
    graph_to_json,
    load_graph,
    save_graph,
    to_networkx,
)
from go_gym.opkinds import OpKind
from go_gym.zoo.suites import get_entry, get_graph, list_graphs, list_suites

__version__ = "0.1.0"

#: Registered environment ids and their classes in `go_gym.envs`.
ENV_IDS: dict[str, str] = {
    "GOPlacement-v0": "go_gym.envs:PlacementEnv",
    "GOScheduling-v0": "go_gym.envs:SchedulingEnv",
    "GOFusion-v0": "go_gym.envs:FusionEnv",
    "GOJoint-v0": "go_gym.envs:JointEnv",
}
for _env_id, _entry_point in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point)

__all__ = [
    "ENV_IDS",
    "Cluster",
    "GraphError",
    "OpGraph",
    "OpKind",
    "__version__",
    "from_networkx",
    "get_entry",
    "get_graph",
    "graph_from_json",
    "graph_to_json",
    "list_graphs",
    "list_suites",
    "load_graph",
    "save_graph",
    "to_networkx",
]
