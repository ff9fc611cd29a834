"""Versioned benchmark suites: stable graph ids, each with the cluster it is measured on.

A graph id is ``"<suite>/<name>"``, e.g. ``"go-paper-v0/gnmt-8"`` (CompilerGym-style URIs
without the scheme). Four suites:

- ``go-paper-v0``: the 14 workloads of the GO paper's placement table (Zhou et al. 2020),
  with the paper's device counts, on ``p100`` clusters: 16 GB Tesla P100s on PCIe, which is
  what the paper's measurements most likely ran on.
- ``quick-v0``: small variants of the same six families (each well under 3,000 ops) for
  ``make run``, examples and tests.
- ``quick-train-v0``: other sizes of the quick variants (depth, batch, width; two per family),
  a training split for transfer to ``quick-v0``: pre-train here, test zero-shot there.
- ``synthetic-v0``: seeded layered random DAGs (`go_gym.generators.random_layered_graph`),
  from 500 to 10,000 ops on 4 P100s, and one of 80,000 ops on 8 H100s (its parameters alone
  take ~240 GB), for transfer training and scale benchmarks.

A suite is frozen once published. The graphs of the three traced suites (``go-paper-v0``,
``quick-v0``, ``quick-train-v0``) are stored in the package as ``.gograph`` files
(``go_gym/zoo/data/<suite>/<name>.gograph``), written once by
``python -m go_gym.zoo.build`` from the zoo's model definitions; `get_graph` only reads them,
so ``gym.make`` never traces, never imports torch, and a newer torch cannot silently change a
published benchmark (``python -m go_gym.zoo.build --check`` says whether a rebuild with the
installed torch would). Synthetic graphs are a pure function of their generator arguments and
are generated on first use, then cached in memory. Any change to a published graph means a new
suite version (``go-paper-v1``), never an edit of ``v0``.

This module imports neither torch nor the zoo's models.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph

__all__ = [
    "DATA_DIR",
    "SUITES",
    "SuiteEntry",
    "get_entry",
    "get_graph",
    "graph_path",
    "list_graphs",
    "list_suites",
]

#: Where the frozen graph files of the traced suites live.
DATA_DIR: Path = Path(__file__).resolve().parent / "data"

GRAPH_SUFFIX = ".gograph"

#: The optimizers `go_gym.importers.torch.from_torch` can trace into a step.
TracedOptimizer = Literal["sgd", "adam"]


@dataclass(frozen=True)
class SuiteEntry:
    """One benchmark graph: where it comes from and the cluster it is measured on.

    Attributes:
        graph_id: ``"<suite>/<name>"``.
        suite: the suite's name, e.g. ``"go-paper-v0"``.
        name: the graph's name within the suite, e.g. ``"gnmt-8"``.
        cluster: the `Cluster` preset name (`go_gym.cluster.PRESETS`).
        n_devices: number of devices of the cluster.
        source: ``"zoo"`` (traced from a `go_gym.zoo.models` workload, stored as a file) or
            ``"synthetic"`` (generated on first use).
        workload: the zoo workload id (``go_gym.zoo.models.build_workload``), for zoo graphs.
        optimizer: the optimizer traced into the step (``"sgd"`` or ``"adam"``).
        generator_kwargs: arguments of `random_layered_graph`, for synthetic graphs.
        description: one line for tables and docs.
    """

    graph_id: str
    suite: str
    name: str
    cluster: str
    n_devices: int
    source: str
    workload: str = ""
    optimizer: TracedOptimizer = "adam"
    generator_kwargs: MappingProxyType[str, Any] = field(
        default_factory=lambda: MappingProxyType({})
    )
    description: str = ""

    def make_cluster(self) -> Cluster:
        """The cluster this graph is benchmarked on (``Cluster.preset(cluster, n_devices)``)."""
        return Cluster.preset(self.cluster, self.n_devices)


def _zoo(
    suite: str,
    name: str,
    workload: str,
    n_devices: int,
    optimizer: TracedOptimizer,
    description: str,
    cluster: str = "p100",
) -> SuiteEntry:
    return SuiteEntry(
        graph_id=f"{suite}/{name}",
        suite=suite,
        name=name,
        cluster=cluster,
        n_devices=n_devices,
        source="zoo",
        workload=workload,
        optimizer=optimizer,
        description=description,
    )


def _synthetic(
    suite: str, n_ops: int, seed: int, n_devices: int, cluster: str = "p100"
) -> SuiteEntry:
    name = f"layered-{n_ops // 1000}k-s{seed}" if n_ops >= 1000 else f"layered-{n_ops}-s{seed}"
    kwargs = {"n_ops": n_ops, "seed": seed, "name": f"{suite}/{name}"}
    return SuiteEntry(
        graph_id=f"{suite}/{name}",
        suite=suite,
        name=name,
        cluster=cluster,
        n_devices=n_devices,
        source="synthetic",
        generator_kwargs=MappingProxyType(kwargs),
        description=f"random layered DAG, {n_ops} ops, seed {seed}",
    )


# Optimizers follow the models' own training recipes where the optimizer state matters for
# memory: Adam for GNMT, Transformer-XL and WaveNet; RMSProp with momentum (two slots, the same
# state as Adam) for Inception-v3 and AmoebaNet, traced as Adam; SGD for the RNN language
# models (Zaremba et al. / Jozefowicz et al. train them with plain SGD / Adagrad).
_PAPER = "go-paper-v0"
_QUICK = "quick-v0"
_QUICK_TRAIN = "quick-train-v0"
_SYNTH = "synthetic-v0"

#: quick-train-v0: (name, workload, optimizer, what it is), optimizers as in quick-v0.
_QUICK_TRAIN_GRAPHS: tuple[tuple[str, str, TracedOptimizer, str], ...] = (
    ("rnnlm-1", "rnnlm-quick-1", "sgd", "RNNLM, 1 layer"),
    ("rnnlm-3", "rnnlm-quick-3", "sgd", "RNNLM, 3 layers"),
    ("gnmt-2", "gnmt-quick-2", "adam", "GNMT, 2 + 2 layers"),
    ("gnmt-4", "gnmt-quick-4", "adam", "GNMT, 4 + 4 layers"),
    ("transformer-xl-1", "transformer-xl-quick-1", "adam", "Transformer-XL, 1 layer"),
    ("transformer-xl-3", "transformer-xl-quick-3", "adam", "Transformer-XL, 3 layers"),
    ("inception-v3-b3", "inception-v3-quick-b3", "adam", "Inception-v3, 75x75, b3"),
    ("inception-v3-b4", "inception-v3-quick-b4", "adam", "Inception-v3, 75x75, b4"),
    ("amoebanet-n2", "amoebanet-quick-n2", "adam", "AmoebaNet, 2 normal cells"),
    ("amoebanet-f16", "amoebanet-quick-f16", "adam", "AmoebaNet, 16 filters"),
    ("wavenet-1x6", "wavenet-quick-1x6", "adam", "WaveNet, 1 stack, 6 layers"),
    ("wavenet-3x9", "wavenet-quick-3x9", "adam", "WaveNet, 3 stacks, 9 layers"),
)

_ENTRIES: list[SuiteEntry] = [
    _zoo(_PAPER, "rnnlm-2", "rnnlm-2", 2, "sgd", "RNNLM, 2 LSTM layers"),
    _zoo(_PAPER, "rnnlm-4", "rnnlm-4", 4, "sgd", "RNNLM, 4 LSTM layers"),
    _zoo(_PAPER, "rnnlm-8", "rnnlm-8", 8, "sgd", "RNNLM, 8 LSTM layers"),
    _zoo(_PAPER, "gnmt-2", "gnmt-2", 2, "adam", "GNMT, 2 encoder + 2 decoder layers"),
    _zoo(_PAPER, "gnmt-4", "gnmt-4", 4, "adam", "GNMT, 4 encoder + 4 decoder layers"),
    _zoo(_PAPER, "gnmt-8", "gnmt-8", 8, "adam", "GNMT, 8 encoder + 8 decoder layers"),
    _zoo(_PAPER, "transformer-xl-2", "transformer-xl-2", 2, "adam", "Transformer-XL, 2 layers"),
    _zoo(_PAPER, "transformer-xl-4", "transformer-xl-4", 4, "adam", "Transformer-XL, 4 layers"),
    _zoo(_PAPER, "transformer-xl-8", "transformer-xl-8", 8, "adam", "Transformer-XL, 8 layers"),
    _zoo(_PAPER, "inception-v3-b32", "inception-v3-b32", 2, "adam", "Inception-v3, batch 32"),
    _zoo(_PAPER, "inception-v3-b64", "inception-v3-b64", 2, "adam", "Inception-v3, batch 64"),
    _zoo(_PAPER, "amoebanet", "amoebanet", 4, "adam", "AmoebaNet"),
    _zoo(_PAPER, "wavenet-2x18", "wavenet-2x18", 2, "adam", "WaveNet, 2 stacks x 18 layers"),
    _zoo(_PAPER, "wavenet-4x36", "wavenet-4x36", 4, "adam", "WaveNet, 4 stacks x 36 layers"),
    _zoo(_QUICK, "rnnlm-2", "rnnlm-quick", 2, "sgd", "small RNNLM, 2 layers"),
    _zoo(_QUICK, "gnmt-3", "gnmt-quick", 2, "adam", "small GNMT, 3 + 3 layers"),
    _zoo(_QUICK, "transformer-xl-2", "transformer-xl-quick", 2, "adam", "small Transformer-XL"),
    _zoo(_QUICK, "inception-v3-b2", "inception-v3-quick", 2, "adam", "Inception-v3, 75x75, b2"),
    _zoo(_QUICK, "amoebanet", "amoebanet-quick", 2, "adam", "small AmoebaNet"),
    _zoo(_QUICK, "wavenet-2x6", "wavenet-quick", 2, "adam", "small WaveNet, 2 x 6 layers"),
    *(
        _zoo(_QUICK_TRAIN, name, workload, 2, optimizer, f"small {what}")
        for name, workload, optimizer, what in _QUICK_TRAIN_GRAPHS
    ),
    *(_synthetic(_SYNTH, n, s, 4) for n in (500, 2000, 10_000) for s in range(3)),
    # The scale graph's ~240 GB of parameters need the memory of eight 80 GB H100s.
    _synthetic(_SYNTH, 80_000, 0, 8, cluster="h100"),
]

#: suite -> {graph id -> entry}, in table order. Read-only.
SUITES: MappingProxyType[str, MappingProxyType[str, SuiteEntry]] = MappingProxyType(
    {
        suite: MappingProxyType({e.graph_id: e for e in _ENTRIES if e.suite == suite})
        for suite in dict.fromkeys(e.suite for e in _ENTRIES)
    }
)


def list_suites() -> list[str]:
    """Names of all suites."""
    return list(SUITES)


def list_graphs(suite: str | None = None) -> list[str]:
    """Graph ids of one suite (or of every suite), in table order.

    Raises:
        KeyError: for an unknown suite; the message lists the known ones.
    """
    if suite is None:
        return [gid for entries in SUITES.values() for gid in entries]
    key = suite.rstrip("/")
    if key not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; known suites: {', '.join(SUITES)}")
    return list(SUITES[key])


def get_entry(graph_id: str) -> SuiteEntry:
    """The suite entry of a graph id: its cluster preset, device count and source.

    Raises:
        TypeError: when ``graph_id`` is not a string (a path, None).
        KeyError: for an unknown id; the message lists the ids of its suite (or the suites),
            and for a bare name such as ``"gnmt-3"`` the full ids that end with it.
    """
    if not isinstance(graph_id, str):
        raise TypeError(
            f"a graph id is a string such as 'go-paper-v0/gnmt-8', got {graph_id!r} "
            f"({type(graph_id).__name__}); to read a graph file use go_gym.load_graph(path)"
        )
    suite, _, name = graph_id.partition("/")
    if suite in SUITES and graph_id in SUITES[suite]:
        return SUITES[suite][graph_id]
    if suite in SUITES:
        known = ", ".join(SUITES[suite])
        raise KeyError(f"unknown graph id {graph_id!r}; suite {suite!r} has: {known}")
    short = name or suite  # "gnmt-3", or the name part of "nope-v0/gnmt-3"
    matches = [gid for entries in SUITES.values() for gid in entries if gid.endswith("/" + short)]
    hint = f" (did you mean {' or '.join(map(repr, matches))}?)" if matches else ""
    raise KeyError(
        f"unknown graph id {graph_id!r}: ids look like 'go-paper-v0/gnmt-8'{hint}; "
        f"known suites: {', '.join(SUITES)} (see go_gym.list_graphs(suite))"
    )


def graph_path(graph_id: str, data_dir: Path | str | None = None) -> Path:
    """Path of the stored file of a zoo graph (it may not exist yet before a build)."""
    entry = get_entry(graph_id)
    if entry.source != "zoo":
        raise ValueError(f"{graph_id!r} is generated on demand, it has no stored file")
    root = DATA_DIR if data_dir is None else Path(data_dir)
    return root / entry.suite / f"{entry.name}{GRAPH_SUFFIX}"


@functools.lru_cache(maxsize=64)
def get_graph(graph_id: str) -> OpGraph:
    """The graph of a suite id: read from the package's files, or generated (synthetic).

    Graphs are immutable, so the same object is returned on every call (cached in memory).

    Raises:
        TypeError: when ``graph_id`` is not a string (use `go_gym.load_graph` for a file).
        KeyError: for an unknown id (the message lists the known ones, or for a bare name
            such as ``"gnmt-3"`` the full ids that end with it).
        FileNotFoundError: when a zoo graph's file is missing from the installation; the
            message says how to rebuild it.
    """
    entry = get_entry(graph_id)
    if entry.source == "synthetic":
        from go_gym.generators import random_layered_graph

        return random_layered_graph(**entry.generator_kwargs)
    from go_gym.io import load_graph

    path = graph_path(graph_id)
    if not path.is_file():
        raise FileNotFoundError(
            f"graph file for {graph_id!r} is missing ({path}); rebuild it with "
            f"`python -m go_gym.zoo.build --suite {entry.suite}`"
        )
    return load_graph(path)
