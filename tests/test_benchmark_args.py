"""The scripts of ``benchmarks/`` refuse bad arguments with a one-line usage error (exit 2)
before any work, instead of a traceback, an empty table or a table of the wrong thing."""

from __future__ import annotations

import functools
import json
import os
import sys
from types import ModuleType

import pytest

from tests.benchmark_scripts import ROOT, load_benchmark

GO_PAPER = str(ROOT / "leaderboard" / "results" / "go-paper-v0-placement")
QUICK = str(ROOT / "leaderboard" / "results" / "quick-v0-placement")
HOLDOUT = str(ROOT / "leaderboard" / "go" / "transfer-family-holdout-24k")
RNNLM = ["--graph", "go-paper-v0/rnnlm-8"]


@functools.cache
def _script(name: str) -> ModuleType:
    """The script, loaded once; what loading it adds to ``sys.path`` and the environment
    (sim_speed: tests/sim, OpenBLAS's thread count) is taken back."""
    path, environ = list(sys.path), dict(os.environ)
    try:
        return load_benchmark(name)
    finally:
        sys.path[:] = path
        os.environ.clear()
        os.environ.update(environ)


BAD = [
    # go_agent: unknown tasks used to time the placement network under their name.
    ("go_agent", ["--tasks", "priority,fusion,foo"], "--tasks: unknown tasks ['foo']; choose"),
    ("go_agent", ["--tasks", ","], "--tasks: no task given"),
    ("go_agent", ["--repeats", "0"], "--repeats: must be >= 1, got 0"),
    ("go_agent", ["--threads", "0"], "--threads: must be >= 1, got 0"),
    ("go_agent", ["--repeats", "two"], "--repeats: not an integer: 'two'"),
    ("go_agent", ["--graphs", "synthetic:0"], "synthetic:N needs a whole number of ops N >= 1"),
    ("go_agent", ["--graphs", "quick-v0/nope"], "--graphs: unknown graph id 'quick-v0/nope'"),
    ("go_agent", ["--graphs", "synthetic:100,synthetic:5"], "'synthetic:5': a synthetic graph"),
    # go_results: a misspelt part used to write an empty summary and exit 0.
    ("go_results", ["--parts", "placment"], "--parts: unknown parts ['placment']; choose"),
    ("go_results", ["--parts", ","], "--parts: no part given"),
    ("go_results", ["--graphs", "quick-v0/nope"], "--graphs: unknown graph id 'quick-v0/nope'"),
    ("go_results", ["--suite", "nope"], "--suite: unknown suite 'nope'"),
    ("go_results", ["--budget", "0"], "--budget: must be >= 1, got 0"),
    ("go_results", ["--seed", "-1"], "--seed: must be >= 0, got -1"),
    ("go_results", ["--parts", "transfer", "--held-out", "x/y"], "--held-out: unknown graph id"),
    ("go_results", ["--parts", "joint", "--joint-budget", "0"], "--joint-budget: must be >= 1"),
    # baselines: an unknown suite used to print a table of synthetic graphs titled with it.
    ("baselines", ["--suite", "nope"], "--suite: unknown suite 'nope'; known suites:"),
    ("baselines", ["--placers", ","], "--placers names no placer"),
    ("baselines", ["--placers", "m-sct,foo"], "unknown placers ['foo']"),
    ("baselines", ["--graphs", "zzz", "--placers", "m-topo"], "--graphs 'zzz' matches no graph"),
    ("baselines", ["--seed", "-1"], "--seed: must be >= 0, got -1"),
    # convergence: typos used to print "reached on 0 of 0 graphs" or a ValueError of min().
    ("convergence", [GO_PAPER, "--learner", "gp"], "no gp rows with --learner-config {} and"),
    (
        "convergence",
        [GO_PAPER, "--learner-config", '{"layer_head": 2.0}'],
        'no go rows with --learner-config {"layer_head": 2.0}',
    ),
    ("convergence", [GO_PAPER, "--learner-config", "{x"], "--learner-config is not JSON"),
    (
        "convergence",
        [GO_PAPER, "--searchers", "anealing", "brkga"],
        "--searchers: no rows with best-so-far curves of anealing",
    ),
    (
        "convergence",
        [GO_PAPER, "--learner-results", QUICK],
        "no searcher of annealing, brkga, random-search ran quick-v0/",
    ),
    ("convergence", ["/nonexistent"], "/nonexistent: no such results file"),
    # boundary_moves
    ("boundary_moves", [GO_PAPER, *RNNLM, "--agent-config", "{x"], "--agent-config is not JSON"),
    ("boundary_moves", [GO_PAPER, *RNNLM, "--random-moves", "0"], "--random-moves: must be >= 1"),
    ("boundary_moves", [GO_PAPER, *RNNLM, "--descent-seeds", "0"], "--descent-seeds: must be >="),
    ("boundary_moves", [GO_PAPER, *RNNLM, "--budgets", "150,0"], "--budgets: must be >= 1, got 0"),
    ("boundary_moves", [GO_PAPER, *RNNLM, "--budgets", ","], "--budgets: no budget given"),
    ("boundary_moves", [GO_PAPER, "--graph", "x/y"], "--graph: no rows of x/y in"),
    ("boundary_moves", [GO_PAPER, *RNNLM, "--agent", "gp"], "no gp {} placement row for"),
    ("boundary_moves", ["/nonexistent", *RNNLM], "/nonexistent: no such results file"),
    # speed benchmarks: ranges checked before anything is timed
    ("env_speed", ["--repeats", "0"], "--repeats: must be >= 1, got 0"),
    ("env_speed", ["--sizes", "100", "0"], "--sizes: must be >= 1, got 0"),
    ("env_speed", ["--devices", "9"], "--devices: preset 'h100' supports 1..8 devices, got 9"),
    ("env_speed", ["--sizes", "100", "5"], "--sizes: the synthetic graph of 5 ops is inputs only"),
    ("sim_speed", ["--batch", "0"], "--batch: must be >= 1, got 0"),
    ("sim_speed", ["--repeats", "0"], "--repeats: must be >= 1, got 0"),
    ("sim_speed", ["--twin-max", "-1"], "--twin-max: must be >= 0, got -1"),
    ("sim_speed", ["--preset", "nope"], "unknown cluster preset 'nope'"),
    ("sim_speed", ["--zoo", "gopaper"], "--zoo: unknown suite 'gopaper'"),
    ("sb3_distribution", ["--nodes", "0"], "--nodes: must be >= 1, got 0"),
    ("sb3_distribution", ["--choices", "0"], "--choices: must be >= 1, got 0"),
    ("sb3_distribution", ["--batch", "0"], "--batch: must be >= 1, got 0"),
    ("sb3_distribution", ["--repeats", "0"], "--repeats: must be >= 1, got 0"),
    ("kernel_profile", ["--ops", "0"], "--ops: must be >= 1, got 0"),
    ("kernel_profile", ["--devices", "9"], "--devices: preset 'v100' supports 1..8 devices"),
    ("kernel_profile", ["--top", "0"], "--top: must be >= 1, got 0"),
    # results readers
    ("best_known", ["/nonexistent"], "/nonexistent: no such results file"),
    ("family_holdout", ["--seeds", "0", "-1"], "--seeds: must be >= 0, got -1"),
    ("family_holdout", ["--jobs", "0"], "--jobs: must be >= 1, got 0"),
    ("family_holdout", ["--budget", "0"], "--budget: must be >= 1, got 0"),
    ("family_holdout", ["--reference", "/nonexistent"], "--reference: /nonexistent: no such"),
    ("family_holdout", ["--report-only", "--out", "/nonexistent"], "--out: /nonexistent: no"),
    (
        "family_holdout",
        ["--report-only", "--out", HOLDOUT, "--reference", GO_PAPER],
        "lacks the GO-one (go with its defaults), single-device or human-expert rows of",
    ),
    ("family_holdout", ["--report-only", "--out", QUICK], "--out: no go-zeroshot rows of"),
    ("pretraining_snapshots", ["--seeds", "-1"], "--seeds: must be >= 0, got -1"),
    ("pretraining_snapshots", ["--report-only"], "--report-only reads OUT/snapshots.csv: give"),
    ("pretraining_snapshots", ["--reference", "/nonexistent"], "--reference: /nonexistent: no"),
]


