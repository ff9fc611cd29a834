"""The go_gym environments: thin Gymnasium wrappers over `go_gym.sim.simulate`.

One base class, `GraphOptEnv`, owns everything the four tasks share: resolving the graph(s)
and the cluster, encoding observations once per graph, the reward, ``info``, episodes and
rendering. Each task subclass only says which decisions its action carries and which it
takes as fixed. All decisions for all nodes arrive in one action (the GO setting).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from go_gym.cluster import Cluster
from go_gym.envs.encoding import EncodedGraph, encode, observation_space
from go_gym.graph import OpGraph
from go_gym.sim import SimResult, lower_bound, simulate, simulate_many

#: Graph used when none is given: small enough for a laptop, real enough to be interesting.
DEFAULT_GRAPH = "quick-v0/rnnlm-2"

#: Rewards by name; each maps (effective step time, lower bound, reference step time) to a
#: reward. The effective step time is the simulated one, or the OOM penalty when invalid.
REWARDS: dict[str, Callable[[float, float, float], float]] = {
    "neg_sqrt_ratio": lambda t, bound, ref: -math.sqrt(t / bound),
    "speedup": lambda t, bound, ref: ref / t,
    "neg_step_time": lambda t, bound, ref: -t,
}

GraphSpec = str | OpGraph
GraphSource = Sequence[GraphSpec] | str | Callable[[np.random.Generator], OpGraph]


@dataclass(frozen=True)
class _GraphContext:
    """Everything an env derives from one graph, computed once when the graph is first seen."""

    graph: OpGraph
    encoded: EncodedGraph
    lower_bound: float
    reference: SimResult  # the TensorFlow-like default: one device, first-ready order, no fusion
    leader: NDArray[np.int64]  # (n_ops,) op whose decision each op takes (colocation)
    fixed_placement: NDArray[np.int64] | None
    fixed_priority: NDArray[np.int64] | None
    fixed_fusion: NDArray[np.int64] | None


def resolve_graph(spec: GraphSpec) -> OpGraph:
    """An `OpGraph` from an `OpGraph` or a suite graph id such as ``"quick-v0/rnnlm-2"``."""
    if isinstance(spec, OpGraph):
        return spec
    if isinstance(spec, str):
        from go_gym.zoo import get_graph

        return get_graph(spec)
    raise TypeError(f"graph must be a suite graph id or an OpGraph, got {type(spec).__name__}")


def resolve_cluster(
    cluster: str | Cluster | None, n_devices: int | None, specs: Sequence[GraphSpec]
) -> Cluster:
    """The cluster by preset name or object; by default the suite's cluster of the graph ids
    in ``specs`` (which must agree on it), else a 4-GPU P100 machine (the GO paper's
    hardware).

    Raises:
        ValueError: graph ids of suites with different clusters and no ``cluster=`` (one
            would silently run on the other's hardware), or ``n_devices`` contradicting a
            given `Cluster`.
    """
    if isinstance(cluster, Cluster):
        if n_devices is not None and n_devices != cluster.n_devices:
            raise ValueError(
                f"n_devices={n_devices} contradicts the given cluster's {cluster.n_devices}"
            )
        return cluster
    if cluster is None:
        from go_gym.zoo import get_entry

        machines: dict[tuple[str, int], str] = {}  # (preset, devices) -> a graph that wants it
        for spec in specs:
            if isinstance(spec, str):
                entry = get_entry(spec)
                name, k, label = entry.cluster, entry.n_devices, spec
            else:
                name, k, label = "p100", Cluster.preset("p100").n_devices, spec.name
            machines.setdefault((name, k if n_devices is None else n_devices), label)
        if len(machines) > 1:
            found = "; ".join(f"{label}: {name} x{k}" for (name, k), label in machines.items())
            raise ValueError(
                f"the graphs run on different clusters by default ({found}); pass cluster= "
                "and/or n_devices= to say which one the env simulates"
            )
        if not machines:  # a graph generator
            return Cluster.preset("p100", n_devices)
        name, k = next(iter(machines))
        return Cluster.preset(name, k)
    if isinstance(cluster, str):
        return Cluster.preset(cluster, n_devices)
    raise TypeError(f"cluster must be a preset name or a Cluster, got {type(cluster).__name__}")


def colocation_leaders(graph: OpGraph) -> NDArray[np.int64]:
    """Per op, the op whose decision it takes: the first member (lowest index) of its
    colocation group, or itself. Actions, fixed placements and saved rows all follow it."""
    leader = np.arange(graph.n_ops, dtype=np.int64)
    grouped = np.flatnonzero(graph.colocation >= 0)
    if grouped.size:
        groups = graph.colocation[grouped]
        _, first = np.unique(groups, return_index=True)
        first_of = dict(zip(groups[first].tolist(), grouped[first].tolist(), strict=True))
        leader[grouped] = [first_of[g] for g in groups.tolist()]
    return leader


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_per_op_array(value: object) -> bool:
    return value is not None and not isinstance(value, str)


def _integer_valued(arr: NDArray[Any]) -> bool:
    """Integers, or floats that hold integers (what `MultiDiscrete` samples are cast from)."""
    if arr.dtype.kind in "iu":
        return True
    return arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))


#: Contexts kept for a graph generator's draws (see `GraphOptEnv.__init__`).
SAMPLED_CONTEXTS = 8


class GraphOptEnv(gym.Env):
    """Base of the go_gym envs; see the task classes for the documented interface."""

    # An instance attribute in gymnasium.Env, which declares it the same way.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 1}  # noqa: RUF012
    #: Which decisions the action carries. The joint env's action is a `spaces.Dict`, which
    #: Gymnasium orders by sorted key (fusion, placement, priority), not in this order.
    decides: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        graph: GraphSpec | None = None,
        cluster: str | Cluster | None = None,
        *,
        n_devices: int | None = None,
        graphs: GraphSource | None = None,
        max_nodes: int | None = None,
        max_edges: int | None = None,
        reward: str = "neg_sqrt_ratio",
        oom_penalty: float = 100.0,
        priority_levels: int = 16,
        fusion_levels: int = 2,
        episode_steps: int = 1,
        placement: str | Sequence[int] | NDArray[np.integer] | None = None,
        priority: Sequence[int] | NDArray[np.integer] | None = None,
        fusion: Sequence[int] | NDArray[np.integer] | None = None,
        profile: str = "go",
        render_mode: str | None = None,
    ) -> None:
        if reward not in REWARDS:
            raise ValueError(f"unknown reward {reward!r}; known rewards: {sorted(REWARDS)}")
        if not (oom_penalty > 1.0 and math.isfinite(oom_penalty)):
            raise ValueError(f"oom_penalty must be a finite number > 1, got {oom_penalty!r}")
        for name, value, least in (
            ("priority_levels", priority_levels, 1),
            ("fusion_levels", fusion_levels, 1),
            ("episode_steps", episode_steps, 1),
            ("max_nodes", max_nodes, 1),
            ("max_edges", max_edges, 0),
        ):
            if value is not None and not (_is_integer(value) and value >= least):
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        if graph is not None and graphs is not None:
            raise ValueError("pass either graph= (one graph) or graphs= (several), not both")
        if isinstance(graphs, OpGraph):
            raise TypeError(
                "graphs= takes several graphs (a list, a suite name or a generator); "
                "pass one OpGraph as graph="
            )
        self.reward_name = reward
        self.oom_penalty = float(oom_penalty)
        self.priority_levels = int(priority_levels)
        self.fusion_levels = int(fusion_levels)
        self.episode_steps = int(episode_steps)
        self.profile = profile
        self.render_mode = render_mode
        self._fixed = {"placement": placement, "priority": priority, "fusion": fusion}
        for name in self.decides:
            if self._fixed[name] is not None:
                raise ValueError(f"{type(self).__name__} decides {name}; do not also fix it")
        if profile == "placeto" and ("priority" in self.decides or priority is not None):
            from go_gym import ENV_IDS

            cls = type(self).__name__
            ids = [i for i, entry in ENV_IDS.items() if entry.endswith(f":{cls}")]
            task = f"{ids[0]} ({cls})" if ids else cls
            how = "decides priority" if "priority" in self.decides else "was given priority="
            raise ValueError(
                f"{task} {how}, but profile='placeto' takes no priority (its devices run "
                "ready ops in arrival order), so every step would fail; use profile='go', or "
                "a task that leaves priority to the simulator"
            )

        # Graphs: one fixed graph, or a pool/generator sampled at every reset.
        self._sampler: Callable[[np.random.Generator], OpGraph] | None = None
        specs: list[GraphSpec]
        if graphs is None:
            specs = [DEFAULT_GRAPH if graph is None else graph]
        elif callable(graphs):
            if max_nodes is None or max_edges is None:
                raise ValueError("a graph generator needs max_nodes and max_edges for padding")
            fixed_arrays = [n for n, v in self._fixed.items() if _is_per_op_array(v)]
            if fixed_arrays:
                raise ValueError(
                    f"fixed {fixed_arrays[0]} is one array for one graph; a generator's graphs "
                    "differ (fix it by name, e.g. placement='human-expert', or not at all)"
                )
            self._sampler = graphs
            specs = []
        else:
            if isinstance(graphs, str):
                from go_gym.zoo import list_graphs

                specs = list(list_graphs(graphs))
            else:
                specs = list(graphs)
            if not specs:
                raise ValueError("graphs= is empty")
        pool = [resolve_graph(spec) for spec in specs]
        self.cluster = resolve_cluster(cluster, n_devices, specs)
        self._pool = pool
        self._pool_keys = frozenset(g.checksum() for g in pool)
        self.max_nodes = int(max(g.n_ops for g in pool) if max_nodes is None else max_nodes)
        self.max_edges = int(max(g.n_edges for g in pool) if max_edges is None else max_edges)
        for g in pool:
            if g.n_ops > self.max_nodes or g.n_edges > self.max_edges:
                raise ValueError(
                    f"graph {g.name!r} has {g.n_ops} ops and {g.n_edges} edges, more than "
                    f"max_nodes={self.max_nodes} or max_edges={self.max_edges}"
                )
        # Contexts of the pool's graphs are kept; a generator's only for the last few graphs
        # it drew (it may draw a new graph at every reset, and each context holds the
        # graph's encoding and its reference simulation).
        self._contexts: OrderedDict[str, _GraphContext] = OrderedDict()
        # Fixed decisions are checked against every graph of the pool now, not at the reset
        # that first draws a graph they do not fit.
        for g in pool[1:]:
            for name in ("placement", "priority", "fusion"):
                self._fixed_decision(name, g, check_only=True)

        self.action_space = self._action_space()
        extra: dict[str, spaces.Space] = {}
        if self.episode_steps > 1:
            # Iterative refinement: the agent sees its last decision and how it did.
            extra["previous_action"] = self._flat_decision_space()
            extra["previous_result"] = spaces.Box(-np.inf, np.inf, (4,), np.float32)
        self.observation_space = observation_space(
            self.max_nodes, self.max_edges, self.cluster.n_devices, extra
        )
        self._context: _GraphContext = self._context_for(pool[0] if pool else None)
        self._steps = 0
        self._over = False
        self._last: tuple[dict[str, NDArray[np.int64]], SimResult] | None = None
        #: Simulator evaluations spent through this env (steps and `evaluate` rows): the
        #: budget unit of every searching or learning agent.
        self.evaluations = 0

    # --- graphs ----------------------------------------------------------------------------------
    @property
    def graph(self) -> OpGraph:
        """The graph of the current episode."""
        return self._context.graph

    @property
    def lower_bound(self) -> float:
        """Lower bound on the current graph's step time (see `go_gym.sim.lower_bound`)."""
        return self._context.lower_bound

    def _context_for(self, graph: OpGraph | None) -> _GraphContext:
        if graph is None:
            assert self._sampler is not None
            graph = self._sampler(np.random.default_rng(0))
        key = graph.checksum()
        if key in self._contexts:
            self._contexts.move_to_end(key)
        else:
            self._contexts[key] = self._build_context(graph)
            drawn = [k for k in self._contexts if k not in self._pool_keys]
            for old in drawn[: max(0, len(drawn) - SAMPLED_CONTEXTS)]:
                del self._contexts[old]
        return self._contexts[key]

    def _build_context(self, graph: OpGraph) -> _GraphContext:
        if graph.n_ops > self.max_nodes or graph.n_edges > self.max_edges:
            raise ValueError(
                f"graph {graph.name!r} has {graph.n_ops} ops and {graph.n_edges} edges, more "
                f"than this env's max_nodes={self.max_nodes} or max_edges={self.max_edges}"
            )
        n = graph.n_ops
        zeros = np.zeros(n, np.int64)
        leader = colocation_leaders(graph)
        fixed_placement = self._fixed_decision("placement", graph)
        fixed_priority = self._fixed_decision("priority", graph)
        fixed_fusion = self._fixed_decision("fusion", graph)
        # Fused steps can beat the unfused bound: envs that fuse use the fused one.
        bound = lower_bound(
            graph, self.cluster, fused="fusion" in self.decides or fixed_fusion is not None
        )
        if not bound > 0:
            raise ValueError(
                f"graph {graph.name!r} takes no time on {self.cluster.name} (lower bound "
                f"{bound}): every op costs nothing, so there is nothing to optimise"
            )
        return _GraphContext(
            graph=graph,
            encoded=encode(graph, self.cluster, self.max_nodes, self.max_edges),
            lower_bound=bound,
            reference=simulate(graph, self.cluster, zeros, profile=self.profile),
            leader=leader,
            # colocated ops follow their first member, in a fixed placement as in an action
            fixed_placement=None if fixed_placement is None else fixed_placement[leader],
            fixed_priority=fixed_priority,
            fixed_fusion=fixed_fusion,
        )

    def _fixed_decision(
        self, name: str, graph: OpGraph, *, check_only: bool = False
    ) -> NDArray[np.int64] | None:
        """The fixed ``name`` decision for ``graph`` (None: the simulator's default), checked
        like an action; ``check_only`` validates a placer's name without running it."""
        value = self._fixed[name]
        if name in self.decides:
            return None
        if name == "placement" and (
            value is None or (isinstance(value, str) and value == "single-device")
        ):
            return np.zeros(graph.n_ops, np.int64)
        if value is None:
            return None
        if isinstance(value, str):
            if name != "placement":
                raise ValueError(f"{name} must be an array of per-op integers, got {value!r}")
            from agents.placement import PLACERS

            if value not in PLACERS:
                raise ValueError(f"unknown placer {value!r}; known: {sorted(PLACERS)}")
            if check_only:
                return None
            return np.asarray(PLACERS[value](graph, self.cluster), np.int64)
        arr = np.asarray(value)
        if arr.shape != (graph.n_ops,):
            raise ValueError(
                f"fixed {name} has shape {arr.shape}, graph {graph.name!r} has {graph.n_ops} ops"
            )
        return self._choice_values(name, arr, f"fixed {name}")

    # --- spaces --------------------------------------------------------------------------------
    def _choices(self, name: str) -> int:
        return {
            "placement": self.cluster.n_devices,
            "priority": self.priority_levels,
            "fusion": self.fusion_levels,
        }[name]

    def _action_space(self) -> spaces.Space:
        if len(self.decides) == 1:
            return spaces.MultiDiscrete(np.full(self.max_nodes, self._choices(self.decides[0])))
        return spaces.Dict(
            {
                name: spaces.MultiDiscrete(np.full(self.max_nodes, self._choices(name)))
                for name in self.decides
            }
        )

    def _flat_decision_space(self) -> spaces.Box:
        high = max(self._choices(name) for name in self.decides) - 1
        return spaces.Box(0, high, (len(self.decides), self.max_nodes), np.int64)

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray], dict[str, Any]]:
        """Start an episode. ``options={"graph": spec}`` (a suite graph id or an `OpGraph`
        that fits ``max_nodes``/``max_edges``) sets its graph instead of drawing one: how an
        agent trained on a pool is evaluated on each of its graphs."""
        super().reset(seed=seed)
        options = dict(options or {})
        chosen = options.pop("graph", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; known: ['graph']")
        if chosen is not None:
            self._context = self._context_for(resolve_graph(chosen))
        elif self._sampler is not None:
            self._context = self._context_for(self._sampler(self.np_random))
        elif len(self._pool) > 1:
            self._context = self._context_for(
                self._pool[int(self.np_random.integers(len(self._pool)))]
            )
        self._steps = 0
        self._over = False
        self._last = None
        return self._observation(None, None), self._reset_info()

    def step(self, action: Any) -> tuple[dict[str, NDArray], float, bool, bool, dict[str, Any]]:
        if self._over:
            raise RuntimeError("the episode is over: call reset() before step()")
        decisions = self._decode(action)
        ctx = self._context
        result = simulate(
            ctx.graph,
            self.cluster,
            decisions["placement"],
            decisions.get("priority"),
            decisions.get("fusion"),
            profile=self.profile,
        )
        effective = result.step_time if result.valid else self.oom_penalty * ctx.lower_bound
        reference = (
            ctx.reference.step_time if ctx.reference.valid else self.oom_penalty * ctx.lower_bound
        )
        reward = float(REWARDS[self.reward_name](effective, ctx.lower_bound, reference))
        self._steps += 1
        self.evaluations += 1
        self._last = (decisions, result)
        terminated = (not result.valid) or self._steps >= self.episode_steps
        self._over = terminated
        info = self._reset_info()
        info.update(
            step_time=result.step_time,
            effective_step_time=effective,
            valid=result.valid,
            peak_memory=result.peak_memory,
            bytes_moved=result.bytes_moved,
        )
        return self._observation(decisions, result), reward, terminated, False, info

    def _reset_info(self) -> dict[str, Any]:
        ctx = self._context
        return {
            "graph": ctx.graph.name,
            "n_ops": ctx.graph.n_ops,
            "lower_bound": ctx.lower_bound,
            "reference_step_time": ctx.reference.step_time,
            "reference_valid": ctx.reference.valid,
        }

    def _observation(
        self, decisions: dict[str, NDArray[np.int64]] | None, result: SimResult | None
    ) -> dict[str, NDArray]:
        obs = {key: value.copy() for key, value in self._context.encoded.observation.items()}
        if self.episode_steps > 1:
            previous = np.zeros((len(self.decides), self.max_nodes), np.int64)
            summary = np.zeros(4, np.float32)
            if decisions is not None and result is not None:
                n = self.graph.n_ops
                for row, name in enumerate(self.decides):
                    previous[row, :n] = decisions[name]
                summary[:] = (
                    result.step_time / self.lower_bound,
                    float(result.valid),
                    float((result.peak_memory / self.cluster.memory_bytes).max()),
                    float(self._steps) / self.episode_steps,
                )
            obs["previous_action"] = previous
            obs["previous_result"] = summary
        return obs

    # --- actions -------------------------------------------------------------------------------
    def _check(self, name: str, value: Any) -> NDArray[np.int64]:
        """One per-node decision vector, validated against its space (clear errors)."""
        arr = np.asarray(value)
        if arr.shape != (self.max_nodes,):
            raise ValueError(
                f"{name} action has shape {arr.shape}, expected ({self.max_nodes},): "
                f"one value per node of graph {self.graph.name!r}"
                + (" (padded)" if self.max_nodes != self.graph.n_ops else "")
            )
        return self._choice_values(name, arr, f"{name} action")[: self.graph.n_ops]

    def _choice_values(self, name: str, arr: NDArray[Any], label: str) -> NDArray[np.int64]:
        """``arr`` as int64 choices of ``name``: integer-valued and inside its space, for
        actions and fixed decisions alike (the errors call it ``label``)."""
        if not _integer_valued(arr):
            raise ValueError(f"{label} must hold integers, got dtype {arr.dtype}")
        values = arr.astype(np.int64)
        high = self._choices(name)
        bad = (values < 0) | (values >= high)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{label}[{i}] = {int(values[i])} is outside 0..{high - 1}")
        return values

    def _decode(self, action: Any) -> dict[str, NDArray[np.int64]]:
        ctx = self._context
        if len(self.decides) == 1:
            decided = {self.decides[0]: self._check(self.decides[0], action)}
        else:
            if not isinstance(action, dict) or set(action) != set(self.decides):
                got = sorted(action) if isinstance(action, dict) else type(action).__name__
                raise ValueError(f"action must be a dict with keys {list(self.decides)}, got {got}")
            decided = {name: self._check(name, action[name]) for name in self.decides}
        out: dict[str, NDArray[np.int64]] = {}
        placement = decided.get("placement", ctx.fixed_placement)
        assert placement is not None
        out["placement"] = placement[ctx.leader]  # colocated ops follow their first member
        priority = decided.get("priority", ctx.fixed_priority)
        if priority is not None:
            out["priority"] = priority
        fusion = decided.get("fusion", ctx.fixed_fusion)
        if fusion is not None:
            out["fusion"] = fusion
        return out

    # --- what agents may use ---------------------------------------------------------------------
    @property
    def fixed_decisions(self) -> dict[str, NDArray[np.int64] | None]:
        """The current graph's decisions this env does not take (None: simulator default)."""
        ctx = self._context
        return {
            "placement": ctx.fixed_placement,
            "priority": ctx.fixed_priority,
            "fusion": ctx.fixed_fusion,
        }

    def n_choices(self, decision: str) -> int:
        """How many values one node's ``decision`` can take in this env."""
        return self._choices(decision)

    def action_from(self, decisions: dict[str, Any]) -> Any:
        """An action of this env's space from per-op decisions of the current graph
        (unpadded, one entry per op): pads to ``max_nodes`` and orders a joint Dict."""
        out: dict[str, NDArray[np.int64]] = {}
        for name in self.decides:
            if name not in decisions:
                raise ValueError(f"decisions lack {name!r}, which {type(self).__name__} decides")
            row = np.asarray(decisions[name], np.int64)
            if row.shape != (self.graph.n_ops,):
                raise ValueError(
                    f"{name} has shape {row.shape}, graph {self.graph.name!r} has "
                    f"{self.graph.n_ops} ops"
                )
            padded = np.zeros(self.max_nodes, np.int64)
            padded[: row.shape[0]] = row
            out[name] = padded
        return out[self.decides[0]] if len(self.decides) == 1 else out

    def evaluate(self, decisions: dict[str, Any]) -> NDArray[np.float64]:
        """Effective step times (OOM -> the penalty, as in the reward) of K decisions at once.

        ``decisions`` maps each decided task to a (K, n_ops) array for the current graph;
        the fixed decisions are shared by all rows. Runs `simulate_many` (all cores) and
        counts K evaluations. This is how search agents spend their budget.
        """
        ctx = self._context
        rows = {name: np.atleast_2d(np.asarray(decisions[name], np.int64)) for name in self.decides}
        k = next(iter(rows.values())).shape[0]
        for name, row in rows.items():
            if row.ndim != 2 or row.shape != (k, ctx.graph.n_ops):
                raise ValueError(
                    f"{name} rows have shape {row.shape}, expected ({k}, {ctx.graph.n_ops}): "
                    f"one unpadded row of decisions per candidate for graph {ctx.graph.name!r}"
                )

        def batch(name: str) -> NDArray[np.int64] | None:
            if name in rows:
                return rows[name]
            fixed = self.fixed_decisions[name]
            return None if fixed is None else np.broadcast_to(fixed, (k, ctx.graph.n_ops))

        placements = batch("placement")
        assert placements is not None
        result = simulate_many(
            ctx.graph,
            self.cluster,
            placements[:, ctx.leader],
            batch("priority"),
            batch("fusion"),
            profile=self.profile,
        )
        self.evaluations += k
        return np.where(result.valid, result.step_time, self.oom_penalty * ctx.lower_bound)

    # --- rendering ---------------------------------------------------------------------------
    def render(self) -> NDArray[np.uint8] | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to make()")
            return None
        if self._last is None:  # before any step: show the reference (default) decision
            ctx = self._context
            self._last = ({"placement": np.zeros(ctx.graph.n_ops, np.int64)}, ctx.reference)
        from go_gym.envs.render import ansi_summary, gantt_rgb

        decisions, result = self._last
        if self.render_mode == "ansi":
            return ansi_summary(self.graph, self.cluster, result, self.lower_bound)
        timeline = simulate(
            self.graph,
            self.cluster,
            decisions["placement"],
            decisions.get("priority"),
            decisions.get("fusion"),
            profile=self.profile,
            timeline=True,
        )
        return gantt_rgb(self.graph, self.cluster, timeline)
