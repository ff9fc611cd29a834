"""The one agent protocol, and the agents built on go_gym's heuristics and searches.

Every agent follows stable-baselines3's ``predict(observation, state=None,
episode_start=None, deterministic=True) -> (action, state)``, so heuristics, searches, the
GO agent and SB3 models are interchangeable in the runner. Agents that search or learn add
``fit(env, budget)``, where the budget counts simulator evaluations.

As in SB3 (``PPO(policy, env)``), an agent is made for an env: ``agents.make(name, env)``.
It may read what the env exposes (``env.unwrapped.graph``, ``.cluster``,
``.fixed_decisions``, ``.evaluate``), never the simulator's private state. With a
multi-graph env it reads the graph of the current episode at every ``predict``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from agents.fusion import FUSERS
from agents.go.roles import role_groups
from agents.placement import PLACERS
from agents.scheduling import PRIORITIZERS
from agents.search import PLACEMENT_SEARCHERS, SEARCHERS, SearchResult
from go_gym.cluster import op_times
from go_gym.envs.graph_env import GraphOptEnv


@runtime_checkable
class Agent(Protocol):
    """What the runner needs from an agent (stable-baselines3's ``predict``)."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]: ...


def core_env(env: gym.Env) -> GraphOptEnv:
    """The go_gym env under any wrappers; a clear error for anything else."""
    core = env.unwrapped
    if not isinstance(core, GraphOptEnv):
        raise TypeError(f"go_gym agents act on go_gym envs, got {type(core).__name__}")
    return core


class EnvAgent:
    """Base of the built-in agents: bound to one env, deciding for its current graph.

    Subclasses implement `decide`; `predict` caches its answer per graph (heuristics and
    found decisions do not change between episodes on the same graph).
    """

    #: The decisions this agent can make; the env must ask for at least one of them.
    tasks: frozenset[str] = frozenset()

    def __init__(self, env: gym.Env, *, seed: int = 0) -> None:
        self.env = env
        self.seed = seed
        core = core_env(env)
        if not self.tasks & set(core.decides):
            raise ValueError(
                f"{type(self).__name__} makes {sorted(self.tasks)} decisions; "
                f"{type(core).__name__} asks for {list(core.decides)}"
            )
        self._cache: dict[str, Any] = {}

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        """Per-op decisions (unpadded) for every task ``core`` decides, on its current graph."""
        raise NotImplementedError

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        core = core_env(self.env)
        key = core.graph.checksum()
        if key not in self._cache:
            self._cache[key] = core.action_from(self.decide(core))
        return self._cache[key], state


class HeuristicAgent(EnvAgent):
    """One heuristic per task (from `PLACERS`, `PRIORITIZERS`, `FUSERS`).

    For a task the env decides but this agent has no heuristic for, the TensorFlow default
    is used (one device, first-ready order, no fusion), so e.g. ``metis`` also runs in the
    joint env. ``fifo`` in a scheduling env is all-equal priorities: ties then go by
    topological index, the closest a priority vector can come to first-ready order.
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        placement: str | None = None,
        priority: str | None = None,
        fusion: str | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.heuristics = {"placement": placement, "priority": priority, "fusion": fusion}
        for table, name in ((PLACERS, placement), (PRIORITIZERS, priority), (FUSERS, fusion)):
            if name is not None and name not in table:
                raise ValueError(f"unknown heuristic {name!r}; known: {sorted(table)}")
        self.tasks = frozenset(k for k, v in self.heuristics.items() if v is not None)
        self.options = options
        super().__init__(env, seed=seed)

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        graph, cluster = core.graph, core.cluster
        fixed = core.fixed_decisions
        n = graph.n_ops
        out: dict[str, NDArray[np.int64]] = {}
        name = self.heuristics["placement"] or "single-device"
        placement = (
            PLACERS[name](graph, cluster, seed=self.seed, **self.options)
            if "placement" in core.decides
            else fixed["placement"]
        )
        assert placement is not None
        out["placement"] = np.asarray(placement, np.int64)
        if "priority" in core.decides:
            levels = core.n_choices("priority")
            name = self.heuristics["priority"] or "fifo"
            ranks = PRIORITIZERS[name](graph, cluster, placement, levels=levels)
            out["priority"] = np.zeros(n, np.int64) if ranks is None else np.asarray(ranks)
        if "fusion" in core.decides:
            name = self.heuristics["fusion"] or "no-fusion"
            levels = core.n_choices("fusion")
            out["fusion"] = np.asarray(FUSERS[name](graph, cluster, placement, levels=levels))
        return {k: v for k, v in out.items() if k in core.decides}


class SearchAgent(EnvAgent):
    """A search over one task's decisions, scored by the env: a black-box one (`SEARCHERS`)
    or, for placement only, one that reads the graph (`PLACEMENT_SEARCHERS`).

    ``fit(env, budget)`` spends ``budget`` simulator evaluations (fewer only if a descent
    stops at a local optimum) through ``env.evaluate`` (all cores, `simulate_many`),
    starting from ``init`` (a heuristic name,
    default the TensorFlow default decision) and keeps the best decision per graph; the
    search curve is in ``self.results``. Without ``fit``, ``predict`` searches with the
    default budget on first sight of a graph.
    """

    tasks = frozenset({"placement", "priority", "fusion"})

    def __init__(
        self,
        env: gym.Env,
        *,
        method: str,
        budget: int = 1000,
        init: str | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if method not in SEARCHERS and method not in PLACEMENT_SEARCHERS:
            known = sorted([*SEARCHERS, *PLACEMENT_SEARCHERS])
            raise ValueError(f"unknown search {method!r}; known: {known}")
        super().__init__(env, seed=seed)
        core = core_env(env)
        if len(core.decides) != 1:
            raise ValueError(
                f"{method} searches one decision vector; {type(core).__name__} decides "
                f"{list(core.decides)} (use a single-task env)"
            )
        if method in PLACEMENT_SEARCHERS and core.decides != ("placement",):
            raise ValueError(
                f"{method} searches placements; {type(core).__name__} decides {core.decides[0]}"
            )
        self.method, self.budget, self.init, self.options = method, budget, init, options
        self.results: dict[str, SearchResult] = {}

    def fit(self, env: gym.Env | None = None, budget: int | None = None) -> SearchResult:
        """Search the current graph of ``env`` (default: the agent's) with ``budget`` evals."""
        core = core_env(env or self.env)
        task = core.decides[0]
        start = None
        if self.init is not None:
            seed_agent = HeuristicAgent(core, **{task: self.init}, seed=self.seed)
            start = seed_agent.decide(core)[task]

        def evaluate(rows: NDArray[np.int64]) -> NDArray[np.float64]:
            return core.evaluate({task: rows})

        if self.method in PLACEMENT_SEARCHERS:
            result = PLACEMENT_SEARCHERS[self.method](
                evaluate,
                core.graph,
                core.n_choices(task),
                self.budget if budget is None else budget,
                seed=self.seed,
                init=start,
                leader=core._context.leader,
                roles=role_groups(core.graph, core._context.leader),
                op_time=op_times(core.graph, core.cluster).mean(axis=1),
                **self.options,
            )
        else:
            result = SEARCHERS[self.method](
                evaluate,
                core.graph.n_ops,
                core.n_choices(task),
                self.budget if budget is None else budget,
                seed=self.seed,
                init=start,
                **self.options,
            )
        key = core.graph.checksum()
        self.results[key] = result
        self._cache[key] = core.action_from({task: result.best})
        return result

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        result = self.fit(core)
        return {core.decides[0]: result.best}
