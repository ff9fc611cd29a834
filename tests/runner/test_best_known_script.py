"""``benchmarks/best_known.py``: the fastest committed row per graph, against a pandas reference."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tests.benchmark_scripts import ROOT, load_benchmark

RESULTS = ROOT / "leaderboard" / "results" / "quick-v0-placement"


def test_best_known_is_the_fastest_valid_row_of_each_graph(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_benchmark("best_known")
    from go_gym.runner.results import read_results

    rows, _ = read_results(RESULTS)
    best = script.best_known(rows)
    table = pd.read_csv(Path(RESULTS) / "results.csv")
    valid = table[table.valid]
    reference = valid.groupby("graph").effective_step_time_s.min()
    assert sorted(best) == sorted(reference.index)
    for graph, (time, who) in best.items():
        assert time == pytest.approx(reference[graph], rel=1e-12)
        tied = valid[(valid.graph == graph) & (valid.effective_step_time_s == reference[graph])]
        assert any(
            who.startswith(f"{w.agent} ") and who.endswith(f"(seed {w.seed})")
            for w in tied.itertuples()
        )
    # An invalid (OOM) row never counts, however fast its step time.
    fastest = next(r for r in rows if r.graph == "quick-v0/rnnlm-2")
    oom = type(fastest)(**{**vars(fastest), "valid": False, "effective_step_time_s": 1e-9})
    assert script.best_known([oom, *rows]) == best

    monkeypatch.setattr("sys.argv", ["best_known.py", str(RESULTS)])
    script.main()
    expert = table.groupby("graph").human_expert_step_time_s.first()
    geomean = math.exp(sum(math.log(reference[g] / expert[g]) for g in reference.index) / 6)
    assert f"{geomean:.3f}x the expert's step time" in capsys.readouterr().out
