"""One benchmark cell: (suite, graph, task, agent, agent config, budget, seed), run end to end.

The runner, not the agent, owns everything that makes a number comparable (CompilerGym's
leaderboard harness): it builds the env with the suite's cluster and the task's fixed
decisions, gives the agent its budget, takes exactly one deterministic action, and measures
that action with the simulator. The agent only acts. Every row then stores the decisions the
simulator ran, so `go_gym.runner.validate` can replay it without the agent. What the agent
could change is taken or counted by the runner: graph, cluster and fixed decisions before the
agent runs, the evaluations by `EvaluationCounter`, the OOM penalty by its constant.

Task setups (the env each task is measured in, and its comparator):

- ``placement``: ``GOPlacement-v0``; first-ready order, no fusion.
- ``scheduling``: ``GOScheduling-v0`` with the human-expert placement fixed (on one device
  the order hardly matters), no fusion.
- ``fusion``: ``GOFusion-v0`` with the human-expert placement fixed, first-ready order.
- ``joint``: ``GOJoint-v0``; the agent decides everything.

In every task the "human expert" comparator is the same decision: the human-expert placement
(`agents.placement.place_human_expert`), first-ready order, no fusion. "TensorFlow default"
is one device, first-ready order, no fusion.

The decisions file (``decisions/<key>.npz``, `numpy.savez_compressed`, read with
``allow_pickle=False``) holds the full per-op arrays the simulator ran: ``placement`` (after
colocation: grouped ops follow their first member), and ``priority`` / ``fusion`` when the
task set them; ``action_<task>`` for what the agent returned (unpadded); and, for agents that
search or learn, their best-so-far curve as ``curve_evals`` / ``curve_best`` (effective step
time in seconds after that many evaluations).

Curves come from an agent's ``fit`` return value or ``results[graph checksum]`` (what
`agents.SearchAgent` keeps), whichever has ``curve_evals`` and ``curve_best`` attributes; a
plug-in agent that wants a curve on the leaderboard exposes one of the two.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from numpy.typing import NDArray

from go_gym.envs.graph_env import colocation_leaders
from go_gym.runner.results import DECISIONS_DIR, SCHEMA_VERSION, Row

__all__ = [
    "TASKS",
    "Cell",
    "CellFailure",
    "CellOutcome",
    "EvaluationCounter",
    "applicable_agents",
    "check_agent_configs",
    "comparators",
    "fixed_decisions",
    "load_decisions",
    "make_env",
    "run_cell",
    "run_cell_safely",
    "suite_machine",
]

#: Task name -> (env id, fixed env keyword arguments). See the module docstring.
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "placement": ("GOPlacement-v0", {}),
    "scheduling": ("GOScheduling-v0", {"placement": "human-expert"}),
    "fusion": ("GOFusion-v0", {"placement": "human-expert"}),
    "joint": ("GOJoint-v0", {}),
}

#: Simulator profile of every benchmark row.
PROFILE = "go"

#: OOM penalty of every benchmark env (an out-of-memory decision counts as this many lower
#: bounds). The runner sets it and refuses a cell whose agent changed it.
OOM_PENALTY = 100.0

#: Agent config keys the runner owns: every cell gets its seed and budget from the run.
RESERVED_CONFIG_KEYS = ("seed", "budget")


@dataclass(frozen=True)
class Cell:
    """One (graph, task, agent, config, budget, seed) of a benchmark run.

    Attributes:
        graph: suite graph id, e.g. ``"quick-v0/rnnlm-2"`` (the suite is its prefix).
        task: a key of `TASKS`.
        agent: registry name for `agents.make`.
        seed: seed of the agent and of ``env.reset``.
        budget: simulator evaluations given to ``fit``.
        config: extra keyword arguments for `agents.make`, as canonical JSON.
    """

    graph: str
    task: str
    agent: str
    seed: int
    budget: int
    config: str = "{}"

    @property
    def suite(self) -> str:
        """The suite of the graph id."""
        return self.graph.partition("/")[0]

    @property
    def key(self) -> str:
        """A file name unique to the cell (everything that changes its result is in it).

        Each part is kept as it is when it is file-name safe (every name the runner has
        written so far is, so their keys never change); a part with other characters is
        replaced by its safe form plus a hash of the original, so ``my agent`` and
        ``my_agent`` get different files instead of one overwriting the other.
        """
        cfg = "default"
        if self.config != "{}":
            cfg = hashlib.sha256(self.config.encode()).hexdigest()[:10]
        suite, _, name = self.graph.partition("/")
        parts = [suite, name, self.task, self.agent, cfg, f"b{self.budget}", f"s{self.seed}"]
        return "__".join(_file_part(part) for part in parts)

    def kwargs(self) -> dict[str, Any]:
        """The agent's keyword arguments from ``config``."""
        value = json.loads(self.config)
        if not isinstance(value, dict):
            raise ValueError(f"agent config must be a JSON object, got {self.config!r}")
        return value


