"""The Placeto profile: the issue's worked case, exactly, and generated cases vs the twin."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.io import graph_from_json
from go_gym.sim import simulate
from go_gym.sim.units import placeto_device_ranks
from tests.sim.reference import reference_simulate
from tests.sim.sim_cases import placeto_case, placeto_graph


def _us(x: float) -> float:
    return x * 1e6


@pytest.mark.parametrize("build", [graph_from_json, placeto_graph])
def test_worked_case(build) -> None:  # type: ignore[no-untyped-def]
    obj, placement = placeto_case(200, 0, 4)
    g = build(obj)
    assert g.n_edges == 396
    assert g.measured_us is not None and g.measured_us.sum() == 29_912
    c = Cluster.preset("k80", n_devices=4)
    single = simulate(g, c, np.zeros(200, np.int64), profile="placeto")
    assert _us(single.step_time) == pytest.approx(31_052.0, rel=1e-9)
    spread = simulate(g, c, placement, profile="placeto")
    assert _us(spread.step_time) == pytest.approx(12_628.456447, rel=1e-9)


def test_json_and_direct_graphs_agree() -> None:
    obj, placement = placeto_case(300, 3, 5)
    c = Cluster.preset("k80", n_devices=5)
    a = simulate(graph_from_json(obj), c, placement, profile="placeto")
    b = simulate(placeto_graph(obj), c, placement, profile="placeto")
    assert a.step_time == b.step_time
    assert a.peak_memory.tolist() == b.peak_memory.tolist()


def _placements(n: int, n_dev: int, random: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "random": random,
        "single": np.zeros(n, np.int64),
        "block": (np.arange(n) * n_dev) // n,
    }


def _compare(n: int, seed: int, n_dev: int) -> None:
    obj, random = placeto_case(n, seed, n_dev)
    g = graph_from_json(obj)
    c = Cluster.preset("k80", n_devices=n_dev)
    for name, placement in _placements(n, n_dev, random).items():
        got = simulate(g, c, placement, profile="placeto")
        ref = reference_simulate(g, c, placement, profile="placeto")
        where = f"n={n} seed={seed} devices={n_dev} {name}"
        assert got.step_time == ref.step_time, where
        assert got.peak_memory.tolist() == ref.peak_memory, where


@pytest.mark.parametrize(
    ("n", "seed", "n_dev"),
    [(200, 1, 2), (200, 2, 3), (500, 4, 4), (1000, 5, 5), (1000, 6, 8), (2000, 7, 6), (600, 8, 12)],
)
def test_generated_cases_match_reference(n: int, seed: int, n_dev: int) -> None:
    _compare(n, seed, n_dev)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "seed", "n_dev"), [(5000, 11, 4), (10_000, 12, 8), (10_000, 13, 11)])
def test_large_generated_cases_match_reference(n: int, seed: int, n_dev: int) -> None:
    _compare(n, seed, n_dev)


def test_device_names_compare_as_strings() -> None:
    # /device:GPU:10 and /device:GPU:11 sort between GPU:1 and GPU:2.
    assert placeto_device_ranks(12).tolist() == [0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 2, 3]


def test_priority_is_not_part_of_placeto() -> None:
    obj, placement = placeto_case(20, 0, 2)
    g = graph_from_json(obj)
    with pytest.raises(ValueError, match="Placeto"):
        simulate(g, Cluster.preset("k80", 2), placement, priority=np.zeros(20), profile="placeto")


def test_constants_are_the_profile_own() -> None:
    # Only the number of devices matters: another preset with as many devices gives the same.
    obj, placement = placeto_case(300, 9, 4)
    g = graph_from_json(obj)
    a = simulate(g, Cluster.preset("k80", 4), placement, profile="placeto")
    b = simulate(g, Cluster.preset("h100", 4), placement, profile="placeto")
    assert a.step_time == b.step_time
