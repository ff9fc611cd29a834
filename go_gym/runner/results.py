"""The results CSV: one row per benchmark cell, a typed and versioned schema, safe files.

A results directory (``go-gym bench --out DIR``) holds:

- ``DIR/cells/<cell key>.csv``: one finished cell each (header + one row), written to a
  temporary file and renamed into place, so a file that exists is complete. A cell whose file
  exists is done: this is how a re-run resumes, and why a crash or Ctrl-C loses nothing that
  was written. Two runs on the same directory never write the same temporary file, and a
  rename is atomic, so they cannot corrupt each other (at worst both compute a cell).
- ``DIR/decisions/<cell key>.npz``: the decisions the simulator ran for that cell (compressed
  NumPy, no pickle), and the search curve of agents that have one; see `go_gym.runner.cells`.
- ``DIR/results.csv``: every cell file merged, sorted; rewritten atomically (under a lock)
  at the end of each run, so it is always a complete, consistent snapshot.
- ``DIR/errors/<cell key>.txt``: the traceback of a cell that failed (no row is written; a
  re-run retries it).

Schema version 1 (every column, in order; times in seconds, memory in bytes)
-------------------------------------------------------------------------------
================================  ======  ===================================================
column                            type    meaning
================================  ======  ===================================================
schema_version                    int     1; a reader refuses rows of a newer version
suite                             str     benchmark suite, e.g. ``quick-v0``
graph                             str     suite graph id, e.g. ``quick-v0/rnnlm-2``
n_ops                             int     ops in the graph
task                              str     ``placement``, ``scheduling``, ``fusion`` or ``joint``
cluster                           str     `go_gym.cluster.Cluster` preset name, e.g. ``p100``
n_devices                         int     devices of the cluster
profile                           str     simulator profile (``go``)
agent                             str     registry name (`agents.make`)
agent_config                      str     JSON of the extra keyword arguments given to the agent
seed                              int     seed of the agent and of ``env.reset``
budget                            int     simulator evaluations allowed to ``fit``
step_time_s                       float   simulated step time of the agent's decisions (s)
valid                             bool    the decisions fit in device memory
effective_step_time_s             float   step_time_s, or oom_penalty x lower_bound_s if OOM
oom_penalty                       float   the env's OOM penalty factor
peak_memory_bytes                 float   peak memory of the fullest device (bytes)
bytes_moved                       float   bytes sent between devices in the step
lower_bound_s                     float   `go_gym.sim.lower_bound` of graph and cluster (s)
tf_default_step_time_s            float   effective step time of TensorFlow's default: one
                                          device, first-ready order, no fusion (s)
human_expert_step_time_s          float   effective step time of the human-expert placement,
                                          first-ready order, no fusion (s): the comparator
                                          of every task
speedup_vs_tf_default             float   tf_default_step_time_s / effective_step_time_s
speedup_vs_human_expert           float   human_expert_step_time_s / effective_step_time_s
ratio_to_lower_bound              float   effective_step_time_s / lower_bound_s (>= 1)
evaluations                       int     simulator evaluations the agent spent (fit + step)
wall_time_s                       float   wall-clock time of the agent: make, fit, predict (s)
go_gym_version                    str     ``go_gym.__version__`` that produced the row
decisions_file                    str     the decisions' .npz, relative to the results dir
decisions_sha256                  str     SHA-256 of that file's bytes
finished_at                       str     UTC time the cell finished (ISO 8601)
================================  ======  ===================================================

Reading checks the header against this schema and every value against its type, and says
which file, line and column are wrong (`ResultsError`), so a foreign or hand-damaged CSV is
refused instead of silently producing a wrong leaderboard.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import io
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "ResultsError",
    "Row",
    "atomic_write_bytes",
    "cell_files",
    "dir_lock",
    "format_rows",
    "merge_cells",
    "read_csv",
    "read_results",
    "write_csv",
]

#: Version of the column layout below; bump it (and teach `read_csv` the old one) on any change.
SCHEMA_VERSION = 1

CELLS_DIR = "cells"
DECISIONS_DIR = "decisions"
ERRORS_DIR = "errors"
RESULTS_FILE = "results.csv"
_LOCK_FILE = ".lock"


class ResultsError(ValueError):
    """A results file that is not, or no longer, a valid go_gym results CSV."""


@dataclass(frozen=True)
class Row:
    """One benchmark cell's result; the fields are the CSV columns, in order (see module doc)."""

    schema_version: int
    suite: str
    graph: str
    n_ops: int
    task: str
    cluster: str
    n_devices: int
    profile: str
    agent: str
    agent_config: str
    seed: int
    budget: int
    step_time_s: float
    valid: bool
    effective_step_time_s: float
    oom_penalty: float
    peak_memory_bytes: float
    bytes_moved: float
    lower_bound_s: float
    tf_default_step_time_s: float
    human_expert_step_time_s: float
    speedup_vs_tf_default: float
    speedup_vs_human_expert: float
    ratio_to_lower_bound: float
    evaluations: int
    wall_time_s: float
    go_gym_version: str
    decisions_file: str
    decisions_sha256: str
    finished_at: str

    def sort_key(self) -> tuple[Any, ...]:
        """Order of rows in ``results.csv``: suite, task, graph, agent, config, budget, seed."""
        return (
            self.suite,
            self.task,
            self.graph,
            self.agent,
            self.agent_config,
            self.budget,
            self.seed,
        )


