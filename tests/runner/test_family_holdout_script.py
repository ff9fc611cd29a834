"""`benchmarks/family_holdout.py`: the leave-one-family-out split, and its report on the
committed rows against a pandas recomputation."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from go_gym.zoo.suites import list_graphs
from tests.benchmark_scripts import ROOT, load_benchmark

LEADERBOARD = ROOT / "leaderboard" / "go"
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


@pytest.mark.parametrize(
    ("results", "fine_tuning_seeds"),
    [
        ("transfer-family-holdout-24k", {0, 1, 2}),
        ("transfer-family-holdout-48k", set()),
        ("transfer-family-holdout-24k-rerun", set()),
    ],
)
def test_report_counts_match_a_recomputation(
    results: str, fine_tuning_seeds: set[int], capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_benchmark("family_holdout")
    held = script.summarise(LEADERBOARD / results, REFERENCE)
    assert [h.graph for h in held] == list_graphs("quick-v0")
    rows = pd.read_csv(LEADERBOARD / results / "results.csv")
    ref = pd.read_csv(REFERENCE / "results.csv")
    from_scratch = ref[(ref.agent == "go") & (ref.agent_config.fillna("{}") == "{}")]
    go_one = from_scratch.groupby("graph").step_time_s.mean()
    zero_shot = rows[rows.agent == "go-zeroshot"].copy()
    zero_shot["seed_of_policy"] = [
        int(re.findall(r"-s(\d+)/", json.loads(c)["checkpoint"])[-1])
        for c in zero_shot.agent_config
    ]
    script.report(held)
    printed = capsys.readouterr().out
    for seed, part in zero_shot.groupby("seed_of_policy"):
        within = sum(
            t <= 1.1 * go_one[g] for g, t in zip(part.graph, part.step_time_s, strict=True)
        )
        assert f"pre-training seed {seed}: within 10% of GO-one on {within} of 6" in printed
    ratio = zero_shot.step_time_s / zero_shot.graph.map(go_one)
    every_seed = (ratio <= 1.1).groupby(zero_shot.graph).all().sum()
    seeds = ", ".join(str(s) for s in sorted(zero_shot.seed_of_policy.unique()))
    if zero_shot.seed_of_policy.nunique() > 1:
        assert (
            f"over seeds {seeds}: within 10% of GO-one with every seed on {every_seed}" in printed
        )
    else:
        assert "over seeds" not in printed
    for h in held:
        assert h.go_one_mean == pytest.approx(go_one[h.graph], rel=1e-12)
        assert set(h.fine_tuned) == fine_tuning_seeds


def test_pretrain_runs_resumes_or_skips_by_the_evaluations_already_done(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.go.checkpoint import save_checkpoint

    script = load_benchmark("family_holdout")
    commands: list[list[str]] = []
    monkeypatch.setattr(script, "_run", commands.append)
    runs = str(tmp_path / "lofo")
    directory = tmp_path / "lofo-s3" / "without-wavenet"

    def saved(name: str, evaluations: int) -> None:
        save_checkpoint(
            directory / name, {"model": {}, "model_config": {}, "evaluations": evaluations}
        )

    script.pretrain(3, "wavenet", 24000, runs)  # nothing there: from scratch
    saved("checkpoint.pt", 12000)  # interrupted, or a shorter pre-training copied here
    script.pretrain(3, "wavenet", 24000, runs)
    saved("checkpoint.pt", 24000)
    saved("policy.pt", 24000)
    script.pretrain(3, "wavenet", 24000, runs)  # done: not run again
    script.pretrain(3, "wavenet", 48000, runs, snapshot_every=2000)  # extended, with snapshots
    assert len(commands) == 3
    for command in commands:
        assert command[command.index("--out") + 1] == str(directory)
        assert command[command.index("--seed") + 1] == "3"
        graphs = command[command.index("--graphs") + 1].split(",")
        assert graphs == script.pretraining_graphs("wavenet")
    assert [c[c.index("--budget") + 1] for c in commands] == ["24000", "24000", "48000"]
    assert ["--resume" in c for c in commands] == [False, True, True]
    assert [c[c.index("--snapshot-every") + 1] for c in commands if "--snapshot-every" in c] == [
        "2000"
    ]
    with pytest.raises(SystemExit, match="has 24000 evaluations; --budget is 12000"):
        script.pretrain(3, "wavenet", 12000, runs)
    (directory / "checkpoint.pt").unlink()  # a policy alone cannot be resumed
    with pytest.raises(SystemExit, match=r"policy\.pt has 24000 evaluations; --budget is 48000"):
        script.pretrain(3, "wavenet", 48000, runs)
