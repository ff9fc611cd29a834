"""``go-gym leaderboard``: markdown tables and PNG plots from results rows, never by hand.

One leaderboard per (suite, task) (and per budget, when a directory mixes budgets):

- ``<suite>/<task>.md``: rows are agents (an agent with a non-default config is its own
  row), sorted by the aggregate; columns are each graph's step time (ms, mean over seeds;
  "OOM" when some seed ran out of memory), the geometric-mean speedup over the human expert
  with a bootstrap 95% interval over seeds, the mean ratio to the lower bound, the
  out-of-memory count, the mean simulator evaluations used and the number of seeds.
- ``<suite>/<task>-step-time.png``: step time per graph per agent.
- ``<suite>/<task>-curves.png``: best step time vs evaluations of the agents that search or
  learn (those whose decisions files hold a curve), mean over seeds.

The aggregate follows rliable's advice for few runs: a point estimate with a stratified
bootstrap interval. For each agent, the log speedup over the human expert is averaged over
seeds per graph, then over graphs (a geometric mean: every graph counts the same whatever its
step time); the interval resamples seeds with replacement within each graph (2,000 resamples,
seeded, so the table is reproducible). With three seeds a graph has only ten distinct
resamples, so the interval is a guide to the seeds' spread, not a calibrated 95% interval:
compare agents by it loosely. An agent with one seed per graph gets no interval
("(1 seed)"): resampling a single seed would print a zero-width one, which reads as certainty.
OOM rows count with their penalised step time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from go_gym.runner.results import Row

__all__ = ["AgentSummary", "Board", "bootstrap_geomean", "build_boards", "write_boards"]

#: Bootstrap resamples and seed of the confidence intervals.
RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_geomean(
    logs: Sequence[NDArray[np.float64]], resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float, float]:
    """Geometric mean over graphs of per-graph mean speedups, with a 95% bootstrap interval.

    Args:
        logs: per graph, the log speedups of its seeds.
        resamples: bootstrap resamples.
        seed: seed of the resampling RNG.

    Returns:
        (point estimate, 2.5th percentile, 97.5th percentile), as speedups (not logs).
    """
    rng = np.random.default_rng(seed)
    point = float(np.mean([x.mean() for x in logs]))
    total = np.zeros(resamples)
    for x in logs:  # stratified: seeds are resampled within their graph
        draws = rng.integers(0, x.size, (resamples, x.size))
        total += x[draws].mean(axis=1)
    total /= len(logs)
    low, high = np.percentile(total, [2.5, 97.5])
    return math.exp(point), math.exp(float(low)), math.exp(float(high))


@dataclass
class AgentSummary:
    """One leaderboard row."""

    label: str
    rows: list[Row]
    step_ms: dict[str, float]  # graph id -> mean step time over seeds (effective, ms)
    step_range_ms: dict[str, tuple[float, float]]  # graph id -> (min, max) over seeds
    oom: dict[str, int]  # graph id -> OOM seeds
    seeds: dict[str, int]  # graph id -> seeds
    speedup: tuple[float, float, float]  # geometric mean over graphs, 95% interval
    mean_ratio: float
    oom_total: int
    mean_evaluations: float
    curves: dict[str, list[tuple[NDArray, NDArray]]] = field(default_factory=dict)


@dataclass
class Board:
    """The leaderboard of one (suite, task, budget)."""

    suite: str
    task: str
    budget: int
    graphs: list[str]
    summaries: list[AgentSummary]
    rows: list[Row]
    stem: str = ""

    @property
    def title(self) -> str:
        """Heading of the table."""
        return f"{self.suite} / {self.task}"


def _label(row: Row) -> str:
    return row.agent if row.agent_config == "{}" else f"{row.agent} {row.agent_config}"


def _short(graph_id: str) -> str:
    return graph_id.partition("/")[2] or graph_id


def _load_curve(base: Path | None, row: Row) -> tuple[NDArray, NDArray] | None:
    if base is None:
        return None
    path = base / row.decisions_file
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if "curve_evals" not in data.files:
            return None
        return np.asarray(data["curve_evals"]), np.asarray(data["curve_best"])


def build_boards(rows: Sequence[Row], base: Path | None = None) -> list[Board]:
    """The leaderboards of ``rows``; ``base`` (the results dir) lets curves be read."""
    groups: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row.suite, row.task, row.budget)].append(row)
    budgets_per: dict[tuple[str, str], int] = defaultdict(int)
    for suite, task, _ in groups:
        budgets_per[(suite, task)] += 1
    boards = []
    for (suite, task, budget), group in sorted(groups.items()):
        graphs = _suite_order(suite, {r.graph for r in group})
        by_agent: dict[str, list[Row]] = defaultdict(list)
        for row in group:
            by_agent[_label(row)].append(row)
        summaries = [_summarise(label, agent_rows, base) for label, agent_rows in by_agent.items()]
        summaries.sort(key=lambda s: (-s.speedup[0], s.mean_ratio, s.label))
        stem = task if budgets_per[(suite, task)] == 1 else f"{task}-budget{budget}"
        boards.append(Board(suite, task, budget, graphs, summaries, group, stem))
    return boards


def _suite_order(suite: str, graphs: set[str]) -> list[str]:
    """The graphs in their suite's table order (graphs the suite does not list go last)."""
    try:
        from go_gym.zoo import list_graphs

        order = {g: i for i, g in enumerate(list_graphs(suite))}
    except KeyError:
        order = {}
    return sorted(graphs, key=lambda g: (order.get(g, len(order)), g))


