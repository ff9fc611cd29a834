"""Rendering of one simulated step: a device-timeline Gantt chart and a text summary.

Only `GraphOptEnv.render` calls this, after a step and off the step path: the chart needs
the full timeline, which the env asks the simulator for only when a frame is wanted.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind
from go_gym.sim import SimResult


def ansi_summary(graph: OpGraph, cluster: Cluster, result: SimResult, bound: float) -> str:
    """A few lines a person reads after a step: time, fit, load and traffic per device."""
    lines = [
        f"{graph.name} on {cluster.name}: step {result.step_time * 1e3:.3f} ms "
        f"({result.step_time / bound:.2f}x the lower bound), "
        f"{'fits in memory' if result.valid else 'OUT OF MEMORY'}, "
        f"{result.bytes_moved / 1e6:.1f} MB moved between devices",
    ]
    for d, name in enumerate(cluster.device_names):
        busy = result.busy_time[d] / result.step_time if result.step_time > 0 else 0.0
        lines.append(
            f"  {name:<16} busy {busy:6.1%}   peak memory {result.peak_memory[d] / 1e9:7.2f} GB"
            f" / {cluster.memory_bytes[d] / 1e9:.0f} GB"
        )
    return "\n".join(lines)


_KIND_COLOURS = {
    OpKind.MATMUL: "#1f77b4",
    OpKind.CONVOLUTION: "#2ca02c",
    OpKind.ATTENTION: "#9467bd",
    OpKind.ELEMENTWISE: "#aec7e8",
    OpKind.NORMALIZATION: "#ff7f0e",
    OpKind.SOFTMAX: "#8c564b",
    OpKind.REDUCTION: "#c49c94",
    OpKind.DATA_MOVEMENT: "#e377c2",
    OpKind.OPTIMIZER: "#d62728",
}


def gantt_rgb(
    graph: OpGraph, cluster: Cluster, result: SimResult, width_px: int = 1200
) -> NDArray[np.uint8]:
    """An RGB image (H, W, 3) of every device's ops and every link's transfers over time."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    timeline = result.timeline
    if timeline is None:
        raise ValueError("gantt_rgb needs a result simulated with timeline=True")
    k = cluster.n_devices
    fig, ax = plt.subplots(figsize=(width_px / 100, 1.6 + 0.55 * 2 * k), dpi=100)
    scale = 1e3  # ms
    # Ops: one lane per device, coloured by the kind of the unit's first member.
    kinds = graph.op_kind[timeline.unit_leader]
    colours = np.array([_KIND_COLOURS.get(OpKind(int(c)), "#7f7f7f") for c in kinds])
    for d in range(k):
        on = timeline.unit_device == d
        starts = timeline.unit_start[on] * scale
        widths = (timeline.unit_end[on] - timeline.unit_start[on]) * scale
        ax.broken_barh(
            list(zip(starts, widths, strict=True)), (2 * d + 1 - 0.4, 0.8), facecolors=colours[on]
        )
    # Transfers: one lane per source device, below its compute lane.
    for d in range(k):
        out = timeline.transfer_src == d
        starts = timeline.transfer_start[out] * scale
        widths = (timeline.transfer_end[out] - timeline.transfer_start[out]) * scale
        ax.broken_barh(
            list(zip(starts, widths, strict=True)), (2 * d - 0.3, 0.6), facecolors="#bcbd22"
        )
    ax.set_yticks(
        [y for d in range(k) for y in (2 * d, 2 * d + 1)],
        [lab for d in range(k) for lab in (f"GPU:{d} sends", f"GPU:{d}")],
    )
    ax.set_xlabel("time (ms)")
    ax.set_xlim(0, max(result.step_time * scale, 1e-9))
    ax.set_title(
        f"{graph.name} on {cluster.name}: {result.step_time * 1e3:.2f} ms"
        + ("" if result.valid else " (OUT OF MEMORY)")
    )
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=c, label=kind.name.lower())
        for kind, c in _KIND_COLOURS.items()
    ]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="#7f7f7f", label="other"))
    handles.append(plt.Rectangle((0, 0), 1, 1, color="#bcbd22", label="transfer"))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.5 / (1 + k)),
        fontsize=7,
        ncol=len(handles),
        frameon=False,
    )
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)  # drawn off screen whatever backend pyplot already uses
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
