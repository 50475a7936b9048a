# Two commands do everything on a fresh machine with python3, make and a package registry:
#   make demo   installs into .venv, runs the main job, then serves its store until Ctrl-C
#   make test   installs into .venv, lints and runs the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the project's metadata changes.
# torch is pinned first: a CPU build of 2.13.0 is what the torch extra's range resolves to
# without downloading a multi-gigabyte CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/opsloop demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2 -q

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Benchmark peers pin versions that clash with ours; each gets its own environment.
bench: $(STAMP)
	$(BIN)/python benchmarks/envs.py
	$(BIN)/python benchmarks/drift.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis demo-output
