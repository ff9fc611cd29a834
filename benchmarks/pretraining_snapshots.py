"""Zero-shot transfer along pre-training, and whether the training graphs can pick the point.

    .venv/bin/python benchmarks/family_holdout.py --seeds 0 1 2 --budget 24000 --runs runs/snap \\
        --snapshot-every 2000 --out leaderboard/go/transfer-family-holdout-snapshots
    .venv/bin/python benchmarks/pretraining_snapshots.py --runs runs/snap --seeds 0 1 2 \\
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

Four policies per pre-training are compared: the last snapshot (what the committed tables
use); the snapshot best on its own training graphs (a rule anyone can apply); the mean of the
weights of the snapshots of the second half of the pre-training (`second_half_mean`, also a
rule: it averages out the swings from one snapshot to the next, as stochastic weight averaging
does for SGD); and the snapshot best on the held-out graph (not a rule: it looks at the test
graph, and only says how much picking could gain). With ``--out`` the table goes to
``snapshots.csv`` there, and the two rules' policies get ``go-zeroshot`` rows (``go-gym
bench``, so ``go-gym validate`` replays them).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import geometric_mean, median
from typing import Any

import gymnasium as gym
import numpy as np

from go_gym.cli import at_least

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from family_holdout import (  # noqa: E402  (the sibling script, found through the line above)
    DEFAULT_RUNS,
    FAMILIES,
    bench,
    go_one_rows,
    held_out_graph,
    pretraining_graphs,
)

_SNAPSHOT = re.compile(r"policy-(\d+)\.pt$")


#: `Snapshot.kind` of a policy kept along the run, and of the mean of the second half's.
KEPT, MEAN = "snapshot", "second-half mean"


@dataclass(frozen=True)
class Snapshot:
    """One policy of one pre-training (kept along the run, or a mean of those), measured
    zero-shot."""

    seed: int
    family: str  # held out
    evaluations: int  # of pre-training when it was kept (a mean: its last snapshot's)
    path: str  # relative to the repository
    held_out_s: float  # the held-out graph's step time
    training_vs_one_device: float  # geometric mean over the training graphs
    kind: str = KEPT


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


def second_half_mean(snapshots: list[tuple[int, Path]], out: Path) -> Path:
    """Write to ``out`` the policy whose weights are the mean of those of ``snapshots``
    (evaluations, path) taken at or after half the last one's evaluations."""
    import torch

    from agents.go.checkpoint import load_checkpoint, save_checkpoint

    last = snapshots[-1][0]
    states = [load_checkpoint(p) for e, p in snapshots if 2 * e >= last]
    mean = dict(states[-1])  # configs, counters and trained_on of the last snapshot
    mean["model"] = {
        name: torch.stack([s["model"][name] for s in states]).mean(0)
        if weights.is_floating_point()
        else weights
        for name, weights in states[-1]["model"].items()
    }
    return save_checkpoint(out, mean)


def measure(runs: str, seeds: Iterable[int]) -> list[Snapshot]:
    """Every snapshot of the pre-trainings of ``seeds`` and their second-half means,
    measured zero-shot (each mean is written beside its snapshots)."""
    scorer = _Scorer()
    out = []
    for seed in seeds:
        for family in FAMILIES:
            snapshots = snapshot_paths(runs, seed, family)
            if not snapshots:
                continue
            mean = second_half_mean(snapshots, snapshots[-1][1].parent / "second-half-mean.pt")
            policies = [(e, p, KEPT) for e, p in snapshots] + [(snapshots[-1][0], mean, MEAN)]
            for evaluations, path, kind in policies:
                checkpoint = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                training = geometric_mean(
                    [
                        scorer.step_time("go-zeroshot", g, checkpoint=checkpoint)
                        / scorer.one_device(g)
                        for g in pretraining_graphs(family)
                    ]
                )
                held = scorer.step_time(
                    "go-zeroshot", held_out_graph(family), checkpoint=checkpoint
                )
                out.append(Snapshot(seed, family, evaluations, checkpoint, held, training, kind))
                print(
                    f"seed {seed} without {family:<15} {kind:<16} {evaluations:>6} evaluations: "
                    f"held-out {held * 1e3:.3f} ms, training graphs {training:.3f}x one device",
                    flush=True,
                )
    return out


#: The policies compared, in the report's order: three picks among the kept snapshots, and
#: the second-half mean.
RULES = ("last", "training", MEAN, "held-out")


def pick(snapshots: list[Snapshot], rule: str) -> dict[tuple[int, str], Snapshot]:
    """(seed, family) -> the policy ``rule`` gives: among the kept snapshots ``"last"``,
    ``"training"`` (best on the training graphs; the earliest of equals) or ``"held-out"``
    (best on the test graph); or the second-half mean (`MEAN`)."""
    keys: dict[str, Callable[[Snapshot], Any]] = {
        "last": lambda s: -s.evaluations,
        "training": lambda s: (s.training_vs_one_device, s.evaluations),
        "held-out": lambda s: (s.held_out_s, s.evaluations),
        MEAN: lambda s: 0,
    }
    if rule not in keys:
        raise ValueError(f"unknown rule {rule!r}; one of {', '.join(keys)}")
    groups: dict[tuple[int, str], list[Snapshot]] = {}
    for s in snapshots:
        if (s.kind == MEAN) == (rule == MEAN):
            groups.setdefault((s.seed, s.family), []).append(s)
    return {k: min(group, key=keys[rule]) for k, group in groups.items()}


