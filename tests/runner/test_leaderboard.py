"""Leaderboard tables and plots are generated from rows, with seeded bootstrap intervals."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from go_gym.cli import main
from go_gym.runner import read_results, run_bench
from go_gym.runner.leaderboard import bootstrap_geomean, build_boards, markdown_table


def test_bootstrap_geomean():
    one_seed = [np.log([2.0]), np.log([0.5]), np.log([4.0])]
    assert bootstrap_geomean(one_seed) == pytest.approx(
        (4.0 ** (1 / 3),) * 3
    )  # (2 * 0.5 * 4)^(1/3)
    logs = [np.log([1.0, 1.2, 1.4]), np.log([2.0, 2.2, 1.8])]
    point, low, high = bootstrap_geomean(logs)
    assert low < point < high
    assert point == pytest.approx(math.exp(np.mean([x.mean() for x in logs])))
    assert bootstrap_geomean(logs) == (point, low, high)  # seeded: reproducible


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from tests.runner.conftest import small_spec

    out = tmp_path_factory.mktemp("board")
    agents = ["human-expert", "single-device", "m-sct", "annealing"]
    run_bench(small_spec(out, agents=agents, graphs=["transformer-xl-2", "wavenet-2x6"]))
    return out


def test_table_sorted_by_speedup_with_every_column(results):
    rows, base = read_results(results)
    (board,) = build_boards(rows, base)
    table = markdown_table(board)
    lines = table.splitlines()
    assert lines[0].startswith("| # | agent | transformer-xl-2 | wavenet-2x6 | speedup vs human")
    speedups = [s.speedup[0] for s in board.summaries]
    assert speedups == sorted(speedups, reverse=True)
    expert = next(s for s in board.summaries if s.label == "human-expert")
    assert expert.speedup == pytest.approx((1.0, 1.0, 1.0))
    assert "| 1.000 [1.000, 1.000] |" in next(line for line in lines if "human-expert" in line)
    assert {s.label for s in board.summaries if s.curves} == {"annealing"}


def test_one_seed_per_graph_gets_no_interval(results):
    rows, base = read_results(results)
    (board,) = build_boards([r for r in rows if r.seed == 0], base)
    line = next(x for x in markdown_table(board).splitlines() if "| annealing |" in x)
    point = next(s for s in board.summaries if s.label == "annealing").speedup[0]
    assert f"| {point:.3f} (1 seed) |" in line and "[" not in line


def test_files_and_readme_block(results, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- leaderboard:quick-v0/placement start -->\nold\n"
        "<!-- leaderboard:quick-v0/placement end -->\n<!-- leaderboard:x/y start -->\nkeep\n"
        "<!-- leaderboard:x/y end -->\n"
    )
    out = tmp_path / "lb"
    assert main(["leaderboard", str(results), "--out", str(out), "--readme", str(readme)]) == 0
    page = (out / "quick-v0" / "placement.md").read_text()
    assert "do not edit by hand" in page and "| 1 |" in page
    for name in ("placement-step-time.png", "placement-curves.png"):
        assert (out / "quick-v0" / name).read_bytes()[:4] == b"\x89PNG"
    text = readme.read_text()
    assert "old" not in text and "keep" in text and "| 1 |" in text
    assert text.startswith("intro\n")


def test_no_rows_is_an_error_that_names_the_failed_cells(tmp_path, monkeypatch, capsys):
    """A run whose every cell failed leaves a results.csv with no rows and errors/."""
    import go_gym.runner.cells as cells_module
    from tests.runner.conftest import small_spec

    def broken(cell):
        raise RuntimeError("the agent fell over")

    monkeypatch.setattr(cells_module, "run_cell", broken)
    report = run_bench(small_spec(tmp_path, agents=["m-etf"], seeds=[0]))
    assert report.rows == [] and len(report.failures) == 1
    assert main(["leaderboard", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"go-gym leaderboard: error: {tmp_path} holds no result rows" in captured.err
    assert "1 failed cell(s) have no row" in captured.err and "m-etf" in captured.err
    assert "wrote" not in captured.err and not (tmp_path / "leaderboard").exists()


def test_failed_cells_are_counted_next_to_the_table(results, tmp_path, capsys):
    errors = tmp_path / "run" / "errors"
    shutil.copytree(results, tmp_path / "run")
    errors.mkdir()
    key = "quick-v0__transformer-xl-2__placement__brkga__default__b40__s0"
    (errors / f"{key}.txt").write_text("RuntimeError: the agent fell over\n")
    assert main(["leaderboard", str(tmp_path / "run"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"1 failed cell(s) have no row (tracebacks in {errors}): {key}" in out


def test_readme_blocks_without_a_table_are_not_counted(results, tmp_path, capsys):
    """Two budgets in one directory: pages are placement-budget40 and -budget7, so the
    README's quick-v0/placement block has no table and must be left (and said so)."""
    from tests.runner.conftest import small_spec

    shutil.copytree(results, tmp_path / "run")
    run_bench(small_spec(tmp_path / "run", agents=["m-etf"], seeds=[0], budget=7))
    text = "<!-- leaderboard:quick-v0/placement start -->\nold\n"
    text += "<!-- leaderboard:quick-v0/placement end -->\n"
    readme = tmp_path / "README.md"
    readme.write_text(text)
    args = ["leaderboard", str(tmp_path / "run"), "--no-plots", "--readme", str(readme)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"updated 0 leaderboard block(s) in {readme}" in err
    assert "warning: no table for the block(s) quick-v0/placement" in err
    assert "quick-v0/placement-budget40, quick-v0/placement-budget7" in err
    assert readme.read_text() == text
