"""``go-gym train`` / ``python -m agents.go.train``: train a GO policy with PPO.

    python -m agents.go.train --graphs quick-v0/rnnlm-2 --budget 4000 --out runs/go-one
    python -m agents.go.train --graphs synthetic-v0 --synthetic 8 --budget 20000 --out runs/pre
    python -m agents.go.train --graphs quick-v0/gnmt-3 --init runs/pre/checkpoint.pt ...
    python -m agents.go.train --graphs quick-v0/rnnlm-2 --budget 4000 --out runs/go-one --resume

``--graphs`` takes suite graph ids and suite names (comma-separated); each graph runs on
its suite's cluster. ``--synthetic N`` adds N random layered graphs (`go_gym.generators`)
on a P100 machine with ``--synthetic-devices`` GPUs (a comma-separated list such as
``2,4,8`` cycles through the counts, so one policy learns to address every device count it
will be used on: the placement head's logits for devices it never saw are untrained).
Graphs are trained round-robin, sharing the evaluation budget. Each iteration appends a row
to ``OUT/progress.csv`` (and to TensorBoard when it is installed; a fresh run starts the CSV
anew, a resumed one keeps its rows up to the checkpoint); ``OUT/checkpoint.pt`` is written
every ``--save-every`` iterations and at the end (atomically; loaded with
``weights_only=True``), ``OUT/policy.pt`` at the end (the policy alone, with the names of
the graphs it was trained on: what ``go-zeroshot`` and ``go`` with ``checkpoint=`` load, a
third of the size; started with ``--init``, both files also record the pre-training of the
checkpoint it started from, ``pretrained_on`` and ``pretraining_evaluations``,
`agents.go.checkpoint.pretraining`), and ``OUT/best.npz`` holds the best decision found per
graph. With
``--snapshot-every N`` the policy is also kept each time the run passes a multiple of N
evaluations, as ``OUT/snapshots/policy-<evaluations>.pt`` (the same format as ``policy.pt``):
zero-shot quality is not monotone in pre-training, so which point to use is worth measuring.
``--resume`` restores the model, optimiser, RNG and counters from ``OUT/checkpoint.pt`` and
continues until the total budget is spent (or ``--iterations``, counted from the start of
the run), as the uninterrupted run would have; it takes the run's options again (the
checkpoint names its task, graphs with their clusters and fixed decisions, PPO settings and
seed, and a resumption with others is an error, as is ``--resume`` with ``--init``), and a
larger ``--budget`` extends a finished run. Options that shape a fresh network (``--hidden``,
``--segment``, ``--layer-head``, ``--placement-actions``, ``--tie-roles``) are an error
with ``--init`` or ``--resume`` when they differ from their default and from the
checkpoint's. A checkpoint that cannot be read, resumed (a ``policy.pt``) or used on these
graphs (a placement policy for ``--task joint``) is a usage error (exit status 2) before
anything is written. ``--device cuda`` runs the network on a GPU (the simulator stays on the
CPU); checkpoints load on any device.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.go.checkpoint import (
    PRETRAINING_KEYS,
    load_checkpoint,
    load_weights,
    policy_state,
    pretraining,
    save_checkpoint,
)
from agents.go.model import PLACEMENT_ACTIONS, TASK_ORDER, GOConfig
from agents.go.ppo import (
    RESUME_KEYS,
    IterationStats,
    PPOConfig,
    PPOTrainer,
    graph_key,
    is_legacy_key,
    legacy_graph_key,
    make_policy,
    policy_mismatch,
    torch_device,
)
from go_gym.cli import at_least
from go_gym.envs.graph_env import GraphOptEnv
from go_gym.runner.cells import TASKS

#: ``--task`` -> the benchmark runner's task (`go_gym.runner.cells.TASKS`): training sees the
#: env that `go-gym bench` measures. For scheduling and fusion that fixes the human-expert
#: placement; the envs' own default, one device, leaves a schedule nothing to decide.
BENCH_TASKS = {
    "placement": "placement",
    "priority": "scheduling",
    "fusion": "fusion",
    "joint": "joint",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the training options to ``parser`` (used by ``go-gym train``)."""
    parser.add_argument(
        "--graphs", default="quick-v0/rnnlm-2", help="graph ids or suite names, comma-separated"
    )
    parser.add_argument(
        "--synthetic", type=at_least(0), default=0, help="random layered graphs to add"
    )
    parser.add_argument(
        "--synthetic-ops", type=at_least(1), default=600, help="ops per synthetic graph"
    )
    parser.add_argument(
        "--synthetic-devices",
        type=device_counts,
        default=(2,),
        help="GPUs for synthetic graphs; a comma-separated list cycles through the counts",
    )
    parser.add_argument("--task", choices=sorted(BENCH_TASKS), default="placement")
    parser.add_argument(
        "--budget", type=at_least(0), default=4000, help="simulator evaluations (total)"
    )
    parser.add_argument(
        "--iterations", type=at_least(0), default=0, help="stop after this many (0: off)"
    )
    # PPO defaults are PPOConfig's, so the CLI and the registered agents train alike.
    parser.add_argument(
        "--samples", type=int, default=PPOConfig.samples, help="K decisions per iteration"
    )
    parser.add_argument(
        "--epochs", type=int, default=PPOConfig.epochs, help="PPO epochs per iteration"
    )
    parser.add_argument("--lr", type=float, default=PPOConfig.lr)
    parser.add_argument("--entropy-coef", type=float, default=PPOConfig.entropy_coef)
    parser.add_argument("--clip", type=float, default=PPOConfig.clip, help="per-node ratio clip")
    parser.add_argument(
        "--target-kl",
        type=float,
        default=PPOConfig.target_kl,
        help="stop an iteration's epochs at this mean per-node KL (0: run them all)",
    )
    parser.add_argument(
        "--deciding-nodes-only",
        action="store_true",
        help="leave the ops that follow their colocation group out of the update",
    )
    parser.add_argument(
        "--min-deviations",
        type=float,
        default=None,
        help="raise the entropy bonus while fewer nodes per sample leave the mode",
    )
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--segment", type=int, default=128)
    parser.add_argument(
        "--layer-head",
        type=float,
        default=0.0,
        help="initial scale of the layer head (GOConfig.layer_head; 0: none)",
    )
    parser.add_argument(
        "--placement-actions",
        choices=PLACEMENT_ACTIONS,
        default="device",
        help="what a placement choice means (GOConfig.placement_actions): a device, an "
        "offset from the op's parent in a maximum spanning tree of the graph, or (tree-solo) "
        "such an offset or a move of the op alone",
    )
    parser.add_argument(
        "--tie-roles",
        action="store_true",
        help="with tree actions, one placement choice for the ops of one role in repeated "
        "blocks (GOConfig.tie_roles)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/go", help="output directory")
    parser.add_argument("--init", default=None, help="checkpoint to start from (fine-tuning)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument(
        "--save-every", type=at_least(1), default=50, help="iterations per checkpoint"
    )
    parser.add_argument(
        "--snapshot-every",
        type=at_least(0),
        default=0,
        help="keep the policy every this many evaluations in OUT/snapshots/ (0: off)",
    )
    parser.add_argument("--threads", type=at_least(1), default=1, help="torch threads")
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the network runs: cpu (default), cuda, cuda:N, or auto (a GPU if any)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def device_counts(text: str) -> tuple[int, ...]:
    """``"2,4,8"`` -> ``(2, 4, 8)``: the ``--synthetic-devices`` argument."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"device counts must be positive: {text!r}")
    return counts


def make_envs(
    graphs: str,
    task: str,
    synthetic: int = 0,
    synthetic_ops: int = 600,
    synthetic_devices: tuple[int, ...] = (2,),
) -> list[GraphOptEnv]:
    """One single-graph env per graph (each on its suite's cluster, with the decisions
    `go-gym bench` fixes for the task); synthetic graph ``i`` runs on
    ``synthetic_devices[i % len(synthetic_devices)]`` GPUs."""
    import go_gym  # noqa: F401  (registers the env ids)
    from go_gym.generators import random_layered_graph
    from go_gym.zoo import list_graphs, list_suites

    ids: list[str] = []
    for item in filter(None, (s.strip() for s in graphs.split(","))):
        ids.extend(list_graphs(item) if item in list_suites() else [item])
    env_id, fixed = TASKS[BENCH_TASKS[task]]
    envs = [gym.make(env_id, graph=g, **fixed).unwrapped for g in ids]
    for i in range(synthetic):
        graph = random_layered_graph(synthetic_ops, seed=1000 + i, name=f"synthetic-{i}")
        envs.append(
            gym.make(
                env_id,
                graph=graph,
                cluster="p100",
                n_devices=synthetic_devices[i % len(synthetic_devices)],
                **fixed,
            ).unwrapped
        )
    if not envs:
        raise ValueError("no graphs to train on (--graphs and --synthetic are empty)")
    return envs  # type: ignore[return-value]


def task_label(tasks: tuple[str, ...]) -> str:
    """``--task`` of a policy's tasks (`GOConfig.tasks`), e.g. ``"--task joint (placement,
    priority, fusion)"``."""
    names: dict[str, tuple[str, ...]] = {t: (t,) for t in TASK_ORDER}
    names["joint"] = TASK_ORDER
    task = next((k for k, v in names.items() if tuple(v) == tuple(tasks)), None)
    return f"{'--task ' + task if task else 'tasks'} ({', '.join(tasks)})"