def go_one_means(reference: Path) -> dict[str, float]:
    """quick-v0 graph -> GO-one's step time (``go`` with its defaults), the mean over seeds."""
    from go_gym.runner.results import read_results

    rows, _ = read_results(reference)
    return {g: sum(t.values()) / len(t) for g, t in go_one_rows(rows).items()}


def report(snapshots: list[Snapshot], go_one: dict[str, float]) -> None:
    """Per seed and rule: on how many held-out graphs zero-shot is within 10% of GO-one."""
    print(f"{'rule':<17}{'seed':>5}  within 10%  x GO-one  per family (evaluations: x GO-one)")
    for rule in RULES:
        picked = pick(snapshots, rule)
        for seed in sorted({s for s, _ in picked}):
            chosen = [picked[seed, f] for f in FAMILIES if (seed, f) in picked]
            ratios = [s.held_out_s / go_one[held_out_graph(s.family)] for s in chosen]
            detail = ", ".join(
                f"{s.family} {s.evaluations}: {r:.3f}" for s, r in zip(chosen, ratios, strict=True)
            )
            print(
                f"{rule:<17}{seed:>5}  {sum(r <= 1.1 for r in ratios):>3} of {len(ratios)}"
                f"  {geometric_mean(ratios):>8.3f}  {detail}"
            )
    swings, agreement = [], []
    for (seed, family), runs in _kept_by_pretraining(snapshots).items():
        late = [s.held_out_s for s in runs if 2 * s.evaluations >= runs[-1].evaluations]
        swings.append((max(late) / min(late), seed, family))
        agreement.append(
            spearman([s.training_vs_one_device for s in runs], [s.held_out_s for s in runs])
        )
    if swings:
        widest = max(swings)
        print(
            f"held-out step time over a pre-training's second half: max/min "
            f"{median(w for w, _, _ in swings):.2f} (median over {len(swings)} pre-trainings), "
            f"up to {widest[0]:.2f} (seed {widest[1]}, without {widest[2]}); rank correlation "
            f"of the training graphs' score with it across snapshots: median "
            f"{median(agreement):.2f}, {min(agreement):.2f} to {max(agreement):.2f}"
        )


def _kept_by_pretraining(snapshots: list[Snapshot]) -> dict[tuple[int, str], list[Snapshot]]:
    """(seed, family) -> its kept snapshots, in the order they were taken."""
    groups: dict[tuple[int, str], list[Snapshot]] = {}
    for s in sorted(snapshots, key=lambda s: s.evaluations):
        if s.kind == KEPT:
            groups.setdefault((s.seed, s.family), []).append(s)
    return groups


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of ``a`` and ``b`` (no ties expected: measured times)."""
    rank_a, rank_b = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


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
                r["kind"],
            )
            for r in csv.DictReader(file)
        ]


def bench_picked(picked: dict[tuple[int, str], Snapshot], out: Path) -> None:
    """``go-zeroshot`` rows (``go-gym bench``) for the picked snapshots."""
    for snapshot in picked.values():
        bench("go-zeroshot", 1, snapshot.family, snapshot.path, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="pre-trainings at RUNS-s<seed>/...")
    parser.add_argument("--seeds", type=at_least(0), nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=None, help="snapshots.csv and bench rows")
    parser.add_argument(
        "--reference", type=Path, default=ROOT / "leaderboard" / "results" / "quick-v0-placement"
    )
    parser.add_argument("--report-only", action="store_true", help="read OUT/snapshots.csv")
    args = parser.parse_args(argv)
    from go_gym.runner.results import ResultsError

    try:
        reference = go_one_means(args.reference)
    except ResultsError as exc:
        parser.error(f"--reference: {exc}")
    if args.report_only:
        if args.out is None:
            parser.error("--report-only reads OUT/snapshots.csv: give --out")
        table = args.out / "snapshots.csv"
        if not table.is_file():
            parser.error(f"--report-only reads OUT/snapshots.csv: there is no {table}")
        snapshots = read_table(table)
    else:
        import torch

        torch.set_num_threads(1)
        snapshots = measure(args.runs, args.seeds)
        if not snapshots:
            parser.error(f"no snapshots under {args.runs}-s<seed>/without-<family>/snapshots/")
        if args.out is not None:
            write_table(snapshots, args.out / "snapshots.csv")
            bench_picked(pick(snapshots, "training"), args.out)
            bench_picked(pick(snapshots, MEAN), args.out)
    missing = sorted({held_out_graph(s.family) for s in snapshots} - set(reference))
    if missing:
        parser.error(
            f"--reference: {args.reference} has no GO-one (go with its defaults) rows of "
            f"{', '.join(missing)}"
        )
    report(snapshots, reference)


if __name__ == "__main__":
    main()
