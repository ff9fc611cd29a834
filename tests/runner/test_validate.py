"""``go-gym validate`` replays rows and catches any that were tampered with.

One small results directory is built per module (placement rows of m-etf and random-search,
a scheduling row of fifo); every test tampers with a copy of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from go_gym import Cluster, get_graph
from go_gym.cli import main
from go_gym.runner import run_bench
from go_gym.runner.cells import Cell, comparators, load_decisions
from go_gym.runner.results import (
    CELLS_DIR,
    RESULTS_FILE,
    Row,
    format_rows,
    read_csv,
    write_csv,
)
from go_gym.runner.validate import validate_results
from go_gym.sim import simulate
from tests.runner.conftest import small_spec


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validate")
    run_bench(small_spec(out, agents=["m-etf", "random-search"], seeds=[0]))
    run_bench(small_spec(out, task="scheduling", agents=["fifo"], seeds=[0]))
    return out


@pytest.fixture
def results(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the module's results directory, to tamper with."""
    shutil.copytree(pristine, tmp_path / "run")
    return tmp_path / "run"


def _tamper_csv(path, **changes):
    rows = read_csv(path)
    rows[0] = rows[0].__class__(**{**rows[0].__dict__, **changes})
    write_csv(path, rows)
    return rows[0]


def test_untouched_results_reproduce(results, capsys):
    rows, mismatches = validate_results(results)
    assert len(rows) == 3 and mismatches == []
    assert main(["validate", str(results / RESULTS_FILE)]) == 0
    assert "3/3 rows reproduce" in capsys.readouterr().err
    assert main(["validate", str(results)]) == 0


def test_edited_step_time_is_caught(results, capsys):
    row = _tamper_csv(results / RESULTS_FILE, step_time_s=0.0005)
    assert main(["validate", str(results / RESULTS_FILE)]) == 1
    captured = capsys.readouterr()
    assert (
        f"MISMATCH {row.graph} placement {row.agent} seed 0: step time replays as" in captured.out
    )
    assert "2/3 rows reproduce" in captured.err


@pytest.mark.parametrize(
    "column", ["speedup_vs_human_expert", "ratio_to_lower_bound", "human_expert_step_time_s"]
)
def test_edited_derived_column_is_caught(results, column):
    row = read_csv(results / RESULTS_FILE)[0]
    _tamper_csv(results / RESULTS_FILE, **{column: getattr(row, column) * 1.01})
    (mismatch,) = validate_results(results / RESULTS_FILE)[1]
    assert column in mismatch.problem


def test_edited_decisions_are_caught(results):
    row = read_csv(results / RESULTS_FILE)[0]
    path = results / row.decisions_file
    arrays = load_decisions(path)
    arrays["placement"] = np.zeros_like(arrays["placement"])  # one device
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    (mismatch,) = validate_results(results / RESULTS_FILE)[1]
    assert "does not match its SHA-256" in mismatch.problem
    # Even with the hash updated to match, the replay gives another step time.
    _tamper_csv(
        results / RESULTS_FILE, decisions_sha256=hashlib.sha256(buffer.getvalue()).hexdigest()
    )
    (mismatch,) = validate_results(results / RESULTS_FILE)[1]
    assert "step time replays as" in mismatch.problem


def test_missing_or_pickled_decisions_are_caught(results):
    rows = read_csv(results / RESULTS_FILE)
    (results / rows[0].decisions_file).unlink()
    buffer = io.BytesIO()
    np.savez(buffer, placement=np.array([object()], dtype=object))  # needs pickle to load
    (results / rows[1].decisions_file).write_bytes(buffer.getvalue())
    rows[1] = dataclasses.replace(
        rows[1], decisions_sha256=hashlib.sha256(buffer.getvalue()).hexdigest()
    )
    (results / RESULTS_FILE).write_text(format_rows(rows))
    problems = [m.problem for m in validate_results(results / RESULTS_FILE)[1]]
    assert "decisions file unreadable" in problems[0]
    assert "not a NumPy .npz" in problems[1] or "pickle" in problems[1]


# --- tampering that replays: the row against the suite, the runner and its own files ---------
def _cell_path(root: Path, row: Row) -> Path:
    key = Cell(row.graph, row.task, row.agent, row.seed, row.budget, row.agent_config).key
    return root / CELLS_DIR / f"{key}.csv"


def _row(root: Path, agent: str) -> Row:
    return next(r for r in read_csv(root / RESULTS_FILE) if r.agent == agent)


