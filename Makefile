# Two commands do all the set-up: `make demo` runs the pipeline, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt producto/requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -r producto/requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## Run the whole pipeline on the embedded default (a generated sample, or UFO_SOURCE).
demo: $(VENV)/.runtime
	$(BIN)/python -m etl.demo

## Set up and run the whole test suite (system packages too, when run as root).
test: $(VENV)/.dev
	bash tests/setup-system.sh
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## Time the pipeline against baselines measured in the same run.
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .run .pytest_cache
