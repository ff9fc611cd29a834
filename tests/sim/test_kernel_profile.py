"""The callgrind reader of `benchmarks/kernel_profile.py` (the profile itself needs valgrind)."""

from __future__ import annotations

from pathlib import Path

from tests.benchmark_scripts import load_benchmark

CALLGRIND = """\
version: 1
creator: callgrind-3.22.0
positions: instr line
events: Ir Bc Bcm Bi Bim
summary: 100

ob=(1) ???
fl=(1) ???
fn=(1) 0x0000000000001000
0x1000 0 3
+4 * 2 1 1
+2 * 5 5 2
calls=1 0x9000 0
* * 1000 0 0
* * 1
-6 * 4
fn=(2) elsewhere
0x2000 0 7 7 7
"""


def test_callgrind_costs_follows_relative_positions_and_skips_call_costs(tmp_path: Path) -> None:
    """Absolute, relative (+n / -n) and repeated (*) addresses; the line after ``calls=`` is
    a call's inclusive cost and must not count; addresses outside the range are dropped."""
    kp = load_benchmark("kernel_profile")
    out = tmp_path / "cg.out"
    out.write_text(CALLGRIND)
    costs = kp.callgrind_costs(out, 0x1000, 0x1100)
    assert costs == {
        0x1000: [3 + 4, 0, 0],  # "0x1000" and the "-6" back to it
        0x1004: [2, 1, 1],
        0x1006: [5 + 1, 5, 2],  # the "calls=" cost line in between is skipped
    }
