"""`benchmarks/family_holdout.py`: the leave-one-family-out split, and its report on the
committed rows against a pandas recomputation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from go_gym.zoo.suites import list_graphs
from tests.benchmark_scripts import ROOT, load_benchmark

RESULTS = ROOT / "leaderboard" / "go" / "transfer-family-holdout-24k"
REFERENCE = ROOT / "leaderboard" / "results" / "quick-v0-placement"


def test_each_split_holds_out_one_whole_family_and_trains_on_the_rest() -> None:
    script = load_benchmark("family_holdout")
    every = list_graphs("quick-v0") + list_graphs("quick-train-v0")
    for family in script.FAMILIES:
        training = script.pretraining_graphs(family)
        held = [g for g in every if g not in training]
        # The family's three graphs are the ones left out, its quick-v0 graph is the test.
        assert len(training) == 15 and len(held) == 3
        assert script.held_out_graph(family) in held
        assert script.held_out_graph(family).startswith("quick-v0/")
        assert all(g.split("/")[1].startswith(family) for g in held)
        assert not any(g.split("/")[1].startswith(family) for g in training)
    with pytest.raises(ValueError, match="unknown family 'bert'"):
        script.pretraining_graphs("bert")


def test_report_counts_match_a_recomputation(capsys: pytest.CaptureFixture[str]) -> None:
    script = load_benchmark("family_holdout")
    held = script.summarise(RESULTS, REFERENCE)
    assert [h.graph for h in held] == list_graphs("quick-v0")
    rows = pd.read_csv(RESULTS / "results.csv")
    ref = pd.read_csv(REFERENCE / "results.csv")
    from_scratch = ref[(ref.agent == "go") & (ref.agent_config.fillna("{}") == "{}")]
    go_one = from_scratch.groupby("graph").step_time_s.mean()
    zero_shot = rows[rows.agent == "go-zeroshot"].copy()
    zero_shot["seed_of_policy"] = [
        int(json.loads(c)["checkpoint"].split("lofo-s")[1].split("/")[0])
        for c in zero_shot.agent_config
    ]
    script.report(held)
    printed = capsys.readouterr().out
    for seed, part in zero_shot.groupby("seed_of_policy"):
        within = sum(
            t <= 1.1 * go_one[g] for g, t in zip(part.graph, part.step_time_s, strict=True)
        )
        assert f"pre-training seed {seed}: within 10% of GO-one on {within} of 6" in printed
    for h in held:
        assert h.go_one_mean == pytest.approx(go_one[h.graph], rel=1e-12)
        assert set(h.fine_tuned) == {0, 1, 2}
