"""Forward time and peak memory of the GO policy at 1k, 10k and the largest zoo graph.

    .venv/bin/python benchmarks/go_agent.py
    .venv/bin/python benchmarks/go_agent.py --graphs go-paper-v0/gnmt-8 --threads 2
    .venv/bin/python benchmarks/go_agent.py --graphs synthetic-v0/layered-80k-s0  # scale
    .venv/bin/python benchmarks/go_agent.py --device cuda  # on a GPU

Each graph is measured in a fresh child process so its peak resident memory (``ru_maxrss``)
is its own: the figure printed is the peak of the whole process (Python, torch, the graph,
the simulator) minus the process's size before the network first ran. Times are the median
of ``--repeats`` runs after one warm-up: ``fwd`` is one forward pass without gradient (what
sampling K decisions costs), ``fwd+bwd`` one forward with gradient plus the backward of a
PPO-like loss (what one update epoch costs). ``--tasks`` picks the networks: ``placement``,
``priority`` and ``fusion`` time one task's network on its env (GOPlacement-v0,
GOScheduling-v0, GOFusion-v0), ``joint`` the three-pass network on GOJoint-v0 (the default
is ``placement,joint``). With ``--device cuda`` the network and the graph's tensors are on
the GPU, every timing waits for the GPU to finish (``torch.cuda.synchronize``), and the
memory figure is the GPU's peak allocation instead (``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from go_gym.cli import at_least

DEFAULT = "synthetic:1000,synthetic:10000,go-paper-v0/gnmt-8"
#: What ``--tasks`` may name: one task's network and its env, or the joint network's.
ENV_IDS = {
    "placement": "GOPlacement-v0",
    "priority": "GOScheduling-v0",
    "fusion": "GOFusion-v0",
    "joint": "GOJoint-v0",
}


def _tasks(text: str) -> list[str]:
    """``--tasks``: comma-separated names of `ENV_IDS`."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in ENV_IDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown tasks {unknown}; choose from {', '.join(ENV_IDS)}"
            if unknown
            else f"no task given; choose from {', '.join(ENV_IDS)}"
        )
    return names


def _costs_nothing(n_ops: int) -> bool:
    """Whether the synthetic graph of ``n_ops`` ops takes no time (the envs refuse it)."""
    from go_gym.cluster import Cluster
    from go_gym.generators import random_layered_graph
    from go_gym.sim import lower_bound

    return lower_bound(random_layered_graph(n_ops, seed=0), Cluster.preset("p100", 4)) <= 0


def _graphs(text: str) -> list[str]:
    """``--graphs``: comma-separated ``synthetic:N`` (N >= 1) or zoo graph ids."""
    from go_gym.zoo.suites import get_entry

    specs = [g.strip() for g in text.split(",") if g.strip()]
    if not specs:
        raise argparse.ArgumentTypeError("no graph given")
    for spec in specs:
        if spec.startswith("synthetic:"):
            size = spec.split(":", 1)[1]
            if not size.isdigit() or int(size) < 1:
                raise argparse.ArgumentTypeError(
                    f"{spec!r}: synthetic:N needs a whole number of ops N >= 1"
                )
            if int(size) <= 1000 and _costs_nothing(int(size)):  # larger ones are slow to build
                raise argparse.ArgumentTypeError(
                    f"{spec!r}: a synthetic graph this small is inputs only and takes no time"
                )
        else:
            try:
                get_entry(spec)
            except KeyError as exc:
                raise argparse.ArgumentTypeError(str(exc.args[0])) from None
    return specs


