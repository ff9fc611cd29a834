"""go_gym: Gymnasium environments and simulators for learned ML-compiler graph optimisation.

Importing go_gym does no I/O: it exposes the graph and cluster types and the file helpers.
"""

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

__version__ = "0.1.0"

__all__ = [
    "Cluster",
    "GraphError",
    "OpGraph",
    "OpKind",
    "__version__",
    "from_networkx",
    "graph_from_json",
    "graph_to_json",
    "load_graph",
    "save_graph",
    "to_networkx",
]
