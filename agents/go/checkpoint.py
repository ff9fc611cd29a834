"""Saving and loading GO checkpoints safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts written by
``torch.save`` (the trainer's `PPOTrainer.state_dict`: model and PPO configs, weights,
optimiser and RNG state, counters, and the best decision found per graph). It is read back
with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects, so loading
a checkpoint from elsewhere cannot run code. Writes go to a temporary file that is then
renamed over the target, so an interrupted save never leaves a truncated checkpoint.

Every save also stores ``checksum``, a SHA-256 of the weights (`weights_checksum`), which
`load_checkpoint` verifies when it is present (files written before it was kept have none,
the shipped ones among them): bytes changed inside the file's tensor data would otherwise
load silently as other weights. A file that is not a readable GO checkpoint (text, empty,
truncated, pickled objects, weights that do not fit its ``model_config``) is a
``ValueError`` naming the file and what is wrong with it.

A policy fine-tuned from another (``go-gym train --init``) keeps the record of that
pre-training (`pretraining`): ``pretrained_on``, one list of graph names per earlier stage,
the latest first (the ``trained_on`` of the ``--init`` file, then that file's own
``pretrained_on``), and ``pretraining_evaluations``, the evaluations of each stage.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from agents.go.model import GOConfig, GOPolicy

#: The small pre-trained placement policy shipped with the repository (for ``go-zeroshot``):
#: 160,000 evaluations on three quick-v0 graphs and 24 synthetic ones, see
#: ``leaderboard/go/transfer-160k/README.md`` for how it was made and how it transfers. A
#: second, pre-trained on five go-paper-v0 graphs, is ``go-placement-pretrained-go-paper.pt``
#: beside it (``leaderboard/go/transfer-go-paper-48k/README.md``), and a third, pre-trained on
#: the ``quick-train-v0`` split for zero-shot on quick-v0, ``go-placement-pretrained-quick-train.pt``
#: (``leaderboard/go/transfer-quick-train-48k/README.md``).
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "go-placement-pretrained.pt"

FORMAT_VERSION = 1


#: The entries of a trainer's state that a pre-trained policy needs: what ``go-zeroshot`` and
#: ``go`` with ``checkpoint=`` read. The optimiser, RNG and best decisions stay out: they are
#: for resuming, and would triple the file.
POLICY_KEYS = ("model_config", "ppo_config", "model", "iteration", "evaluations", "seed")

#: The entries that record a fine-tuned policy's pre-training (`pretraining`).
PRETRAINING_KEYS = ("pretrained_on", "pretraining_evaluations")


def pretraining(init: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The pre-training record of a run started from the checkpoint ``init`` (``--init``):
    the graphs ``init`` was trained on and its evaluations, then those of its own
    pre-training, if it was fine-tuned too (the latest stage first)."""
    return {
        "pretrained_on": [
            [str(name) for name in init.get("trained_on", [])],
            *([str(name) for name in names] for names in init.get("pretrained_on", [])),
        ],
        "pretraining_evaluations": [
            int(init.get("evaluations", 0)),
            *(int(n) for n in init.get("pretraining_evaluations", [])),
        ],
    }


