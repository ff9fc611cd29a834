"""The results CSV: exact round trip, and a clear error for anything else."""

from __future__ import annotations

import dataclasses

import pytest

from go_gym.cli import main
from go_gym.runner.results import (
    COLUMNS,
    SCHEMA_VERSION,
    ResultsError,
    Row,
    format_rows,
    read_csv,
    read_results,
    write_csv,
)


def _row(**changes) -> Row:
    values = {
        name: {int: 1, str: "x", float: 0.1 + 0.2, bool: True}[kind] for name, kind in COLUMNS
    }
    values.update(schema_version=SCHEMA_VERSION, agent_config='{"a":"b, c"}')
    values.update(changes)
    return Row(**values)


def test_round_trip_is_exact(tmp_path):
    rows = [_row(), _row(step_time_s=1e-300, valid=False, seed=7)]
    write_csv(tmp_path / "r.csv", rows)
    assert read_csv(tmp_path / "r.csv") == rows
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _write(tmp_path, text: str | bytes):
    path = tmp_path / "bad.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"bad\.csv: empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\xff", r"bad\.csv: not a go_gym results CSV \(not UTF-8"),
        (
            "date,open,close\n2024-01-01,1,2\n",
            r"bad\.csv: not a go_gym results CSV: the first "
            r"column is not 'schema_version'.*missing columns \['schema_version'",
        ),
    ],
)
def test_foreign_files_are_refused_by_name(tmp_path, content, message):
    with pytest.raises(ResultsError, match=message):
        read_csv(_write(tmp_path, content))


def test_header_with_a_missing_or_extra_column_is_named(tmp_path):
    header, body = format_rows([_row()]).split("\n", 1)
    text = header.replace(",wall_time_s", "") + ",extra\n" + body
    with pytest.raises(
        ResultsError,
        match=r"missing columns \['wall_time_s'\]; unexpected "
        r"columns \['extra'\]",
    ):
        read_csv(_write(tmp_path, text))


def test_bad_value_names_line_and_column(tmp_path):
    text = format_rows([_row(), _row()])
    lines = text.splitlines()
    fields = lines[2].split(",")
    index = [name for name, _ in COLUMNS].index("step_time_s") + 1  # config has a comma
    fields[index] = "fast"
    lines[2] = ",".join(fields)
    with pytest.raises(
        ResultsError,
        match=r"bad\.csv, line 3, column 'step_time_s': 'fast' is "
        "not a number",
    ):
        read_csv(_write(tmp_path, "\n".join(lines)))


def test_truncated_row_names_its_line(tmp_path):
    text = format_rows([_row()])
    with pytest.raises(ResultsError, match=r"line 2: \d+ fields, the header has"):
        read_csv(_write(tmp_path, text[: len(text) // 2 + 150]))


def test_newer_schema_version_is_refused(tmp_path):
    text = format_rows([_row(schema_version=SCHEMA_VERSION + 1)])
    with pytest.raises(ResultsError, match=f"schema_version {SCHEMA_VERSION + 1}; this go_gym"):
        read_csv(_write(tmp_path, text))


def test_bool_and_nan_are_strict(tmp_path):
    text = format_rows([_row()]).replace(",true,", ",yes,", 1)
    with pytest.raises(ResultsError, match="'yes' is not true/false"):
        read_csv(_write(tmp_path, text))
    text = format_rows([dataclasses.replace(_row(), bytes_moved=float("nan"))])
    with pytest.raises(ResultsError, match="NaN"):
        read_csv(_write(tmp_path, text))


def test_directory_without_results_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ResultsError, match=r"no results\.csv and no cells"):
        read_results(tmp_path)
    path = _write(tmp_path, "a,b\n1,2\n")
    assert main(["validate", str(path)]) == 2
    assert main(["leaderboard", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: not a go_gym results CSV" in err
    assert main(["validate", str(tmp_path / "missing.csv")]) == 2
    assert "no such results file" in capsys.readouterr().err