#: Characters a cell key may hold as they are (anything else is replaced, see `Cell.key`).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _file_part(text: str) -> str:
    """``text`` if it is file-name safe, else its safe form and a short hash of ``text``."""
    safe = _UNSAFE.sub("_", text)
    if safe == text:
        return text
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def canonical_config(config: dict[str, Any] | None) -> str:
    """Canonical JSON of an agent config (sorted keys), so equal configs share a cell key."""
    return json.dumps(config or {}, sort_keys=True, separators=(",", ":"))


@dataclass
class CellOutcome:
    """A finished cell: its row and the bytes of its decisions file (written by the driver)."""

    cell: Cell
    row: Row
    decisions: bytes


@dataclass
class CellFailure:
    """A cell whose agent or env raised: the traceback, kept in ``errors/<key>.txt``."""

    cell: Cell
    error: str
    traceback: str = field(repr=False, default="")


def suite_machine(graph: str) -> tuple[str, int]:
    """(cluster preset, device count) of a suite graph id: the hardware of its every cell.

    Raises:
        KeyError: for a graph id that is in no suite.
    """
    from go_gym.zoo import get_entry

    entry = get_entry(graph)
    return entry.cluster, int(entry.n_devices)


def make_env(graph: str, task: str, render_mode: str | None = None) -> Any:
    """The env a cell is measured in: the task's env on the graph's suite cluster, with the
    task's fixed decisions and the runner's OOM penalty. `go_gym.runner.validate` and
    ``go-gym render`` build the same env, so they see what the cell saw.

    Raises:
        ValueError: for an unknown task.
        KeyError: for a graph id that is in no suite.
    """
    import gymnasium as gym

    import go_gym  # noqa: F401  (registers the env ids)

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {list(TASKS)}")
    env_id, fixed = TASKS[task]
    cluster, n_devices = suite_machine(graph)
    return gym.make(
        env_id,
        graph=graph,
        cluster=cluster,
        n_devices=n_devices,
        profile=PROFILE,
        oom_penalty=OOM_PENALTY,
        render_mode=render_mode,
        **fixed,
    )


def applicable_agents(names: list[str], env: Any) -> tuple[list[str], list[str], dict[str, str]]:
    """Split ``names`` into agents that can act on ``env``'s task, those that cannot, and those
    that could not be made at all (name -> reason, e.g. a learned agent without its checkpoint).

    An agent that cannot do a task raises ValueError when made for its env (the registry's
    contract); anything else it raises means it is unavailable here.
    """
    import agents

    ok, skipped, unavailable = [], [], {}
    for name in names:
        try:
            agents.make(name, env)
        except ValueError:
            skipped.append(name)
        except Exception as exc:
            unavailable[name] = f"{type(exc).__name__}: {exc}"
        else:
            ok.append(name)
    return ok, skipped, unavailable


def check_agent_configs(configs: dict[str, dict[str, Any]], env: Any, seed: int) -> None:
    """Make each configured agent once on ``env`` with its options, as `run_cell` will.

    A bad option (an unknown keyword, a value out of range) then stops the run before any
    cell runs, instead of failing every cell of that agent one by one.

    Raises:
        ValueError: naming the agent, for a config that sets a key the runner owns
            (`RESERVED_CONFIG_KEYS`) or that the agent's constructor rejects.
    """
    import agents

    for name, config in configs.items():
        reserved = [key for key in RESERVED_CONFIG_KEYS if key in config]
        if reserved:
            raise ValueError(
                f"--agent-config for {name!r} sets {reserved}: the runner gives every cell "
                "its seed (--seeds) and budget (--budget)"
            )
        try:
            agents.make(name, env, seed=seed, **config)
        except Exception as exc:
            raise ValueError(
                f"--agent-config for {name!r} {json.dumps(config)}: the agent cannot be made "
                f"with it: {type(exc).__name__}: {exc}"
            ) from None


#: Tasks whose decisions include fusion: their envs normalise by the fused lower bound.
FUSING_TASKS = frozenset({"fusion", "joint"})


