# Girofle's developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes at once (pytest-xdist; each test file stays on one): tests are hermetic by
# label, and most of their time is waiting on containers. Tests marked serial (the swarm
# module, which turns this engine into a swarm manager) run afterwards, alone.
JOBS ?= 2

.PHONY: help venv engine images lint test up down clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/girofle: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/girofle  ## create .venv with Girofle and its test extra

engine: venv  ## make sure a Docker engine and Compose v2 answer (starts one if needed)
	bash tests/harness/ensure-engine.sh $(VENV)

images: engine  ## build the test images (cached by content hash)
	$(BIN)/python -m tests.images.build

lint: venv  ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/mypy --strict girofle

test: lint images  ## lint, then the whole suite against a real engine
	status=0; \
	$(BIN)/pytest -n $(JOBS) --dist loadfile -m "not serial" $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/pytest -m serial $(PYTEST_ARGS) || status=$$?; \
	exit $$status

# `make up` provisions Girofle with this checkout as its home (stacks land in ./stacks),
# without questions: the engine as `make test` sets it up (the same script), then
# `girofle up`, which inits the home, starts the edge and commissions a first instance,
# and on a rerun picks up where a failed run stopped (a no-op once the fleet is up).
# Settings come from GIROFLE_* variables (see `girofle up --help`), e.g.
#   make up GIROFLE_ADDRESS=10.0.0.5 GIROFLE_HTTPS_PORT=8443 GIROFLE_GITLAB_IMAGE=gitlab/gitlab-ce:18.11.11-ce.0
export GIROFLE_HOME ?= $(CURDIR)
UP_ARGS ?=

up: engine  ## provision Girofle here and bring its fleet up (rerun freely)
	$(BIN)/girofle up $(UP_ARGS)

down: venv  ## stop the fleet and its edge (data, settings and ports are kept)
	$(BIN)/girofle stop --all

clean:  ## remove the virtualenv and caches (not images or instances)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
