"""The one agent protocol, and the agents built on go_gym's heuristics and searches.

Every agent follows stable-baselines3's ``predict(observation, state=None,
episode_start=None, deterministic=True) -> (action, state)``, so heuristics, searches, the
GO agent and SB3 models are interchangeable in the runner. Agents that search or learn add
``fit(env, budget)``, where the budget counts simulator evaluations.

As in SB3 (``PPO(policy, env)``), an agent is made for an env: ``agents.make(name, env)``.
It may read what the env exposes (``env.unwrapped.graph``, ``.cluster``,
``.fixed_decisions``, ``.evaluate``), never the simulator's private state. With a
multi-graph env it reads the graph of the current episode at every ``predict``, and
``predict`` refuses an observation of any other graph (`observation_mismatch`): the
built-in agents decide from the env, so answering another graph's observation would return
the env's graph's decision under the wrong name.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Collection, Mapping
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

#: Each task's heuristics by name.
HEURISTICS: dict[str, Mapping[str, Callable[..., Any]]] = {
    "placement": PLACERS,
    "priority": PRIORITIZERS,
    "fusion": FUSERS,
}

#: The observation entries that identify a graph on a cluster (the env's static encoding):
#: what `observation_mismatch` compares.
GRAPH_ENTRIES: tuple[str, ...] = (
    "node_mask",
    "op_kind",
    "node_features",
    "edge_mask",
    "edge_index",
    "edge_features",
    "device_features",
    "graph_features",
)


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


def keyword_options(function: Callable[..., Any], passed: Collection[str] = ()) -> list[str]:
    """The keyword-only parameters of ``function`` a user may set: all of them but those
    in ``passed``, which the agent fills in itself."""
    return sorted(
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in passed
    )


def check_options(
    agent: str, options: Mapping[str, Any], accepted: Collection[str], why: str
) -> None:
    """Refuse ``options`` outside ``accepted`` when the agent is made, not at its first
    ``predict`` or ``fit`` (where they would fail deep in a heuristic or be ignored).

    Raises:
        TypeError: naming the agent, the unexpected options, the accepted ones and ``why``.
    """
    unexpected = sorted(set(options) - set(accepted))
    if unexpected:
        raise TypeError(
            f"{agent} got unexpected option(s) {unexpected}; it accepts {sorted(accepted)} ({why})"
        )


def observation_mismatch(observation: Any, core: GraphOptEnv) -> str | None:
    """Why ``observation`` is not one of ``core``'s current graph, or None if it is.

    Compares the graph's part of every `GRAPH_ENTRIES` entry with the env's encoding of its
    current graph: exactly, since reset and step return copies of that encoding; only the
    real nodes and edges (``node_mask``, ``edge_mask``), so an observation padded to other
    sizes is accepted; every row of a batched observation (a vectorised env's leading axis)
    must match. Extra entries (``previous_action``...) are not compared.
    """
    if not isinstance(observation, Mapping):
        return f"got a {type(observation).__name__}, not a go_gym observation dict"
    missing = [k for k in GRAPH_ENTRIES if k not in observation]
    if missing:
        return f"the observation has no {missing}"
    expected = core._context.encoded.observation  # the env's own, as PPOTrainer.record reads
    arrays = {k: np.asarray(observation[k]) for k in GRAPH_ENTRIES}
    batch = arrays["graph_features"].shape[:-1]
    for key, array in arrays.items():
        want = expected[key].ndim + len(batch)
        if array.ndim != want or array.shape[: len(batch)] != batch:
            return (
                f"its {key} has shape {array.shape}, expected {expected[key].ndim} axes "
                f"after the batch axes {batch}"
            )
    n, m = core.graph.n_ops, core.graph.n_edges
    real: dict[str, slice | tuple[slice, slice]] = {
        "node_mask": np.s_[:n],
        "op_kind": np.s_[:n],
        "node_features": np.s_[:n],
        "edge_mask": np.s_[:m],
        "edge_index": np.s_[:, :m],
        "edge_features": np.s_[:m],
        "device_features": np.s_[:],
        "graph_features": np.s_[:],
    }
    for index in np.ndindex(batch):
        row = {k: a[index] for k, a in arrays.items()}
        ops, edges = int(row["node_mask"].sum()), int(row["edge_mask"].sum())
        if (ops, edges) != (n, m):
            return f"it has {ops} ops and {edges} edges"
        for key, part in real.items():
            if not np.array_equal(row[key][part], expected[key][part]):
                return f"its {key} entry differs"
    return None


def setting_digest(core: GraphOptEnv) -> str:
    """What a decision for ``core``'s current graph is scored against, besides the graph: a
    SHA-256 (first 16 hex digits) of the cluster's figures (per-device speeds, memory and
    launch overheads, per-link bandwidth and latency), the tasks the env decides with their
    numbers of choices, its fixed decisions, its simulator profile and OOM penalty.

    The same graph on a K80 pair and on a P100 pair, placed with the priorities fixed or
    decided, has different best decisions: anything kept per graph is kept per graph and
    this digest (`decision_key`, `agents.go.ppo.graph_key`)."""
    h = hashlib.sha256(core.cluster.checksum().encode())
    h.update(",".join(f"{t}={core.n_choices(t)}" for t in core.decides).encode())
    for task, fixed in core.fixed_decisions.items():
        h.update(f"|fixed {task}:".encode())
        h.update(b"<none>" if fixed is None else np.ascontiguousarray(fixed, np.int64).tobytes())
    h.update(f"|profile {core.profile}|oom {core.oom_penalty!r}".encode())
    return h.hexdigest()[:16]


def decision_key(core: GraphOptEnv) -> str:
    """Identity of a decision problem: ``core``'s current graph (its checksum) and everything
    else that scores a decision for it (`setting_digest`): the key of `EnvAgent.predict`'s
    cache."""
    return f"{core.graph.checksum()}:{setting_digest(core)}"


class EnvAgent:
    """Base of the built-in agents: bound to one env, deciding for its current graph.

    Subclasses implement `decide`; `predict` caches its answer per graph and setting
    (`decision_key`: heuristics and found decisions do not change between episodes on the
    same graph, cluster and fixed decisions). Since the decision
    comes from the env, not from the observation, `predict` checks that the observation is
    of the env's current graph (`check_observation`).
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

    def check_observation(self, core: GraphOptEnv, observation: Any) -> None:
        """Refuse an observation of another graph than ``core``'s current one: this agent
        would answer it with the current graph's decision (of the wrong graph, possibly
        of the wrong length).

        Raises:
            ValueError: saying how the observation differs and what to do instead.
        """
        why = observation_mismatch(observation, core)
        if why is not None:
            graph = core.graph
            raise ValueError(
                f"{type(self).__name__} decides for the current graph of the env it was made "
                f"with, {graph.name!r} ({graph.n_ops} ops, {graph.n_edges} edges on "
                f"{core.cluster.n_devices} devices), and this observation is not of it "
                f"({why}): reset that env to the observation's graph, or make the agent on "
                "an env of that graph"
            )

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        core = core_env(self.env)
        self.check_observation(core, observation)
        key = decision_key(core)
        if key not in self._cache:
            self._cache[key] = core.action_from(self.decide(core))
        return self._cache[key], state


