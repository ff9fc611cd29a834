"""Model definitions of the GO paper's benchmark, in plain ``torch.nn``.

Every family module exposes ``build(**kwargs) -> ModelSpec``. A :class:`ModelSpec` holds the
module (in training mode), :class:`TensorSpec` shapes and dtypes of the model inputs and the
loss targets, and a pure ``loss_fn(outputs, *targets) -> scalar``; one training step is
``spec.loss_fn(spec.model(*inputs), *targets)`` then backward (:meth:`ModelSpec.step_loss`).

Building without memory: pass ``device="meta"`` to any builder; parameters and
``spec.example_inputs()`` are then ``meta`` tensors, which ``make_fx(...,
tracing_mode="fake")`` accepts. Real tensors (``spec.make_inputs()``, ``spec.make_targets()``)
are only sensible for the small :data:`QUICK_CONFIGS`.

Tracing contract (checked by ``tests/zoo/test_models.py``): no data-dependent Python control
flow, no in-place updates of inputs; the only mutations are batch-norm running statistics.
Recurrent models are unrolled in Python (one LSTM cell call per layer per time step).

Scope convention: every op is issued inside the ``forward`` of a submodule called through
``__call__``, so ``make_fx(..., record_module_stack=True)`` gives it a module path. Repeated
blocks live in an ``nn.ModuleList`` named ``layers`` or ``cells``; the FIRST purely numeric
component of the dotted path is the layer index (:func:`layer_index`):
``encoder.layers.3.cell.kernel`` -> 3. Embeddings, softmax/heads and stems have no index.
GNMT numbers encoder and decoder layers separately (``encoder.layers.i`` and
``decoder.layers.i`` share index ``i``, the usual layer-per-GPU pairing); WaveNet numbers its
layers across stacks; Inception-v3's ``layers.i`` are its TF-slim blocks in order
(``inception_v3.LAYER_NAMES``).

Workloads: :data:`PAPER_CONFIGS` maps the 14 ids of the GO paper's placement table to
``(family, kwargs)``; :data:`QUICK_CONFIGS` maps small variants (each under ~3,000 aten ops
for forward + backward) used by tests and quick runs; :data:`QUICK_TRAIN_CONFIGS` other sizes
of those, for pre-training. :func:`build_workload` builds any of them.
Hyper-parameters, sources and deviations: ``docs/zoo_models.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from go_gym.zoo.models import amoebanet, gnmt, inception_v3, rnnlm, transformer_xl, wavenet
from go_gym.zoo.models.spec import ModelSpec, TensorSpec, layer_index

__all__ = [
    "MODELS",
    "PAPER_CONFIGS",
    "QUICK_CONFIGS",
    "QUICK_TRAIN_CONFIGS",
    "ModelSpec",
    "TensorSpec",
    "build_workload",
    "layer_index",
]

MODELS: dict[str, Callable[..., ModelSpec]] = {
    "rnnlm": rnnlm.build,
    "gnmt": gnmt.build,
    "transformer_xl": transformer_xl.build,
    "inception_v3": inception_v3.build,
    "amoebanet": amoebanet.build,
    "wavenet": wavenet.build,
}

#: The GO paper's placement benchmark (Zhou et al. 2020, Table 1): id -> (family, kwargs).
#: Builders' defaults are the published configurations; only what differs is spelled out.
PAPER_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnnlm-2": ("rnnlm", {"n_layers": 2}),
    "rnnlm-4": ("rnnlm", {"n_layers": 4}),
    "rnnlm-8": ("rnnlm", {"n_layers": 8}),
    "gnmt-2": ("gnmt", {"n_layers": 2}),
    "gnmt-4": ("gnmt", {"n_layers": 4}),
    "gnmt-8": ("gnmt", {"n_layers": 8}),
    "transformer-xl-2": ("transformer_xl", {"n_layers": 2}),
    "transformer-xl-4": ("transformer_xl", {"n_layers": 4}),
    "transformer-xl-8": ("transformer_xl", {"n_layers": 8}),
    "inception-v3-b32": ("inception_v3", {"batch_size": 32}),
    "inception-v3-b64": ("inception_v3", {"batch_size": 64}),
    "amoebanet": ("amoebanet", {}),
    "wavenet-2x18": ("wavenet", {"n_stacks": 2, "n_layers": 18}),
    "wavenet-4x36": ("wavenet", {"n_stacks": 4, "n_layers": 36}),
}

#: Small variants with the same structure (every block type present) for tests and demos.
QUICK_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnnlm-quick": (
        "rnnlm",
        {"n_layers": 2, "batch_size": 4, "seq_len": 8, "hidden_size": 32, "vocab_size": 100},
    ),
    "gnmt-quick": (
        "gnmt",
        {
            "n_layers": 3,
            "batch_size": 4,
            "src_len": 5,
            "tgt_len": 5,
            "hidden_size": 32,
            "vocab_size": 100,
        },
    ),
    "transformer-xl-quick": (
        "transformer_xl",
        {
            "n_layers": 2,
            "batch_size": 2,
            "tgt_len": 16,
            "mem_len": 16,
            "d_model": 32,
            "n_head": 4,
            "d_head": 8,
            "d_inner": 64,
            "vocab_size": 50,
        },
    ),
    "inception-v3-quick": (
        "inception_v3",
        {"batch_size": 2, "image_size": 75, "num_classes": 10, "aux_logits": False},
    ),
    "amoebanet-quick": (
        "amoebanet",
        {"n_normal": 1, "filters": 8, "batch_size": 2, "image_size": 64, "num_classes": 10},
    ),
    "wavenet-quick": (
        "wavenet",
        {
            "n_stacks": 2,
            "n_layers": 6,
            "batch_size": 2,
            "seq_len": 64,
            "residual_channels": 8,
            "dilation_channels": 8,
            "skip_channels": 16,
        },
    ),
}


def _quick_variant(base: str, **changes: Any) -> tuple[str, dict[str, Any]]:
    family, kwargs = QUICK_CONFIGS[base]
    return family, {**kwargs, **changes}


#: Other sizes of the quick workloads (depth, batch, width), two per family: a training split
#: for transfer to ``quick-v0``, the way go-paper-v0's transfer split trains on
#: transformer-xl-2 and holds out transformer-xl-4. None of them is a ``quick-v0`` graph.
QUICK_TRAIN_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnnlm-quick-1": _quick_variant("rnnlm-quick", n_layers=1),
    "rnnlm-quick-3": _quick_variant("rnnlm-quick", n_layers=3),
    "gnmt-quick-2": _quick_variant("gnmt-quick", n_layers=2),
    "gnmt-quick-4": _quick_variant("gnmt-quick", n_layers=4),
    "transformer-xl-quick-1": _quick_variant("transformer-xl-quick", n_layers=1),
    "transformer-xl-quick-3": _quick_variant("transformer-xl-quick", n_layers=3),
    "inception-v3-quick-b3": _quick_variant("inception-v3-quick", batch_size=3),
    "inception-v3-quick-b4": _quick_variant("inception-v3-quick", batch_size=4),
    "amoebanet-quick-n2": _quick_variant("amoebanet-quick", n_normal=2),
    "amoebanet-quick-f16": _quick_variant("amoebanet-quick", filters=16),
    "wavenet-quick-1x6": _quick_variant("wavenet-quick", n_stacks=1),
    "wavenet-quick-3x9": _quick_variant("wavenet-quick", n_stacks=3, n_layers=9),
}

_ALL_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    **PAPER_CONFIGS,
    **QUICK_CONFIGS,
    **QUICK_TRAIN_CONFIGS,
}


def build_workload(workload_id: str, device: torch.device | str = "cpu") -> ModelSpec:
    """Build a workload of :data:`PAPER_CONFIGS`, :data:`QUICK_CONFIGS` or
    :data:`QUICK_TRAIN_CONFIGS` by id.

    Args:
        workload_id: E.g. ``"gnmt-8"`` or ``"wavenet-quick"``.
        device: Passed to the builder; ``"meta"`` for the full-size paper workloads.

    Raises:
        KeyError: Unknown id; the message lists the known ones.
    """
    if workload_id not in _ALL_CONFIGS:
        raise KeyError(f"unknown workload id {workload_id!r}; known: {', '.join(_ALL_CONFIGS)}")
    family, kwargs = _ALL_CONFIGS[workload_id]
    return MODELS[family](**kwargs, device=device)
