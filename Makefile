# Two commands do all the set-up: `make demo` runs the pipeline, `make test` runs the tests.
# `make up` runs the whole local product without Docker; `make stop` stops it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# Where the demo keeps its lake, database, logs and processes (etl/tools/demo.py, etl/tools/localstack.py).
UFO_RUN_DIR ?= .run
export UFO_RUN_DIR
# producto's and luigid's ports on 127.0.0.1.
PORT        ?= 8000
LUIGID_PORT ?= 8082
LOCALSTACK  := $(BIN)/python -m etl.tools.localstack --port $(PORT) --luigid-port $(LUIGID_PORT)

.PHONY: demo producto luigid up stop test lint bench clean

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
# The first time, it also makes the Spark driver's class archive (etl/tools/jvmcache.py, about 40 s):
# every later spark-submit starts about 5 s sooner.
demo: $(VENV)/.runtime
	@$(BIN)/python -m etl.tools.jvmcache --if-missing
	$(BIN)/python -m etl.tools.demo

## Serve producto (the web app) on http://127.0.0.1:$(PORT) over the demo's database; Ctrl-C stops it.
# exec: Ctrl-C then ends producto alone and make reports no error.
producto: $(VENV)/.runtime
	@test -f $(UFO_RUN_DIR)/demo.env || { echo "Run 'make demo' first (or set PRODUCTO_DATABASE_URL and run python -m producto)."; exit 1; }
	@$(LOCALSTACK) postgres
	@set -a; . $(abspath $(UFO_RUN_DIR))/demo.env; set +a; exec $(BIN)/python -m producto --host 127.0.0.1 --port $(PORT)

## Start luigid (Luigi's scheduler and UI) on http://127.0.0.1:$(LUIGID_PORT) in the background.
luigid: $(VENV)/.runtime
	@test -f $(UFO_RUN_DIR)/demo.env || $(MAKE) --no-print-directory demo
	@$(LOCALSTACK) luigid

## The whole local product without Docker: the demo (if not run yet), luigid, the worker, producto.
up: $(VENV)/.runtime
	@test -f $(UFO_RUN_DIR)/demo.env || $(MAKE) --no-print-directory demo
	@$(LOCALSTACK) up

## Stop what `make demo`, `make luigid` and `make up` started, the demo's PostgreSQL too.
stop:
	@if [ -x $(BIN)/python ]; then $(LOCALSTACK) stop; else echo "no $(BIN): nothing of the demo can be running"; fi

## Set up and run the whole test suite (system packages too, when run as root).
test: $(VENV)/.dev
	bash tests/setup-system.sh
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## Time the pipeline against baselines measured in the same run.
bench: $(VENV)/.dev
	@$(BIN)/python -m etl.tools.jvmcache --if-missing
	$(BIN)/python bench/run.py

## Delete the virtualenv and the demo's data; refused while the demo's servers run (make stop).
clean:
	@if [ -x $(BIN)/python ]; then $(LOCALSTACK) check-stopped || { echo "make clean: refused, the demo's servers still run from $(UFO_RUN_DIR): run 'make stop' first." >&2; exit 1; }; fi
	rm -rf $(VENV) $(UFO_RUN_DIR) .pytest_cache