def _summarise(label: str, rows: list[Row], base: Path | None) -> AgentSummary:
    per_graph: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        per_graph[row.graph].append(row)
    logs = [np.log([r.speedup_vs_human_expert for r in rs]) for rs in per_graph.values()]
    curves: dict[str, list[tuple[NDArray, NDArray]]] = {}
    for graph, rs in per_graph.items():
        found = [c for c in (_load_curve(base, r) for r in rs) if c is not None]
        if found:
            curves[graph] = found
    return AgentSummary(
        label=label,
        rows=rows,
        step_ms={
            g: 1e3 * float(np.mean([r.effective_step_time_s for r in rs]))
            for g, rs in per_graph.items()
        },
        step_range_ms={
            g: (
                1e3 * min(r.effective_step_time_s for r in rs),
                1e3 * max(r.effective_step_time_s for r in rs),
            )
            for g, rs in per_graph.items()
        },
        oom={g: sum(not r.valid for r in rs) for g, rs in per_graph.items()},
        seeds={g: len(rs) for g, rs in per_graph.items()},
        speedup=bootstrap_geomean(logs),
        mean_ratio=float(np.mean([r.ratio_to_lower_bound for r in rows])),
        oom_total=sum(not r.valid for r in rows),
        mean_evaluations=float(np.mean([r.evaluations for r in rows])),
        curves=curves,
    )


def _ms(value: float) -> str:
    return f"{value:#.3g}" if value < 100 else f"{value:.0f}"


