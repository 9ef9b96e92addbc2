# Girofle's developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help venv engine images lint test clean

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
	$(BIN)/pytest $(PYTEST_ARGS)

clean:  ## remove the virtualenv and caches (not images or instances)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
