"""Zero-shot transfer to quick-v0 with whole families held out: leave one family out.

    .venv/bin/python benchmarks/family_holdout.py --seeds 0 1 2 --budget 24000 \\
        --fine-tune-seeds 3 --out leaderboard/go/transfer-family-holdout-24k
    .venv/bin/python benchmarks/family_holdout.py --report-only --out leaderboard/go/transfer-family-holdout-24k

quick-v0 has one graph per model family, so a split that holds out graphs (pre-train on
``quick-train-v0``, other sizes of the same six families) lets the policy see every family.
This one does not: for each family and pre-training seed it pre-trains the default `go`
network and PPO (``go-gym train``, one torch thread) on the other five families at three
sizes each (their quick-v0 graph and their two ``quick-train-v0`` graphs, 15 graphs), writes
the policy to ``<runs>-s<seed>/without-<family>/policy.pt`` (``--runs``, default
``runs/lofo``), and runs it zero-shot (``go-zeroshot``) on the held-out family's quick-v0
graph. With ``--fine-tune-seeds N`` it also fine-tunes the seed-0 policies there (``go``
from the checkpoint, 2,000 evaluations, seeds 0..N-1). ``--jobs`` pre-trainings run at once.

It picks up where it stopped: a pre-training whose checkpoint has the budget is not run
again, one with fewer evaluations is resumed to the budget (``go-gym train --resume``, which
ends where the uninterrupted run would have), and cells already in ``--out`` are kept. So a
copy of a pre-training's directory, run with a larger ``--budget`` and another ``--runs``,
extends it:

    cp -r runs/lofo-s2 runs/lofo48k-s2
    .venv/bin/python benchmarks/family_holdout.py --seeds 2 --budget 48000 --runs runs/lofo48k \
        --out leaderboard/go/transfer-family-holdout-48k

The report compares each zero-shot step time with GO-one (``go`` from scratch with 2,000
evaluations, the mean over the seeds of ``--reference``), one device and the human expert:
the issue's transfer target is "within 10% of GO-one".
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import geometric_mean

from go_gym.cli import at_least
from go_gym.runner.results import ResultsError, Row, read_results
from go_gym.zoo.models import QUICK_CONFIGS, QUICK_TRAIN_CONFIGS
from go_gym.zoo.suites import get_entry, list_graphs

ROOT = Path(__file__).resolve().parents[1]
FINE_TUNE_BUDGET = 2000
DEFAULT_RUNS = "runs/lofo"
#: A row's checkpoint: ``<runs>-s<seed>/without-<family>/policy.pt``.
_CHECKPOINT = re.compile(r"-s(\d+)/without-([a-z0-9-]+)/policy\.pt$")


def _families() -> dict[str, tuple[str, ...]]:
    """family -> its quick-v0 graph, then its quick-train-v0 graphs, in the suites' order.

    The family is the zoo model family of the graph's workload, spelt with dashes (the
    ``without-<family>`` of a policy's path)."""
    workloads = {**QUICK_CONFIGS, **QUICK_TRAIN_CONFIGS}
    families: dict[str, tuple[str, ...]] = {}
    for graph in list_graphs("quick-v0") + list_graphs("quick-train-v0"):
        family = workloads[get_entry(graph).workload][0].replace("_", "-")
        families[family] = (*families.get(family, ()), graph)
    return families


#: family -> (its quick-v0 graph, its quick-train-v0 graphs), in pre-training order.
FAMILIES: dict[str, tuple[str, ...]] = _families()


def held_out_graph(family: str) -> str:
    """The quick-v0 graph a policy pre-trained without ``family`` is tested on."""
    return FAMILIES[family][0]


def pretraining_graphs(held_out: str) -> list[str]:
    """The graphs of the five other families (15), each family's quick-v0 graph first."""
    if held_out not in FAMILIES:
        raise ValueError(f"unknown family {held_out!r}; one of {', '.join(FAMILIES)}")
    return [graph for family, graphs in FAMILIES.items() if family != held_out for graph in graphs]


def policy_path(seed: int, held_out: str, runs: str = DEFAULT_RUNS) -> str:
    """Where the policy pre-trained without ``held_out`` goes (relative to the repository)."""
    return f"{runs}-s{seed}/without-{held_out}/policy.pt"


def _run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def pretrain(
    seed: int, held_out: str, budget: int, runs: str = DEFAULT_RUNS, snapshot_every: int = 0
) -> None:
    """``go-gym train`` on the other five families: from scratch, resumed from a checkpoint
    with fewer evaluations than ``budget``, or not at all if its policy has them. With
    ``snapshot_every`` the run keeps its policy every that many evaluations
    (``--snapshot-every``; `benchmarks/pretraining_snapshots.py` reads them)."""
    from agents.go.checkpoint import load_checkpoint

    policy = ROOT / policy_path(seed, held_out, runs)
    checkpoint = policy.parent / "checkpoint.pt"
    resume = checkpoint.exists()
    saved = checkpoint if resume else policy
    if saved.exists():
        done = int(load_checkpoint(saved)["evaluations"])
        if done > budget:
            raise SystemExit(f"{saved} has {done} evaluations; --budget is {budget}, fewer")
        if done < budget and not resume:
            raise SystemExit(
                f"{saved} has {done} evaluations; --budget is {budget}, and there is no "
                f"{checkpoint.name} beside it to resume from"
            )
        if done == budget and policy.exists():
            return
    _run(
        [
            sys.executable, "-m", "agents.go.train",
            "--graphs", ",".join(pretraining_graphs(held_out)),
            "--budget", str(budget), "--threads", "1", "--seed", str(seed), "--quiet",
            "--out", str(policy.parent), *(["--resume"] if resume else []),
            *(["--snapshot-every", str(snapshot_every)] if snapshot_every else []),
        ]
    )  # fmt: skip


