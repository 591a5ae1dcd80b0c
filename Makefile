# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Empty: `serve` reads IMGFILTER_HOST / IMGFILTER_PORT (default 127.0.0.1:8000).
HOST ?=
PORT ?=
# Empty: the worker count comes from IMGFILTER_WORKERS or the CPU count.
WORKERS ?=

.DEFAULT_GOAL := help
.PHONY: help run cli test lint deploy-check unit check e2e docker-test openapi clients lock lock-check bench loadbench fuzz soak clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The venv is rebuilt when pyproject.toml changes (stamp files track each extra).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,e2e]'
	@touch $@ $(VENV)/.runtime

$(VENV)/.lock: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[lock]'
	@touch $@ $(VENV)/.runtime

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,e2e,bench]'
	@touch $@ $(VENV)/.test $(VENV)/.runtime

run: $(VENV)/.runtime  ## create .venv, install, serve (HOST/PORT, or IMGFILTER_HOST/IMGFILTER_PORT)
	$(BIN)/python -m service serve$(if $(HOST), --host $(HOST))$(if $(PORT), --port $(PORT))$(if $(WORKERS), --workers $(WORKERS))

cli: $(VENV)/.runtime  ## the imgfilter CLI from the venv: make cli ARGS='convolve ascent --preset sobel-x -o edges.png'
	$(BIN)/imgfilter $(ARGS)

lint: $(VENV)/.test  ## ruff check + ruff format --check + mypy + bandit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service
	$(BIN)/bandit -q -r service -c pyproject.toml

# The PNG encoder's tests check every file with pngcheck (a Debian package).
.PHONY: pngcheck
pngcheck:
	@command -v pngcheck >/dev/null || { apt-get install -y pngcheck || { apt-get update \
		&& apt-get install -y pngcheck; }; } >/dev/null 2>&1 || echo "pngcheck unavailable"

# Tiers (markers in pyproject.toml; tests/conftest.py marks `process` every test that starts one).
FAST := not (slow or process or network)

unit: $(VENV)/.test pngcheck  ## the pytest suite only (all but the network tests: see lock-check)
	$(BIN)/python -m pytest -q -m "not network"

# PYTHONDONTWRITEBYTECODE emptied: without pytest's assertion-rewrite cache, each run (and each
# xdist worker) compiles the test and plugin modules again, seconds of the tier's budget.
# --dist loadfile: a module's fixtures (its app, its TestClient) are built once, not per worker;
# --fast-tier: tests/conftest.py does not import what the tier deselects (e2e, schemathesis);
# -p no:schemathesis: nor does pytest load that plugin (its imports cost a second per process).
check: $(VENV)/.test pngcheck  ## the fast tier: no slow, process, e2e or network test; 2 pytest-xdist workers
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 2 --dist loadfile --fast-tier -p no:schemathesis -m "$(FAST)"

deploy-check: $(VENV)/.test  ## hadolint Dockerfile, compose schema, Kubernetes manifests (offline)
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

test: lint deploy-check unit  ## create/update .venv, run the linters and the whole test suite

e2e: $(VENV)/.test  ## browser tests only (Debian chromium + Playwright); screenshots to docs/
	IMGFILTER_SCREENSHOT_DIR=docs $(BIN)/python -m pytest -q tests/e2e

# Not part of `make test`: needs root and a Docker engine (deploy/test/setup.sh installs and
# starts one, gets compose v2 and the base images, building local stand-ins where none can be
# pulled). Ports 18200-18299 on 127.0.0.1; everything it starts is removed at the end.
docker-test: $(VENV)/.test  ## build the image, run it, compose (1 and 4 replicas) and the k8s pod under Docker
	bash deploy/test/setup.sh
	IMGFILTER_DOCKER_TEST=1 $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/docker

openapi: $(VENV)/.runtime  ## regenerate openapi/openapi.json from the app
	$(BIN)/python -m service.openapi_dump openapi/openapi.json

# Generated clients (docs/clients.md): generator versions are pinned in pyproject.toml (Python)
# and tests/clients/package-lock.json (npm; installed once into tests/clients/node_modules).
# make test generates and drives them in tests/clients; this target writes them to look at.
CLIENTS ?= build/clients
clients: $(VENV)/.test  ## generate the Python and TypeScript clients into build/clients
	rm -rf $(CLIENTS) && mkdir -p $(CLIENTS)/typescript
	$(BIN)/openapi-python-client generate --path openapi/openapi.json \
		--output-path $(CLIENTS)/imgfilter_client --meta none
	$(BIN)/python -c "from tests.clients.generated import node_tools; node_tools()"
	tests/clients/node_modules/.bin/openapi-typescript openapi/openapi.json \
		-o $(CLIENTS)/typescript/schema.d.ts
	tests/clients/node_modules/.bin/redocly lint --extends recommended openapi/openapi.json
	tests/clients/node_modules/.bin/spectral lint --ruleset tests/clients/.spectral.yaml \
		openapi/openapi.json

# The Docker image installs exactly these pins, each wheel checked against its hash. Resolved
# for the image's CPython 3.11 on x86_64 Linux; the hashes cover every wheel of each pinned
# version (arm64 too). Run after changing the dependencies in pyproject.toml.
lock: $(VENV)/.lock  ## re-pin the image's dependencies into deploy/requirements.lock (uv)
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes --annotation-style line \
		--quiet -o deploy/requirements.lock

lock-check: $(VENV)/.test  ## needs the internet: every locked wheel downloads for the image (pip)
	$(BIN)/python -m pytest -q -m network

bench: $(VENV)/.bench  ## core speed vs scipy.ndimage / OpenCV / the lesson; large images (memory)
	$(BIN)/python -m bench.core
	$(BIN)/python -m bench.large

loadbench: $(VENV)/.bench  ## service vs the naive yardstick under load (wrk, 127.0.0.1, ~6 min)
	@command -v wrk >/dev/null || { apt-get install -y wrk || { apt-get update \
		&& apt-get install -y wrk; }; } >/dev/null 2>&1 \
		|| echo "wrk unavailable: bench.load falls back to its asyncio client"
	$(BIN)/python -m bench.load

FUZZ_EXAMPLES ?= 500
fuzz: $(VENV)/.test  ## schemathesis, 500 examples per operation (make test runs 25)
	SCHEMATHESIS_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:logging tests/test_schemathesis.py

SOAK_SECONDS ?= 60
soak: $(VENV)/.bench  ## 60 s of mixed load, 32 clients, 2 workers; fails on 5xx or RSS growth
	$(BIN)/python -m bench.soak --duration $(SOAK_SECONDS)

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
