"""Suites: ids, entries, stored graphs load, rebuild reproduces what ships."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind
from go_gym.zoo.suites import (
    SUITES,
    get_entry,
    get_graph,
    graph_path,
    list_graphs,
    list_suites,
)

#: The GO paper's placement table: workload -> number of GPUs.
PAPER_DEVICES = {
    "rnnlm-2": 2,
    "rnnlm-4": 4,
    "rnnlm-8": 8,
    "gnmt-2": 2,
    "gnmt-4": 4,
    "gnmt-8": 8,
    "transformer-xl-2": 2,
    "transformer-xl-4": 4,
    "transformer-xl-8": 8,
    "inception-v3-b32": 2,
    "inception-v3-b64": 2,
    "amoebanet": 4,
    "wavenet-2x18": 2,
    "wavenet-4x36": 4,
}


def test_suites_and_ids() -> None:
    assert list_suites() == ["go-paper-v0", "quick-v0", "quick-train-v0", "synthetic-v0"]
    paper = list_graphs("go-paper-v0")
    assert paper == [f"go-paper-v0/{name}" for name in PAPER_DEVICES]
    for name, devices in PAPER_DEVICES.items():
        entry = get_entry(f"go-paper-v0/{name}")
        assert entry.n_devices == devices
        assert entry.cluster == "p100"
        cluster = entry.make_cluster()
        assert isinstance(cluster, Cluster) and cluster.n_devices == devices
    assert len(list_graphs("quick-v0")) == 6
    assert len(list_graphs("quick-train-v0")) == 12
    assert len(list_graphs()) == sum(len(v) for v in SUITES.values())
    assert len(set(list_graphs())) == len(list_graphs())


def test_unknown_ids_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="go-paper-v0/gnmt-8"):
        get_entry("go-paper-v0/gnmt-16")
    with pytest.raises(KeyError, match="known suites"):
        get_graph("nope-v0/gnmt-8")
    with pytest.raises(KeyError, match="known suites"):
        list_graphs("go-paper-v1")


@pytest.mark.parametrize("graph_id", list_graphs("quick-v0") + list_graphs("quick-train-v0"))
def test_quick_graphs_load(graph_id: str) -> None:
    g = get_graph(graph_id)
    assert isinstance(g, OpGraph) and g.name == graph_id
    assert g.n_ops < 3000
    assert get_graph(graph_id) is g  # cached
    kinds = set(g.op_kind.tolist())
    assert {OpKind.PARAMETER, OpKind.INPUT, OpKind.OPTIMIZER, OpKind.LOSS} <= kinds
    assert (g.layer >= 0).mean() > 0.99
    assert g.flops.sum() > 0 and g.persistent_bytes.sum() > 0


@pytest.mark.parametrize("graph_id", list_graphs("go-paper-v0"))
def test_paper_graphs_load(graph_id: str) -> None:
    if not graph_path(graph_id).is_file():
        pytest.skip(f"{graph_id} not built yet")
    g = get_graph(graph_id)
    assert g.name == graph_id
    assert (g.layer >= 0).all() and g.flops.sum() > 1e11
    assert (g.op_kind == OpKind.OPTIMIZER).sum() == (g.op_kind == OpKind.PARAMETER).sum()


def test_quick_train_split_holds_out_every_quick_graph() -> None:
    """Pre-training on quick-train-v0 never sees a quick-v0 graph: no graph is shared."""
    train = {get_graph(g).checksum(): g for g in list_graphs("quick-train-v0")}
    assert len(train) == 12  # twelve different graphs
    for gid in list_graphs("quick-v0"):
        assert get_graph(gid).checksum() not in train, gid
        assert get_entry(gid).n_devices == 2
    assert all(get_entry(g).n_devices == 2 for g in list_graphs("quick-train-v0"))


def test_synthetic_graphs_are_deterministic() -> None:
    from go_gym.generators import random_layered_graph

    small = [
        g for g in list_graphs("synthetic-v0") if get_entry(g).generator_kwargs["n_ops"] <= 2000
    ]
    for gid in small:
        entry = get_entry(gid)
        g = get_graph(gid)
        assert g.n_ops == entry.generator_kwargs["n_ops"]
        assert g == random_layered_graph(**entry.generator_kwargs)
    with pytest.raises(ValueError, match="generated"):
        graph_path(small[0])


@pytest.mark.parametrize(("suite", "n_graphs"), [("quick-v0", 6), ("quick-train-v0", 12)])
def test_quick_suite_rebuild_is_identical(suite: str, n_graphs: int) -> None:
    pytest.importorskip("torch")
    from go_gym.zoo.build import check_suite

    results = check_suite(suite)
    assert len(results) == n_graphs
    bad = [f"{r.graph_id}: {r.message}" for r in results if not r.ok]
    assert not bad, bad


def test_table_has_a_row_per_graph() -> None:
    pytest.importorskip("go_gym.sim")
    from go_gym.zoo.build import suite_table

    table = suite_table("quick-v0").splitlines()
    assert len(table) == 2 + 6
    assert all(row.count("|") == 11 for row in table)
    assert "quick-v0/gnmt-3" in table[3]
    # the single-device step time column is a positive number on every row
    times = [float(row.split("|")[9]) for row in table[2:]]
    assert all(np.isfinite(t) and t > 0 for t in times)
