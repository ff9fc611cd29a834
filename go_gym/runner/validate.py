"""``go-gym validate``: replay every row's saved decisions through the simulator.

A row is trusted only if, without its agent, the simulator reproduces it: the graph and the
cluster are rebuilt from the suite ids in the row, the decisions file is checked against its
SHA-256 and loaded (no pickle), and `go_gym.sim.simulate` must give the row's step time
(relative tolerance 1e-9) and validity. The comparators (lower bound, TensorFlow default,
human expert) are recomputed too, and the derived columns (effective step time, speedups,
ratio to the bound) must follow from them, so an edited number anywhere in a row is caught.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from go_gym.runner.results import Row, read_results

__all__ = ["RTOL", "Mismatch", "validate_results", "validate_rows"]

#: Relative tolerance of every comparison (the simulator is deterministic; this only absorbs
#: floating-point noise of the derived ratios).
RTOL = 1e-9


@dataclass(frozen=True)
class Mismatch:
    """A row that does not reproduce: which, and what differs."""

    row: Row
    problem: str

    def __str__(self) -> str:
        r = self.row
        return f"{r.graph} {r.task} {r.agent} seed {r.seed}: {self.problem}"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0)


#: What a row's replay needs per (graph, cluster, devices, task, OOM penalty): the graph, the
#: cluster and the comparators (lower bound, TF default, human expert), built once.
_ReplayCache = dict[tuple[str, str, int, str, float], tuple[Any, Any, tuple[float, float, float]]]


def _check_row(row: Row, base: Path, cache: _ReplayCache) -> str | None:
    from go_gym.cluster import Cluster
    from go_gym.runner.cells import PROFILE, comparators, load_decisions
    from go_gym.sim import simulate
    from go_gym.zoo import get_graph

    if row.profile != PROFILE:
        return f"profile {row.profile!r} is not {PROFILE!r}"
    path = base / row.decisions_file
    try:
        blob = path.read_bytes()
    except OSError as exc:
        return f"decisions file unreadable: {exc}"
    if hashlib.sha256(blob).hexdigest() != row.decisions_sha256:
        return f"decisions file {row.decisions_file} does not match its SHA-256"
    try:
        decisions = load_decisions(path)
    except (ValueError, OSError) as exc:
        return f"decisions file {row.decisions_file} is not a NumPy .npz: {exc}"
    if "placement" not in decisions:
        return f"decisions file {row.decisions_file} has no placement"

    key = (row.graph, row.cluster, row.n_devices, row.task, row.oom_penalty)
    if key not in cache:
        graph = get_graph(row.graph)
        cluster = Cluster.preset(row.cluster, row.n_devices)
        cache[key] = (graph, cluster, comparators(graph, cluster, row.oom_penalty, row.task))
    graph, cluster, (bound, tf_default, human) = cache[key]
    if graph.n_ops != row.n_ops:
        return f"graph has {graph.n_ops} ops, the row says {row.n_ops}"
    try:
        result = simulate(
            graph,
            cluster,
            decisions["placement"],
            decisions.get("priority"),
            decisions.get("fusion"),
            profile=row.profile,
        )
    except ValueError as exc:
        return f"the simulator rejects the saved decisions: {exc}"
    problems = []
    if not _close(result.step_time, row.step_time_s):
        problems.append(f"step time replays as {result.step_time!r} s, row has {row.step_time_s!r}")
    if bool(result.valid) != row.valid:
        problems.append(f"valid replays as {bool(result.valid)}, row has {row.valid}")
    effective = result.step_time if result.valid else row.oom_penalty * bound
    expected = {
        "effective_step_time_s": effective,
        "lower_bound_s": bound,
        "tf_default_step_time_s": tf_default,
        "human_expert_step_time_s": human,
        "speedup_vs_tf_default": tf_default / effective,
        "speedup_vs_human_expert": human / effective,
        "ratio_to_lower_bound": effective / bound,
        "peak_memory_bytes": float(result.peak_memory.max()),
        "bytes_moved": float(result.bytes_moved),
    }
    for column, value in expected.items():
        if not _close(value, getattr(row, column)):
            problems.append(f"{column} replays as {value!r}, row has {getattr(row, column)!r}")
    return "; ".join(problems) or None


def validate_rows(rows: list[Row], base: Path) -> list[Mismatch]:
    """The rows that do not reproduce (empty: all do). ``base``: where decision paths start."""
    cache: _ReplayCache = {}
    out = []
    for row in rows:
        problem = _check_row(row, Path(base), cache)
        if problem is not None:
            out.append(Mismatch(row, problem))
    return out


def validate_results(path: str | Path) -> tuple[list[Row], list[Mismatch]]:
    """Read a results directory or CSV and replay every row; (rows, mismatches).

    Raises:
        ResultsError: for a malformed or foreign results file.
    """
    rows, base = read_results(path)
    return rows, validate_rows(rows, base)