class HeuristicAgent(EnvAgent):
    """One heuristic per task (from `PLACERS`, `PRIORITIZERS`, `FUSERS`).

    For a task the env decides but this agent has no heuristic for, the TensorFlow default
    is used (one device, first-ready order, no fusion), so e.g. ``metis`` also runs in the
    joint env. Keyword options go to the placer (e.g. ``imbalance`` for METIS) and are
    checked against its signature when the agent is made. ``fifo`` in a scheduling env is
    the order in which ops start under first-ready order, bucketed into the env's priority
    levels (`agents.scheduling.priority_fifo`).
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
        for task, name in self.heuristics.items():
            if name is not None and name not in HEURISTICS[task]:
                raise ValueError(f"unknown heuristic {name!r}; known: {sorted(HEURISTICS[task])}")
        self.tasks = frozenset(k for k, v in self.heuristics.items() if v is not None)
        self.options = options
        super().__init__(env, seed=seed)
        self._check_options(core_env(env))

    def _check_options(self, core: GraphOptEnv) -> None:
        """Options go to the placer `decide` calls, and only in an env that decides
        placement: anything else would fail at ``predict`` or be ignored."""
        made = ", ".join(f"{k}={v!r}" for k, v in self.heuristics.items() if v is not None)
        agent = f"HeuristicAgent({made}) on {type(core).__name__}"
        if "placement" in core.decides:
            placer = self.heuristics["placement"] or "single-device"
            accepted = keyword_options(PLACERS[placer], passed=("seed",))
            why = f"options go to the {placer!r} placer, besides seed"
        else:
            accepted = []
            why = f"options go to the placer only, and {type(core).__name__} does not place"
        check_options(agent, self.options, accepted, why)

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        graph, cluster = core.graph, core.cluster
        fixed = core.fixed_decisions
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
            out["priority"] = PRIORITIZERS[name](graph, cluster, placement, levels=levels)
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
    starting from ``init`` (the name of a heuristic of the env's task, default the
    TensorFlow default decision) and keeps the best decision per graph; the search curve is
    in ``self.results``. Without ``fit``, ``predict`` searches with the default budget on
    first sight of a graph. Other keyword options go to the search function (e.g.
    ``batch_size``, annealing's ``t_start``); ``init`` and the options are checked when the
    agent is made.
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
        task = core.decides[0]
        if init is not None and init not in HEURISTICS[task]:
            raise ValueError(
                f"SearchAgent(method={method!r}): init {init!r} is not a {task} heuristic; "
                f"known: {sorted(HEURISTICS[task])}"
            )
        passed: tuple[str, ...] = ()  # options the agent fills in itself
        if method in PLACEMENT_SEARCHERS:
            searcher, passed = PLACEMENT_SEARCHERS[method], ("leader", "roles", "op_time")
        else:
            searcher = SEARCHERS[method]
        check_options(
            f"SearchAgent(method={method!r})",
            options,
            keyword_options(searcher, passed),
            f"options go to {searcher.__name__}, besides budget, init and seed",
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
        self.results[core.graph.checksum()] = result
        self._cache[decision_key(core)] = core.action_from({task: result.best})
        return result

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        result = self.fit(core)
        return {core.decides[0]: result.best}
