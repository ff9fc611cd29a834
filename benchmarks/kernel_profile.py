"""Where the simulation kernel spends its instructions and mispredicted branches, per source line.

    python benchmarks/kernel_profile.py [--ops 10000] [--devices 8] [--placement random]

Runs one `simulate_core` call (random layered graph, v100 cluster, no timeline) under
valgrind's callgrind with its branch simulator, and attributes the counts of the kernel's
machine code to the lines of ``go_gym/sim/_kernel.py``, per op: instructions (Ir),
conditional branches (Bc) and mispredicted ones (Bcm). The kernel's time goes to branch
mispredictions about as much as to instructions (each costs 15-20 cycles on a real core), and
this is how the recent kernel changes were found and checked.

How: the kernel is compiled once more with ``debug=True`` (line tables; bounds checks stay
off), its machine code and assembly are saved by the child process under valgrind, and the
two are aligned instruction by instruction (``objdump``) to map callgrind's per-address counts
to the ``.loc`` lines of the assembly. The debug build's code is close to, not identical with,
the cached kernel's (about 3% fewer instructions at 10k ops), and callgrind's predictor is a
simple model of a real one: compare lines and versions, not absolute cycles.
Needs ``valgrind`` and ``objdump`` (binutils); compiling under valgrind takes several minutes.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from go_gym.cli import at_least

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "go_gym" / "sim" / "_kernel.py"
EVENTS = ("Ir", "Bc", "Bcm")


def child(out: Path, n_ops: int, n_devices: int, placement: str) -> None:
    """Compile a debug copy of the kernel, run it once, save its code, assembly and address."""
    import ctypes
    import types

    sys.path.insert(0, str(ROOT))
    from go_gym.cluster import Cluster
    from go_gym.generators import random_layered_graph
    from go_gym.sim import simulator
    from go_gym.sim.units import unfused_units

    source = KERNEL.read_text()
    (out / "kernel.py").write_text(source)  # the lines the counts refer to
    marker = "@numba.njit(cache=True)\ndef simulate_core("
    if marker not in source:
        raise SystemExit(f"{KERNEL} no longer defines simulate_core as expected ({marker!r})")
    source = source.replace(
        marker, "@numba.njit(cache=False, debug=True, boundscheck=False)\ndef simulate_core(", 1
    ).replace("cache=True", "cache=False")
    kernel = types.ModuleType("go_gym_kernel_profile")
    exec(compile(source, str(KERNEL), "exec"), kernel.__dict__)

    graph = random_layered_graph(n_ops, seed=0)
    cluster = Cluster.preset("v100", n_devices)
    rng = np.random.default_rng(0)
    if placement == "random":
        device = rng.integers(0, n_devices, graph.n_ops)
    else:  # contiguous blocks of the topological order
        device = np.empty(graph.n_ops, np.int64)
        device[graph.topo_order] = np.arange(graph.n_ops) * n_devices // graph.n_ops
    units = unfused_units(graph, cluster, "go")
    params = simulator._profile(cluster, "go", False).params
    n_pairs = units.arrays.cons_unit.shape[0]
    untimed = np.empty(0)
    args = (
        *units.arrays,
        np.ascontiguousarray(device, np.int64),
        np.zeros(units.n_units),
        *params,
        untimed,
        untimed,
        np.empty(n_devices),
        np.empty(n_devices),
        np.empty(n_pairs, np.int32),
        np.empty(n_pairs, np.int32),
        np.empty(n_pairs, np.int32),
        untimed,
        untimed,
    )
    kernel.simulate_core(*args)  # compiles, then the one simulation that is counted
    signature = kernel.simulate_core.signatures[0]
    compiled = kernel.simulate_core.overloads[signature]
    address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    wrapper = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_cpython_wrapper_name)
    size = wrapper - address
    if not 0 < size < 1 << 20:
        raise SystemExit("could not find the kernel's code size (wrapper not right after it)")
    (out / "code.bin").write_bytes(ctypes.string_at(address, size))
    (out / "core.s").write_text(kernel.simulate_core.inspect_asm(signature))
    (out / "meta.json").write_text(json.dumps({"address": address, "ops": graph.n_ops}))


def callgrind_costs(path: Path, lo: int, hi: int) -> dict[int, list[int]]:
    """Per instruction address in [lo, hi): the Ir, Bc, Bcm counts of a callgrind output."""
    with path.open(errors="replace") as lines:  # the header only, not the whole output
        events = next(line.split()[1:] for line in lines if line.startswith("events:"))
    index = [events.index(e) for e in EVENTS]
    costs: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    previous = [0, 0]
    skip_next = False  # the line after "calls=" is a call's inclusive cost
    with path.open(errors="replace") as lines:
        for line in lines:
            first = line[:1]
            if first and (first.isdigit() or first in "+-*"):
                fields = line.split()
                position = []
                for i in range(2):  # positions: instr line
                    f = fields[i]
                    if f.startswith("0x"):
                        value = int(f, 16)
                    elif f[0] in "+-":
                        value = previous[i] + int(f)
                    elif f == "*":
                        value = previous[i]
                    else:
                        value = int(f)
                    position.append(value)
                previous = position
                if skip_next:
                    skip_next = False
                    continue
                if lo <= position[0] < hi:
                    values = fields[2:]
                    cost = costs[position[0]]
                    for j, k in enumerate(index):
                        if k < len(values):
                            cost[j] += int(values[k])
            elif line.startswith("calls="):
                skip_next = True
    return costs


def per_line(out: Path) -> tuple[dict[int, list[int]], int]:
    """Callgrind's counts of the kernel's instructions, summed per source line."""
    meta = json.loads((out / "meta.json").read_text())
    address = meta["address"]
    code = (out / "code.bin").read_bytes()
    # The assembly's instructions in order, each with the source line of the last .loc.
    asm = (out / "core.s").read_text().splitlines()
    start = next(i for i, s in enumerate(asm) if re.match(r"^_ZN\w*simulate_core", s))
    instructions: list[tuple[str, int]] = []
    line = 0
    for text in asm[start + 1 :]:
        s = text.strip()
        if text.startswith(".Lfunc_end"):
            break
        if s.startswith(".loc"):
            line = int(s.split()[2])
        elif s and not s.startswith((".", "#")) and not s.endswith(":"):
            instructions.append((s.split()[0], line))
    dump = subprocess.run(
        ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f"--adjust-vma={address:#x}",
         str(out / "code.bin")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    machine = []
    for text in dump.splitlines():
        parts = text.split("\t")
        if len(parts) >= 3 and parts[0].strip().endswith(":"):
            machine.append((int(parts[0].strip()[:-1], 16), parts[2].split()[0]))
    costs = callgrind_costs(out / "cg.out", address, address + len(code))
    lines: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    i = 0
    mismatches = 0
    for addr, mnemonic in machine:
        if i >= len(instructions):
            break
        padding = mnemonic.startswith("nop") or mnemonic in ("cs", "data16", "xchg")
        if padding and not instructions[i][0].startswith("nop"):
            continue  # alignment padding (objdump spells some as prefixes), not in the assembly
        expected = instructions[i][0]
        if mnemonic.rstrip("bwlq") != expected.rstrip("bwlq") and mnemonic[:3] != expected[:3]:
            mismatches += 1  # AT&T spellings differ in places (suffixes, aliases)
        total = lines[instructions[i][1]]
        for j, v in enumerate(costs.get(addr, (0, 0, 0))):
            total[j] += v
        i += 1
    if i < len(instructions) or mismatches > len(instructions) // 100:
        raise SystemExit(
            f"assembly and machine code do not line up ({i} of {len(instructions)} "
            f"instructions matched, {mismatches} spelled differently)"
        )
    return lines, int(meta["ops"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=at_least(1), default=10000)
    ap.add_argument("--devices", type=at_least(1), default=8)
    ap.add_argument("--placement", choices=("random", "block"), default="random")
    ap.add_argument(
        "--top", type=at_least(1), default=25, help="lines shown, by mispredicted branches"
    )
    ap.add_argument("--keep", type=Path, help="keep valgrind's output and the code in this folder")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        child(args.child, args.ops, args.devices, args.placement)
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from go_gym.cluster import Cluster

    try:  # here, not minutes later in the child under valgrind
        Cluster.preset("v100", args.devices)
    except ValueError as exc:
        ap.error(f"--devices: {exc}")
    missing = [tool for tool in ("valgrind", "objdump") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"kernel_profile needs {' and '.join(missing)} (not installed)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) if args.keep is None else args.keep
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
        print(f"callgrind on one simulation ({args.ops} ops, v100 x {args.devices}, "
              f"{args.placement} placement); compiling under valgrind takes minutes...",
              flush=True)  # fmt: skip
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--branch-sim=yes", "--dump-instr=yes",
             f"--callgrind-out-file={out / 'cg.out'}", sys.executable, __file__,
             "--child", str(out), "--ops", str(args.ops), "--devices", str(args.devices),
             "--placement", args.placement],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        lines, n_ops = per_line(out)
        source = (out / "kernel.py").read_text().splitlines()
    total = [sum(v[j] for v in lines.values()) / n_ops for j in range(3)]
    print(f"per op: {total[0]:.0f} instructions, {total[1]:.1f} conditional branches, "
          f"{total[2]:.2f} mispredicted")  # fmt: skip
    print(f"{'line':>5} {'Ir/op':>7} {'Bc/op':>6} {'Bcm/op':>6}  source")
    ranked = sorted(lines.items(), key=lambda kv: -kv[1][2])[: args.top]
    for number, (ir, bc, bcm) in ranked:
        text = source[number - 1].strip()[:70] if 0 < number <= len(source) else "(no line)"
        print(f"{number:5d} {ir / n_ops:7.1f} {bc / n_ops:6.2f} {bcm / n_ops:6.2f}  {text}")


if __name__ == "__main__":
    main()
