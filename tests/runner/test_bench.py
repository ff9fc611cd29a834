"""The runner end to end: cells, rows, decisions files, the command line."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from agents.placement import PLACERS
from go_gym import Cluster, get_graph
from go_gym.cli import main
from go_gym.runner import SCHEMA_VERSION, read_results, run_bench
from go_gym.runner.bench import plan
from go_gym.runner.cells import Cell, load_decisions
from go_gym.runner.results import COLUMNS, RESULTS_FILE, read_csv
from go_gym.runner.validate import validate_results


def test_one_graph_suite_every_cell_a_replayable_row(tmp_path, tiny_suite, make_spec):
    report = run_bench(
        make_spec(tmp_path, suite="tiny-v0", graphs=[], agents=["human-expert", "annealing"])
    )
    assert (report.planned, report.finished, report.failures) == (4, 4, [])
    rows = read_csv(tmp_path / RESULTS_FILE)
    assert [(r.agent, r.seed) for r in rows] == [
        ("annealing", 0),
        ("annealing", 1),
        ("human-expert", 0),
        ("human-expert", 1),
    ]
    for row in rows:
        assert row.schema_version == SCHEMA_VERSION
        assert (row.suite, row.graph, row.task, row.cluster, row.n_devices) == (
            "tiny-v0",
            tiny_suite,
            "placement",
            "p100",
            2,
        )
        assert row.valid and row.step_time_s == row.effective_step_time_s
        assert row.ratio_to_lower_bound >= 1.0
        assert math.isclose(row.speedup_vs_tf_default, row.tf_default_step_time_s / row.step_time_s)
        assert math.isclose(
            row.speedup_vs_human_expert, row.human_expert_step_time_s / row.step_time_s
        )
        arrays = load_decisions(tmp_path / row.decisions_file)
        assert arrays["placement"].shape == (row.n_ops,)
        assert set(np.unique(arrays["placement"])) <= {0, 1}
    search, expert = rows[0], rows[2]
    assert search.evaluations == 41 and expert.evaluations == 1  # budget 40 + the step
    assert expert.speedup_vs_human_expert == 1.0  # the comparator is the human expert
    curve = load_decisions(tmp_path / search.decisions_file)
    assert curve["curve_evals"][-1] <= 40 and np.all(np.diff(curve["curve_best"]) <= 0)
    assert "curve_evals" not in load_decisions(tmp_path / expert.decisions_file)
    assert validate_results(tmp_path)[1] == []


def test_csv_header_is_the_documented_schema(tmp_path, make_spec):
    run_bench(make_spec(tmp_path, agents=["m-etf"], seeds=[0]))
    with open(tmp_path / RESULTS_FILE) as handle:
        header = next(csv.reader(handle))
    assert header == [name for name, _ in COLUMNS]
    assert header[0] == "schema_version" and "step_time_s" in header


def test_all_keeps_only_agents_that_can_do_the_task(tmp_path, make_spec):
    cells, skipped = plan(make_spec(tmp_path, agents=["all-baselines"], task="scheduling"))
    agents = {c.agent for c in cells}
    assert {"fifo", "memory-aware", "critical-path", "annealing"} <= agents
    assert "metis" in skipped and "no-fusion" in skipped and "metis" not in agents


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"agents": ["nope"]}, "unknown agent 'nope'"),
        ({"agents": ["fifo"]}, "cannot act on the placement task"),
        ({"graphs": ["gnmt-99"]}, "not in suite 'quick-v0'"),
        ({"suite": "nope-v0", "graphs": []}, "unknown suite"),
        ({"task": "nope"}, "unknown task"),
        ({"agent_configs": {"metis": {}}}, "not in this run"),
        ({"budget": -1}, "budget must be >= 0"),
        ({"workers": 0}, "workers must be >= 1"),
        ({"seeds": [1, 0, 1]}, r"seeds must be distinct and >= 0, got \[1, 0, 1\]"),
        ({"seeds": [-1]}, "seeds must be distinct and >= 0"),
    ],
)
def test_bad_run_arguments_are_named(tmp_path, make_spec, overrides, message):
    with pytest.raises(ValueError, match=message):
        plan(make_spec(tmp_path, **overrides))


def test_agent_config_is_passed_and_keyed(tmp_path, make_spec):
    config = {"random-search": {"init": "m-etf"}}
    report = run_bench(make_spec(tmp_path, agent_configs=config, seeds=[0]))
    assert not report.failures, report.failures
    row = next(r for r in report.rows if r.agent == "random-search")
    assert row.agent_config == '{"init":"m-etf"}'
    assert row.speedup_vs_human_expert > 1.0  # never worse than its m-etf start
    default = Cell("quick-v0/transformer-xl-2", "placement", "random-search", 0, 40)
    assert default.key != Cell(**{**default.__dict__, "config": row.agent_config}).key


def test_scheduling_task_fixes_the_human_expert_placement(tmp_path, make_spec):
    report = run_bench(make_spec(tmp_path, task="scheduling", agents=["fifo"], seeds=[0]))
    (row,) = report.rows
    saved = load_decisions(tmp_path / row.decisions_file)
    graph = get_graph(row.graph)
    cluster = Cluster.preset(row.cluster, row.n_devices)
    assert np.array_equal(saved["placement"], PLACERS["human-expert"](graph, cluster))
    assert np.array_equal(saved["priority"], saved["action_priority"])
    assert validate_results(tmp_path)[1] == []


def test_command_line_bench_graphs_leaderboard_validate(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["bench", "--graphs", "transformer-xl-2", "--agents", "m-etf,heft", "--seeds", "1"]
    args += ["--budget", "10", "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    assert len(read_results(out)[0]) == 2
    assert main(["graphs", "quick-v0"]) == 0
    assert "quick-v0/transformer-xl-2" in capsys.readouterr().out
    assert main(["leaderboard", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| 1 |" in table and "m-etf" in table and "heft" in table
    assert (out / "leaderboard" / "quick-v0" / "placement.md").is_file()
    assert (out / "leaderboard" / "quick-v0" / "placement-step-time.png").is_file()
    assert main(["validate", str(out)]) == 0
    assert main(["graphs", "nope-v0"]) == 2
    assert main(["bench", "--agents", "nope", "--out", str(out), "--no-progress"]) == 2


def test_train_without_the_trainer_says_so(capsys, monkeypatch):
    import sys

    import agents.go

    monkeypatch.setitem(sys.modules, "agents.go.train", None)  # import of it fails
    monkeypatch.delattr(agents.go, "train", raising=False)  # even after an earlier import
    assert main(["train"]) == 2
    assert "agents.go.train" in capsys.readouterr().err


def test_train_delegates_to_the_go_trainer(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    assert "usage: go-gym train" in capsys.readouterr().out


def test_render_writes_a_gantt_chart(tmp_path, capsys):
    out = tmp_path / "chart.png"
    assert main(["render", "quick-v0/wavenet-2x6", "--agent", "m-etf", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert "quick-v0/wavenet-2x6 / placement / m-etf" in capsys.readouterr().out
