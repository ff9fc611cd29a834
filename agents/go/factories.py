"""Registry factories of the GO agents, importable without torch (it loads on first use)."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym


def make_go(env: gym.Env, **kwargs: Any) -> Any:
    """``go``: GO-one (PPO on the env's graph), or fine-tuning with ``checkpoint=``."""
    from agents.go.agent import make_go as factory

    return factory(env, **kwargs)


def make_go_zeroshot(
    env: gym.Env, *, checkpoint: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Any:
    """``go-zeroshot``: a pre-trained checkpoint, budget 0, argmax decisions."""
    from agents.go.agent import make_go_zeroshot as factory

    return factory(env, checkpoint=checkpoint, **kwargs)
