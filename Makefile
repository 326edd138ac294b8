# Two commands do all the set-up: `make demo` runs the pipeline, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo producto test lint bench clean

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

## Serve producto (the web app) on http://127.0.0.1:8000 over the demo's database.
producto: $(VENV)/.runtime
	@test -f .run/demo.env || { echo "Run 'make demo' first (or set PRODUCTO_DATABASE_URL and run python -m producto)."; exit 1; }
	set -a; . ./.run/demo.env; set +a; $(BIN)/python -m producto --host 127.0.0.1 --port 8000

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
