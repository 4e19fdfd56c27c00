# Two commands on a fresh machine (README.md): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint format typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Base install: serve and predict, no PyTorch.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything: training (PyTorch), tests and linters.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[train,registry,dev,cluster]"
	touch $@ $(VENV)/.installed-base

PORT ?= 8000  # `make run PORT=8080`

run: $(VENV)/.installed-base
	$(BIN)/cxr serve --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-logo  # the layers: [tool.importlinter] in pyproject.toml

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
