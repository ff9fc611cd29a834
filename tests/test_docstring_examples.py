"""The ``>>>`` examples in the public docstrings run as written (envs, agents, SB3 policy)."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = ["go_gym.envs.tasks", "agents", "agents.sb3"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    torch.set_num_threads(1)
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{name} has no examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {name}"