@pytest.mark.parametrize(("name", "argv", "message"), BAD)
def test_a_bad_argument_is_a_one_line_usage_error(
    name: str,
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path,
) -> None:
    script = _script(name)
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])  # argparse's program name
    monkeypatch.chdir(tmp_path)  # nothing may be written: a stray --out would land here
    with pytest.raises(SystemExit) as exit_:
        script.main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith(f"{name}.py: error: ")
    assert message in last
    assert "Traceback" not in captured.err
    assert list(tmp_path.iterdir()) == []


def test_a_convergence_typo_lists_the_learners_that_are_there(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    convergence = _script("convergence")
    monkeypatch.setattr(sys, "argv", ["convergence.py"])
    with pytest.raises(SystemExit):
        convergence.main([GO_PAPER, "--learner", "gp"])
    err = capsys.readouterr().err
    assert "agents with curves there: annealing {};" in err
    assert "; go {}; " in err and "m-sct" not in err  # heuristics have no curves
    with pytest.raises(SystemExit):
        convergence.main([GO_PAPER, "--searchers", "anealing"])
    assert "searchers there: annealing, boundary-descent, brkga," in capsys.readouterr().err


def test_pretraining_snapshots_report_only_needs_the_table(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script("pretraining_snapshots")
    monkeypatch.setattr(sys, "argv", ["pretraining_snapshots.py"])
    with pytest.raises(SystemExit) as exit_:
        script.main(["--report-only", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert f"there is no {tmp_path / 'snapshots.csv'}" in capsys.readouterr().err


@pytest.mark.parametrize("tasks", ["placement", "priority", "fusion", "joint"])
def test_go_agent_times_the_network_of_each_task(tasks: str) -> None:
    """``--tasks priority`` used to time the placement network; each task now has its own
    (the joint one has all three passes, and more weights than any single task's)."""
    import torch

    from agents.go.model import GOConfig, GOPolicy, count_parameters

    go_agent = _script("go_agent")
    threads = torch.get_num_threads()
    try:
        row = go_agent.measure("synthetic:30", tasks, 1, 1, "cpu")
    finally:
        torch.set_num_threads(threads)
    assert row["tasks"] == tasks and row["ops"] == 30
    passes = ("placement", "priority", "fusion") if tasks == "joint" else (tasks,)
    assert row["params"] == count_parameters(GOPolicy(GOConfig(tasks=passes)))


def test_valid_arguments_still_run(capsys: pytest.CaptureFixture[str]) -> None:
    _script("baselines").main(["--graphs", "wavenet", "--placers", "m-sct,m-etf"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# step time in ms, quick-v0; OOM = out of memory (simulated time after it)"
    assert [line.split()[0] for line in out[2:]] == ["quick-v0/wavenet-2x6"]
    _script("best_known").main([QUICK])
    assert "geometric mean over 6 graphs" in capsys.readouterr().out
    config = json.dumps({"checkpoint": "agents/go/checkpoints/go-placement-pretrained.pt"})
    _script("convergence").main([GO_PAPER, "--learner-config", config])
    assert "reached on" in capsys.readouterr().out.splitlines()[-1]