def markdown_table(board: Board) -> str:
    """The leaderboard table of ``board`` in GitHub markdown."""
    head = ["#", "agent", *(_short(g) for g in board.graphs)]
    head += ["speedup vs human (95% CI)", "ratio to bound", "OOM", "evals", "seeds"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---:", ":---"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for rank, s in enumerate(board.summaries, 1):
        cells = [str(rank), s.label]
        for g in board.graphs:
            if g not in s.step_ms:
                cells.append("–")
                continue
            text = _ms(s.step_ms[g])
            if s.oom[g]:
                text += f" OOM {s.oom[g]}/{s.seeds[g]}"
            cells.append(text)
        point, low, high = s.speedup
        partial = "*" if len(s.step_ms) < len(board.graphs) else ""
        if max(s.seeds.values()) > 1:
            cells.append(f"{point:.3f}{partial} [{low:.3f}, {high:.3f}]")
        else:  # one seed per graph: resampling it gives a zero-width "interval"
            cells.append(f"{point:.3f}{partial} (1 seed)")
        cells.append(f"{s.mean_ratio:.2f}")
        cells.append(str(s.oom_total))
        cells.append(f"{s.mean_evaluations:.0f}")
        seeds = sorted(set(s.seeds.values()))
        cells.append("/".join(str(n) for n in seeds))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_page(board: Board, command: str) -> str:
    """The whole markdown page of ``board``: provenance, table, legend and plots."""
    rows = board.rows
    versions = sorted({r.go_gym_version for r in rows})
    seeds = sorted({r.seed for r in rows})
    clusters = ", ".join(
        f"{_short(g)} {r.cluster}x{r.n_devices} ({r.n_ops} ops)"
        for g in board.graphs
        for r in [next(x for x in rows if x.graph == g)]
    )
    plots = [f"![step time per graph]({board.stem}-step-time.png)"]
    if any(s.curves for s in board.summaries):
        plots.append(f"![best step time vs evaluations]({board.stem}-curves.png)")
    return "\n".join(
        [
            f"# Leaderboard: {board.title}",
            "",
            f"<!-- generated by `{command}`; do not edit by hand -->",
            "",
            f"go_gym {', '.join(versions)}; budget {board.budget} simulator evaluations per "
            f"searching or learning agent; seeds {', '.join(map(str, seeds))}; "
            f"{len(rows)} rows. Graphs and clusters: {clusters}.",
            "",
            markdown_table(board),
            "",
            "Graph columns: step time in ms, mean over seeds (an OOM seed counts as "
            f"{rows[0].oom_penalty:g} x the lower bound). Speedup: geometric mean over graphs of "
            "the human expert's step time over the agent's, with a stratified bootstrap 95% "
            "interval over seeds (* = not every graph; none with one seed). Ratio to bound: mean step time over "
            "`go_gym.sim.lower_bound`. Evals: mean simulator evaluations per cell (fit + the "
            "measured step). Rows sorted by speedup.",
            "",
            *plots,
            "",
        ]
    )


def _plot_step_times(board: Board, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(board.graphs)
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    labels = [s.label for s in board.summaries]
    height = 0.28 * len(labels) + 1.2
    # Agent labels (with their options, they can be long) only left of the first column,
    # with the figure widened to hold them, so no label runs into a neighbouring plot.
    label_width = 0.07 * max(len(label) for label in labels)  # inches at font size 7
    fig, axes = plt.subplots(
        nrows, cols, figsize=(5.2 * cols + label_width, height * nrows), squeeze=False
    )
    for i, (ax, graph) in enumerate(zip(axes.flat, board.graphs, strict=False)):
        ys = np.arange(len(labels))
        values = [s.step_ms.get(graph, np.nan) for s in board.summaries]
        spans = [
            s.step_range_ms.get(graph, (v, v)) for v, s in zip(values, board.summaries, strict=True)
        ]
        err = np.clip(
            [
                [v - lo for v, (lo, _) in zip(values, spans, strict=True)],
                [hi - v for v, (_, hi) in zip(values, spans, strict=True)],
            ],
            0,
            None,
        )
        colors = ["#d62728" if s.oom.get(graph) else "#1f77b4" for s in board.summaries]
        ax.barh(ys, values, xerr=err, color=colors, height=0.7, capsize=2)
        row = next(r for r in board.rows if r.graph == graph)
        ax.axvline(
            1e3 * row.human_expert_step_time_s, color="k", ls="--", lw=1, label="human expert"
        )
        ax.axvline(1e3 * row.lower_bound_s, color="grey", ls=":", lw=1, label="lower bound")
        ax.set_yticks(ys, labels if i % cols == 0 else [], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{_short(graph)} ({row.cluster}x{row.n_devices})", fontsize=9)
        ax.set_xlabel("step time (ms); red: OOM", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{board.title}: step time per graph (mean, min-max over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 0.985))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean_curve(curves: list[tuple[NDArray, NDArray]]) -> tuple[NDArray, NDArray]:
    """Mean over seeds of best-so-far curves, on a common grid of evaluation counts."""
    grid = np.unique(np.concatenate([c[0] for c in curves]))
    values = []
    for evals, best in curves:
        idx = np.searchsorted(evals, grid, side="right") - 1
        values.append(np.where(idx >= 0, best[np.clip(idx, 0, None)], np.nan))
    return grid, np.nanmean(np.vstack(values), axis=0)


def _plot_curves(board: Board, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(board.graphs)
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, graph in zip(axes.flat, board.graphs, strict=False):
        for s in board.summaries:
            if graph in s.curves:
                grid, mean = _mean_curve(s.curves[graph])
                ax.step(grid, 1e3 * mean, where="post", label=s.label, lw=1.2)
        row = next(r for r in board.rows if r.graph == graph)
        ax.axhline(
            1e3 * row.human_expert_step_time_s, color="k", ls="--", lw=1, label="human expert"
        )
        ax.axhline(1e3 * row.lower_bound_s, color="grey", ls=":", lw=1, label="lower bound")
        ax.set_title(_short(graph), fontsize=9)
        ax.set_xlabel("simulator evaluations", fontsize=8)
        ax.set_ylabel("best step time (ms)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, names, loc="lower center", ncol=min(6, len(names)), fontsize=8, frameon=False
    )
    fig.suptitle(f"{board.title}: best step time vs evaluations (mean over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_boards(
    boards: Sequence[Board], out: Path, command: str, plots: bool = True
) -> list[Path]:
    """Write each board's markdown page (and plots) under ``out/<suite>/``; the paths."""
    written = []
    for board in boards:
        folder = Path(out) / board.suite
        folder.mkdir(parents=True, exist_ok=True)
        page = folder / f"{board.stem}.md"
        page.write_text(markdown_page(board, command))
        written.append(page)
        if plots:
            _plot_step_times(board, folder / f"{board.stem}-step-time.png")
            written.append(folder / f"{board.stem}-step-time.png")
            if any(s.curves for s in board.summaries):
                _plot_curves(board, folder / f"{board.stem}-curves.png")
                written.append(folder / f"{board.stem}-curves.png")
    return written
