# Two commands do all the set-up: `make demo` runs the pipeline, `make test` runs the tests.
# `make up` runs the whole local product without Docker; `make stop` stops it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# Where the demo keeps its lake, database, logs and processes (etl/tools/demo.py, etl/tools/localstack.py).
UFO_RUN_DIR ?= .run
export UFO_RUN_DIR
# The ports the local product opens on 127.0.0.1, one variable each (etl/tools/ports.py):
#   PORT                producto (the web app)
#   LUIGID_PORT         luigid (Luigi's scheduler and UI)
#   SPARK_HISTORY_PORT  Spark's history server (UFO_SPARK_HISTORY_URL in demo.env follows it)
#   SPARK_CONNECT_PORT  the Spark Connect server (UFO_SPARK_REMOTE in demo.env follows it)
#   PROXY_PORT          the proxy (HTTPS, a login) in front of them, when PROXY_USERS is set
#   CONSOLE_PORT        the console: the run dates, their runs and their fixes
# Give them on the command line or in the environment: `make up PORT=9000 LUIGID_PORT=9082`.
# `make up` reports a taken port before it starts anything; the demo's PostgreSQL finds a free
# port by itself (its URL is in demo.env). A second local product needs another UFO_RUN_DIR
# and other ports.
PORT               ?= 8000
LUIGID_PORT        ?= 8082
SPARK_HISTORY_PORT ?= 18080
SPARK_CONNECT_PORT ?= 15002
PROXY_PORT         ?= 8443
CONSOLE_PORT       ?= 8090
export PORT LUIGID_PORT SPARK_HISTORY_PORT SPARK_CONNECT_PORT PROXY_PORT CONSOLE_PORT
LOCALSTACK := $(BIN)/python -m etl.tools.localstack
# A long step that prints nothing meanwhile shows the seconds going by.
TICKER     := $(BIN)/python etl/tools/ticker.py

.PHONY: demo producto luigid up pyspark stop test lint bench bench-ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip --quiet says nothing for 25-60 s: the ticker shows it works. venvspark.py then lets
# .venv/bin/pyspark and .venv/bin/spark-submit run without activating the virtualenv.
$(VENV)/.runtime: requirements.txt producto/requirements.txt | $(BIN)/python
	@$(TICKER) "Installing the Python packages into $(VENV) (25-60 s the first time)" -- \
		$(BIN)/pip install --quiet -r requirements.txt -r producto/requirements.txt
	@$(BIN)/python etl/tools/venvspark.py
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	@$(TICKER) "Installing the test and lint packages into $(VENV)" -- \
		$(BIN)/pip install --quiet -r requirements-dev.txt
	@$(BIN)/python etl/tools/venvspark.py
	@touch $@

## Run the whole pipeline on the embedded default (a generated sample, or UFO_SOURCE).
# The first time, it also makes the Spark driver's class archive (etl/tools/jvmcache.py, 35 s on
# an idle machine, up to 100 s on a busy one; it prints its estimate and ticks): every later
# spark-submit starts about 5 s sooner.
demo: $(VENV)/.runtime
	@$(BIN)/python -m etl.tools.jvmcache --if-missing
	$(BIN)/python -m etl.tools.demo

## Serve producto (the web app) on http://127.0.0.1:$(PORT) over the demo's database; Ctrl-C stops it.
# exec: Ctrl-C then ends producto alone and make reports no error.
producto: $(VENV)/.runtime
	@test -f $(UFO_RUN_DIR)/demo.env || { echo "Run 'make demo' first (or set PRODUCTO_DATABASE_URL and run python -m producto)."; exit 1; }
	@$(LOCALSTACK) check-ports producto
	@$(LOCALSTACK) postgres
	@set -a; . $(abspath $(UFO_RUN_DIR))/demo.env; set +a; exec $(BIN)/python -m producto --host 127.0.0.1 --port $(PORT)

## Start luigid (Luigi's scheduler and UI) on http://127.0.0.1:$(LUIGID_PORT) in the background.
luigid: $(VENV)/.runtime
	@test -f $(UFO_RUN_DIR)/demo.env || $(MAKE) --no-print-directory demo
	@$(LOCALSTACK) luigid

## The whole local product without Docker: the demo (if not run yet), luigid, the worker, producto.
# Also Spark's history server and a Spark Connect server; all ports are checked before anything starts.
up: $(VENV)/.runtime
	@$(LOCALSTACK) check-ports
	@test -f $(UFO_RUN_DIR)/demo.env || $(MAKE) --no-print-directory demo
	@$(LOCALSTACK) up

## A PySpark shell with the demo's lake at hand (`lake`): on `make up`'s Spark Connect server, else local.
# On the server, it starts no JVM of its own and shares its warm SQL engine (etl/tools/sparkshell.py).
pyspark: $(VENV)/.runtime
	@test -f $(UFO_RUN_DIR)/demo.env || $(MAKE) --no-print-directory demo
	@exec $(BIN)/python -m etl.tools.sparkshell

## Stop what `make demo`, `make luigid` and `make up` started, the demo's PostgreSQL too.
stop:
	@if [ -x $(BIN)/python ]; then $(LOCALSTACK) stop; else echo "no $(BIN): nothing of the demo can be running"; fi

## Set up and run the whole test suite (system packages too, when run as root).
# The Spark driver's class archive too, as for the demo: the tests' Spark runs start as users' do.
test: $(VENV)/.dev
	bash tests/setup-system.sh
	@$(BIN)/python -m etl.tools.jvmcache --if-missing
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## Time the pipeline against baselines measured in the same run.
bench: $(VENV)/.dev
	@$(BIN)/python -m etl.tools.jvmcache --if-missing
	$(BIN)/python bench/run.py

## ReadUFOs on a generated 10 GB source, on this machine and on the cluster (needs ~25 GB free).
bench-ingest: $(VENV)/.dev
	$(BIN)/python bench/ingest.py --gb 10

## Delete the virtualenv and the demo's data; refused while the demo's servers run (make stop).
clean:
	@if [ -x $(BIN)/python ]; then $(LOCALSTACK) check-stopped || { echo "make clean: refused, the demo's servers still run from $(UFO_RUN_DIR): run 'make stop' first." >&2; exit 1; }; fi
	rm -rf $(VENV) $(UFO_RUN_DIR) .pytest_cache

## Regenerate the reference pages made from the code, then build the documentation site into
## .run/site/ (strict: a broken link or anchor fails; tests/test_docs.py builds it the same way).
.PHONY: docs
docs: $(VENV)/.dev
	$(BIN)/python -m etl.tools.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
