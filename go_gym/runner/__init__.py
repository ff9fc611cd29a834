"""The benchmark runner: suites x agents x seeds -> replayable CSV rows -> leaderboards.

- `go_gym.runner.cells`: one cell (graph, task, agent, config, budget, seed) run end to end.
- `go_gym.runner.results`: the versioned CSV schema and crash-safe result files.
- `go_gym.runner.executors`: serial, local-process and Ray executors.
- `go_gym.runner.bench`: planning a run, resuming it, merging its results.
- `go_gym.runner.validate`: replaying rows through the simulator.
- `go_gym.runner.leaderboard`: markdown tables and PNG plots.

The command line is ``go-gym`` (`go_gym.cli`). Nothing here is imported by ``import go_gym``.
"""

from go_gym.runner.bench import BenchReport, BenchSpec, run_bench
from go_gym.runner.cells import TASKS, Cell, run_cell
from go_gym.runner.results import SCHEMA_VERSION, ResultsError, Row, read_results
from go_gym.runner.validate import validate_results

__all__ = [
    "SCHEMA_VERSION",
    "TASKS",
    "BenchReport",
    "BenchSpec",
    "Cell",
    "ResultsError",
    "Row",
    "read_results",
    "run_bench",
    "run_cell",
    "validate_results",
]
