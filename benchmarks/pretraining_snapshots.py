"""Zero-shot transfer along pre-training, and whether the training graphs can pick the point.

    .venv/bin/python benchmarks/family_holdout.py --seeds 1 2 --budget 24000 --runs runs/snap \\
        --snapshot-every 2000 --out leaderboard/go/transfer-family-holdout-snapshots
    .venv/bin/python benchmarks/pretraining_snapshots.py --runs runs/snap --seeds 1 2 \\
        --out leaderboard/go/transfer-family-holdout-snapshots

Zero-shot quality is not monotone in pre-training (`agents/go/EXPERIMENTS.md`: 24,000 against
48,000 evaluations, 160,000 against 480,000), so the last policy of a pre-training need not be
its best for graphs it never saw. With ``go-gym train --snapshot-every`` a pre-training of
`benchmarks/family_holdout.py` (one model family held out) keeps its policy along the way,
at ``<runs>-s<seed>/without-<family>/snapshots/policy-<evaluations>.pt``. For every snapshot
this script measures, with no training and one simulation each (the argmax decision, as
``go-zeroshot`` makes it):

- the held-out graph's step time, against GO-one (``go`` from scratch, the mean over the
  seeds of the ``--reference`` rows), the issue's "within 10% of GO-one";
- the training graphs' step times, each over one device's, in geometric mean: the only
  signal a user without the held-out graph has.

Three ways to pick a snapshot per pre-training are compared: the last one (what the committed
tables use); the one best on its own training graphs (a rule anyone can apply); and the one
best on the held-out graph (not a rule: it looks at the test graph, and only says how much
any rule could gain). With ``--out`` the table goes to ``snapshots.csv`` there, and the
snapshots the training-graph rule picks get ``go-zeroshot`` rows (``go-gym bench``, so
``go-gym validate`` replays them).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import geometric_mean
from typing import Any

import gymnasium as gym

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from family_holdout import (  # noqa: E402  (the sibling script, found through the line above)
    DEFAULT_RUNS,
    FAMILIES,
    held_out_graph,
    pretraining_graphs,
)

_SNAPSHOT = re.compile(r"policy-(\d+)\.pt$")


@dataclass(frozen=True)
class Snapshot:
    """One kept policy of one pre-training, measured zero-shot."""

    seed: int
    family: str  # held out
    evaluations: int  # of pre-training when it was kept
    path: str  # relative to the repository
    held_out_s: float  # the held-out graph's step time
    training_vs_one_device: float  # geometric mean over the training graphs


def snapshot_paths(runs: str, seed: int, family: str) -> list[tuple[int, Path]]:
    """(evaluations, path) of a pre-training's snapshots, in the order they were taken."""
    directory = ROOT / f"{runs}-s{seed}" / f"without-{family}" / "snapshots"
    found = [
        (int(m.group(1)), p)
        for p in directory.glob("policy-*.pt")
        if (m := _SNAPSHOT.search(p.name))
    ]
    return sorted(found)


class _Scorer:
    """Step times of argmax decisions, with the envs and one device's step times kept."""

    def __init__(self) -> None:
        self._envs: dict[str, gym.Env] = {}
        self._one_device: dict[str, float] = {}

    def _env(self, graph: str) -> gym.Env:
        if graph not in self._envs:
            self._envs[graph] = gym.make("GOPlacement-v0", graph=graph)
        return self._envs[graph]

    def step_time(self, agent_name: str, graph: str, **options: Any) -> float:
        """The step time of ``agent_name``'s deterministic decision on ``graph``."""
        import agents

        env = self._env(graph)
        agent = agents.make(agent_name, env, **options)
        obs, _ = env.reset(seed=0)
        action, _ = agent.predict(obs, deterministic=True)
        info = env.step(action)[4]
        return float(info["step_time"]) if info["valid"] else float("inf")

    def one_device(self, graph: str) -> float:
        if graph not in self._one_device:
            self._one_device[graph] = self.step_time("single-device", graph)
        return self._one_device[graph]


def measure(runs: str, seeds: Iterable[int]) -> list[Snapshot]:
    """Every snapshot of the pre-trainings of ``seeds``, measured zero-shot."""
    scorer = _Scorer()
    out = []
    for seed in seeds:
        for family in FAMILIES:
            for evaluations, path in snapshot_paths(runs, seed, family):
                checkpoint = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                training = [
                    scorer.step_time("go-zeroshot", g, checkpoint=checkpoint) / scorer.one_device(g)
                    for g in pretraining_graphs(family)
                ]
                held = scorer.step_time(
                    "go-zeroshot", held_out_graph(family), checkpoint=checkpoint
                )
                out.append(
                    Snapshot(seed, family, evaluations, checkpoint, held, geometric_mean(training))
                )
                print(
                    f"seed {seed} without {family:<15} {evaluations:>6} evaluations: held-out "
                    f"{held * 1e3:.3f} ms, training graphs {geometric_mean(training):.3f}x one device",
                    flush=True,
                )
    return out