def comparators(
    graph: Any, cluster: Any, oom_penalty: float, task: str
) -> tuple[float, float, float]:
    """(lower bound, TF-default effective step time, human-expert effective step time).

    Computed from the simulator directly (not from any agent), so a row's speedups stay
    replayable with the simulator alone. The bound is the one the task's env uses (fused
    for the tasks that fuse), so the OOM penalty matches the env's reward.
    """
    from agents.placement import PLACERS
    from go_gym.sim import lower_bound, simulate

    bound = float(lower_bound(graph, cluster, fused=task in FUSING_TASKS))

    def effective(placement: NDArray[np.int64]) -> float:
        result = simulate(graph, cluster, placement, profile=PROFILE)
        return float(result.step_time) if result.valid else oom_penalty * bound

    tf_default = effective(np.zeros(graph.n_ops, np.int64))
    human = effective(np.asarray(PLACERS["human-expert"](graph, cluster), np.int64))
    return bound, tf_default, human


def fixed_decisions(core: Any) -> dict[str, NDArray[np.int64]]:
    """The decisions the task fixes in the runner's env ``core`` (copies; the env has
    applied colocation to a fixed placement): what a cell's decisions file must hold besides
    the agent's (`go_gym.runner.validate`)."""
    return {
        name: np.asarray(value, np.int64).copy()
        for name, value in core.fixed_decisions.items()
        if name not in core.decides and value is not None
    }


def _simulated_decisions(
    core: Any, fixed: dict[str, NDArray[np.int64]], action: Any
) -> dict[str, NDArray[np.int64]]:
    """The full per-op decisions the env simulates for ``action``: the agent's rows unpadded,
    the task's ``fixed`` decisions (see `fixed_decisions`, taken before the agent ran), and
    colocated ops following their group's first member."""
    n = core.graph.n_ops
    decided = {core.decides[0]: action} if len(core.decides) == 1 else dict(action)
    out: dict[str, NDArray[np.int64]] = {}
    for name in ("placement", "priority", "fusion"):
        if name in decided:
            out[name] = np.asarray(decided[name], np.int64)[:n].copy()
            if name == "placement":
                out[name] = out[name][colocation_leaders(core.graph)]
        elif name in fixed:
            out[name] = fixed[name].copy()
    return out


class EvaluationCounter:
    """Counts, in the runner, the simulator evaluations spent through the runner's env.

    The env's own ``evaluations`` is a public attribute that any agent can assign (an agent
    that spent 500 evaluations and then set it to 0 got a row saying 1). This counter wraps
    the env's two simulating entry points, ``step`` and ``evaluate``, on the env instance,
    and keeps its count where the agent is not handed it. `run_cell` fails a cell whose env
    count disagrees with it: the agent assigned the counter or went around the wrappers.

    In-process Python cannot stop an agent that both goes around the wrappers and fixes the
    env's counter up, or that calls `go_gym.sim` directly; those are beyond any counter here.
    """

    def __init__(self, core: Any) -> None:
        self.count = 0
        step, evaluate = core.step, core.evaluate

        def counted_step(action: Any) -> Any:
            out = step(action)
            self.count += 1
            return out

        def counted_evaluate(decisions: dict[str, Any]) -> Any:
            values = evaluate(decisions)
            self.count += int(np.asarray(values).shape[0])
            return values

        core.step = counted_step
        core.evaluate = counted_evaluate


def _curve(agent: Any, fitted: Any, checksum: str) -> tuple[NDArray, NDArray] | None:
    candidates = [fitted]
    results = getattr(agent, "results", None)
    if isinstance(results, dict):
        candidates.append(results.get(checksum))
    for item in candidates:
        evals = getattr(item, "curve_evals", None)
        best = getattr(item, "curve_best", None)
        if evals is not None and best is not None:
            return np.asarray(evals, np.int64), np.asarray(best, np.float64)
    return None