def _replace_row(root: Path, old: Row, new: Row) -> None:
    """Put ``new`` in place of ``old`` in its cell file and in results.csv alike, as a careful
    forger would (so only the row's own checks can catch it)."""
    write_csv(_cell_path(root, old), [new])
    rows = [new if r == old else r for r in read_csv(root / RESULTS_FILE)]
    write_csv(root / RESULTS_FILE, rows)


def _edit(agent: str, /, **changes: object) -> Callable[[Path], None]:
    def tamper(root: Path) -> None:
        old = _row(root, agent)
        _replace_row(root, old, dataclasses.replace(old, **changes))  # type: ignore[arg-type]

    return tamper


def _forge(
    agent: str,
    /,
    edit_arrays: Callable[[dict[str, np.ndarray]], None] = lambda arrays: None,
    cluster: str | None = None,
    **changes: object,
) -> Callable[[Path], None]:
    """Edit the decisions (and/or the cluster), then recompute every number of the row and
    the file's hash so that the row is self-consistent: only the new checks catch it."""

    def tamper(root: Path) -> None:
        old = _row(root, agent)
        path = root / old.decisions_file
        arrays = load_decisions(path)
        edit_arrays(arrays)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        path.write_bytes(buffer.getvalue())
        graph = get_graph(old.graph)
        machine = Cluster.preset(cluster or old.cluster, old.n_devices)
        result = simulate(
            graph,
            machine,
            arrays["placement"],
            arrays.get("priority"),
            arrays.get("fusion"),
            profile="go",
        )
        bound, tf_default, human = comparators(graph, machine, old.oom_penalty, old.task)
        step = float(result.step_time)
        new = dataclasses.replace(
            old,
            cluster=cluster or old.cluster,
            step_time_s=step,
            effective_step_time_s=step,
            lower_bound_s=bound,
            tf_default_step_time_s=tf_default,
            human_expert_step_time_s=human,
            speedup_vs_tf_default=tf_default / step,
            speedup_vs_human_expert=human / step,
            ratio_to_lower_bound=step / bound,
            peak_memory_bytes=float(result.peak_memory.max()),
            bytes_moved=float(result.bytes_moved),
            decisions_sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
            **changes,  # type: ignore[arg-type]
        )
        _replace_row(root, old, new)

    return tamper


def _set(name: str, value: Callable[[dict[str, np.ndarray]], np.ndarray]):
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = value(arrays)

    return edit


def _duplicate_cell(root: Path) -> None:
    path = _cell_path(root, _row(root, "m-etf"))
    shutil.copy(path, path.with_name("copy.csv"))
    write_csv(root / RESULTS_FILE, [*read_csv(root / RESULTS_FILE), _row(root, "m-etf")])


def _outside_decisions(root: Path) -> None:
    row = _row(root, "m-etf")
    outside = root.parent / "elsewhere" / Path(row.decisions_file).name
    outside.parent.mkdir()
    shutil.copy(root / row.decisions_file, outside)
    _edit("m-etf", decisions_file=f"../elsewhere/{outside.name}")(root)


def _worse_curve(arrays: dict[str, np.ndarray]) -> None:
    best = float(arrays["curve_best"][-1])
    arrays["curve_evals"] = np.array([1, int(arrays["curve_evals"][-1])])
    arrays["curve_best"] = np.array([best, 2 * best])


