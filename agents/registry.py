"""Agents by name: ``agents.make("metis", env)``, ``agents.names()``.

Built-in names map to factories ``(env, **kwargs) -> agent``. Third-party agents plug in
through the packaging entry-point group ``go_gym.agents``: a distribution that declares

    [options.entry_points]
    go_gym.agents =
        my-agent = my_package.module:make_my_agent

makes ``agents.make("my-agent", env)`` call ``make_my_agent(env, **kwargs)``; the object it
returns must have SB3's ``predict`` (and may have ``fit(env, budget)``). Entry points are
read when a name is not built in, so installing a plug-in needs no change here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

from agents.base import Agent, HeuristicAgent, SearchAgent
from agents.go.factories import make_go, make_go_zeroshot

ENTRY_POINT_GROUP = "go_gym.agents"

AgentFactory = Callable[..., Agent]


def _heuristic(
    placement: str | None = None, priority: str | None = None, fusion: str | None = None
) -> AgentFactory:
    return partial(HeuristicAgent, placement=placement, priority=priority, fusion=fusion)


#: The non-learned agents, which every learned agent is compared against. A name may serve
#: several tasks (``critical-path`` places in the placement env and prioritises in the
#: scheduling env).
BASELINES: dict[str, AgentFactory] = {
    "single-device": _heuristic(placement="single-device"),
    "human-expert": _heuristic(placement="human-expert"),
    "metis": _heuristic(placement="metis"),
    "m-topo": _heuristic(placement="m-topo"),
    "m-etf": _heuristic(placement="m-etf"),
    "m-sct": _heuristic(placement="m-sct"),
    "heft": _heuristic(placement="heft"),
    "critical-path": _heuristic(placement="critical-path", priority="critical-path"),
    "random": _heuristic(placement="random"),
    "fifo": _heuristic(priority="fifo"),
    "memory-aware": _heuristic(priority="memory-aware"),
    "no-fusion": _heuristic(fusion="no-fusion"),
    "xla-greedy": _heuristic(fusion="xla-greedy"),
    "tf-default": _heuristic(placement="single-device", priority="fifo", fusion="no-fusion"),
    "random-search": partial(SearchAgent, method="random-search"),
    "annealing": partial(SearchAgent, method="annealing"),
    "brkga": partial(SearchAgent, method="brkga"),
    # the human expert's placement, refined by moving ops (or the same op of every repeated
    # block) next to neighbours across devices: the GO agent's refining phase, from the expert
    "boundary-descent": partial(SearchAgent, method="boundary-descent", init="human-expert"),
}

#: Learned agents (torch loads only when one is made).
LEARNED: dict[str, AgentFactory] = {
    "go": make_go,
    # Not the paper's method: PPO from the best of a few heuristics, a prior on its logits.
    # 32 samples per iteration, as its leaderboard rows were measured (PPOConfig's 16 was
    # chosen for training from scratch and has not been measured with a warm start).
    "go-warm": partial(make_go, warm_start="best", samples=32),
    "go-zeroshot": make_go_zeroshot,
}

BUILTIN: dict[str, AgentFactory] = {**BASELINES, **LEARNED}


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every agent name: the built-ins, then installed plug-ins."""
    return list(BUILTIN) + sorted(n for n in _plugins() if n not in BUILTIN)


def make(name: str, env: gym.Env, **kwargs: Any) -> Agent:
    """The agent called ``name``, made for ``env``.

    Raises:
        ValueError: for an unknown name (listing the known ones), or an agent that cannot
            act on this env's task (saying which tasks it makes).
    """
    if name in BUILTIN:
        factory: AgentFactory = BUILTIN[name]
    else:
        plugins = _plugins()
        if name not in plugins:
            raise ValueError(f"unknown agent {name!r}; known agents: {names()}")
        factory = plugins[name].load()
    agent = factory(env, **kwargs)
    if not isinstance(agent, Agent):
        raise TypeError(f"agent {name!r} has no predict(observation, ...) method")
    return agent
