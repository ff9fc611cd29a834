"""The ``go-gym`` command line: bench, graphs, leaderboard, validate, train.

    go-gym bench --suite quick-v0 --task placement --agents all --seeds 3 --budget 2000
    go-gym graphs quick-v0
    go-gym leaderboard runs/quick-v0
    go-gym validate runs/quick-v0
    go-gym render quick-v0/gnmt-3 --agent m-sct --out gantt.png
    go-gym train ...            (the GO agent's trainer, `agents.go.train`)

Exit status: 0 success; 1 failed cells (bench) or rows or results files that do not check
out (validate); 2 bad arguments, unreadable results or no result rows; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["at_least", "main"]

#: Where results go when ``--out`` is not given: ``runs/<suite>``.
DEFAULT_OUT = "runs"

#: Synthetic graphs larger than this are listed without being generated (seconds, GBs).
LAZY_OPS = 20_000

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_README_BLOCK = re.compile(
    r"(<!-- leaderboard:(?P<id>[^ ]+) start -->\n).*?(<!-- leaderboard:(?P=id) end -->)", re.S
)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum`` (else a usage error, exit 2).
    Shared by ``go-gym train`` and the scripts in ``benchmarks/``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _seeds(text: str) -> list[int]:
    """``"3"`` -> seeds 0, 1, 2; ``"0,4,7"`` -> those seeds."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes a count (3) or a comma-separated list (0,4,7), got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds must give at least one seed")
    return seeds


