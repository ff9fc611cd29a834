"""Front ends that turn models from other frameworks into `OpGraph`s.

`from_torch` lives in `go_gym.importers.torch`, with `TraceError` (what it raises when a
model cannot be traced), `OPTIMIZERS` (the optimizers it traces and the persistent bytes each
parameter owns), `LayerRule` and `default_layer_rule` (how scopes map to layers); all five are
re-exported here. The torch module is loaded on first use, so that importing go_gym (or this
package) never imports PyTorch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OPTIMIZERS", "LayerRule", "TraceError", "default_layer_rule", "from_torch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from go_gym.importers import torch as _torch_importer

        return getattr(_torch_importer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
