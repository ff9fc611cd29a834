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
