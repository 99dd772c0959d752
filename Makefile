# make install   : create .venv and install n8n-deploy with its development tools
# make test      : lint, type-check, check the docs and run the whole test suite
# make test-fast : the quick loop: the suite without tests that start processes (-m "not e2e")
# make lint      : ruff, mypy and the generated-docs check only
# make docs      : regenerate docs/commands.md and README's exit-status table from the code
# make bench     : timings side by side with n8n-deploy 0.9.1 and the import floors (never assertions)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: install test test-fast lint docs bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check n8n_deploy migrations tests docs
	$(BIN)/ruff format --check n8n_deploy migrations tests docs
	$(BIN)/mypy
	$(BIN)/python docs/generate.py --check

test: lint
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -q -m "not e2e"

docs: $(STAMP)
	$(BIN)/python docs/generate.py

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.compare

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
