# Two commands on a fresh machine (README.md): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint format typecheck clean sbom licences

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Base install: serve and predict, no PyTorch.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything: training (PyTorch), tests and linters. --no-compile: byte-compiling all of PyTorch's and
# MLflow's files at install took 1 min 50 s of the 5 min; Python compiles what it imports, once.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --no-compile -e ".[train,registry,dev,cluster]"
	touch $@ $(VENV)/.installed-base

PORT ?= 8000  # `make run PORT=8080`

run: $(VENV)/.installed-base
	$(BIN)/cxr serve --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-logo  # the layers: [tool.importlinter] in pyproject.toml
	$(BIN)/bandit -q -r src -ll  # security scan: no medium or high finding (each nosec says why)
	$(BIN)/python -m cxr_pneumonia.licences --check --pyproject pyproject.toml  # no GPL/AGPL in the base install

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Two workers, whole test files each (--dist loadfile: a file's module fixtures and servers start once):
# most of the suite waits on servers and subprocesses, so two workers share two cores well.
# One process: make test PYTEST_WORKERS=0
PYTEST_WORKERS ?= 2

test: lint typecheck
	$(BIN)/pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# The serving install's software bill of materials (CycloneDX JSON): the base install's pinned packages.
sbom: $(VENV)/.installed-dev
	$(BIN)/python -m cxr_pneumonia.licences --requirements --pyproject pyproject.toml > sbom.requirements.txt
	$(BIN)/cyclonedx-py requirements --output-format JSON --output-file sbom.cdx.json sbom.requirements.txt

licences: $(VENV)/.installed-base
	$(BIN)/python -m cxr_pneumonia.licences --pyproject pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
