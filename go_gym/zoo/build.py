"""Build, check and tabulate the stored benchmark suites.

Usage::

    python -m go_gym.zoo.build                       # rebuild every stored suite's files
    python -m go_gym.zoo.build --suite quick-v0      # one suite
    python -m go_gym.zoo.build --suite quick-v0 --only wavenet-2x6
    python -m go_gym.zoo.build --only gnmt-3         # that graph in every suite that has one
    python -m go_gym.zoo.build --check               # rebuild into a temp dir, compare, exit 1
    python -m go_gym.zoo.build --table               # the README table of every graph

The stored suites are go-paper-v0, quick-v0 and quick-train-v0 (`STORED_SUITES`). ``--only``
names graphs within a suite (``wavenet-2x6``, not ``quick-v0/wavenet-2x6``); without
``--suite`` it selects the stored suites that have such a graph, and a name no selected suite
has is an error before anything is built or written.

Building traces each workload of `go_gym.zoo.models` (on the ``meta`` device, so nothing is
allocated) with `go_gym.importers.torch.from_torch` and writes ``.gograph`` files into
``go_gym/zoo/data/<suite>/``. Published suites are frozen: rebuilding one is only for a new
suite version or to check that the installed torch still reproduces it (``--check`` compares
op and edge counts and `OpGraph.checksum` with the files that ship).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind
from go_gym.zoo.suites import DATA_DIR, SUITES, SuiteEntry, get_graph, graph_path

__all__ = ["CheckResult", "build_entry", "build_suite", "check_suite", "main", "suite_table"]

#: Suites whose graphs are stored as files (the others are generated on demand).
STORED_SUITES: tuple[str, ...] = ("go-paper-v0", "quick-v0", "quick-train-v0")

GB = 1e9


def _stored_entries(suite: str, only: Sequence[str] = ()) -> list[SuiteEntry]:
    if suite not in SUITES:
        raise SystemExit(f"unknown suite {suite!r}; known suites: {', '.join(SUITES)}")
    entries = [e for e in SUITES[suite].values() if e.source == "zoo"]
    if only:
        unknown = sorted(set(only) - {e.name for e in entries})
        if unknown:
            known = ", ".join(e.name for e in entries)
            raise SystemExit(f"suite {suite!r} has no graph {unknown}; it has: {known}")
        entries = [e for e in entries if e.name in only]
    return entries


def build_entry(entry: SuiteEntry) -> OpGraph:
    """Trace the workload of a zoo entry into its graph (imports torch and the zoo models)."""
    from go_gym.importers.torch import from_torch
    from go_gym.zoo.models import build_workload, layer_index

    spec = build_workload(entry.workload, device="meta")
    example = spec.example_inputs("meta")
    n = spec.n_inputs
    return from_torch(
        spec.model,
        example[:n],
        spec.loss_fn,
        entry.optimizer,
        name=entry.graph_id,
        targets=example[n:],
        layer_rule=lambda model, scopes: layer_index,
    )


def build_suite(
    suite: str, out_dir: Path | None = None, only: Sequence[str] = (), verbose: bool = True
) -> dict[str, OpGraph]:
    """Trace every stored graph of ``suite`` and write it under ``out_dir/<suite>/``."""
    from go_gym.io import save_graph

    graphs: dict[str, OpGraph] = {}
    for entry in _stored_entries(suite, only):
        t0 = time.perf_counter()
        graph = build_entry(entry)
        traced = time.perf_counter() - t0
        path = save_graph(graph, graph_path(entry.graph_id, out_dir))
        graphs[entry.graph_id] = graph
        if verbose:
            print(
                f"{entry.graph_id}: {graph.n_ops} ops, {graph.n_edges} edges, "
                f"{path.stat().st_size / 2**20:.2f} MiB, traced in {traced:.1f} s",
                flush=True,
            )
    return graphs


@dataclass(frozen=True)
class CheckResult:
    """How a rebuilt graph compares with the stored one."""

    graph_id: str
    ok: bool
    message: str


def check_suite(suite: str, only: Sequence[str] = ()) -> list[CheckResult]:
    """Rebuild ``suite`` into a temporary directory and compare it with the shipped files."""
    from go_gym.io import load_graph

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = build_suite(suite, Path(tmp), only, verbose=False)
        for graph_id, new in rebuilt.items():
            path = graph_path(graph_id)
            if not path.is_file():
                results.append(CheckResult(graph_id, False, f"no stored file {path}"))
                continue
            old = load_graph(path)
            diffs = []
            if (old.n_ops, old.n_edges) != (new.n_ops, new.n_edges):
                diffs.append(
                    f"stored {old.n_ops} ops / {old.n_edges} edges, rebuilt "
                    f"{new.n_ops} ops / {new.n_edges} edges"
                )
            if old.checksum() != new.checksum():
                diffs.append(f"checksum {old.checksum()[:12]} != rebuilt {new.checksum()[:12]}")
            results.append(
                CheckResult(
                    graph_id,
                    not diffs,
                    "; ".join(diffs) or f"identical ({new.n_ops} ops, {new.n_edges} edges)",
                )
            )
    return results


def suite_table(suite: str) -> str:
    """The markdown table of a suite: sizes, memory, single-device step time, lower bound.

    Columns: ops, edges, total FLOPs of one step, parameter memory (weights only; "-" for
    synthetic graphs, which have no parameter ops) and
    persistent memory (weights + gradients + optimizer state), peak memory and step time of
    the whole step on ONE device of the suite's cluster (simulated, "go" profile, no fusion;
    "OOM" marks a peak above the device's memory), and the lower bound on the step time on the
    suite's full cluster (`go_gym.sim.lower_bound`).
    """
    from go_gym.cluster import Cluster
    from go_gym.importers.torch import OPTIMIZERS
    from go_gym.sim import lower_bound, simulate

    rows = [
        "| graph | cluster | ops | edges | FLOPs | params | params + grads + opt state "
        "| peak, 1 device | step, 1 device (s) | lower bound (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in SUITES[suite].values():
        graph = get_graph(entry.graph_id)
        one = Cluster.preset(entry.cluster, 1)
        res = simulate(graph, one, np.zeros(graph.n_ops, np.int64))
        bound = lower_bound(graph, entry.make_cluster())
        is_param = graph.op_kind == OpKind.PARAMETER
        persistent = float(graph.persistent_bytes.sum())
        factor = OPTIMIZERS.get(entry.optimizer, 1) if entry.source == "zoo" else 1
        weights = float(graph.persistent_bytes[is_param].sum()) / factor
        peak = float(res.peak_memory[0])
        oom = " **OOM**" if peak > one.memory_bytes[0] else ""
        rows.append(
            f"| `{entry.graph_id}` | {entry.n_devices}x {entry.cluster} | {graph.n_ops:,} "
            f"| {graph.n_edges:,} | {_si(graph.flops.sum())} "
            f"| {_si(weights, 'B') if entry.source == 'zoo' else '-'} "
            f"| {_si(persistent, 'B')} | {_si(peak, 'B')}{oom} | {res.step_time:.3g} "
            f"| {bound:.3g} |"
        )
    return "\n".join(rows)


def _si(value: float, unit: str = "") -> str:
    """``1.23e12`` -> ``"1.23 T"``: three significant digits and an SI prefix."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m go_gym.zoo.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--suite",
        action="append",
        choices=list(SUITES),
        help="suite to build/check/tabulate (repeatable; default: the stored suites)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="graph name within the suite, e.g. wavenet-2x6 (repeatable; default: all)",
    )
    parser.add_argument("--check", action="store_true", help="rebuild into a temp dir and compare")
    parser.add_argument("--table", action="store_true", help="print the markdown table")
    parser.add_argument("--out", type=Path, default=None, help=f"output root (default {DATA_DIR})")
    args = parser.parse_args(argv)
    suites = args.suite or (list(SUITES) if args.table else list(STORED_SUITES))
    if args.table:
        for suite in suites:
            print(f"\n### {suite}\n")
            print(suite_table(suite))
        return 0
    only: dict[str, list[str]] = {}  # suite -> the --only names it has
    if args.only:
        stored = [s for s in suites if s in STORED_SUITES]
        has = {s: {e.name for e in _stored_entries(s)} for s in stored}
        missing = [n for n in args.only if not any(n in has[s] for s in stored)]
        if missing:
            known = "; ".join(f"{s}: {', '.join(sorted(has[s]))}" for s in stored)
            parser.error(
                f"no {'selected ' if args.suite else ''}stored suite has a graph named "
                f"{', '.join(map(repr, missing))} (--only takes names within a suite, such as "
                f"wavenet-2x6); {known or 'no stored suite selected'}"
            )
        only = {s: [n for n in args.only if n in has[s]] for s in stored}
        suites = [s for s in stored if only[s]]
    status = 0
    for suite in suites:
        if suite not in STORED_SUITES:
            print(f"{suite}: generated on demand, nothing to build")
            continue
        names = only.get(suite, [])
        if args.check:
            for r in check_suite(suite, names):
                print(f"{'ok  ' if r.ok else 'DIFF'} {r.graph_id}: {r.message}", flush=True)
                status |= 0 if r.ok else 1
        else:
            build_suite(suite, args.out, names)
    return status


if __name__ == "__main__":
    sys.exit(main())
