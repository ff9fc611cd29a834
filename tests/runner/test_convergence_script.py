"""`benchmarks/convergence.py` on the committed go-paper-v0 results, which hold `go` run two
ways: from scratch (seeds 0-2) and fine-tuned from the shipped checkpoint (seed 0)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "leaderboard" / "results" / "go-paper-v0-placement"
FINE_TUNED = json.dumps({"checkpoint": "agents/go/checkpoints/go-placement-pretrained.pt"})


def _load_convergence_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "convergence", ROOT / "benchmarks" / "convergence.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curves_keep_the_runs_of_one_configuration_apart() -> None:
    convergence = _load_convergence_module()
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