def _key_difference(name: str, saved: str, now: str) -> str:
    """How one graph of a resumed run differs from the checkpoint's (`graph_key`s)."""
    saved_graph, saved_devices, *_ = saved.split(":")
    graph, devices, *_ = now.split(":")
    if saved_graph != graph:
        return f"{name} is another graph of that name (e.g. other --synthetic-ops)"
    if saved_devices != devices:
        return f"{name} ran on {saved_devices} devices, here on {devices}"
    return f"{name} ran on another cluster or with other fixed decisions"


def resume_mismatch(
    state: dict[str, Any], envs: list[GraphOptEnv], ppo: PPOConfig, seed: int | None = None
) -> str | None:
    """Why the checkpoint ``state`` cannot be resumed on ``envs`` (in round-robin order)
    with ``ppo`` and ``seed``; None if it can.

    ``--resume`` takes the task, graphs, PPO settings and seed from the command line, like
    the run it continues; another task (the records of two tasks would mix), other graphs,
    the same in another order (the round robin), other settings or another seed (the RNG
    state goes on from the saved one, so the file would name a seed that did not make the
    run) would quietly make a different run from the one that was interrupted. Graphs are
    compared by `graph_key`, or by `legacy_graph_key` for a checkpoint written before it
    (graph and device count only)."""
    tasks = tuple(t for t in TASK_ORDER if t in envs[0].decides)
    saved_tasks = GOConfig.from_dict(state["model_config"]).tasks
    if saved_tasks != tasks:
        return (
            f"it was trained for {task_label(saved_tasks)}; these options give "
            f"{task_label(tasks)} (give the interrupted run's --task)"
        )
    saved_keys = state.get("graph_keys")  # absent from checkpoints written before it was kept
    if saved_keys is not None:
        saved_keys = [str(k) for k in saved_keys]
        legacy = all(is_legacy_key(k) for k in saved_keys)
        keys = [legacy_graph_key(e) if legacy else graph_key(e) for e in envs]
        if saved_keys != keys:
            names = [env.graph.name for env in envs]
            saved_names = [str(n) for n in state.get("trained_on", [])]
            hint = (
                "give the interrupted run's --graphs, --synthetic, --synthetic-ops and "
                "--synthetic-devices"
            )
            if saved_names != names:
                return (
                    f"it was trained on {', '.join(saved_names)}; these options give "
                    f"{', '.join(names)} ({hint})"
                )
            differ = [
                _key_difference(name, old, new)
                for name, old, new in zip(names, saved_keys, keys, strict=True)
                if old != new
            ]
            return f"its graphs differ: {'; '.join(differ)} ({hint})"
    now = ppo.to_dict()
    differ = [k for k, v in state["ppo_config"].items() if k in now and now[k] != v]
    if differ:
        return "its PPO settings differ: " + ", ".join(
            f"{k}={state['ppo_config'][k]} (here {now[k]})" for k in differ
        )
    saved_seed = state.get("seed")
    if seed is not None and saved_seed is not None and int(saved_seed) != seed:
        return (
            f"it was trained with seed {saved_seed} (here {seed}): its RNG state goes on from "
            f"that run's, so give --seed {saved_seed}"
        )
    return None