def _fusion_levels(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return np.ones_like(arrays["placement"])  # every op fused with its producer


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "evaluations over the budget": (
        _edit("random-search", evaluations=5000),
        "evaluations 5000 is outside 1..budget + 1 = 41",
    ),
    "no evaluations": (_edit("m-etf", evaluations=0), "evaluations 0 is outside"),
    "budget": (_edit("m-etf", budget=5), "decisions_file 'decisions/"),
    "seed": (_edit("m-etf", seed=7), "is not 'decisions/quick-v0__transformer-xl-2__placement"),
    "agent": (_edit("m-etf", agent="heft"), "__heft__default__b40__s0.npz', the file of this"),
    "agent config": (_edit("m-etf", agent_config='{"init":"m-sct"}'), "decisions_file"),
    "agent config not canonical": (
        _edit("m-etf", agent_config='{"init": "m-sct"}'),
        'agent_config \'{"init": "m-sct"}\' is not the canonical JSON object',
    ),
    "agent config with the runner's keys": (
        _edit("m-etf", agent_config='{"seed":3}'),
        "agent_config sets ['seed'], which the runner owns",
    ),
    "suite": (
        _edit("m-etf", suite="go-paper-v0"),
        "suite 'go-paper-v0' is not the graph id's suite 'quick-v0'",
    ),
    "task": (
        _edit("m-etf", task="scheduling"),
        "decisions file lacks ['action_priority', 'priority']",
    ),
    "oom penalty": (
        _edit("m-etf", oom_penalty=1.5),
        "oom_penalty 1.5 is not the runner's 100.0",
    ),
    "n_devices": (_edit("m-etf", n_devices=4), "n_devices 4 is not the suite's 2"),
    "another cluster, numbers recomputed": (
        _forge("m-etf", cluster="h100"),
        "cluster 'h100' is not the suite's 'p100'",
    ),
    "fusion smuggled into a placement row": (
        _forge("m-etf", _set("fusion", _fusion_levels)),
        "decisions file has arrays the placement task does not set: ['fusion']",
    ),
    "scheduling row on another placement": (
        _forge("fifo", _set("placement", lambda a: np.zeros_like(a["placement"]))),
        "placement is not the scheduling task's fixed placement",
    ),
    "action differs from the decision": (
        _forge("m-etf", _set("action_placement", lambda a: 1 - a["action_placement"])),
        "placement does not follow from action_placement",
    ),
    "action out of range": (
        _forge("fifo", _set("action_priority", lambda a: a["action_priority"] + 99)),
        "action_priority has values outside 0..15",
    ),
    "curve under the lower bound": (
        _forge("random-search", _set("curve_best", lambda a: a["curve_best"] * 0.1)),
        "under the lower bound",
    ),
    "curve that gets worse": (
        _forge("random-search", _worse_curve),
        "curve_best is not a best-so-far curve",
    ),
    "curve beyond the evaluations": (
        _forge("random-search", _set("curve_evals", lambda a: a["curve_evals"] * 100)),
        "curve_evals is not non-decreasing within 0..evaluations = 41",
    ),
    "curve without its pair": (
        _forge("random-search", lambda arrays: arrays.pop("curve_best")),
        "decisions file has curve_evals without its pair",
    ),
    "decisions outside the results dir": (
        _outside_decisions,
        "decisions file ../elsewhere/",
    ),
    "a cell twice": (_duplicate_cell, "2 rows of this cell"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_rows_are_caught(results, case, capsys):
    tamper, message = TAMPERING[case]
    tamper(results)
    _, mismatches = validate_results(results)
    problems = "\n".join(str(m) for m in mismatches)
    assert message in problems
    assert main(["validate", str(results)]) == 1
    assert message in capsys.readouterr().out


def test_a_cell_file_under_another_name_is_caught(results):
    _duplicate_cell(results)
    _, mismatches = validate_results(results)
    (misnamed,) = [m for m in mismatches if "holds the row" in m.problem]
    assert str(misnamed).startswith("cells/copy.csv holds the row of cell quick-v0__")


# --- results.csv must hold exactly the rows of cells/ ------------------------------------------
def _results_rows(root: Path) -> list[Row]:
    return read_csv(root / RESULTS_FILE)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda root: write_csv(
                root / RESULTS_FILE,
                [
                    dataclasses.replace(r, step_time_s=r.step_time_s / 2)
                    if r.agent == "fifo"
                    else r
                    for r in _results_rows(root)
                ],
            ),
            "differs in ['step_time_s']",
        ),
        (lambda root: write_csv(root / RESULTS_FILE, _results_rows(root)[1:]), "lacks the row of"),
        (
            lambda root: write_csv(
                root / RESULTS_FILE, [*_results_rows(root), _results_rows(root)[0]]
            ),
            "is listed 2 times",
        ),
        (
            lambda root: write_csv(
                root / RESULTS_FILE,
                [*_results_rows(root), dataclasses.replace(_results_rows(root)[0], seed=9)],
            ),
            "seed 9 has no file in cells/",
        ),
        (lambda root: (root / RESULTS_FILE).unlink(), "results.csv: missing"),
    ],
    ids=["edited", "row dropped", "row twice", "row added", "missing"],
)
def test_results_csv_must_match_the_cells(results, tamper, message, capsys):
    tamper(results)
    assert main(["validate", str(results)]) == 1
    captured = capsys.readouterr()
    assert message in captured.out
    # The rows themselves (read from cells/) still reproduce; the file is what is wrong.
    assert "3/3 rows reproduce; 1 problem(s) with the results files" in captured.err


def test_no_rows_is_an_error(tmp_path, capsys):
    write_csv(tmp_path / RESULTS_FILE, [])  # what a run whose every cell failed leaves
    assert main(["validate", str(tmp_path)]) == 2
    assert f"go-gym validate: error: {tmp_path} holds no result rows" in capsys.readouterr().err