def bench(agent: str, seeds: int, held_out: str, checkpoint: str, out: Path) -> None:
    """The ``agent`` cells of the graph of family ``held_out``, from the policy at
    ``checkpoint`` (relative to the repository; `policy_path` for a pre-training's last)."""
    config = json.dumps({agent: {"checkpoint": checkpoint}})
    _run(
        [
            sys.executable, "-m", "go_gym", "bench", "--suite", "quick-v0",
            "--graphs", held_out_graph(held_out), "--budget", str(FINE_TUNE_BUDGET),
            "--seeds", str(seeds), "--agents", agent, "--agent-config", config,
            "--out", str(out), "--workers", "1", "--no-progress",
        ]
    )  # fmt: skip


@dataclass(frozen=True)
class HeldOut:
    """One held-out graph: zero-shot per pre-training seed, fine-tuned runs, the references."""

    graph: str
    zero_shot: dict[int, float]  # pre-training seed -> step time (s)
    fine_tuned: dict[int, float]  # fine-tuning seed -> step time (s), seed-0 policy
    go_one: dict[int, float]  # GO-one's seed -> step time (s)
    one_device: float
    expert: float

    @property
    def go_one_mean(self) -> float:
        return sum(self.go_one.values()) / len(self.go_one)


def go_one_rows(rows: Iterable[Row]) -> dict[str, dict[int, float]]:
    """graph -> seed -> GO-one's step time (``go`` with its defaults) among ``rows``."""
    go_one: dict[str, dict[int, float]] = defaultdict(dict)
    for row in rows:
        if row.agent == "go" and json.loads(row.agent_config or "{}") == {}:
            go_one[row.graph][row.seed] = row.step_time_s
    return go_one


def summarise(results: Path, reference: Path) -> list[HeldOut]:
    """The held-out graphs of ``results`` against the quick-v0 rows of ``reference``.

    Raises:
        ValueError: when ``reference`` lacks a GO-one, single-device or human-expert row of a
            held-out graph of ``results`` (`ResultsError` for a directory without results).
    """
    rows, _ = read_results(results)
    ref_rows, _ = read_results(reference)
    zero_shot: dict[str, dict[int, float]] = defaultdict(dict)
    fine_tuned: dict[str, dict[int, float]] = defaultdict(dict)
    for row in rows:
        config = json.loads(row.agent_config or "{}")
        match = _CHECKPOINT.search(config.get("checkpoint", ""))
        if match is None or held_out_graph(match.group(2)) != row.graph:
            continue
        if row.agent == "go-zeroshot":
            zero_shot[row.graph][int(match.group(1))] = row.step_time_s
        elif row.agent == "go" and match.group(1) == "0":
            fine_tuned[row.graph][row.seed] = row.step_time_s
    go_one = go_one_rows(ref_rows)
    fixed = {
        (row.graph, row.agent): row.step_time_s
        for row in ref_rows
        if row.agent in ("single-device", "human-expert")
    }
    gaps = [
        graph
        for graph in zero_shot
        if not go_one[graph]
        or any((graph, a) not in fixed for a in ("single-device", "human-expert"))
    ]
    if gaps:
        raise ValueError(
            f"{reference} lacks the GO-one (go with its defaults), single-device or "
            f"human-expert rows of {', '.join(sorted(gaps))}"
        )
    return [
        HeldOut(
            graph=graph,
            zero_shot=dict(sorted(zero_shot[graph].items())),
            fine_tuned=dict(sorted(fine_tuned[graph].items())),
            go_one=go_one[graph],
            one_device=fixed[graph, "single-device"],
            expert=fixed[graph, "human-expert"],
        )
        for graph in (held_out_graph(f) for f in FAMILIES)
        if graph in zero_shot
    ]


