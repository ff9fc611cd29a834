"""Where cells run: in this process, in local worker processes, or on a Ray cluster.

Every executor runs `go_gym.runner.cells.run_cell_safely` on each cell and hands each outcome
back to the driver as soon as it is done; only the driver writes files. That keeps the write
path (atomic, one file per cell) in one place and lets Ray workers run on machines that do
not share the results directory.

Workers run one cell at a time on one thread: torch and numba are set to one thread each, so
``--workers N`` uses N cores and the batch simulator (`simulate_many`) does not oversubscribe
them. Ray is optional (the ``dist`` extra) and imported only when asked for.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from go_gym.runner.cells import Cell, CellFailure, CellOutcome, run_cell_safely

__all__ = ["EXECUTORS", "default_workers", "run_local", "run_ray", "run_serial"]

Outcome = CellOutcome | CellFailure


def default_workers() -> int:
    """Local worker processes by default: ``min(2, cores available to this process)``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def single_thread() -> None:
    """Make this worker process use one thread for torch and numba (see module docstring)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    import numba

    numba.set_num_threads(1)


def run_serial(cells: Sequence[Cell], **_: object) -> Iterator[Outcome]:
    """Run the cells one after the other in this process (``--workers 1``; debugging)."""
    for cell in cells:
        yield run_cell_safely(cell)


def _worker_cell(cell: Cell) -> Outcome:
    return run_cell_safely(cell)


def run_local(
    cells: Sequence[Cell], *, workers: int | None = None, **_: object
) -> Iterator[Outcome]:
    """Run the cells in ``workers`` spawned processes, yielding outcomes as they finish.

    ``spawn`` (not ``fork``) because torch and numba threads do not survive a fork safely.
    Few cells are in flight at a time (two per worker), so on Ctrl-C or an error the pool is
    shut down promptly and the cells not yet started are simply not run.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        yield from run_serial(cells)
        return
    context = multiprocessing.get_context("spawn")
    pending = list(reversed(cells))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=single_thread) as pool:
        running: set[Future[Outcome]] = set()
        try:
            while pending or running:
                while pending and len(running) < 2 * workers:
                    running.add(pool.submit(_worker_cell, pending.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in running:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)


def run_ray(
    cells: Sequence[Cell],
    *,
    workers: int | None = None,
    address: str | None = None,
    **_: object,
) -> Iterator[Outcome]:
    """Run the cells as Ray tasks (one CPU each), yielding outcomes as they finish.

    Connects to ``address`` (an existing cluster, e.g. ``"auto"`` or ``"ray://host:10001"``)
    or starts a local Ray instance with ``workers`` CPUs. Workers must be able to import
    go_gym and the agents (install the package on every node, or use a Ray runtime env).
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "--executor ray needs Ray: pip install 'go_gym[dist]' (or pip install ray)"
        ) from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=default_workers() if workers is None else workers, log_to_driver=False
            )
        started = True

    @ray.remote(num_cpus=1)
    def remote_cell(cell: Cell) -> Outcome:
        single_thread()
        return run_cell_safely(cell)

    running: list = []
    try:
        running = [remote_cell.remote(cell) for cell in cells]
        while running:
            done, running = ray.wait(running, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        for ref in running:  # left over only on Ctrl-C or an error
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


#: ``--executor`` name -> function ``(cells, workers=, address=) -> iterator of outcomes``.
EXECUTORS: dict[str, Callable[..., Iterator[Outcome]]] = {
    "local": run_local,
    "serial": run_serial,
    "ray": run_ray,
}
