# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck unit openapi bench loadbench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The venv is rebuilt when pyproject.toml changes (stamp files track each extra).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.runtime

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@ $(VENV)/.test $(VENV)/.runtime

run: $(VENV)/.runtime  ## create .venv, install, serve on http://$(HOST):$(PORT)
	$(BIN)/python -m uvicorn service.main:app --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: $(VENV)/.test  ## ruff check + ruff format --check + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service

unit: $(VENV)/.test  ## the pytest suite only
	$(BIN)/python -m pytest -q

test: lint unit  ## create/update .venv, run the linters and the whole test suite

openapi: $(VENV)/.runtime  ## regenerate openapi/openapi.json from the app
	$(BIN)/python -m service.openapi_dump openapi/openapi.json

bench: $(VENV)/.bench  ## core speed against scipy.ndimage / OpenCV / the lesson's loop
	$(BIN)/python -m bench.core

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
