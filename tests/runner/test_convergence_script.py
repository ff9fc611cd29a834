"""`benchmarks/convergence.py` on the committed go-paper-v0 results, which hold `go` run two
ways: from scratch (seeds 0-2) and fine-tuned from the shipped checkpoint (seed 0)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.benchmark_scripts import ROOT, load_benchmark

RESULTS = ROOT / "leaderboard" / "results" / "go-paper-v0-placement"
FINE_TUNED = json.dumps({"checkpoint": "agents/go/checkpoints/go-placement-pretrained.pt"})


def test_curves_keep_the_runs_of_one_configuration_apart() -> None:
    convergence = load_benchmark("convergence")
    scratch = convergence._curves(RESULTS, "go")
    tuned = convergence._curves(RESULTS, "go", FINE_TUNED)
    assert len(scratch) == len(tuned) == 14
    graph = "go-paper-v0/transformer-xl-2"
    assert len(scratch[graph]) == 3 and len(tuned[graph]) == 1
    # The fine-tuned run starts from a pre-trained policy: its first best is far below the
    # from-scratch runs' (their mean would be neither).
    first_tuned = tuned[graph][0][1][0]
    assert all(first_tuned < best[0] for _, best in scratch[graph])
    # Each curve is a best-so-far: it never goes up.
    for _, best in scratch[graph] + tuned[graph]:
        assert np.all(np.diff(best) <= 0)


def test_a_learner_config_that_is_not_json_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    convergence = load_benchmark("convergence")
    monkeypatch.setattr("sys.argv", ["convergence.py", str(RESULTS), "--learner-config", "{x"])
    with pytest.raises(SystemExit) as exit_:
        convergence.main()
    assert exit_.value.code == 2
    assert "--learner-config is not JSON" in capsys.readouterr().err


def test_learner_rows_can_come_from_another_results_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quick-v0 transfer rows against quick-v0's searchers: the count printed for each
    graph is the first evaluation at which the fine-tuned runs' mean best-so-far reaches the
    best search's final step time, recomputed here with plain loops."""
    convergence = load_benchmark("convergence")
    searches = ROOT / "leaderboard" / "results" / "quick-v0-placement"
    transfer = ROOT / "leaderboard" / "go" / "transfer-quick-train-48k"
    config = json.dumps(
        {"checkpoint": "agents/go/checkpoints/go-placement-pretrained-quick-train.pt"}
    )
    assert convergence._curves(searches, "go", config) == {}  # not in the searches' directory
    tuned = convergence._curves(transfer, "go", config)
    assert len(tuned) == 6
    argv = ["convergence.py", str(searches), "--learner-results", str(transfer)]
    monkeypatch.setattr("sys.argv", [*argv, "--learner-config", config])
    convergence.main()
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert len(lines) == 6
    searcher_curves = [
        convergence._curves(searches, n) for n in ("annealing", "brkga", "random-search")
    ]
    for graph, runs in tuned.items():
        assert len(runs) == 3  # seeds 0-2
        target = min(float(np.mean([b[-1] for _, b in c[graph]])) for c in searcher_curves)
        first = None
        for point in sorted({int(e) for evals, _ in runs for e in evals}):
            bests = []
            for evals, best in runs:  # each run's best so far at `point`
                seen = [b for e, b in zip(evals, best, strict=True) if e <= point]
                bests.append(seen[-1] if seen else np.inf)
            if np.mean(bests) <= target:
                first = point
                break
        row = lines[graph]
        assert float(row[2]) == pytest.approx(target * 1e3, abs=5e-4)
        assert row[4] == (str(first) if first is not None else "not")