def run_cell(cell: Cell) -> CellOutcome:
    """Run one cell: make the env and the agent, fit within the budget, act once, measure.

    Raises:
        RuntimeError: if the decisions the runner saves do not reproduce the env's step time
            (a replay would then fail; better to fail the cell now and say so).
        Exception: whatever the agent or env raises (the executor records it).
    """
    import agents
    import go_gym
    from go_gym.sim import simulate

    env = make_env(cell.graph, cell.task)
    core = env.unwrapped
    # Taken before the agent sees the env: what the cell is measured on.
    graph, cluster, fixed = core.graph, core.cluster, fixed_decisions(core)
    kwargs = cell.kwargs()
    counter = EvaluationCounter(core)

    start = time.perf_counter()
    agent = agents.make(cell.agent, env, seed=cell.seed, **kwargs)
    fitted = None
    fit = getattr(agent, "fit", None)
    if callable(fit):
        fitted = fit(env, cell.budget)
    obs, _ = env.reset(seed=cell.seed)
    action, _ = agent.predict(obs, deterministic=True)
    wall = time.perf_counter() - start
    _, _, _, _, info = env.step(action)
    evaluations = counter.count
    if int(core.evaluations) != evaluations:
        raise RuntimeError(
            f"the env's evaluations counter says {int(core.evaluations)}, the runner counted "
            f"{evaluations} through env.step and env.evaluate: {cell.agent} changed the "
            "counter or simulated around those methods"
        )
    if evaluations > cell.budget + 1:
        raise RuntimeError(
            f"{cell.agent} used {evaluations - 1} simulator evaluations in fit, "
            f"over its budget of {cell.budget}"
        )
    if float(core.oom_penalty) != OOM_PENALTY:
        raise RuntimeError(
            f"{cell.agent} changed the env's oom_penalty to {core.oom_penalty!r}; the "
            f"runner's is {OOM_PENALTY!r}"
        )

    decisions = _simulated_decisions(core, fixed, action)
    replay = simulate(
        graph,
        cluster,
        decisions["placement"],
        decisions.get("priority"),
        decisions.get("fusion"),
        profile=PROFILE,
    )
    if replay.step_time != info["step_time"] or bool(replay.valid) != bool(info["valid"]):
        raise RuntimeError(
            f"saved decisions give step time {replay.step_time!r}, the env measured "
            f"{info['step_time']!r}: the runner's view of the env's decoding is out of date"
        )

    arrays: dict[str, Any] = dict(decisions)  # Any: numpy's stubs read **arrays as allow_pickle
    for name in core.decides:
        row = action if len(core.decides) == 1 else action[name]
        arrays[f"action_{name}"] = np.asarray(row, np.int64)[: graph.n_ops]
    curve = _curve(agent, fitted, graph.checksum())
    if curve is not None:
        arrays["curve_evals"], arrays["curve_best"] = curve
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    blob = buffer.getvalue()

    oom_penalty = OOM_PENALTY
    bound, tf_default, human = comparators(graph, cluster, oom_penalty, cell.task)
    if bound != core.lower_bound:
        raise RuntimeError(
            f"the runner's lower bound {bound!r} differs from the env's {core.lower_bound!r}"
        )
    effective = float(info["effective_step_time"])
    row = Row(
        schema_version=SCHEMA_VERSION,
        suite=cell.suite,
        graph=cell.graph,
        n_ops=int(graph.n_ops),
        task=cell.task,
        cluster=suite_machine(cell.graph)[0],
        n_devices=int(cluster.n_devices),
        profile=PROFILE,
        agent=cell.agent,
        agent_config=cell.config,
        seed=cell.seed,
        budget=cell.budget,
        step_time_s=float(info["step_time"]),
        valid=bool(info["valid"]),
        effective_step_time_s=effective,
        oom_penalty=oom_penalty,
        peak_memory_bytes=float(np.max(info["peak_memory"])),
        bytes_moved=float(info["bytes_moved"]),
        lower_bound_s=bound,
        tf_default_step_time_s=tf_default,
        human_expert_step_time_s=human,
        speedup_vs_tf_default=tf_default / effective,
        speedup_vs_human_expert=human / effective,
        ratio_to_lower_bound=effective / bound,
        evaluations=evaluations,
        wall_time_s=wall,
        go_gym_version=go_gym.__version__,
        decisions_file=f"{DECISIONS_DIR}/{cell.key}.npz",
        decisions_sha256=hashlib.sha256(blob).hexdigest(),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    env.close()
    return CellOutcome(cell, row, blob)


def run_cell_safely(cell: Cell) -> CellOutcome | CellFailure:
    """`run_cell`, with an ordinary exception turned into a `CellFailure` (the run goes on).

    KeyboardInterrupt and SystemExit are not caught: Ctrl-C stops the run.
    """
    try:
        return run_cell(cell)
    except Exception as exc:
        return CellFailure(cell, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def load_decisions(path: Any) -> dict[str, NDArray]:
    """The arrays of a decisions file (no pickle: object arrays are refused)."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
