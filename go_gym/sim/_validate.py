"""Input checks shared by `simulate`, `simulate_many` and `fuse`.

Each check converts once (to contiguous int64 / float64 arrays) and raises a `ValueError`
that names the offending entry, so kernels never see bad input.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph

PROFILES = ("go", "placeto")


def check_graph_cluster(graph: Any, cluster: Any) -> None:
    """The graph must be an `OpGraph` and the cluster a `Cluster`."""
    if not isinstance(graph, OpGraph):
        raise ValueError(f"graph must be a go_gym OpGraph, got {type(graph).__name__}")
    if not isinstance(cluster, Cluster):
        raise ValueError(f"cluster must be a go_gym Cluster, got {type(cluster).__name__}")


def check_profile(profile: Any) -> str:
    """The profile name, lower-cased; one of `PROFILES`."""
    key = str(profile).lower() if isinstance(profile, str) else None
    if key not in PROFILES:
        raise ValueError(f"unknown simulation profile {profile!r}; known profiles: {PROFILES}")
    return key


def _numeric(name: str, value: Any, ndim: int) -> NDArray[Any]:
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        shape = "one number per op" if ndim == 1 else "rows of equal length"
        raise ValueError(
            f"{name} must be a {ndim}-dimensional array of numbers ({shape}): {exc}"
        ) from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numbers, got {arr.dtype} values") from None
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "b":  # True is not device 1, priority 1 or decision 1
            raise ValueError(
                f"{name} must hold integers, got booleans (convert them, e.g. .astype(int))"
            )
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    return arr


def _integral(name: str, arr: NDArray[Any], *, what: str) -> NDArray[np.int64]:
    """Integer values of a numeric array; floats must be finite whole numbers."""
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        idx = np.argwhere(arr > np.iinfo(np.int64).max)[0]
        where = ", ".join(str(int(i)) for i in idx)
        raise ValueError(f"{name}[{where}] = {int(arr[tuple(idx)])} is too large, not {what}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) > 2.0**53)
        if bad.any():
            idx = np.argwhere(bad)[0]
            where = ", ".join(str(int(i)) for i in idx)
            val = arr[tuple(idx)]
            reason = "NaN" if np.isnan(val) else f"{float(val)!r}, not {what}"
            raise ValueError(f"{name}[{where}] is {reason}")
    return arr.astype(np.int64, copy=False)


@numba.njit(cache=True)
def _first_outside(values, n):  # type: ignore[no-untyped-def]
    """Index of the first value outside ``0 .. n-1``, or -1: one pass where NumPy's
    ``min()`` and ``max()`` take two (and most of a small graph's placement check)."""
    for i in range(values.shape[0]):
        if values[i] < 0 or values[i] >= n:
            return i
    return -1


def _where(name: str, idx: Any) -> str:
    return f"{name}[{', '.join(str(int(i)) for i in np.atleast_1d(idx))}]"


def check_placement(
    graph: OpGraph, cluster: Cluster | None, placement: Any, name: str = "placement"
) -> NDArray[np.int64]:
    """(n_ops,) device indices in ``0 .. n_devices-1`` (any range when cluster is None)."""
    return check_placements(graph, cluster, placement, name, ndim=1)


def check_placements(
    graph: OpGraph, cluster: Cluster | None, placement: Any, name: str = "placements", ndim: int = 2
) -> NDArray[np.int64]:
    """Placements of shape (n_ops,) or (K, n_ops) as a contiguous, writable int64 array."""
    arr = _numeric(name, placement, ndim)
    if arr.shape[-1] != graph.n_ops:
        raise ValueError(
            f"{name} has {arr.shape[-1]} entries{' per row' if ndim == 2 else ''}, "
            f"graph {graph.name!r} has {graph.n_ops} ops"
        )
    out = np.ascontiguousarray(_integral(name, arr, what="a device index"))
    if cluster is not None:
        k = cluster.n_devices
        first_bad = _first_outside(out.reshape(-1), k)
        if first_bad >= 0:
            idx = np.unravel_index(first_bad, out.shape)
            raise ValueError(
                f"{_where(name, idx)} = {int(out[idx])} is out of range for a cluster "
                f"of {k} device{'s' if k != 1 else ''} (valid: 0..{k - 1})"
            )
    elif (out < 0).any():
        idx = np.argwhere(out < 0)[0]
        raise ValueError(f"{_where(name, idx)} = {int(out[tuple(idx)])} is negative")
    # The caller's own array when it already fits; copied if read-only, since numba compiles
    # the kernel anew for every read-only/writable combination of its arguments.
    return out if out.flags.writeable else out.copy()


def check_priority(
    graph: OpGraph, priority: Any, name: str = "priority", ndim: int = 1
) -> NDArray[np.float64]:
    """Integer-valued priorities (ints, or floats that are whole numbers) as float64."""
    arr = _numeric(name, priority, ndim)
    if arr.shape[-1] != graph.n_ops:
        raise ValueError(
            f"{name} has {arr.shape[-1]} entries{' per row' if ndim == 2 else ''}, "
            f"graph {graph.name!r} has {graph.n_ops} ops"
        )
    ints = _integral(name, arr, what="an integer")
    return np.ascontiguousarray(ints, dtype=np.float64)


def check_decision(
    graph: OpGraph, decision: Any, name: str = "fusion", ndim: int = 1
) -> NDArray[np.int64]:
    """Fusion decisions: non-negative integers, one per op (0 = do not fuse)."""
    arr = _numeric(name, decision, ndim)
    if arr.shape[-1] != graph.n_ops:
        raise ValueError(
            f"{name} has {arr.shape[-1]} entries{' per row' if ndim == 2 else ''}, "
            f"graph {graph.name!r} has {graph.n_ops} ops"
        )
    ints = _integral(name, arr, what="a non-negative integer")
    if (ints < 0).any():
        idx = np.argwhere(ints < 0)[0]
        raise ValueError(
            f"{_where(name, idx)} = {int(ints[tuple(idx)])} is negative (0 = do not fuse)"
        )
    return np.ascontiguousarray(ints)
