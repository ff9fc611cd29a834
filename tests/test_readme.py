"""The README's examples run as written: every ```python block, in order, one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 6
    torch.set_num_threads(1)
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md block {i}", "exec"), namespace)
        except Exception as exc:  # name the block that broke, then re-raise
            raise AssertionError(f"README block {i} failed:\n{block}") from exc


def test_readme_has_the_two_commands_first():
    text = README.read_text()
    assert text.index("make run") < text.index("## A tour")
    assert text.index("make test") < text.index("## A tour")
