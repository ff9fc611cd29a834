"""The GO agent for the runner: ``agents.make("go", env)`` and ``agents.make("go-zeroshot", env)``.

``go`` is GO-one by default: ``fit(env, budget)`` trains a fresh policy with PPO on the env's
current graph for ``budget`` simulator evaluations (counted by the env like every other
agent's) and keeps the best decision it sampled. Given ``checkpoint=``, it starts from a
pre-trained policy instead, so ``fit`` is fine-tuning. ``predict(deterministic=True)``
returns the best decision found on that graph (what a compiler would ship after the
search); before any ``fit`` it trains with the default budget first, as the search agents
do. ``predict(deterministic=False)`` samples a fresh decision from the policy.

``go-zeroshot`` loads a pre-trained checkpoint (default: the one shipped in
``agents/go/checkpoints/``) and never trains or evaluates: ``predict`` returns the policy's
argmax decision for any graph (budget 0; options that only shape training are refused).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from agents.base import (
    HEURISTICS,
    EnvAgent,
    HeuristicAgent,
    check_options,
    core_env,
    decision_key,
    keyword_options,
)
from agents.go.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, load_weights
from agents.go.model import PLACEMENT_ACTIONS, TASK_ORDER, GOConfig
from agents.go.ppo import IterationStats, PPOConfig, PPOTrainer, graph_key, make_policy
from agents.go.roles import role_groups
from agents.search import boundary_descent
from go_gym.cluster import op_times
from go_gym.envs.graph_env import GraphOptEnv

#: Heuristics scored by ``warm_start="best"``, in this order: every deterministic placement
#: baseline (one evaluation each, charged), the first one wins ties. A `GOAgent.fit` budget
#: below their number scores only the first ``budget`` of them, so that the warm start never
#: spends more than the budget. Other tasks use their own heuristic where one has the name,
#: else the strongest default (see `_heuristics_for`).
WARM_CANDIDATES: tuple[str, ...] = (
    "human-expert",
    "metis",
    "single-device",
    "m-topo",
    "m-etf",
    "m-sct",
    "heft",
    "critical-path",
)

#: Largest share of nodes a warm start's prior lets a sampled decision change (in expectation).
WARM_MAX_DEVIATE = 0.05

#: Where a warm start's samples leave it: ``"uniform"``, every node alike; ``"subtrees"``
#: (tree actions only), `SUBTREE_SHARE` of the expected deviations in proportion to how
#: evenly each leader's subtree splits the work (`PlacementTree.balance`) and the rest spread
#: over the tree's non-root leaders, so samples try the moves that start a split more often.
WARM_PROPOSALS: tuple[str, ...] = ("uniform", "subtrees")

#: The share of the expected deviations that ``"subtrees"`` puts by balance (the rest is
#: uniform, so that small moves are still tried).
SUBTREE_SHARE = 0.5

#: `GOAgent`'s default ``warm_deviations`` (another value needs a ``warm_start``).
WARM_DEVIATIONS = 16.0

#: The options of `GOAgent` that only shape placement decisions: their defaults, which are
#: all an env that does not decide placement (scheduling, fusion) accepts.
PLACEMENT_OPTIONS: dict[str, object] = {
    "refine_share": 0.0,
    "layer_head": 0.0,
    "placement_actions": "device",
    "tie_roles": False,
}


def _check_integer(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"GOAgent: {name} must be an integer >= {least}, got {value!r}")


def _check_real(name: str, value: Any, rule: str, ok: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise ValueError(f"GOAgent: {name} must be a finite number {rule}, got {value!r}")


def _heuristics_for(name: str, decides: tuple[str, ...]) -> dict[str, str]:
    """Heuristic per decided task: ``name`` where it exists, else the strongest default
    (critical-path priorities, XLA-style greedy fusion)."""
    from agents.fusion import FUSERS
    from agents.placement import PLACERS
    from agents.scheduling import PRIORITIZERS

    tables: dict[str, Mapping[str, object]] = {
        "placement": PLACERS,
        "priority": PRIORITIZERS,
        "fusion": FUSERS,
    }
    defaults = {"placement": "m-sct", "priority": "critical-path", "fusion": "xla-greedy"}
    return {t: name if name in tables[t] else defaults[t] for t in decides}


@dataclass(frozen=True)
class FitReport:
    """What one `GOAgent.fit` did: its PPO iterations, and the best step time found against
    the evaluations spent on the graph (the same curve the search agents report). A warm
    start that scored heuristics (``warm_start="best"``) gives the curve its first point,
    after that scoring, so a budget the candidates use up still has a curve."""

    history: tuple[IterationStats, ...]
    # (P,) evaluations on this graph after the warm start's scoring, if any, then after
    # each iteration (and each refining step)
    curve_evals: NDArray[np.int64]
    curve_best: NDArray[np.float64]  # (P,) best effective step time found by then


class GOAgent(EnvAgent):
    """GO: a GraphSAGE + segment-attention policy trained by one-shot PPO.

    Args:
        env: The env (any go_gym task; the policy gets one pass per decided task).
        seed: Seeds the initial weights and the sampling.
        budget: Default evaluations for `fit` and for a `predict` before any `fit`.
        checkpoint: Path of a pre-trained checkpoint to start from (fine-tuning).
        warm_start: Name of a heuristic (``"m-sct"``, ``"heft"``...) of a task the env
            decides, whose decision PPO starts from, as a fixed prior on the logits
            (`PPOTrainer.set_prior`; no evaluations spent), or ``"best"``: score
            `WARM_CANDIDATES` (one evaluation each, charged to the budget; only the first
            ``budget`` of them when the budget is smaller) and start from the best; None
            (default) for the paper's PPO from scratch.
        warm_deviations: Strength of that prior: the expected number of nodes per sampled
            decision that leave the heuristic's choice at the start, at most
            `WARM_MAX_DEVIATE` of the nodes (so a few on small graphs, as many on large
            ones: a fixed fraction would change hundreds of ops at once on a large graph
            and every sample would be worse than the start).
        warm_proposal: Where that prior's deviations fall, one of `WARM_PROPOSALS`:
            ``"uniform"`` (default) or ``"subtrees"``, which needs tree actions and puts half
            of them where moving a subtree splits the work evenly (the README's measured
            setting: ``placement_actions="tree", warm_start="single-device",
            warm_proposal="subtrees"``).
        threads: torch threads (1 is fastest on shared CPUs for these small tensors).
        device: Where the network runs: ``"cpu"`` (default: the same results on every
            machine), ``"cuda"``, ``"cuda:1"``, ``"auto"`` (a GPU if torch sees one), as
            `agents.go.ppo.torch_device` reads it. The simulator runs on the CPU either way.
        hidden: Width of a fresh policy (default `GOConfig`'s).
        layer_head: Initial scale of a fresh policy's layer head (`GOConfig.layer_head`;
            0, the default, for none). 1.0 is the setting measured in the README.
        placement_actions: What a fresh policy's placement choices mean
            (`GOConfig.placement_actions`): ``"device"`` (default, the paper's) or
            ``"tree"``, offsets along a maximum spanning tree of the graph (`agents.go.tree`),
            or ``"tree-solo"``, those offsets and moves of an op alone.
        tie_roles: With tree actions, one placement choice for the ops that play one role
            in repeated blocks (`GOConfig.tie_roles`, `agents.go.roles`).
        refine_share: Share of each `fit` budget kept for the end, to refine the best
            placement PPO found by moving single ops (or the same op of every repeated
            block) next to a neighbour on another device (`agents.search.boundary_descent`
            with `agents.go.roles`; other tasks' decisions stay as found). 0 (the
            default, the paper's GO) for none. Why: PPO's curves flatten long before the
            budget ends, its samples change many ops at once, and from a good placement
            almost every such sample is worse; a boundary move improves about one time in
            five, and one at a time (``agents/go/EXPERIMENTS.md``, "Refining").
        **ppo: `PPOConfig` fields (samples, epochs, clip, lr, entropy_coef, ...).

    Raises:
        TypeError: for an option that is neither one of the above nor a `PPOConfig` field
            (`agents.base.check_options`: the message lists the accepted ones).
        ValueError: for a value of the wrong type or out of range (a budget of 1.7 or -5,
            ``tie_roles="no"``, a NaN ``layer_head``, ``hidden=0``...), an option that
            would do nothing: one of `PLACEMENT_OPTIONS` other than its default in an env
            that does not decide placement, ``warm_deviations`` without ``warm_start``,
            an option that shapes a fresh policy with ``checkpoint``.
    """

    tasks = frozenset(TASK_ORDER)

    def __init__(
        self,
        env: gym.Env,
        *,
        seed: int = 0,
        budget: int = 2000,
        checkpoint: str | os.PathLike[str] | None = None,
        warm_start: str | None = None,
        warm_deviations: float = WARM_DEVIATIONS,
        warm_proposal: str = "uniform",
        threads: int | None = 1,
        device: str = "cpu",
        hidden: int | None = None,
        layer_head: float = 0.0,
        placement_actions: str = "device",
        tie_roles: bool = False,
        refine_share: float = 0.0,
        **ppo: Any,
    ) -> None:
        check_options(
            "GOAgent (agents 'go' and 'go-warm')",
            ppo,
            [*keyword_options(GOAgent.__init__), *(f.name for f in fields(PPOConfig))],
            "its own options and PPOConfig's fields",
        )
        _check_integer("seed", seed, 0)
        _check_integer("budget", budget, 0)
        if threads is not None:
            _check_integer("threads", threads, 1)
        if warm_start is not None and not isinstance(warm_start, str):
            raise ValueError(f"GOAgent: warm_start must be a name or None, got {warm_start!r}")
        _check_real("warm_deviations", warm_deviations, "> 0", lambda v: v > 0)
        _check_real("refine_share", refine_share, "in [0, 1)", lambda v: 0 <= v < 1)
        _check_real("layer_head", layer_head, ">= 0", lambda v: v >= 0)
        if hidden is not None:
            _check_integer("hidden", hidden, 1)
        if placement_actions not in PLACEMENT_ACTIONS:
            raise ValueError(
                f"GOAgent: placement_actions must be one of {PLACEMENT_ACTIONS}, "
                f"got {placement_actions!r}"
            )
        if not isinstance(tie_roles, (bool, np.bool_)):
            raise ValueError(f"GOAgent: tie_roles must be True or False, got {tie_roles!r}")
        super().__init__(env, seed=seed)
        core = core_env(env)
        given = {
            "refine_share": refine_share,
            "layer_head": layer_head,
            "placement_actions": placement_actions,
            "tie_roles": tie_roles,
        }
        placing = [f"{k}={v!r}" for k, v in given.items() if v != PLACEMENT_OPTIONS[k]]
        if placing and "placement" not in core.decides:
            raise ValueError(
                f"GOAgent: {', '.join(placing)}: for placement only, and "
                f"{type(core).__name__} decides {list(core.decides)}"
            )
        if warm_start is None and warm_deviations != WARM_DEVIATIONS:
            raise ValueError(
                f"GOAgent: warm_deviations={warm_deviations!r} sets the strength of a warm "
                "start's prior; give warm_start= too"
            )
        if threads is not None:
            torch.set_num_threads(threads)
        self.budget = int(budget)
        if warm_start not in (None, "best") and not any(
            warm_start in HEURISTICS[task] for task in core.decides
        ):
            known = sorted({name for task in core.decides for name in HEURISTICS[task]})
            raise ValueError(
                f"warm_start {warm_start!r} is no heuristic of {list(core.decides)}; "
                f"known: {known} or 'best'"
            )
        self.warm_start = warm_start
        if warm_deviations <= 0:
            raise ValueError(f"warm_deviations must be > 0, got {warm_deviations}")
        self.warm_deviations = float(warm_deviations)
        if warm_proposal not in WARM_PROPOSALS:
            raise ValueError(
                f"warm_proposal must be one of {WARM_PROPOSALS}, got {warm_proposal!r}"
            )
        self.warm_proposal = warm_proposal
        if not 0.0 <= refine_share < 1.0:
            raise ValueError(f"refine_share must be in [0, 1), got {refine_share}")
        self.refine_share = float(refine_share)
        fresh = {
            "hidden": hidden is not None,
            "layer_head": layer_head != 0,
            "placement_actions": placement_actions != "device",
            "tie_roles": bool(tie_roles),
        }
        fresh_only = [name for name, v in fresh.items() if v]
        if checkpoint is not None and fresh_only:
            raise ValueError(
                f"{' and '.join(fresh_only)} shape a fresh policy; checkpoint {checkpoint} "
                "has its own network"
            )
        state = load_checkpoint(checkpoint) if checkpoint is not None else None
        if state is not None:
            config = GOConfig.from_dict(state["model_config"])
            missing = set(core.decides) - set(config.tasks)
            if missing:
                raise ValueError(
                    f"checkpoint {checkpoint} decides {list(config.tasks)}; the env also "
                    f"needs {sorted(missing)}"
                )
        else:
            tasks = tuple(t for t in TASK_ORDER if t in core.decides)
            config = GOConfig(
                tasks=tasks,
                layer_head=layer_head,
                placement_actions=placement_actions,
                tie_roles=tie_roles,
                **({"hidden": hidden} if hidden is not None else {}),
            )
        if warm_proposal == "subtrees" and (
            warm_start is None or not config.tree_actions or "placement" not in config.tasks
        ):
            raise ValueError(
                'warm_proposal="subtrees" needs a warm start and tree actions for placement'
            )
        policy = make_policy(config, seed=seed)
        if state is not None:
            load_weights(policy, state, checkpoint)
        self.trainer = PPOTrainer(policy, PPOConfig(**ppo), seed=seed, device=device)
        self.history: list[IterationStats] = []

    def fit(self, env: gym.Env | None = None, budget: int | None = None) -> FitReport:
        """Train on the current graph of ``env`` for ``budget`` evaluations (default: own)."""
        core = core_env(env or self.env)
        if budget is not None:
            _check_integer("fit budget", budget, 0)
        budget = self.budget if budget is None else int(budget)
        curve_evals: list[int] = []
        curve_best: list[float] = []
        if self.warm_start is not None and budget > 0:
            before = core.evaluations
            target = self._warm_target(core, self.warm_start, budget)
            spent = core.evaluations - before
            budget -= spent  # scoring the heuristics is charged
            if spent > 0:  # the curve starts where the scored candidates left it
                rec = self.trainer.record(core)
                curve_evals.append(rec.evaluations)
                curve_best.append(rec.best_time)
            self.trainer.set_prior(core, target, self._warm_deviate(core))
        refine = round(self.refine_share * budget) if "placement" in core.decides else 0
        history = self.trainer.train([core], budget - refine) if budget > refine else []
        self.history.extend(history)
        curve_evals.extend(h.graph_evaluations for h in history)
        curve_best.extend(h.best_step_time for h in history)
        if refine > 0:
            evals, best = self._refine(core, refine)
            curve_evals.extend(evals.tolist())
            curve_best.extend(best.tolist())
        rec = self.trainer.record(core)
        if rec.best:
            self._cache[decision_key(core)] = core.action_from(rec.best)
        return FitReport(
            history=tuple(history),
            curve_evals=np.array(curve_evals, np.int64),
            curve_best=np.array(curve_best, np.float64),
        )

    def _refine(
        self, core: GraphOptEnv, budget: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Boundary descent from the best decision so far (the policy's argmax if none), with
        role moves (the same op of every repeated block, `agents.go.roles`), scored through
        the trainer so that the graph's record keeps the best; its curve (evaluations on the
        graph, best step time) continues PPO's."""
        rec = self.trainer.record(core)
        start = rec.best or self.trainer.greedy(core)
        found_before, evals_before = rec.best_time, rec.evaluations

        def evaluate(placements: NDArray[np.int64]) -> NDArray[np.float64]:
            rows = {t: np.broadcast_to(v, placements.shape) for t, v in start.items()}
            return self.trainer.score(core, {**rows, "placement": placements})

        result = boundary_descent(
            evaluate,
            core.graph,
            core.cluster.n_devices,
            budget,
            seed=self.seed,
            init=start["placement"],
            leader=core._context.leader,
            roles=role_groups(core.graph, core._context.leader),
            op_time=op_times(core.graph, core.cluster).mean(axis=1),
        )
        return evals_before + result.curve_evals, np.minimum(result.curve_best, found_before)

    def _warm_target(
        self, core: GraphOptEnv, warm_start: str, budget: int
    ) -> dict[str, NDArray[np.int64]]:
        """The heuristic decision to start from; ``"best"`` scores `WARM_CANDIDATES`
        (charged), at most ``budget`` of them: the first ones, in that order."""
        names = WARM_CANDIDATES if warm_start == "best" else (warm_start,)
        candidates: list[dict[str, NDArray[np.int64]]] = []
        for name in names:
            if len(candidates) == budget:
                break
            try:
                agent = HeuristicAgent(core, **_heuristics_for(name, core.decides), seed=self.seed)
            except ValueError:
                continue  # no such heuristic for this task
            candidates.append(agent.decide(core))
        if not candidates:
            raise ValueError(f"no heuristic {warm_start!r} for {list(core.decides)}")
        if len(candidates) == 1:
            return candidates[0]
        rows = {t: np.stack([c[t] for c in candidates]) for t in core.decides}
        return candidates[int(np.argmin(self.trainer.score(core, rows)))]

    def _warm_deviate(self, core: GraphOptEnv) -> float | dict[str, float | NDArray[np.float64]]:
        """The prior's deviation probability: ``warm_deviations`` nodes per sample in
        expectation (at most `WARM_MAX_DEVIATE` of them), spread as ``warm_proposal`` says."""
        n = core.graph.n_ops
        uniform = min(WARM_MAX_DEVIATE, self.warm_deviations / n)
        if self.warm_proposal == "uniform":
            return uniform
        tree = self.trainer.record(core).tree
        assert tree is not None  # checked in __init__
        balance = tree.balance(op_times(core.graph, core.cluster).mean(axis=1))
        movable = (tree.parent >= 0).astype(np.float64)
        if balance.sum() <= 0:
            return uniform
        spread = (1 - SUBTREE_SHARE) * movable / movable.sum()
        p = uniform * n * (spread + SUBTREE_SHARE * balance / balance.sum())
        placement = np.clip(p, 1e-6, 0.5)  # roots and colocated followers: almost never
        return {t: placement if t == "placement" else uniform for t in core.decides}

    def best(self, core: GraphOptEnv) -> tuple[float, dict[str, NDArray[np.int64]]] | None:
        """(effective step time, decisions) of the best decision found on ``core``'s graph
        in its setting (cluster, decided tasks, fixed decisions: `graph_key`)."""
        rec = self.trainer.records.get(graph_key(core))
        return (rec.best_time, rec.best) if rec is not None and rec.best else None

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        if self.best(core) is None and self.budget > 0:
            self.fit(core)
        found = self.best(core)
        return found[1] if found is not None else self.trainer.greedy(core)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        if deterministic:
            return super().predict(observation, state, episode_start, deterministic)
        core = core_env(self.env)
        self.check_observation(core, observation)
        rec = self.trainer.record(core)
        with torch.no_grad():
            sampled = self.trainer.sample(self.trainer.logits(rec), 1)
        actions = {t: v.numpy().astype(np.int64) for t, v in sampled.items()}
        decided = self.trainer.decisions(rec, actions)
        return core.action_from({t: v[0] for t, v in decided.items()}), state


def make_go(env: gym.Env, **kwargs: Any) -> GOAgent:
    """Factory of ``go`` (GO-one, or fine-tuning with ``checkpoint=``)."""
    return GOAgent(env, **kwargs)


class GOZeroShotAgent(GOAgent):
    """A pre-trained GO policy used as it is: no ``fit`` (it neither trains nor evaluates),
    ``predict`` returns the policy's argmax decision for any graph. Having no ``fit`` is what
    tells the runner (and any caller) that this agent spends no simulator evaluations."""

    fit = None  # type: ignore[assignment]

    def decide(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        return self.trainer.greedy(core)


#: The options of `GOAgent` that still mean something without training (besides
#: ``checkpoint``): the sampling seed of ``predict(deterministic=False)``, torch threads and
#: the device. Every other one (budget, warm starts, refining, a fresh network's shape, PPO
#: settings) only shapes training, which ``go-zeroshot`` never does.
ZEROSHOT_OPTIONS: tuple[str, ...] = ("seed", "threads", "device")


def make_go_zeroshot(
    env: gym.Env, *, checkpoint: str | os.PathLike[str] | None = None, **kwargs: Any
) -> GOZeroShotAgent:
    """Factory of ``go-zeroshot``: a pre-trained policy, no training, argmax decisions.

    Raises:
        TypeError: for an option outside `ZEROSHOT_OPTIONS` (it would be ignored).
    """
    check_options(
        "go-zeroshot",
        kwargs,
        ["checkpoint", *ZEROSHOT_OPTIONS],
        "it neither trains nor evaluates, so options that only shape training mean nothing",
    )
    return GOZeroShotAgent(env, checkpoint=checkpoint or DEFAULT_CHECKPOINT, budget=0, **kwargs)