def measure(
    spec: str, tasks: str, repeats: int, threads: int, device_name: str
) -> dict[str, float | int | str]:
    """Time and memory of one graph (run inside the child)."""
    import gymnasium as gym
    import torch

    import go_gym  # noqa: F401
    from agents.base import core_env
    from agents.go.model import GOConfig, GOPolicy, count_parameters, prepare
    from agents.go.ppo import torch_device
    from go_gym.generators import random_layered_graph

    torch.set_num_threads(threads)
    device = torch_device(device_name)
    on_gpu = device.type == "cuda"

    def finish() -> None:  # GPU work is asynchronous: wait for it before reading the clock
        if on_gpu:
            torch.cuda.synchronize(device)

    env_id = ENV_IDS[tasks]
    if spec.startswith("synthetic:"):
        graph = random_layered_graph(int(spec.split(":")[1]), seed=0)
        env = gym.make(env_id, graph=graph, cluster="p100", n_devices=4)
    else:
        env = gym.make(env_id, graph=spec)
    obs, _ = env.reset(seed=0)
    core = core_env(env)
    t0 = time.perf_counter()
    inp = prepare(obs, core.graph.topo_order, device)
    finish()
    prep = time.perf_counter() - t0
    task_tuple = ("placement", "priority", "fusion") if tasks == "joint" else (tasks,)
    torch.manual_seed(0)
    policy = GOPolicy(GOConfig(tasks=task_tuple)).to(device)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if on_gpu:
        finish()
        gpu_base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    fwd, both = [], []
    for i in range(repeats + 1):
        t = time.perf_counter()
        with torch.no_grad():
            policy(inp)
        finish()
        if i:
            fwd.append(time.perf_counter() - t)
    for i in range(repeats + 1):
        t = time.perf_counter()
        out = policy(inp)
        loss = sum(lg.log_softmax(-1)[:, 0].mean() for lg in out.values())
        loss.backward()
        policy.zero_grad(set_to_none=True)
        finish()
        if i:
            both.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    extra_mb = (peak - base) / 1024  # ru_maxrss is in KiB on Linux
    if on_gpu:
        extra_mb = (torch.cuda.max_memory_allocated(device) - gpu_base) / 2**20
    return {
        "graph": spec,
        "tasks": tasks,
        "ops": int(inp.n),
        "params": count_parameters(policy),
        "prepare_s": prep,
        "fwd_s": statistics.median(fwd),
        "fwd_bwd_s": statistics.median(both),
        "peak_mb": extra_mb,
        "total_peak_mb": peak / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graphs", default=DEFAULT, help="synthetic:N or graph ids, comma-sep")
    parser.add_argument(
        "--tasks",
        type=_tasks,
        default="placement,joint",
        help=f"comma-separated, of {', '.join(ENV_IDS)} (default placement,joint)",
    )
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec, tasks = args.child.split("|")
        print(json.dumps(measure(spec, tasks, args.repeats, args.threads, args.device)))
        return
    try:  # checked here, not in each child (building a graph would add to its memory)
        graphs = _graphs(args.graphs)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument --graphs: {exc}")
    from agents.go.ppo import torch_device

    try:  # a missing GPU fails here, once, not on every row
        device = str(torch_device(args.device))
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"# GO policy on {device}, torch threads={args.threads}, median of {args.repeats}"
        + ("; +peak MB is GPU memory" if device.startswith("cuda") else "")
    )
    print(
        f"{'graph':28s} {'tasks':9s} {'ops':>6s} {'params':>7s} {'prep s':>7s} "
        f"{'fwd s':>7s} {'fwd+bwd s':>9s} {'+peak MB':>9s} {'RSS MB':>7s}"
    )
    for spec in graphs:
        for tasks in args.tasks:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                f"{spec}|{tasks}",
                "--repeats",
                str(args.repeats),
                "--threads",
                str(args.threads),
                "--device",
                device,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"{spec:28s} {tasks:9s} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{r['graph']:28s} {r['tasks']:9s} {r['ops']:6d} {r['params']:7d} "
                f"{r['prepare_s']:7.3f} {r['fwd_s']:7.3f} {r['fwd_bwd_s']:9.3f} "
                f"{r['peak_mb']:9.0f} {r['total_peak_mb']:7.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
