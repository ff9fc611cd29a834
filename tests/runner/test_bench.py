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
        (
            {"agent_configs": {"random-search": {"seed": 3}}},
            r"--agent-config for 'random-search' sets \['seed'\]: the runner gives every cell",
        ),
        (
            {"agent_configs": {"random-search": {"budget": 5}}},
            r"--agent-config for 'random-search' sets \['budget'\]",
        ),
        (
            {"agent_configs": {"random-search": {"foo": 1}}},
            r"--agent-config for 'random-search' \{\"foo\": 1\}: the agent cannot be made",
        ),
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
    # A name of --suite (quick-v0 by default), as bench's --graphs takes it.
    assert main(["render", "wavenet-2x6", "--agent", "m-etf", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert "quick-v0/wavenet-2x6 / placement / m-etf" in capsys.readouterr().out


def test_a_bad_agent_config_stops_the_run_before_any_cell(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["bench", "--graphs", "transformer-xl-2", "--agents", "annealing", "--seeds", "1"]
    args += ["--budget", "10", "--out", str(out), "--no-progress"]
    assert main([*args, "--agent-config", '{"annealing": {"foo": 1}}']) == 2
    err = capsys.readouterr().err
    assert "go-gym bench: error: --agent-config for 'annealing'" in err
    assert not out.exists()  # nothing ran, nothing written
    assert main([*args, "--agent-config", '{"annealing": {"seed": 3}}']) == 2
    assert "sets ['seed']" in capsys.readouterr().err


def test_address_without_ray_is_a_usage_error(tmp_path, capsys):
    args = ["bench", "--graphs", "transformer-xl-2", "--agents", "m-etf", "--seeds", "1"]
    args += ["--out", str(tmp_path / "run"), "--address", "auto", "--no-progress"]
    assert main(args) == 2
    assert "needs the ray executor (--executor ray), not 'local'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_graphs_names_the_persistent_bytes_column(capsys):
    assert main(["graphs", "quick-v0"]) == 0
    header = capsys.readouterr().out.splitlines()[1]
    assert "params+grads+opt GB" in header and "param GB" not in header


def test_existing_cell_keys_are_unchanged():
    """Committed results and resumes find their files by these names."""
    cell = Cell("quick-v0/rnnlm-2", "placement", "annealing", 0, 30)
    assert cell.key == "quick-v0__rnnlm-2__placement__annealing__default__b30__s0"
    configured = Cell(**{**cell.__dict__, "agent": "go", "config": '{"layer_head":1.0}'})
    assert configured.key.startswith("quick-v0__rnnlm-2__placement__go__")
    assert configured.key.endswith("__b30__s0") and len(configured.key.split("__")[4]) == 10


def test_agent_names_that_sanitise_alike_get_their_own_cells(tmp_path, make_spec, plugin_agents):
    report = run_bench(make_spec(tmp_path, agents=["my agent", "my_agent"], seeds=[0]))
    assert (report.finished, report.failures) == (2, [])
    assert sorted(r.agent for r in report.rows) == ["my agent", "my_agent"]
    assert len({r.decisions_file for r in report.rows}) == 2
    assert validate_results(tmp_path)[1] == []
    again = run_bench(make_spec(tmp_path, agents=["my agent", "my_agent"], seeds=[0]))
    assert (again.already_done, again.finished) == (2, 0)


def test_agent_names_whose_keys_collide_are_refused(tmp_path, make_spec, plugin_agents):
    with pytest.raises(ValueError, match="agents 'my agent' and 'my_agent-8cae0b62' would share"):
        plan(make_spec(tmp_path, agents=["my agent", "my_agent-8cae0b62"]))


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        (
            "hides-evaluations",
            "the env's evaluations counter says 1, the runner counted 51 through env.step and "
            "env.evaluate: hides-evaluations changed the counter",
        ),
        ("goes-around", "the env's evaluations counter says 6, the runner counted 1"),
        ("lowers-penalty", "lowers-penalty changed the env's oom_penalty to 1.5"),
    ],
)
def test_agents_cannot_rewrite_what_the_runner_measures(
    tmp_path, make_spec, plugin_agents, agent, message
):
    report = run_bench(make_spec(tmp_path, agents=[agent], seeds=[0], budget=100))
    (failure,) = report.failures
    assert message in failure.error
    assert report.rows == []


def test_render_uses_the_runners_env(tmp_path, capsys):
    """Scheduling is measured with the human-expert placement fixed, as in the benchmark."""
    import agents
    from go_gym.runner.cells import make_env

    env = make_env("quick-v0/transformer-xl-2", "scheduling")
    obs, _ = env.reset(seed=0)
    action, _ = agents.make("fifo", env, seed=0).predict(obs, deterministic=True)
    step_ms = env.step(action)[4]["step_time"] * 1e3
    out = tmp_path / "chart.png"
    args = ["render", "quick-v0/transformer-xl-2", "--task", "scheduling", "--agent", "fifo"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"quick-v0/transformer-xl-2 / scheduling / fifo: step {step_ms:.3f} ms" in printed
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quick-v0/nope"], "graph 'quick-v0/nope' is not in suite 'quick-v0'"),
        (["nope-9"], "graph 'nope-9' is not in suite 'quick-v0'"),
        (["nope-v0/rnnlm-2"], "unknown suite 'nope-v0'"),
        (
            ["quick-v0/rnnlm-2", "--agent", "gpt-placer"],
            "unknown agent 'gpt-placer'; known agents:",
        ),
        (
            ["quick-v0/rnnlm-2", "--agent", "xla-greedy"],
            "agent 'xla-greedy' cannot act on the placement",
        ),
        (["quick-v0/rnnlm-2", "--out", "x.jpgx"], "--out must name a .png file, got 'x.jpgx'"),
        (["quick-v0/rnnlm-2", "--out", "noext"], "--out must name a .png file, got 'noext'"),
    ],
)
def test_render_bad_arguments_are_usage_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["render", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("go-gym render: error: ") and err.count("\n") == 1  # no traceback
    assert message in err
    assert list(tmp_path.iterdir()) == []
