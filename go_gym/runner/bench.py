"""``go-gym bench``: plan the cells of a suite x agents x seeds run, run the missing ones, merge.

The driver is the only writer. For each finished cell it writes the decisions file, then the
cell's CSV (both atomically); the CSV's existence marks the cell done, so a re-run with the
same arguments skips it (resume), and a crash or Ctrl-C loses only cells still in flight.
At the end (also after Ctrl-C or an error) the cell files are merged into ``results.csv``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from go_gym.runner.cells import (
    TASKS,
    Cell,
    CellFailure,
    applicable_agents,
    canonical_config,
    check_agent_configs,
    make_env,
)
from go_gym.runner.executors import EXECUTORS, default_workers
from go_gym.runner.results import (
    CELLS_DIR,
    ERRORS_DIR,
    Row,
    atomic_write_bytes,
    format_rows,
    merge_cells,
)

__all__ = ["BenchReport", "BenchSpec", "expand_agents", "plan", "resolve_graph_id", "run_bench"]

#: ``--agents`` shorthands.
ALL = "all"  # every registered agent, plug-ins included, that can do the task
ALL_BASELINES = "all-baselines"  # the built-in heuristics and searches that can do the task


@dataclass
class BenchSpec:
    """What a benchmark run covers and how it runs (the ``go-gym bench`` arguments).

    Attributes:
        suite: suite name (`go_gym.zoo.list_suites`).
        task: a key of `go_gym.runner.cells.TASKS`.
        agents: registry names, or ``["all"]`` / ``["all-baselines"]``.
        seeds: the seeds (each cell runs once per seed).
        budget: simulator evaluations for agents with ``fit``.
        out: the results directory.
        graphs: a subset of the suite's graph ids or names (default: all).
        agent_configs: agent name -> extra keyword arguments for `agents.make`.
        workers: worker processes (Ray: CPUs of a local instance).
        executor: a key of `go_gym.runner.executors.EXECUTORS`.
        address: Ray cluster address.
        progress: show a progress bar.
    """

    suite: str
    task: str
    agents: Sequence[str]
    seeds: Sequence[int]
    budget: int
    out: Path
    graphs: Sequence[str] = ()
    agent_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: int | None = None
    executor: str = "local"
    address: str | None = None
    progress: bool = True


@dataclass
class BenchReport:
    """What a run did: cells planned, skipped as done, finished now, failed; the merged rows."""

    planned: int
    already_done: int
    finished: int
    failures: list[CellFailure]
    rows: list[Row]
    skipped_agents: list[str]
    interrupted: bool = False
    wall_time_s: float = 0.0


def expand_agents(requested: Sequence[str]) -> list[str]:
    """Registry names from ``--agents`` (shorthands expanded, order kept, duplicates dropped).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    import agents

    known = agents.names()
    out: list[str] = []
    for name in requested:
        if name == ALL:
            out.extend(known)
        elif name == ALL_BASELINES:
            out.extend(baseline_names())
        elif name in known:
            out.append(name)
        else:
            raise ValueError(
                f"unknown agent {name!r}; known: {', '.join(known)} (or {ALL}, {ALL_BASELINES})"
            )
    return list(dict.fromkeys(out))


def baseline_names() -> list[str]:
    """The built-in baselines (`agents.registry.BASELINES`): every agent but the learned."""
    from agents.registry import BASELINES

    return list(BASELINES)


def resolve_graph_id(item: str, suite: str) -> str:
    """The suite graph id of ``item``: a full id (``quick-v0/rnnlm-2``) or a name of ``suite``
    (``rnnlm-2``), as ``--graphs`` takes them.

    Raises:
        ValueError: for an unknown suite, or a graph that is not in it (listing its graphs).
    """
    from go_gym.zoo import list_graphs

    try:
        ids = list_graphs(suite)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    full = item if "/" in item else f"{suite}/{item}"
    if full not in ids:
        raise ValueError(f"graph {item!r} is not in suite {suite!r}; its graphs: {ids}")
    return full


def _graph_ids(suite: str, subset: Sequence[str]) -> list[str]:
    from go_gym.zoo import list_graphs

    if not subset:
        try:
            return list_graphs(suite)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    return list(dict.fromkeys(resolve_graph_id(item, suite) for item in subset))


def plan(spec: BenchSpec) -> tuple[list[Cell], list[str]]:
    """Every cell of the run (graphs x agents x seeds) and the agents left out.

    Shorthand agent lists keep only the agents that can act on the task; an agent named
    explicitly that cannot is an error, since the user asked for it. Each agent of
    ``agent_configs`` is made once with its options on the first graph, so a bad option is
    an error here rather than a failure of every one of its cells.

    Raises:
        ValueError: for an unknown suite, graph, task or agent, an agent that cannot do the
            task, an agent config that sets ``seed`` or ``budget`` or that the agent rejects,
            agent names that would share cell files, a negative budget, fewer than one
            worker, or no, repeated or negative seeds.
    """
    if spec.task not in TASKS:
        raise ValueError(f"unknown task {spec.task!r}; known tasks: {', '.join(TASKS)}")
    if spec.budget < 0:
        raise ValueError(f"budget must be >= 0, got {spec.budget}")
    if spec.workers is not None and spec.workers < 1:
        raise ValueError(f"workers must be >= 1, got {spec.workers}")
    if not spec.seeds:
        raise ValueError("no seeds")
    if len(set(spec.seeds)) < len(spec.seeds) or min(spec.seeds) < 0:
        raise ValueError(f"seeds must be distinct and >= 0, got {list(spec.seeds)}")
    graph_ids = _graph_ids(spec.suite, spec.graphs)
    names = expand_agents(spec.agents)
    env = make_env(graph_ids[0], spec.task)
    try:
        ok, skipped, unavailable = applicable_agents(names, env)
        explicit = [n for n in skipped if n in spec.agents]
        if explicit:
            raise ValueError(f"agents {explicit} cannot act on the {spec.task} task")
        broken = {n: why for n, why in unavailable.items() if n in spec.agents}
        if broken:
            raise ValueError(f"agents cannot be made: {broken}")
        skipped += [f"{n} (unavailable: {why})" for n, why in unavailable.items()]
        unknown_cfg = sorted(set(spec.agent_configs) - set(ok))
        if unknown_cfg:
            raise ValueError(f"--agent-config names agents not in this run: {unknown_cfg}")
        check_agent_configs(spec.agent_configs, env, spec.seeds[0])
    finally:
        env.close()
    cells = [
        Cell(
            gid, spec.task, name, seed, spec.budget, canonical_config(spec.agent_configs.get(name))
        )
        for gid in graph_ids
        for name in ok
        for seed in spec.seeds
    ]
    _check_distinct_keys(cells)
    return cells, skipped