def save_best(path: Path, trainer: PPOTrainer) -> None:
    """The best decision per graph as a NumPy ``.npz`` (no pickle): ``<graph>/<task>`` rows."""
    arrays: dict[str, Any] = {}
    for rec in trainer.records.values():
        for task, row in rec.best.items():
            arrays[f"{rec.name}/{task}"] = row
        if rec.best:
            arrays[f"{rec.name}/step_time"] = np.array(rec.best_time)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _progress_rows_until(path: Path, iteration: int) -> list[dict[str, str]]:
    """The rows of ``path`` up to ``iteration``: what a run resumed from there has done.

    A run killed between checkpoints (no ``finally`` to save it: SIGKILL, out of memory)
    logged iterations that its resumption runs again; without this they would be in the
    log twice."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return [row for row in csv.DictReader(file) if int(row["iteration"]) <= iteration]


class _Logger:
    """CSV rows (flushed per row), TensorBoard if installed, and a progress bar.

    A fresh run starts ``progress.csv`` anew; a resumed one keeps the rows up to the
    iteration of its checkpoint (``resumed_at``) and appends from there."""

    def __init__(
        self, out: Path, budget: int, start: int, quiet: bool, resumed_at: int | None = None
    ) -> None:
        self.path = out / "progress.csv"
        fields = [f.name for f in dataclasses.fields(IterationStats)]
        kept = [] if resumed_at is None else _progress_rows_until(self.path, resumed_at)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as file:  # atomically, like the checkpoints
            start_log = csv.DictWriter(file, fieldnames=fields)
            start_log.writeheader()
            start_log.writerows(kept)
        tmp.replace(self.path)
        self.file = self.path.open("a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=fields)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb: Any = SummaryWriter(str(out / "tb"))
        except ImportError:
            self.tb = None
        self.bar: Any = None
        if not quiet:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=budget, initial=start, unit="eval", dynamic_ncols=True)
            except ImportError:
                self.bar = None
        self.quiet = quiet
        self.last = start

    def __call__(self, stats: IterationStats) -> None:
        self.writer.writerow(dataclasses.asdict(stats))
        self.file.flush()
        if self.tb is not None:
            for key in ("mean_reward", "mean_step_time", "best_step_time", "entropy", "loss"):
                self.tb.add_scalar(f"{stats.graph}/{key}", getattr(stats, key), stats.evaluations)
        if self.bar is not None:
            self.bar.update(stats.evaluations - self.last)
            self.bar.set_postfix_str(
                f"{stats.graph} best={stats.best_step_time * 1e3:.3f}ms H={stats.entropy:.2f}"
            )
        elif not self.quiet and stats.iteration % 20 == 0:
            print(
                f"it {stats.iteration} evals {stats.evaluations} {stats.graph} "
                f"best {stats.best_step_time * 1e3:.3f} ms",
                flush=True,
            )
        self.last = stats.evaluations

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
        if self.bar is not None:
            self.bar.close()


def _usage_error(message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; returns a process exit code (2 for a bad option, before any
    output is written: a checkpoint that cannot be read, resumed or fine-tuned on these
    graphs included)."""
    torch.set_num_threads(args.threads)
    try:
        device = torch_device(args.device)
    except ValueError as exc:
        return _usage_error(f"--device: {exc}")
    if args.resume and args.init:
        return _usage_error(
            "--resume continues the run in --out from its checkpoint.pt, --init starts a new "
            "run from another checkpoint: give one of them"
        )
    try:
        envs = make_envs(
            args.graphs, args.task, args.synthetic, args.synthetic_ops, args.synthetic_devices
        )
        ppo = PPOConfig(
            samples=args.samples,
            epochs=args.epochs,
            clip=args.clip,
            lr=args.lr,
            entropy_coef=args.entropy_coef,
            target_kl=args.target_kl or None,
            deciding_nodes_only=args.deciding_nodes_only,
            min_deviations=args.min_deviations,
        )
    except (KeyError, ValueError) as exc:  # an unknown graph id, PPO settings out of range
        return _usage_error(exc.args[0] if exc.args else exc)
    out = Path(args.out)
    ckpt_path = out / "checkpoint.pt"
    decides = tuple(envs[0].decides)
    state = None
    source = ckpt_path if args.resume else args.init
    option = "--resume" if args.resume else "--init"
    if args.resume:
        if not ckpt_path.exists():
            return _usage_error(f"--resume but no checkpoint at {ckpt_path}")
        try:
            state = load_checkpoint(ckpt_path)
        except (FileNotFoundError, ValueError) as exc:
            return _usage_error(f"--resume: {exc}")
        missing = [k for k in RESUME_KEYS if k not in state]
        if missing:
            return _usage_error(
                f"--resume: {ckpt_path} holds a policy alone (no {', '.join(missing)}): it "
                "can start a run (--init) but not resume one"
            )
    elif args.init:
        try:
            state = load_checkpoint(args.init)
        except (FileNotFoundError, ValueError) as exc:
            return _usage_error(f"--init: {exc}")
    pretrained: dict[str, Any] = {}
    if state is not None:
        config = GOConfig.from_dict(state["model_config"])
        shaping = {
            "hidden": (args.hidden, 64),
            "segment": (args.segment, 128),
            "layer_head": (args.layer_head, 0.0),
            "placement_actions": (args.placement_actions, "device"),
            "tie_roles": (args.tie_roles, False),
        }
        for name, (value, default) in shaping.items():
            if value != default and value != getattr(config, name):
                return _usage_error(
                    f"--{name.replace('_', '-')} {value} shapes a fresh policy; "
                    f"checkpoint {source} has {name}={getattr(config, name)}"
                )
        if args.resume:  # the record of the pre-training goes on with the run
            pretrained = {k: state[k] for k in PRETRAINING_KEYS if k in state}
        else:
            pretrained = pretraining(state)
    else:
        tasks = tuple(t for t in TASK_ORDER if t in decides)
        try:
            config = GOConfig(
                tasks=tasks,
                hidden=args.hidden,
                segment=args.segment,
                layer_head=args.layer_head,
                placement_actions=args.placement_actions,
                tie_roles=args.tie_roles,
            )
        except ValueError as exc:  # e.g. a layer head over tree actions
            return _usage_error(exc)
    trained_on = {
        "trained_on": [env.graph.name for env in envs],
        "graph_keys": [graph_key(env) for env in envs],
    }
    if args.resume and state is not None:
        mismatch = resume_mismatch(state, envs, ppo, args.seed)
        if mismatch is not None:
            return _usage_error(f"cannot resume {ckpt_path}: {mismatch}")
    for env in envs:  # what the first iteration on each graph would refuse, after writing
        unfit = policy_mismatch(config, env)
        if unfit is not None:
            where = f"{option} {source}: " if state is not None else ""
            return _usage_error(f"{where}{unfit}")
    trainer = PPOTrainer(make_policy(config, seed=args.seed), ppo, seed=args.seed, device=device)
    if state is not None:
        try:
            load_weights(trainer.policy, state, source)
            trainer.load_state_dict(state, optimizer=args.resume)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            named = str(source) in str(exc)
            return _usage_error(f"{option}: {exc}" if named else f"{option}: {source}: {exc}")
        if args.resume:
            for env in envs:
                trainer.restored_best(env)
    left = args.budget - trainer.evaluations
    if args.iterations and trainer.iteration >= args.iterations:
        left = 0  # a resumed run that already ran its --iterations
    out.mkdir(parents=True, exist_ok=True)
    resumed_at = trainer.iteration if args.resume else None
    logger = _Logger(out, args.budget, trainer.evaluations, args.quiet, resumed_at)
    since_save = 0
    every = args.snapshot_every
    next_snapshot = (trainer.evaluations // every + 1) * every if every else 0

    def callback(stats: IterationStats) -> bool:
        nonlocal since_save, next_snapshot
        logger(stats)
        if every and trainer.evaluations >= next_snapshot:
            snapshot = out / "snapshots" / f"policy-{trainer.evaluations}.pt"
            save_checkpoint(
                snapshot,
                policy_state(trainer.state_dict(), trained_on["trained_on"], pretrained),
            )
            next_snapshot = (trainer.evaluations // every + 1) * every
        since_save += 1
        if since_save >= args.save_every:
            save_checkpoint(ckpt_path, {**trainer.state_dict(), **trained_on, **pretrained})
            save_best(out / "best.npz", trainer)
            since_save = 0
        return bool(args.iterations) and trainer.iteration >= args.iterations

    try:
        if left > 0:
            trainer.train(envs, left, callback=callback)
    finally:  # an interrupted run keeps what it found
        state = trainer.state_dict()
        save_checkpoint(ckpt_path, {**state, **trained_on, **pretrained})
        save_checkpoint(
            out / "policy.pt", policy_state(state, trained_on["trained_on"], pretrained)
        )
        save_best(out / "best.npz", trainer)
        logger.close()
    for rec in trainer.records.values():
        print(f"{rec.name}: best {rec.best_time * 1e3:.3f} ms after {rec.evaluations} evaluations")
    print(f"checkpoint: {ckpt_path}; the policy alone (for go-zeroshot): {out / 'policy.pt'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m agents.go.train``."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.go.train", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
