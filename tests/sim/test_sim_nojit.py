"""The kernels run as plain Python too (``NUMBA_DISABLE_JIT=1``), so coverage sees inside.

A subprocess with the JIT disabled simulates a few tiny cases and checks them against the
twin; it costs a couple of seconds and no compilation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import numpy as np
from tests.sim.reference import reference_simulate
from tests.sim.sim_cases import random_case
from go_gym.sim import simulate, simulate_many
checked = 0
for seed in (3, 7, 12):
    case = random_case(seed)
    for profile in ("go", "placeto"):
        kw = dict(case, priority=None) if profile == "placeto" else case
        got = simulate(**kw, profile=profile)
        ref = reference_simulate(**kw, profile=profile)
        assert got.step_time == ref.step_time, (seed, profile)
        assert got.peak_memory.tolist() == ref.peak_memory, (seed, profile)
        many = simulate_many(case["graph"], case["cluster"], np.stack([case["placement"]] * 2), profile=profile)
        checked += 1
print("checked", checked)
"""


def test_kernels_without_jit() -> None:
    here = Path(__file__).resolve().parent
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    # The repository root, so the script can import the twin as `tests.sim.reference`.
    env["PYTHONPATH"] = os.pathsep.join([str(here.parents[1]), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "checked 6" in out.stdout