def policy_state(
    state: dict[str, Any],
    trained_on: list[str],
    pretrained: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The shippable part of a `PPOTrainer.state_dict`, with the names of the graphs it was
    trained on (so a held-out claim can be checked against the file itself) and, for a
    fine-tuned policy, the record of its pre-training (``pretrained``, from `pretraining`)."""
    kept = {k: list(v) for k, v in (pretrained or {}).items() if k in PRETRAINING_KEYS}
    return {**{k: state[k] for k in POLICY_KEYS}, "trained_on": list(trained_on), **kept}


def weights_checksum(model: Mapping[str, Any]) -> str:
    """SHA-256 of a state dict's tensors: the name, dtype, shape and bytes of each, in the
    order of their names (so it does not depend on how the dict was built)."""
    h = hashlib.sha256()
    for name in sorted(model):
        tensor = model[name]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"weight {name!r} is a {type(tensor).__name__}, not a tensor")
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (a `PPOTrainer.state_dict`, maybe with extra plain entries) atomically,
    with the checksum of its weights (a ``checksum`` entry of ``state`` is computed anew)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    body = {k: v for k, v in state.items() if k != "checksum"}
    if isinstance(body.get("model"), Mapping):
        body["checksum"] = weights_checksum(body["model"])
    torch.save({"format_version": FORMAT_VERSION, **body}, tmp)
    os.replace(tmp, target)
    return target


def _unreadable(exc: BaseException) -> str:
    """What a failed ``torch.load`` says about the file, in a line (not torch's advice to
    load it with ``weights_only=False``, which would run the code it holds)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        return (
            "it holds pickled Python objects (a whole nn.Module?), not a dict of tensors and "
            "plain values; a GO checkpoint needs no code to load, so this file is refused"
        )
    lines = text.strip().splitlines()
    return (
        "it is truncated or corrupted (torch cannot read it: "
        f"{type(exc).__name__}: {lines[0][:160] if lines else ''})"
    )


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code runs) and verify the checksum of
    its weights when it has one.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: naming the file, for one that is not a readable GO checkpoint (text,
            empty, truncated, pickled objects, no model or model_config, weights that are
            not tensors, a model_config with unknown or invalid fields), one whose weights do
            not match their checksum (corrupted), or one of a newer format.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no GO checkpoint at {source}")
    with source.open("rb") as file:
        head = file.read(8)
    if not head:
        raise ValueError(f"{source} is not a readable GO checkpoint: the file is empty")
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # a zip archive, a legacy pickle
        raise ValueError(
            f"{source} is not a readable GO checkpoint: not a torch checkpoint (it starts "
            f"with {head!r}, neither a zip archive nor a pickle: text or another format?)"
        )
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # torch raises whatever its reader met: EOFError, KeyError...
        raise ValueError(f"{source} is not a readable GO checkpoint: {_unreadable(exc)}") from None
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise ValueError(f"{source} is not a GO checkpoint (no model or model_config entry)")
    version = state.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{source} has a format_version that is no integer: {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{source} has checkpoint format {version}; this code reads up to {FORMAT_VERSION}"
        )
    model = state["model"]
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise ValueError(f"{source} is not a GO checkpoint (its model is not a dict of tensors)")
    try:
        GOConfig.from_dict(state["model_config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source} has an invalid model_config: {exc}") from None
    if "checksum" in state and state["checksum"] != weights_checksum(model):
        raise ValueError(
            f"{source} is corrupted: its weights do not match the checksum saved with them"
        )
    return state


def load_weights(policy: GOPolicy, state: Mapping[str, Any], source: object) -> None:
    """Load ``state["model"]`` (read from the checkpoint ``source``) into ``policy``; a
    ``ValueError`` naming the file and the weights that do not fit the network otherwise."""
    model = state["model"]
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(model))
    unexpected = sorted(set(model) - set(expected))
    shapes = sorted(
        k for k in set(expected) & set(model) if tuple(expected[k].shape) != tuple(model[k].shape)
    )
    if missing or unexpected or shapes:
        parts = [
            f"{len(names)} {what} (e.g. {names[:3]})"
            for names, what in (
                (missing, "missing"),
                (unexpected, "unexpected"),
                (shapes, "of another shape"),
            )
            if names
        ]
        raise ValueError(
            f"{source}: its weights do not fit the network its model_config describes: "
            + ", ".join(parts)
        )
    policy.load_state_dict(model)


def policy_from_checkpoint(path: str | os.PathLike[str]) -> GOPolicy:
    """The policy stored in a checkpoint, in eval mode."""
    state = load_checkpoint(path)
    policy = GOPolicy(GOConfig.from_dict(state["model_config"]))
    load_weights(policy, state, path)
    return policy.eval()
