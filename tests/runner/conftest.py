"""Fixtures of the runner tests: a one-graph suite and small, fast benchmark specs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
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


#: A plug-in distribution's agents: honest ones with names that sanitise alike, and cheats.
_PLUGIN_MODULE = '''
import numpy as np


class OneDevice:
    """Every op on device 0; no fit."""

    def __init__(self, env, seed=0):
        self.env = env

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        core = self.env.unwrapped
        return core.action_from({"placement": np.zeros(core.graph.n_ops, np.int64)}), state


class HidesEvaluations(OneDevice):
    """Spends 50 evaluations, then sets the env's public counter back to 0."""

    def fit(self, env, budget):
        core = env.unwrapped
        core.evaluate({"placement": np.zeros((50, core.graph.n_ops), np.int64)})
        core.evaluations = 0


class GoesAround(OneDevice):
    """Calls the env class's evaluate directly, past the instance's methods."""

    def fit(self, env, budget):
        core = env.unwrapped
        type(core).evaluate(core, {"placement": np.zeros((5, core.graph.n_ops), np.int64)})


class LowersPenalty(OneDevice):
    """Makes out-of-memory decisions cheap."""

    def fit(self, env, budget):
        env.unwrapped.oom_penalty = 1.5
'''

#: Entry point name -> class of `_PLUGIN_MODULE`. "my_agent-8cae0b62" is the key part
#: `Cell.key` gives "my agent" (its safe form and a hash of the name).
PLUGIN_AGENTS = {
    "my agent": "OneDevice",
    "my_agent": "OneDevice",
    "my_agent-8cae0b62": "OneDevice",
    "hides-evaluations": "HidesEvaluations",
    "goes-around": "GoesAround",
    "lowers-penalty": "LowersPenalty",
}


@pytest.fixture
def plugin_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Install a plug-in distribution with `PLUGIN_AGENTS` (as pip leaves it: a module and
    a ``.dist-info`` folder declaring the entry points); their names."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "runner_test_plugin.py").write_text(_PLUGIN_MODULE)
    info = root / "runner_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: runner-test-plugin\nVersion: 1.0\n"
    )
    lines = [f"{name} = runner_test_plugin:{cls}" for name, cls in PLUGIN_AGENTS.items()]
    (info / "entry_points.txt").write_text("[go_gym.agents]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(root))
    yield list(PLUGIN_AGENTS)
    sys.modules.pop("runner_test_plugin", None)
