"""The parallel executors: local worker processes, and Ray when it is installed."""

from __future__ import annotations

import pytest

from go_gym.runner import run_bench
from go_gym.runner.executors import default_workers
from go_gym.runner.validate import validate_results


def test_local_worker_processes(tmp_path, make_spec):
    report = run_bench(make_spec(tmp_path, executor="local", workers=2))
    assert (report.finished, report.failures) == (4, [])
    serial = run_bench(make_spec(tmp_path / "serial"))
    # Same cells, same numbers, whichever process ran them.
    assert [r.step_time_s for r in report.rows] == [r.step_time_s for r in serial.rows]
    assert validate_results(tmp_path)[1] == []
    assert 1 <= default_workers() <= 2


def test_ray_on_a_local_instance_with_two_cpus(tmp_path, make_spec):
    ray = pytest.importorskip("ray")
    report = run_bench(make_spec(tmp_path, executor="ray", workers=2))
    assert (report.finished, report.failures) == (4, [])
    assert not ray.is_initialized()  # the run shut down the instance it started
    assert validate_results(tmp_path)[1] == []


def test_ray_missing_is_a_clear_error(tmp_path, make_spec, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RuntimeError, match=r"pip install 'go_gym\[dist\]'"):
        run_bench(make_spec(tmp_path, executor="ray"))
