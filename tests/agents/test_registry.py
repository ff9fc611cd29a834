"""The agent registry: built-in names, clear errors, and third-party plug-ins found through the
``go_gym.agents`` entry-point group of an installed distribution."""

from __future__ import annotations

import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

import agents
import go_gym  # noqa: F401  (registers the envs)
from go_gym.generators import random_layered_graph


@pytest.fixture
def env():
    return gym.make("GOPlacement-v0", graph=random_layered_graph(30, seed=0), n_devices=2)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A tiny distribution, 'go-gym-dummy-agent', installed the way pip leaves it: a module
    plus a ``.dist-info`` folder whose ``entry_points.txt`` declares the agent."""
    (tmp_path / "dummy_agent.py").write_text(
        textwrap.dedent(
            '''
            import numpy as np

            class LastDevice:
                """Puts every op on the last device."""

                def __init__(self, env, **kwargs):
                    self.env, self.kwargs = env, kwargs

                def predict(self, observation, state=None, episode_start=None, deterministic=True):
                    core = self.env.unwrapped
                    n = core.graph.n_ops
                    placement = np.full(n, core.cluster.n_devices - 1)
                    return core.action_from({"placement": placement}), state
            '''
        )
    )
    info = tmp_path / "go_gym_dummy_agent-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: go-gym-dummy-agent\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[go_gym.agents]\nlast-device = dummy_agent:LastDevice\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("dummy_agent", None)


def test_builtin_names_and_tables():
    names = agents.names()
    assert set(agents.BASELINES) | set(agents.LEARNED) <= set(names)
    assert not set(agents.BASELINES) & set(agents.LEARNED)
    assert names[: len(agents.BASELINES)] == list(agents.BASELINES)


def test_unknown_agent_lists_the_known_ones(env):
    with pytest.raises(
        ValueError, match=r"unknown agent 'gpt-placer'; known agents: \['single-device'"
    ):
        agents.make("gpt-placer", env)


def test_agent_that_cannot_do_the_task(env):
    with pytest.raises(
        ValueError, match=r"makes \['fusion'\] decisions; PlacementEnv asks for \['placement'\]"
    ):
        agents.make("xla-greedy", env)


def test_plugin_agent_is_found_by_name(installed_plugin, env):
    assert "last-device" in agents.names()
    agent = agents.make("last-device", env, note="hello")
    assert agent.kwargs == {"note": "hello"}
    obs, _ = env.reset(seed=0)
    action, _ = agent.predict(obs)
    assert np.all(action == 1)
    assert np.isfinite(env.step(action)[1])


def test_plugin_without_predict_is_rejected(tmp_path, monkeypatch, env):
    (tmp_path / "broken_agent.py").write_text("def make(env):\n    return object()\n")
    info = tmp_path / "go_gym_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: go-gym-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[go_gym.agents]\nbroken = broken_agent:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="agent 'broken' has no predict"):
        agents.make("broken", env)
