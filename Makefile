# Two commands for a newcomer: `make run` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: run leaderboard test lint venv clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: anything installed after it then finds it satisfied (no CUDA wheels).
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[dev,metis]"
	touch $(STAMP)

venv: $(STAMP)

# The quick-suite placement leaderboard (resumable; results in runs/quick-v0), printed.
run: $(STAMP)
	$(PY) -m go_gym

# Refresh the committed quick-suite leaderboard (leaderboard/quick-v0/, README.md) from `make run`.
leaderboard: run
	$(PY) -m go_gym leaderboard runs/quick-v0 --out leaderboard --readme README.md

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
