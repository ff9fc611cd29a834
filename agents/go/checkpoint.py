"""Saving and loading GO checkpoints safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts written by
``torch.save`` (the trainer's `PPOTrainer.state_dict`: model and PPO configs, weights,
optimiser and RNG state, counters, and the best decision found per graph). It is read back
with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects, so loading
a checkpoint from elsewhere cannot run code. Writes go to a temporary file that is then
renamed over the target, so an interrupted save never leaves a truncated checkpoint.
"""

from __future__ import annotations

import os
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


def policy_state(state: dict[str, Any], trained_on: list[str]) -> dict[str, Any]:
    """The shippable part of a `PPOTrainer.state_dict`, with the names of the graphs it was
    trained on (so a held-out claim can be checked against the file itself)."""
    return {**{k: state[k] for k in POLICY_KEYS}, "trained_on": list(trained_on)}


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (a `PPOTrainer.state_dict`, maybe with extra plain entries) atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
    os.replace(tmp, target)
    return target


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code runs); clear errors otherwise."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no GO checkpoint at {source}")
    state = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise ValueError(f"{source} is not a GO checkpoint (no model or model_config entry)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{source} has checkpoint format {state['format_version']}; this code reads "
            f"up to {FORMAT_VERSION}"
        )
    return state


def policy_from_checkpoint(path: str | os.PathLike[str]) -> GOPolicy:
    """The policy stored in a checkpoint, in eval mode."""
    state = load_checkpoint(path)
    policy = GOPolicy(GOConfig.from_dict(state["model_config"]))
    policy.load_state_dict(state["model"])
    return policy.eval()
