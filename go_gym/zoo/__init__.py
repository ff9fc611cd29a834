"""go_gym.zoo: benchmark model definitions (`go_gym.zoo.models`) and versioned suites.

The suite functions are re-exported here; importing this package does not import torch (only
`go_gym.zoo.models` and `go_gym.zoo.build` do).
"""

from go_gym.zoo.suites import (
    SUITES,
    SuiteEntry,
    get_entry,
    get_graph,
    list_graphs,
    list_suites,
)

__all__ = ["SUITES", "SuiteEntry", "get_entry", "get_graph", "list_graphs", "list_suites"]
