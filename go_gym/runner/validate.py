"""``go-gym validate``: check that every row is one the runner wrote, and replay it.

A row is trusted only if, without its agent, it follows from the suite, the runner and the
simulator. `validate_rows` checks each row in three steps:

1. **The row against the suite and the runner** (from the row alone): the suite is the graph
   id's prefix, the graph and task are known, cluster and device count are the suite entry's
   (the runner's env, `go_gym.runner.cells.make_env`), profile and OOM penalty are the
   runner's, ``1 <= evaluations <= budget + 1`` (fit's budget and the measured step, as
   `go_gym.runner.cells.run_cell` enforces), the agent config is the canonical JSON object
   the runner writes without the keys it owns (seed, budget), and ``decisions_file`` is the
   path the runner writes for the row's cell key: ``decisions/<key>.npz``, inside the
   results directory. The key is made from graph, task, agent, config, budget and seed, so
   an edit of any of them shows as a decisions file of another cell.
2. **The decisions file**: its SHA-256, loaded without pickle, holding exactly the arrays
   the task's cell writes: the decisions the agent makes, the decisions the task fixes (the
   human-expert placement for scheduling and fusion), which must equal the runner's, the
   agent's ``action_<task>`` arrays, which must agree with the decisions, and an optional
   curve (``curve_evals`` non-decreasing within ``0..evaluations``, ``curve_best``
   non-increasing and never under the lower bound, which bounds every decision).
3. **The replay**: `go_gym.sim.simulate` must give the row's step time (relative tolerance
   `RTOL`) and validity; the comparators (lower bound, TensorFlow default, human expert) are
   recomputed, and the derived columns must follow from them.

Across rows, no cell (graph, task, agent, config, budget, seed) may appear twice. Validating
a results directory also checks its files: every ``cells/`` file is named after its row's
cell key and holds one row, and ``results.csv`` holds exactly the rows of ``cells/``.

What validate does **not** prove: that the named agent, with that config, seed and budget,
made those decisions, or spent that many evaluations. It replays decisions; it does not
re-run agents. Agent, config, seed and budget are only cross-checked against the file names
the runner derives from them, so an edit that also renames the files consistently passes,
and ``evaluations`` is only checked against its bounds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from go_gym.runner.results import (
    CELLS_DIR,
    DECISIONS_DIR,
    RESULTS_FILE,
    Row,
    cell_files,
    read_csv,
    read_results,
)

__all__ = ["RTOL", "Mismatch", "validate_files", "validate_results", "validate_rows"]

#: Relative tolerance of every comparison (the simulator is deterministic; this only absorbs
#: floating-point noise of the derived ratios).
RTOL = 1e-9

#: The arrays a decisions file may hold besides the decisions and the agent's actions.
CURVE = ("curve_evals", "curve_best")


@dataclass(frozen=True)
class Mismatch:
    """A row that does not reproduce (which, and what differs), or, with ``row`` None, a
    problem of the results files themselves (``problem`` names the file)."""

    row: Row | None
    problem: str

    def __str__(self) -> str:
        r = self.row
        if r is None:
            return self.problem
        return f"{r.graph} {r.task} {r.agent} seed {r.seed}: {self.problem}"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0)


def _identity(row: Row) -> tuple[str, str, str, str, int, int]:
    """What makes a cell: two rows with the same identity are the same cell run twice."""
    return (row.graph, row.task, row.agent, row.agent_config, row.budget, row.seed)


def _cell_key(row: Row) -> str:
    from go_gym.runner.cells import Cell

    return Cell(row.graph, row.task, row.agent, row.seed, row.budget, row.agent_config).key


@dataclass
class _Setup:
    """What the runner measured a (graph, task) on, built once: the graph, the cluster, the
    env's choices per decision and its fixed decisions, the colocation leaders and the
    comparators (lower bound, TF default, human expert)."""

    graph: Any
    cluster: Any
    decides: tuple[str, ...]
    choices: dict[str, int]
    fixed: dict[str, NDArray[np.int64]]
    leader: NDArray[np.int64]
    comparators: tuple[float, float, float]


def _setup(graph_id: str, task: str) -> _Setup:
    from go_gym.envs.graph_env import colocation_leaders
    from go_gym.runner.cells import (
        OOM_PENALTY,
        comparators,
        fixed_decisions,
        make_env,
    )

    env = make_env(graph_id, task)
    core = env.unwrapped
    try:
        return _Setup(
            graph=core.graph,
            cluster=core.cluster,
            decides=tuple(core.decides),
            choices={name: int(core.n_choices(name)) for name in core.decides},
            fixed=fixed_decisions(core),
            leader=colocation_leaders(core.graph),
            comparators=comparators(core.graph, core.cluster, OOM_PENALTY, task),
        )
    finally:
        env.close()


def _known_graph(graph_id: str) -> bool:
    from go_gym.zoo import get_entry

    try:
        get_entry(graph_id)
    except KeyError:
        return False
    return True


def _row_problems(row: Row) -> list[str]:
    """Step 1 of the module docstring: what the row alone must satisfy."""
    from go_gym.runner.cells import (
        OOM_PENALTY,
        PROFILE,
        RESERVED_CONFIG_KEYS,
        TASKS,
        canonical_config,
        suite_machine,
    )

    problems = []
    suite = row.graph.partition("/")[0]
    if row.suite != suite:
        problems.append(f"suite {row.suite!r} is not the graph id's suite {suite!r}")
    try:
        cluster, n_devices = suite_machine(row.graph)
    except KeyError:
        problems.append(f"graph {row.graph!r} is in no suite")
    else:
        if row.cluster != cluster:
            problems.append(f"cluster {row.cluster!r} is not the suite's {cluster!r}")
        if row.n_devices != n_devices:
            problems.append(f"n_devices {row.n_devices} is not the suite's {n_devices}")
    if row.task not in TASKS:
        problems.append(f"task {row.task!r} is not one of {list(TASKS)}")
    if row.profile != PROFILE:
        problems.append(f"profile {row.profile!r} is not {PROFILE!r}")
    if row.oom_penalty != OOM_PENALTY:
        problems.append(f"oom_penalty {row.oom_penalty!r} is not the runner's {OOM_PENALTY!r}")
    if row.seed < 0:
        problems.append(f"seed {row.seed} is negative")
    if not 1 <= row.evaluations <= row.budget + 1:
        problems.append(
            f"evaluations {row.evaluations} is outside 1..budget + 1 = {row.budget + 1} "
            "(the budget of fit and the measured step)"
        )
    try:
        config = json.loads(row.agent_config)
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict) or canonical_config(config) != row.agent_config:
        problems.append(f"agent_config {row.agent_config!r} is not the canonical JSON object")
    else:
        reserved = [key for key in RESERVED_CONFIG_KEYS if key in config]
        if reserved:
            problems.append(f"agent_config sets {reserved}, which the runner owns")
    expected = f"{DECISIONS_DIR}/{_cell_key(row)}.npz"
    if row.decisions_file != expected:
        problems.append(
            f"decisions_file {row.decisions_file!r} is not {expected!r}, the file of this "
            "row's cell (graph, task, agent, agent_config, budget, seed)"
        )
    return problems


def _decision_problems(row: Row, arrays: dict[str, NDArray], setup: _Setup) -> list[str]:
    """Step 2 of the module docstring: the arrays fit the task and agree with each other."""
    n = setup.graph.n_ops
    actions = {f"action_{name}": name for name in setup.decides}
    allowed = {*setup.decides, *setup.fixed, *actions, *CURVE}
    problems = []
    extra = sorted(set(arrays) - allowed)
    if extra:
        problems.append(
            f"decisions file has arrays the {row.task} task does not set: {extra} "
            f"(it holds {sorted(allowed)})"
        )
    missing = sorted({*setup.decides, *setup.fixed, *actions} - set(arrays))
    if missing:
        problems.append(f"decisions file lacks {missing}")
    for name, expected in setup.fixed.items():
        if name in arrays and not np.array_equal(arrays[name], expected):
            problems.append(f"{name} is not the {row.task} task's fixed {name}")
    for action_name, name in actions.items():
        if action_name not in arrays or name not in arrays:
            continue
        action, decision = arrays[action_name], arrays[name]
        if action.shape != (n,) or action.dtype.kind not in "iu":
            problems.append(f"{action_name} is not {n} integers ({action.dtype} {action.shape})")
            continue
        if action.min(initial=0) < 0 or action.max(initial=0) >= setup.choices[name]:
            problems.append(f"{action_name} has values outside 0..{setup.choices[name] - 1}")
        applied = action[setup.leader] if name == "placement" else action
        if not np.array_equal(decision, applied):
            problems.append(f"{name} does not follow from {action_name}")
    problems += _curve_problems(row, arrays)
    return problems


def _curve_problems(row: Row, arrays: dict[str, NDArray]) -> list[str]:
    present = [name for name in CURVE if name in arrays]
    if not present:
        return []
    if len(present) == 1:
        return [f"decisions file has {present[0]} without its pair ({' and '.join(CURVE)})"]
    evals, best = arrays["curve_evals"], arrays["curve_best"]
    if evals.ndim != 1 or best.shape != evals.shape or evals.size == 0:
        return [f"curve_evals {evals.shape} and curve_best {best.shape} are not one curve"]
    if evals.dtype.kind not in "iu" or best.dtype.kind != "f" or not np.all(np.isfinite(best)):
        return ["curve_evals must be integers and curve_best finite numbers"]
    problems = []
    if np.any(np.diff(evals) < 0) or evals[0] < 0 or evals[-1] > row.evaluations:
        problems.append(
            f"curve_evals is not non-decreasing within 0..evaluations = {row.evaluations}"
        )
    if np.any(np.diff(best) > 0):
        problems.append("curve_best is not a best-so-far curve (it increases)")
    if float(best.min()) < row.lower_bound_s * (1 - RTOL):
        problems.append(
            f"curve_best reaches {float(best.min())!r} s, under the lower bound "
            f"{row.lower_bound_s!r} s"
        )
    return problems


def _check_row(row: Row, base: Path, cache: dict[tuple[str, str], _Setup]) -> list[str]:
    """Every problem of ``row`` (empty: it reproduces); see the module docstring."""
    from go_gym.runner.cells import OOM_PENALTY, PROFILE, TASKS, load_decisions
    from go_gym.sim import simulate

    problems = _row_problems(row)
    path = base / row.decisions_file
    try:
        inside = path.resolve().is_relative_to(base.resolve())
    except OSError as exc:
        return [*problems, f"decisions file unreadable: {exc}"]
    if not inside:
        return [*problems, f"decisions file {row.decisions_file} is outside the results dir"]
    try:
        blob = path.read_bytes()
    except OSError as exc:
        return [*problems, f"decisions file unreadable: {exc}"]
    if hashlib.sha256(blob).hexdigest() != row.decisions_sha256:
        return [*problems, f"decisions file {row.decisions_file} does not match its SHA-256"]
    try:
        decisions = load_decisions(path)
    except (ValueError, OSError) as exc:
        return [*problems, f"decisions file {row.decisions_file} is not a NumPy .npz: {exc}"]
    if "placement" not in decisions:
        return [*problems, f"decisions file {row.decisions_file} has no placement"]

    if row.task not in TASKS or not _known_graph(row.graph):
        return problems  # nothing to replay on (step 1 said so)
    key = (row.graph, row.task)
    if key not in cache:
        cache[key] = _setup(row.graph, row.task)
    setup = cache[key]
    graph, cluster = setup.graph, setup.cluster
    bound, tf_default, human = setup.comparators
    if graph.n_ops != row.n_ops:
        return [*problems, f"graph has {graph.n_ops} ops, the row says {row.n_ops}"]
    problems += _decision_problems(row, decisions, setup)
    try:
        result = simulate(
            graph,
            cluster,
            decisions["placement"],
            decisions.get("priority"),
            decisions.get("fusion"),
            profile=PROFILE,
        )
    except ValueError as exc:
        return [*problems, f"the simulator rejects the saved decisions: {exc}"]
    if not _close(result.step_time, row.step_time_s):
        problems.append(f"step time replays as {result.step_time!r} s, row has {row.step_time_s!r}")
    if bool(result.valid) != row.valid:
        problems.append(f"valid replays as {bool(result.valid)}, row has {row.valid}")
    effective = result.step_time if result.valid else OOM_PENALTY * bound
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
    return problems


def validate_rows(rows: list[Row], base: Path) -> list[Mismatch]:
    """The rows that do not reproduce, one `Mismatch` each with every problem found (empty:
    all do). ``base``: the results directory, where decision paths start."""
    cache: dict[tuple[str, str], _Setup] = {}
    counts = Counter(_identity(row) for row in rows)
    out = []
    for row in rows:
        problems = _check_row(row, Path(base), cache)
        if counts[_identity(row)] > 1:
            problems.append(
                f"{counts[_identity(row)]} rows of this cell (graph, task, agent, "
                "agent_config, budget, seed); a cell has one"
            )
        if problems:
            out.append(Mismatch(row, "; ".join(problems)))
    return out


def _differing_columns(a: Row, b: Row) -> list[str]:
    return [f.name for f in fields(Row) if getattr(a, f.name) != getattr(b, f.name)]


def validate_files(root: Path) -> tuple[list[Row], list[Mismatch]]:
    """The rows of results directory ``root``'s cell files, and the problems of its files:
    a cell file not named after its row's cell key or not holding one row, and a
    ``results.csv`` that is missing or does not hold exactly the rows of ``cells/``.

    Raises:
        ResultsError: for a malformed cell file or results.csv.
    """
    root = Path(root)
    rows: list[Row] = []
    problems: list[Mismatch] = []
    by_identity: dict[tuple[str, str, str, str, int, int], tuple[Row, str]] = {}
    for path in cell_files(root):
        found = read_csv(path)
        if len(found) != 1:
            problems.append(Mismatch(None, f"{CELLS_DIR}/{path.name} holds {len(found)} rows"))
        for row in found:
            rows.append(row)
            key = _cell_key(row)
            if path.stem != key:
                problems.append(
                    Mismatch(
                        None,
                        f"{CELLS_DIR}/{path.name} holds the row of cell {key} "
                        f"({row.graph} {row.task} {row.agent} seed {row.seed}), "
                        f"whose file is {CELLS_DIR}/{key}.csv",
                    )
                )
            by_identity.setdefault(_identity(row), (row, f"{CELLS_DIR}/{path.name}"))
    rows.sort(key=Row.sort_key)
    merged = root / RESULTS_FILE
    if not merged.is_file():
        problems.append(
            Mismatch(None, f"{merged}: missing (re-run the bench command to merge {CELLS_DIR}/)")
        )
        return rows, problems
    listed = read_csv(merged)
    counts = Counter(_identity(row) for row in listed)
    for (graph, task, agent, _, _, seed), times in counts.items():
        if times > 1:
            what = f"the row {graph} {task} {agent} seed {seed}"
            problems.append(Mismatch(None, f"{merged}: {what} is listed {times} times"))
    for row in listed:
        what = f"the row {row.graph} {row.task} {row.agent} seed {row.seed}"
        if _identity(row) not in by_identity:
            problems.append(Mismatch(None, f"{merged}: {what} has no file in {CELLS_DIR}/"))
            continue
        cell_row, name = by_identity[_identity(row)]
        columns = _differing_columns(cell_row, row)
        if columns:
            problems.append(Mismatch(None, f"{merged}: the row of {name} differs in {columns}"))
    for identity, (_, name) in by_identity.items():
        if identity not in counts:
            problems.append(Mismatch(None, f"{merged}: lacks the row of {name}"))
    return rows, problems


def validate_results(path: str | Path) -> tuple[list[Row], list[Mismatch]]:
    """Read a results directory or CSV and check every row (`validate_rows`), and for a
    directory with cell files its files too (`validate_files`); (rows, mismatches).

    Raises:
        ResultsError: for a malformed or foreign results file, or a path without results.
    """
    path = Path(path)
    if path.is_dir() and cell_files(path):
        rows, problems = validate_files(path)
        return rows, problems + validate_rows(rows, path)
    rows, base = read_results(path)
    return rows, validate_rows(rows, base)