def report(held: list[HeldOut]) -> None:
    """Print the table and, per pre-training seed, how many graphs are within 10% of GO-one."""
    seeds = sorted({s for h in held for s in h.zero_shot})
    head = "".join(f"{'zero-shot s' + str(s):>15}" for s in seeds)
    print(
        f"{'held-out graph (ms)':<28}{head}{'fine-tuned':>12}{'GO-one':>9}"
        f"{'one device':>12}{'expert':>9}  zero-shot / GO-one"
    )
    for h in held:
        zs = "".join(
            f"{h.zero_shot[s] * 1e3:>15.3f}" if s in h.zero_shot else f"{'-':>15}" for s in seeds
        )
        ft = (
            f"{sum(h.fine_tuned.values()) / len(h.fine_tuned) * 1e3:>12.3f}"
            if h.fine_tuned
            else f"{'-':>12}"
        )
        ratio_list = ", ".join(f"{h.zero_shot[s] / h.go_one_mean:.3f}" for s in h.zero_shot)
        print(
            f"{h.graph:<28}{zs}{ft}{h.go_one_mean * 1e3:>9.3f}"
            f"{h.one_device * 1e3:>12.3f}{h.expert * 1e3:>9.3f}  {ratio_list}"
        )
    for s in seeds:
        have = [h for h in held if s in h.zero_shot]
        ratios = [h.zero_shot[s] / h.go_one_mean for h in have]
        print(
            f"pre-training seed {s}: within 10% of GO-one on {sum(r <= 1.1 for r in ratios)}"
            f" of {len(have)}, {geometric_mean(ratios):.3f}x GO-one and"
            f" {geometric_mean([h.zero_shot[s] / h.expert for h in have]):.3f}x the expert"
            " (geometric means)"
        )
    if len(seeds) > 1:
        every = [h for h in held if all(s in h.zero_shot for s in seeds)]
        by_mean = [geometric_mean([h.zero_shot[s] / h.go_one_mean for s in seeds]) for h in every]
        print(
            f"over seeds {', '.join(map(str, seeds))}: within 10% of GO-one with every seed on"
            f" {sum(all(h.zero_shot[s] <= 1.1 * h.go_one_mean for s in seeds) for h in every)}"
            f" of {len(every)}, by the geometric mean over seeds on"
            f" {sum(r <= 1.1 for r in by_mean)} of {len(every)}; {geometric_mean(by_mean):.3f}x GO-one"
        )
    tuned = [(sum(h.fine_tuned.values()) / len(h.fine_tuned), h) for h in held if h.fine_tuned]
    if tuned:
        cells = [
            (t, h.go_one[s]) for _, h in tuned for s, t in h.fine_tuned.items() if s in h.go_one
        ]
        print(
            f"fine-tuned ({FINE_TUNE_BUDGET} evaluations, seed-0 policies): faster than GO-one in"
            f" {sum(t < g for t, g in cells)} of {len(cells)} cells (seed against seed) and by"
            f" the mean on {sum(m < h.go_one_mean for m, h in tuned)} of {len(tuned)};"
            f" {geometric_mean([m / h.go_one_mean for m, h in tuned]):.3f}x GO-one,"
            f" {geometric_mean([m / h.expert for m, h in tuned]):.3f}x the expert"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seeds", type=at_least(0), nargs="+", default=[0], help="pre-training seeds"
    )
    parser.add_argument(
        "--budget", type=at_least(1), default=24000, help="pre-training evaluations"
    )
    parser.add_argument("--fine-tune-seeds", type=at_least(0), default=0, help="0: no fine-tuning")
    parser.add_argument("--jobs", type=at_least(1), default=2, help="pre-trainings at once")
    parser.add_argument(
        "--runs", default=DEFAULT_RUNS, help="policies go to RUNS-s<seed>/without-<family>"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "family-holdout")
    parser.add_argument(
        "--reference", type=Path, default=ROOT / "leaderboard" / "results" / "quick-v0-placement"
    )
    parser.add_argument("--report-only", action="store_true", help="only print the report")
    parser.add_argument(
        "--snapshot-every",
        type=at_least(0),
        default=0,
        help="keep pre-training policies (evaluations)",
    )
    args = parser.parse_args(argv)
    if args.report_only:  # else the report reads them after hours of pre-training
        for option, path in (("--out", args.out), ("--reference", args.reference)):
            try:
                read_results(path)
            except ResultsError as exc:
                parser.error(f"{option}: {exc}")
    else:
        try:
            read_results(args.reference)
        except ResultsError as exc:
            parser.error(f"--reference: {exc}")
        with ThreadPoolExecutor(args.jobs) as pool:
            jobs = [
                pool.submit(pretrain, s, f, args.budget, args.runs, args.snapshot_every)
                for s in args.seeds
                for f in FAMILIES
            ]
            for job in jobs:
                job.result()
        for seed in args.seeds:
            for family in FAMILIES:
                policy = policy_path(seed, family, args.runs)
                bench("go-zeroshot", 1, family, policy, args.out)
        if args.fine_tune_seeds:
            for family in FAMILIES:
                policy = policy_path(0, family, args.runs)
                bench("go", args.fine_tune_seeds, family, policy, args.out)
    try:
        held = summarise(args.out, args.reference)
    except ValueError as exc:  # ResultsError included; each names its directory
        parser.error(str(exc))
    if args.report_only and not held:
        parser.error(
            f"--out: no go-zeroshot rows of a held-out family's graph with a "
            f"<runs>-s<seed>/without-<family>/policy.pt checkpoint in {args.out}"
        )
    report(held)


if __name__ == "__main__":
    main()
