"""`benchmarks/pretraining_snapshots.py`: the rules that pick a pre-training snapshot, and its
zero-shot step times against the runner's."""

from __future__ import annotations

import json

import pytest

from go_gym.runner.results import read_results
from tests.benchmark_scripts import ROOT, load_benchmark


def _snapshot(
    script, seed: int, family: str, evaluations: int, held: float, training: float, kind=None
):
    path = f"runs/x-s{seed}/without-{family}/snapshots/policy-{evaluations}.pt"
    return script.Snapshot(seed, family, evaluations, path, held, training, kind or script.KEPT)


def test_each_rule_picks_one_snapshot_per_pretraining() -> None:
    script = load_benchmark("pretraining_snapshots")
    snapshots = [
        _snapshot(script, 0, "gnmt", 2000, held=5.0, training=0.90),
        _snapshot(script, 0, "gnmt", 4000, held=4.0, training=0.80),
        _snapshot(script, 0, "gnmt", 6000, held=4.5, training=0.80),  # ties: the earlier
        _snapshot(script, 0, "wavenet", 2000, held=1.0, training=0.95),
        _snapshot(script, 0, "wavenet", 4000, held=0.9, training=0.97),
        _snapshot(script, 1, "gnmt", 2000, held=6.0, training=0.85),
        # means: best on both counts here, but only the mean rule takes them
        _snapshot(script, 0, "gnmt", 6000, held=1.0, training=0.1, kind=script.MEAN),
        _snapshot(script, 0, "wavenet", 4000, held=0.1, training=0.1, kind=script.MEAN),
    ]
    picked = {
        rule: {k: s.evaluations for k, s in script.pick(snapshots, rule).items()}
        for rule in ("last", "training", "held-out")
    }
    means = script.pick(snapshots, script.MEAN)
    assert {k: s.held_out_s for k, s in means.items()} == {(0, "gnmt"): 1.0, (0, "wavenet"): 0.1}
    assert picked["last"] == {(0, "gnmt"): 6000, (0, "wavenet"): 4000, (1, "gnmt"): 2000}
    assert picked["training"] == {(0, "gnmt"): 4000, (0, "wavenet"): 2000, (1, "gnmt"): 2000}
    assert picked["held-out"] == {(0, "gnmt"): 4000, (0, "wavenet"): 4000, (1, "gnmt"): 2000}
    with pytest.raises(ValueError, match="unknown rule 'best'"):
        script.pick(snapshots, "best")


def test_zero_shot_step_time_is_the_runners() -> None:
    """The scorer's argmax step time of the shipped checkpoint equals the committed
    ``go-zeroshot`` row of quick-v0 (which `go-gym validate` replays)."""
    script = load_benchmark("pretraining_snapshots")
    rows, _ = read_results(ROOT / "leaderboard" / "results" / "quick-v0-placement")
    row = next(
        r
        for r in rows
        if r.agent == "go-zeroshot"
        and r.graph == "quick-v0/rnnlm-2"
        and json.loads(r.agent_config or "{}") == {}
    )
    scorer = script._Scorer()
    assert scorer.step_time("go-zeroshot", row.graph) == pytest.approx(row.step_time_s, rel=1e-12)
    one_device = next(r for r in rows if r.agent == "single-device" and r.graph == row.graph)
    assert scorer.one_device(row.graph) == pytest.approx(one_device.step_time_s, rel=1e-12)


def test_second_half_mean_averages_the_weights_kept_from_half_the_run_on(tmp_path) -> None:
    import torch

    from agents.go.checkpoint import load_checkpoint, save_checkpoint

    script = load_benchmark("pretraining_snapshots")
    snapshots = []
    for evaluations, value in [(2000, 100.0), (4000, 1.0), (6000, 2.0), (8000, 6.0)]:
        path = tmp_path / f"policy-{evaluations}.pt"
        weights = {"w": torch.full((2, 2), value), "steps": torch.tensor(evaluations)}
        save_checkpoint(path, {"model": weights, "model_config": {}, "evaluations": evaluations})
        snapshots.append((evaluations, path))
    mean = load_checkpoint(script.second_half_mean(snapshots, tmp_path / "mean.pt"))
    assert torch.equal(mean["model"]["w"], torch.full((2, 2), 3.0))  # 4000, 6000, 8000
    assert int(mean["model"]["steps"]) == 8000  # not a float: the last snapshot's
    assert mean["evaluations"] == 8000


def test_spearman_is_scipys() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    script = load_benchmark("pretraining_snapshots")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.random(12), rng.random(12)
        assert script.spearman(list(a), list(b)) == pytest.approx(spearmanr(a, b)[0], abs=1e-12)
    assert script.spearman([1.0, 2.0, 3.0], [30.0, 20.0, 10.0]) == pytest.approx(-1.0)
