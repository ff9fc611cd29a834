"""Crash safety: what was written survives a crash or Ctrl-C, a re-run does only the rest,
and two runs on one directory do not corrupt it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import go_gym.runner.cells as cells_module
from go_gym.cli import main
from go_gym.runner import read_results, run_bench
from go_gym.runner.results import CELLS_DIR, ERRORS_DIR, RESULTS_FILE, cell_files, read_csv
from go_gym.runner.validate import validate_results

ROOT = Path(__file__).resolve().parents[2]


def _interrupt_on_call(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Make the n-th cell raise KeyboardInterrupt (Ctrl-C in the middle of a run)."""
    real = cells_module.run_cell
    calls = {"n": 0}

    def run_cell(cell):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(cell)

    monkeypatch.setattr(cells_module, "run_cell", run_cell)


def test_ctrl_c_keeps_finished_cells_and_a_rerun_does_only_the_rest(
    tmp_path, monkeypatch, make_spec
):
    spec = make_spec(tmp_path, agents=["m-etf", "heft", "random-search"])  # 6 cells
    _interrupt_on_call(monkeypatch, 4)
    first = run_bench(spec)
    assert first.interrupted and first.finished == 3
    assert len(read_csv(tmp_path / RESULTS_FILE)) == 3  # merged even when interrupted
    kept = {p.name: p.stat().st_mtime_ns for p in cell_files(tmp_path)}

    monkeypatch.undo()
    second = run_bench(spec)
    assert (second.already_done, second.finished, second.interrupted) == (3, 3, False)
    assert len(second.rows) == 6
    for path in cell_files(tmp_path):  # the first run's files were not rewritten
        if path.name in kept:
            assert path.stat().st_mtime_ns == kept[path.name]
    assert validate_results(tmp_path)[1] == []


def test_a_failing_cell_is_recorded_and_retried(tmp_path, monkeypatch, make_spec):
    real = cells_module.run_cell

    def flaky(cell):
        if cell.agent == "heft" and cell.seed == 1:
            raise RuntimeError("the agent fell over")
        return real(cell)

    monkeypatch.setattr(cells_module, "run_cell", flaky)
    spec = make_spec(tmp_path, agents=["heft"])
    report = run_bench(spec)
    assert report.finished == 1 and len(report.failures) == 1
    (error,) = (tmp_path / ERRORS_DIR).iterdir()
    assert "the agent fell over" in error.read_text() and "Traceback" in error.read_text()
    monkeypatch.undo()
    report = run_bench(spec)
    assert (report.already_done, report.finished, report.failures) == (1, 1, [])
    assert not error.exists()  # a cell that now succeeds drops its stale error


def test_killed_process_leaves_only_complete_files(tmp_path):
    """SIGKILL a real ``go-gym bench`` mid-run: every file left is whole; a re-run finishes."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "go_gym", "bench", "--graphs", "transformer-xl-2"]
    args += ["--agents", "annealing", "--seeds", "4", "--budget", "1000", "--out", str(out)]
    args += ["--executor", "serial", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not cell_files(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(cell_files(out))
    assert 1 <= done <= 4
    rows, _ = read_results(out)  # every cell file that exists parses
    assert len(rows) == done
    assert main(args[3:]) == 0
    assert len(read_results(out)[0]) == 4
    assert validate_results(out)[1] == []


def test_two_runs_on_one_directory_do_not_corrupt_it(tmp_path, make_spec):
    """Two concurrent runs with overlapping cells: the union, each cell once, all valid."""
    a = make_spec(tmp_path, agents=["m-etf", "heft", "critical-path"], seeds=[0, 1, 2])
    b = make_spec(tmp_path, agents=["critical-path", "heft", "m-topo"], seeds=[2, 1, 0])
    errors: list[BaseException] = []

    def run(spec):
        try:
            run_bench(spec)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = read_csv(tmp_path / RESULTS_FILE)
    assert len(rows) == 12 and len({(r.agent, r.seed) for r in rows}) == 12
    assert not [p for p in (tmp_path / CELLS_DIR).iterdir() if p.name.endswith(".tmp")]
    assert validate_results(tmp_path)[1] == []