def _check_distinct_keys(cells: list[Cell]) -> None:
    """Refuse cells that would share a file (one row would overwrite the other, and a resume
    would skip the second). `Cell.key` hashes unsafe names, so this takes names made to
    look like another name's hashed form."""
    owner: dict[str, Cell] = {}
    for cell in cells:
        other = owner.setdefault(cell.key, cell)
        if other is not cell:
            raise ValueError(
                f"agents {other.agent!r} and {cell.agent!r} would share the cell file "
                f"{cell.key}.csv; rename one of them"
            )


def run_bench(spec: BenchSpec, log: Callable[[str], None] | None = None) -> BenchReport:
    """Run the cells of ``spec`` that are not done yet; merge everything into results.csv.

    Returns a report even when interrupted (Ctrl-C sets ``interrupted``); files written
    before the interruption are complete and count as done on the next run.

    Raises:
        ValueError: for an unknown executor, an ``address`` without the Ray executor (it
            would be ignored), or anything `plan` refuses.
    """
    say = log or (lambda message: print(message, file=sys.stderr))
    if spec.executor not in EXECUTORS:
        raise ValueError(f"unknown executor {spec.executor!r}; known: {', '.join(EXECUTORS)}")
    if spec.address is not None and spec.executor != "ray":
        raise ValueError(
            f"a Ray cluster address ({spec.address!r}) needs the ray executor "
            f"(--executor ray), not {spec.executor!r}"
        )
    t0 = time.perf_counter()
    out = Path(spec.out)
    cells, skipped = plan(spec)
    cell_dir, error_dir = out / CELLS_DIR, out / ERRORS_DIR
    todo = [c for c in cells if not (cell_dir / f"{c.key}.csv").exists()]
    done_before = len(cells) - len(todo)
    workers = default_workers() if spec.workers is None else spec.workers
    if spec.executor == "serial":
        workers = 1
    where = {"serial": "in this process", "ray": f"Ray ({workers} CPUs if local)"}
    say(
        f"{spec.suite} / {spec.task}: {len(cells)} cells "
        f"({len({c.graph for c in cells})} graphs x {len({c.agent for c in cells})} agents x "
        f"{len(spec.seeds)} seeds), {done_before} already done, {len(todo)} to run "
        f"{where.get(spec.executor, f'on {workers} workers')} -> {out}"
    )
    if skipped:
        say(f"agents left out (cannot do {spec.task}, or unavailable): {', '.join(skipped)}")

    failures: list[CellFailure] = []
    finished = 0
    interrupted = False
    bar = _progress(len(todo), spec.progress)
    try:
        outcomes = EXECUTORS[spec.executor](todo, workers=workers, address=spec.address)
        for outcome in outcomes:
            key = outcome.cell.key
            if isinstance(outcome, CellFailure):
                failures.append(outcome)
                text = f"{outcome.error}\n\n{outcome.traceback}"
                atomic_write_bytes(error_dir / f"{key}.txt", text.encode())
                say(f"FAILED {key}: {outcome.error}")
            else:
                # Decisions first: a cell file never points at a decisions file not yet written.
                atomic_write_bytes(out / outcome.row.decisions_file, outcome.decisions)
                atomic_write_bytes(cell_dir / f"{key}.csv", format_rows([outcome.row]).encode())
                (error_dir / f"{key}.txt").unlink(missing_ok=True)
                finished += 1
            if bar is not None:
                bar.set_postfix_str(f"{outcome.cell.agent} {outcome.cell.graph}", refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        say(f"\ninterrupted: {finished} cells written this run; re-run the command to resume")
    except BrokenExecutor as exc:  # a worker process died (killed, out of memory, crashed)
        raise RuntimeError(
            f"a worker process died ({exc}); the {finished} cells finished this run are kept, "
            "re-run the command to resume (fewer --workers if memory ran out)"
        ) from exc
    finally:
        if bar is not None:
            bar.close()
        rows = merge_cells(out) if out.exists() else []
    return BenchReport(
        planned=len(cells),
        already_done=done_before,
        finished=finished,
        failures=failures,
        rows=rows,
        skipped_agents=skipped,
        interrupted=interrupted,
        wall_time_s=time.perf_counter() - t0,
    )


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", desc="bench", dynamic_ncols=True, smoothing=0.1)
