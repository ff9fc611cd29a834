"""Fixtures of the runner tests: a one-graph suite and small, fast benchmark specs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest

from go_gym.runner.bench import BenchSpec
from go_gym.zoo import suites

#: The one graph of the ``tiny-v0`` suite the tests add: a 60-op random DAG on two P100s.
TINY = "tiny-v0/layered-60-s0"


@pytest.fixture
def tiny_suite(monkeypatch: pytest.MonkeyPatch) -> str:
    """Add a one-graph suite ``tiny-v0`` (in this process only); its graph id."""
    entry = suites.SuiteEntry(
        graph_id=TINY,
        suite="tiny-v0",
        name="layered-60-s0",
        cluster="p100",
        n_devices=2,
        source="synthetic",
        generator_kwargs=MappingProxyType({"n_ops": 60, "seed": 0, "name": TINY}),
        description="60-op random layered DAG",
    )
    patched = dict(suites.SUITES)
    patched["tiny-v0"] = MappingProxyType({TINY: entry})
    monkeypatch.setattr(suites, "SUITES", MappingProxyType(patched))
    return TINY


def small_spec(out: Path, **overrides: object) -> BenchSpec:
    """A small serial run on quick-v0's smallest graph: two agents x two seeds."""
    values: dict[str, object] = {
        "suite": "quick-v0",
        "task": "placement",
        "agents": ["m-etf", "random-search"],
        "seeds": [0, 1],
        "budget": 40,
        "out": out,
        "graphs": ["transformer-xl-2"],
        "executor": "serial",
        "progress": False,
    }
    values.update(overrides)
    return BenchSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_spec() -> Callable[..., BenchSpec]:
    """`small_spec`, as a fixture."""
    return small_spec