#: (name, type) of every column, in file order.
COLUMNS: tuple[tuple[str, type], ...] = tuple(
    (f.name, {"int": int, "str": str, "float": float, "bool": bool}[str(f.type)])
    for f in dataclasses.fields(Row)
)
_NAMES = tuple(name for name, _ in COLUMNS)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: replays compare exactly
    return str(value)


def _parse(kind: type, text: str) -> Any:
    if kind is str:
        return text
    if kind is bool:
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true/false")
        return text == "true"
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if math.isnan(value):
        raise ValueError("NaN is not a valid result")
    return value


def format_rows(rows: Iterable[Row]) -> str:
    """The CSV text (header + rows) of ``rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_NAMES)
    for row in rows:
        writer.writerow([_format(getattr(row, name)) for name in _NAMES])
    return buffer.getvalue()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a uniquely named temporary file in the same directory, are flushed to
    disk, and the file is renamed over ``path`` (atomic on POSIX). A crash leaves at most a
    stray ``.tmp`` file, never a truncated result.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_csv(path: Path, rows: Iterable[Row]) -> None:
    """Write ``rows`` as a results CSV, atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(Path(path), format_rows(rows).encode("utf-8"))


def read_csv(path: str | os.PathLike[str]) -> list[Row]:
    """The rows of one results CSV file.

    Raises:
        ResultsError: naming the file (and line and column) when the file is missing, not
            UTF-8 text, has no or a foreign header, a row of a newer schema version, a row
            with the wrong number of fields, or a value of the wrong type.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not a go_gym results CSV (not UTF-8 text: {exc})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None:
            raise ResultsError(f"{path}: empty file, expected a go_gym results CSV header")
        if tuple(header) != _NAMES:
            raise ResultsError(f"{path}: not a go_gym results CSV: {_header_problem(header)}")
        rows = []
        for values in reader:
            line = reader.line_num
            if not values:
                continue
            if len(values) != len(_NAMES):
                raise ResultsError(
                    f"{path}, line {line}: {len(values)} fields, the header has {len(_NAMES)}"
                )
            parsed: dict[str, Any] = {}
            for (name, kind), text_value in zip(COLUMNS, values, strict=True):
                try:
                    parsed[name] = _parse(kind, text_value)
                except ValueError as exc:
                    raise ResultsError(f"{path}, line {line}, column {name!r}: {exc}") from None
            version = parsed["schema_version"]
            if version != SCHEMA_VERSION:
                raise ResultsError(
                    f"{path}, line {line}: schema_version {version}; this go_gym reads "
                    f"version {SCHEMA_VERSION} (upgrade go_gym, or re-run the benchmark)"
                )
            rows.append(Row(**parsed))
    except csv.Error as exc:
        raise ResultsError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from None
    return rows


def _header_problem(header: list[str]) -> str:
    missing = [n for n in _NAMES if n not in header]
    unexpected = [n for n in header if n not in _NAMES]
    if not header or header[0] != "schema_version":
        lead = "the first column is not 'schema_version'"
    else:
        lead = "the header differs from schema version " + str(SCHEMA_VERSION)
    parts = [lead]
    if missing:
        parts.append(f"missing columns {missing}")
    if unexpected:
        parts.append(f"unexpected columns {unexpected}")
    if not missing and not unexpected:
        parts.append("columns are out of order")
    return "; ".join(parts)


def cell_files(root: Path) -> list[Path]:
    """The finished cells' files of results directory ``root`` (no temporary files)."""
    cells = Path(root) / CELLS_DIR
    if not cells.is_dir():
        return []
    return sorted(p for p in cells.iterdir() if p.suffix == ".csv" and not p.name.startswith("."))


@contextlib.contextmanager
def dir_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on results directory ``root`` (``flock``; released if we die)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    with open(Path(root) / _LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def merge_cells(root: Path) -> list[Row]:
    """Merge every cell file of ``root`` into ``root/results.csv`` (atomic, locked); the rows.

    The lock makes concurrent merges (two runs finishing together) take turns, so the file
    left last was written from a scan that saw every cell finished before it.
    """
    root = Path(root)
    with dir_lock(root):
        rows = sorted((r for p in cell_files(root) for r in read_csv(p)), key=Row.sort_key)
        write_csv(root / RESULTS_FILE, rows)
    return rows


def read_results(path: str | os.PathLike[str]) -> tuple[list[Row], Path]:
    """Rows of a results directory or CSV file, and the directory decision paths start from.

    A directory is read from its cell files when it has any (always complete, even after a
    crash before the final merge), else from its ``results.csv``.

    Raises:
        ResultsError: for a path that holds no results, or any malformed file.
    """
    path = Path(path)
    if path.is_dir():
        files = cell_files(path)
        if files:
            rows = sorted((r for p in files for r in read_csv(p)), key=Row.sort_key)
            return rows, path
        if (path / RESULTS_FILE).is_file():
            return read_csv(path / RESULTS_FILE), path
        raise ResultsError(f"{path}: no {RESULTS_FILE} and no {CELLS_DIR}/*.csv in this directory")
    return read_csv(path), path.parent