def pick(snapshots: list[Snapshot], rule: str) -> dict[tuple[int, str], Snapshot]:
    """(seed, family) -> the snapshot ``rule`` picks: ``"last"``, ``"training"`` (best on
    the training graphs; the earliest of equals) or ``"held-out"`` (best on the test graph)."""
    keys = {
        "last": lambda s: -s.evaluations,
        "training": lambda s: (s.training_vs_one_device, s.evaluations),
        "held-out": lambda s: (s.held_out_s, s.evaluations),
    }
    if rule not in keys:
        raise ValueError(f"unknown rule {rule!r}; one of {', '.join(keys)}")
    groups: dict[tuple[int, str], list[Snapshot]] = {}
    for s in snapshots:
        groups.setdefault((s.seed, s.family), []).append(s)
    return {k: min(group, key=keys[rule]) for k, group in groups.items()}


def go_one_means(reference: Path) -> dict[str, float]:
    """quick-v0 graph -> GO-one's step time (``go`` with its defaults), the mean over seeds."""
    from go_gym.runner.results import read_results

    rows, _ = read_results(reference)
    times: dict[str, list[float]] = {}
    for row in rows:
        if row.agent == "go" and json.loads(row.agent_config or "{}") == {}:
            times.setdefault(row.graph, []).append(row.step_time_s)
    return {g: sum(t) / len(t) for g, t in times.items()}


def report(snapshots: list[Snapshot], go_one: dict[str, float]) -> None:
    """Per seed and rule: on how many held-out graphs zero-shot is within 10% of GO-one."""
    print(f"{'rule':<10}{'seed':>5}  within 10%  x GO-one  per family (evaluations: x GO-one)")
    for rule in ("last", "training", "held-out"):
        picked = pick(snapshots, rule)
        for seed in sorted({s for s, _ in picked}):
            chosen = [picked[seed, f] for f in FAMILIES if (seed, f) in picked]
            ratios = [s.held_out_s / go_one[held_out_graph(s.family)] for s in chosen]
            detail = ", ".join(
                f"{s.family} {s.evaluations}: {r:.3f}" for s, r in zip(chosen, ratios, strict=True)
            )
            print(
                f"{rule:<10}{seed:>5}  {sum(r <= 1.1 for r in ratios):>3} of {len(ratios)}"
                f"  {geometric_mean(ratios):>8.3f}  {detail}"
            )


def write_table(snapshots: list[Snapshot], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(asdict(snapshots[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in snapshots)


def read_table(path: Path) -> list[Snapshot]:
    with path.open(newline="") as file:
        return [
            Snapshot(
                int(r["seed"]),
                r["family"],
                int(r["evaluations"]),
                r["path"],
                float(r["held_out_s"]),
                float(r["training_vs_one_device"]),
            )
            for r in csv.DictReader(file)
        ]


def bench_picked(picked: dict[tuple[int, str], Snapshot], out: Path) -> None:
    """``go-zeroshot`` rows (``go-gym bench``) for the picked snapshots."""
    for snapshot in picked.values():
        config = json.dumps({"go-zeroshot": {"checkpoint": snapshot.path}})
        command = [
            sys.executable, "-m", "go_gym", "bench", "--suite", "quick-v0",
            "--graphs", held_out_graph(snapshot.family), "--seeds", "1",
            "--agents", "go-zeroshot", "--agent-config", config,
            "--out", str(out), "--workers", "1", "--no-progress",
        ]  # fmt: skip
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="pre-trainings at RUNS-s<seed>/...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=None, help="snapshots.csv and bench rows")
    parser.add_argument(
        "--reference", type=Path, default=ROOT / "leaderboard" / "results" / "quick-v0-placement"
    )
    parser.add_argument("--report-only", action="store_true", help="read OUT/snapshots.csv")
    args = parser.parse_args()
    if args.report_only:
        if args.out is None:
            parser.error("--report-only reads OUT/snapshots.csv: give --out")
        snapshots = read_table(args.out / "snapshots.csv")
    else:
        import torch

        torch.set_num_threads(1)
        snapshots = measure(args.runs, args.seeds)
        if not snapshots:
            parser.error(f"no snapshots under {args.runs}-s<seed>/without-<family>/snapshots/")
        if args.out is not None:
            write_table(snapshots, args.out / "snapshots.csv")
            bench_picked(pick(snapshots, "training"), args.out)
    report(snapshots, go_one_means(args.reference))


if __name__ == "__main__":
    main()