def _names(values: Sequence[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _agent_config(text: str) -> dict[str, dict]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--agent-config is not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise argparse.ArgumentTypeError(
            '--agent-config maps agent names to keyword arguments: {"annealing": {"init": "m-etf"}}'
        )
    return value


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run agents on a suite (resumable) and write results",
        description="Run every (graph, agent, seed) cell of a suite that is not done yet in "
        "--out, in parallel, and merge the results into OUT/results.csv.",
    )
    p.add_argument("--suite", default="quick-v0", help="suite name (default quick-v0)")
    p.add_argument(
        "--task",
        default="placement",
        choices=["placement", "scheduling", "fusion", "joint"],
        help="the decision the agents make (default placement)",
    )
    p.add_argument(
        "--agents",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help="registry names (plug-ins included), comma- or space-separated; 'all' = every "
        "agent that can do the task, 'all-baselines' = the built-in ones (default all)",
    )
    p.add_argument("--graphs", nargs="+", default=[], metavar="ID", help="only these graphs")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="a count or a list (default 3)")
    p.add_argument(
        "--budget",
        type=int,
        default=2000,
        help="simulator evaluations for agents that search or learn (default 2000)",
    )
    p.add_argument("--out", type=Path, default=None, help="results directory (default runs/SUITE)")
    p.add_argument(
        "--agent-config",
        type=_agent_config,
        default={},
        metavar="JSON",
        help='extra agent arguments, e.g. \'{"annealing": {"init": "m-etf"}}\'',
    )
    p.add_argument(
        "--workers", type=int, default=None, help="parallel cells (default min(2, cores))"
    )
    p.add_argument(
        "--executor", default="local", choices=["local", "serial", "ray"], help="(default local)"
    )
    p.add_argument("--address", default=None, help="Ray cluster address (with --executor ray)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--leaderboard", action="store_true", help="also build and print the leaderboard"
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a benchmark; print a summary (and the leaderboard with --leaderboard)."""
    from go_gym.runner.bench import BenchSpec, run_bench

    out = args.out or Path(DEFAULT_OUT) / args.suite
    spec = BenchSpec(
        suite=args.suite,
        task=args.task,
        agents=_names(args.agents),
        seeds=args.seeds,
        budget=args.budget,
        out=out,
        graphs=_names(args.graphs),
        agent_configs=args.agent_config,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
        progress=not args.no_progress,
    )
    try:
        report = run_bench(spec)
    except (ValueError, RuntimeError) as exc:
        print(f"go-gym bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{report.finished} cells run, {report.already_done} already done, "
        f"{len(report.failures)} failed, {len(report.rows)} rows in {out / 'results.csv'} "
        f"({report.wall_time_s:.1f} s)",
        file=sys.stderr,
    )
    if args.leaderboard and report.rows:
        _leaderboard(
            out, out / "leaderboard", plots=True, readme=None, only=(args.suite, args.task)
        )
    if report.interrupted:
        return EXIT_INTERRUPTED
    if report.failures:
        print(f"failed cells (tracebacks in {out / 'errors'}):", file=sys.stderr)
        for failure in report.failures:
            print(f"  {failure.cell.key}: {failure.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_graphs(args: argparse.Namespace) -> int:
    """List a suite's graphs with their sizes and clusters."""
    from go_gym.zoo import get_entry, get_graph, list_graphs, list_suites

    suites = [args.suite] if args.suite else list_suites()
    for suite in suites:
        try:
            ids = list_graphs(suite)
        except KeyError as exc:
            print(f"go-gym graphs: error: {exc.args[0]}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{suite}: {len(ids)} graphs")
        # persistent_bytes counts the parameters, their gradients and the optimizer state.
        print(
            f"  {'graph':34s} {'ops':>7s} {'edges':>8s} {'GFLOP':>9s} "
            f"{'params+grads+opt GB':>19s}  cluster"
        )
        for gid in ids:
            entry = get_entry(gid)
            cluster = f"{entry.cluster}x{entry.n_devices}"
            n_ops = int(entry.generator_kwargs.get("n_ops", 0))
            if entry.source == "synthetic" and n_ops > LAZY_OPS:
                print(f"  {gid:34s} {n_ops:>7,d}  (generated on first use) {'':>18s}  {cluster}")
                continue
            g = get_graph(gid)
            print(
                f"  {gid:34s} {g.n_ops:>7,d} {g.n_edges:>8,d} {g.flops.sum() / 1e9:>9.3g} "
                f"{g.persistent_bytes.sum() / 1e9:>19.3g}  {cluster}"
            )
    return EXIT_OK


def _leaderboard(
    results: Path,
    out: Path,
    plots: bool,
    readme: Path | None,
    only: tuple[str, str] | None = None,
) -> int:
    from go_gym.runner.leaderboard import build_boards, markdown_table, write_boards
    from go_gym.runner.results import ResultsError, read_results

    try:
        rows, base = read_results(results)
    except ResultsError as exc:
        print(f"go-gym leaderboard: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failed = _failed_cells(base)
    if not rows:
        print(
            f"go-gym leaderboard: error: {results} holds no result rows{failed and '; ' + failed}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    boards = build_boards(rows, base)
    if only is not None:
        boards = [b for b in boards if (b.suite, b.task) == only]
    command = f"go-gym leaderboard {results}"
    written = write_boards(boards, out, command, plots=plots)
    for board in boards:
        print(f"\n## {board.title} (budget {board.budget})\n")
        print(markdown_table(board))
    if failed:
        print(f"\n{failed}")
    print(f"\nwrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if readme is not None:
        _update_readme(readme, {f"{b.suite}/{b.stem}": markdown_table(b) for b in boards}, out)
    return EXIT_OK


def _failed_cells(base: Path) -> str:
    """One line on the cells of ``base`` that failed (their tracebacks in ``errors/``), which
    have no row and so no place in a table; "" when none did."""
    from go_gym.runner.results import ERRORS_DIR

    errors = base / ERRORS_DIR
    keys = sorted(p.stem for p in errors.glob("*.txt")) if errors.is_dir() else []
    if not keys:
        return ""
    shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    return f"{len(keys)} failed cell(s) have no row (tracebacks in {errors}): {shown}"


def _update_readme(readme: Path, tables: dict[str, str], out: Path) -> None:
    """Replace the README's generated blocks (``<!-- leaderboard:SUITE/TASK start -->`` ...
    ``end -->``) with the current tables; blocks of other leaderboards are left alone, and
    named in a warning (their id matches no table: another suite or task, or a directory
    with several budgets, whose pages are ``TASK-budgetB``)."""
    text = readme.read_text()
    left: list[str] = []

    def replace(match: re.Match[str]) -> str:
        table = tables.get(match["id"])
        if table is None:
            left.append(match["id"])
            return match[0]
        return f"{match[1]}{table}\n{match[3]}"

    new, found = _README_BLOCK.subn(replace, text)
    if new != text:
        readme.write_text(new)
    print(f"updated {found - len(left)} leaderboard block(s) in {readme}", file=sys.stderr)
    if left:
        print(
            f"warning: no table for the block(s) {', '.join(left)} of {readme} (tables: "
            f"{', '.join(sorted(tables)) or 'none'}); left as they were",
            file=sys.stderr,
        )


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Build the leaderboard tables and plots from results."""
    out = args.out or (
        args.results / "leaderboard"
        if args.results.is_dir()
        else args.results.parent / "leaderboard"
    )
    return _leaderboard(args.results, out, plots=not args.no_plots, readme=args.readme)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check and replay every row; report those that do not reproduce and any problem of the
    results files (a cell file misnamed, a results.csv that differs from cells/)."""
    from go_gym.runner.results import ResultsError
    from go_gym.runner.validate import validate_results

    t0 = time.perf_counter()
    try:
        rows, mismatches = validate_results(args.results)
    except ResultsError as exc:
        print(f"go-gym validate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not rows:
        print(f"go-gym validate: error: {args.results} holds no result rows", file=sys.stderr)
        return EXIT_USAGE
    for mismatch in mismatches:
        print(f"MISMATCH {mismatch}")
    elapsed = time.perf_counter() - t0
    bad_rows = sum(m.row is not None for m in mismatches)
    bad_files = len(mismatches) - bad_rows
    files = f"; {bad_files} problem(s) with the results files" if bad_files else ""
    print(
        f"{len(rows) - bad_rows}/{len(rows)} rows reproduce{files} ({elapsed:.1f} s)",
        file=sys.stderr,
    )
    return EXIT_FAILED if mismatches else EXIT_OK


def cmd_train(argv: list[str]) -> int:
    """Delegate to the GO agent's trainer, `agents.go.train` (its own arguments)."""
    try:
        from agents.go import train
    except ImportError as exc:
        print(
            f"go-gym train: the GO agent's trainer (agents.go.train) is not available: {exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    parser = argparse.ArgumentParser(
        prog="go-gym train", description=(train.__doc__ or "").split("\n")[0]
    )
    train.add_arguments(parser)
    return int(train.run(parser.parse_args(argv)) or 0)


def cmd_render(args: argparse.Namespace) -> int:
    """One step of the task's env with the agent's decision, drawn by the env's renderer.

    The env is the runner's (`go_gym.runner.cells.make_env`): for scheduling and fusion the
    human-expert placement is fixed, as in the benchmark. Bad arguments (graph, agent, an
    agent that cannot do the task, an output that is not a .png) are usage errors, found
    before anything runs.
    """
    import numpy as np

    import agents
    from go_gym.runner.bench import resolve_graph_id
    from go_gym.runner.cells import make_env

    def usage(message: str) -> int:
        print(f"go-gym render: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    if args.out.suffix.lower() != ".png":
        return usage(f"--out must name a .png file, got {str(args.out)!r}")
    suite = args.graph.partition("/")[0] if "/" in args.graph else args.suite
    try:
        graph = resolve_graph_id(args.graph, suite)
    except ValueError as exc:
        return usage(str(exc))
    if args.agent not in agents.names():
        return usage(f"unknown agent {args.agent!r}; known agents: {', '.join(agents.names())}")
    env = make_env(graph, args.task, render_mode="rgb_array")
    try:
        agent = agents.make(args.agent, env, seed=args.seed)
    except ValueError as exc:
        return usage(f"agent {args.agent!r} cannot act on the {args.task} task: {exc}")
    except Exception as exc:
        return usage(f"agent {args.agent!r} cannot be made: {type(exc).__name__}: {exc}")
    obs, _ = env.reset(seed=args.seed)
    action, _ = agent.predict(obs, deterministic=True)
    _, _, _, _, info = env.step(action)
    frame = env.render()
    if not isinstance(frame, np.ndarray):  # render_mode="rgb_array" gives one (H, W, 3) frame
        raise TypeError(f"expected an RGB frame from the {args.task} env, got {type(frame)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(args.out, frame, format="png")
    print(
        f"{graph} / {args.task} / {args.agent}: step {info['step_time'] * 1e3:.3f} ms "
        f"({'fits' if info['valid'] else 'OUT OF MEMORY'}) -> {args.out}"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The ``go-gym`` argument parser (``train`` is parsed by the trainer itself)."""
    parser = argparse.ArgumentParser(
        prog="go-gym", description="go_gym benchmarks: run agents on suites, build leaderboards."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_bench(sub)
    p = sub.add_parser("graphs", help="list a suite's graphs and their sizes")
    p.add_argument("suite", nargs="?", default=None, help="suite (default: every suite)")
    p = sub.add_parser("leaderboard", help="markdown tables and PNG plots from results")
    p.add_argument("results", type=Path, help="results directory or CSV file")
    p.add_argument(
        "--out", type=Path, default=None, help="where to write (default RESULTS/leaderboard)"
    )
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also replace the '<!-- leaderboard:SUITE/TASK start -->' blocks of this file",
    )
    p = sub.add_parser("validate", help="replay every row's decisions; report mismatches")
    p.add_argument("results", type=Path, help="results directory or CSV file")
    p = sub.add_parser("render", help="an agent's decision on a graph as a Gantt chart (PNG)")
    p.add_argument("graph", help="suite graph id (quick-v0/gnmt-3) or a name of --suite (gnmt-3)")
    p.add_argument("--suite", default="quick-v0", help="suite of a short graph name (quick-v0)")
    p.add_argument("--agent", default="human-expert", help="registry name (default human-expert)")
    p.add_argument(
        "--task",
        choices=["placement", "scheduling", "fusion", "joint"],
        default="placement",
        help="the runner's env of this task (default placement)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("gantt.png"), help="PNG to write")
    sub.add_parser(
        "train", help="train the GO agent (agents.go.train; its own --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``go-gym``; returns the exit status (see module docstring)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "train":
        return cmd_train(args_list[1:])
    args = build_parser().parse_args(args_list)
    handlers = {
        "bench": cmd_bench,
        "graphs": cmd_graphs,
        "leaderboard": cmd_leaderboard,
        "validate": cmd_validate,
        "render": cmd_render,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
