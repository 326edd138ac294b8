"""Two local products on one machine, each started with make variables alone: their own
UFO_RUN_DIR and ports (PORT, LUIGID_PORT, SPARK_HISTORY_PORT, SPARK_CONNECT_PORT,
CONSOLE_PORT); a taken port refused before anything starts; `make pyspark` on the warm server; the hints and messages that
name those ports; the stopped database's message; a real file's run date.

Every port is a free one, never a default; everything started is stopped in a `finally`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.producto.test_local_product import get, get_refused, make, make_env, stop_all
from tests.support import REPO, SHARED_UFO, Terminal, demo_env, free_port

pytestmark = [pytest.mark.integration, pytest.mark.spark]

SERVERS = ("PORT", "LUIGID_PORT", "SPARK_HISTORY_PORT", "SPARK_CONNECT_PORT", "CONSOLE_PORT")
REAL_SMALL = SHARED_UFO / "nuforc_index_2020-01-18_update.csv"


def ports() -> dict[str, str]:
    chosen: set[int] = set()
    while len(chosen) < len(SERVERS):
        chosen.add(free_port())
    return dict(zip(SERVERS, map(str, sorted(chosen)), strict=True))


def variables(run_dir: Path, given: dict[str, str]) -> list[str]:
    """Make's command-line variables: the run directory and the ports."""
    return [f"UFO_RUN_DIR={run_dir}", *(f"{name}={value}" for name, value in given.items())]


@pytest.fixture(scope="module")
def two_products(tmp_path_factory):
    """Two `make up`s, each in a run directory of its own on ports of its own, both running."""
    base = tmp_path_factory.mktemp("two-products")
    env = make_env(base / "unused")  # neither run directory nor ports come from the environment
    env.pop("UFO_RUN_DIR")
    products = [(base / name / ".run", ports()) for name in ("first", "second")]
    try:
        outputs = []
        for run_dir, given in products:
            started = make("up", env, *variables(run_dir, given), timeout=900)
            assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
            outputs.append(started.stdout)
        yield products, env, outputs
    finally:
        for run_dir, _ in products:
            stop_all(dict(env, UFO_RUN_DIR=str(run_dir)), run_dir)


def test_a_second_local_product_runs_beside_the_first_on_make_variables_alone(two_products):
    products, _, outputs = two_products
    for (run_dir, given), output in zip(products, outputs, strict=True):
        history = f"http://127.0.0.1:{given['SPARK_HISTORY_PORT']}"
        remote = f"sc://127.0.0.1:{given['SPARK_CONNECT_PORT']}"
        assert get(f"http://127.0.0.1:{given['PORT']}/health")[0] == 200
        assert get(f"http://127.0.0.1:{given['LUIGID_PORT']}/api/task_list")[0] == 200
        assert get(f"{history}/api/v1/applications")[0] == 200
        assert f"Spark history server    {history}/" in output
        assert f"Spark Connect server    {remote} " in output
        # demo.env names the servers that run, for every later command.
        values = demo_env(run_dir)
        assert values["UFO_SPARK_HISTORY_URL"] == history
        assert values["UFO_SPARK_REMOTE"] == remote
        assert Path(values["UFO_RUN_DIR"]) == run_dir.resolve()
        # The demo's hints name the ports in force, and no link to a server that did not run.
        assert f"`make producto UFO_RUN_DIR={run_dir} PORT={given['PORT']} " in output
        assert f"then open http://127.0.0.1:{given['PORT']}\n" in output
        assert "Spark application: http" not in output.split("luigid: started")[0]
        assert f"stop with: make stop UFO_RUN_DIR={run_dir}" in output


def test_a_taken_port_is_reported_before_anything_starts(two_products, tmp_path):
    products, env, _ = two_products
    first = products[0][1]
    run_dir = tmp_path / ".run"
    given = dict(ports(), SPARK_HISTORY_PORT=first["SPARK_HISTORY_PORT"])
    started = time.monotonic()
    refused = make("up", env, *variables(run_dir, given), timeout=120)
    assert refused.returncode != 0
    assert (
        f"up: error: nothing started: port {first['SPARK_HISTORY_PORT']} (SPARK_HISTORY_PORT, "
        "Spark's history server) is taken by another program" in refused.stderr
    )
    assert time.monotonic() - started < 30
    assert not run_dir.exists()  # not even the demo ran
    same = make("up", env, *variables(run_dir, dict(given, LUIGID_PORT=given["PORT"])))
    assert f"PORT and LUIGID_PORT are both {given['PORT']}" in same.stderr


def test_make_pyspark_reads_the_lake_on_the_warm_server(two_products):
    products, env, _ = two_products
    run_dir, given = products[1]
    text = pty_session(
        ["make", "--no-print-directory", "pyspark", *variables(run_dir, given)],
        env,
        [
            "print('ROWS', spark.read.parquet(*lake.aggregated()).count())",
            "print('TOP', spark.read.csv(lake.top10(), header=True).first().state)",
            "exit()",
        ],
    )
    assert (
        f"PySpark on the Spark Connect server sc://127.0.0.1:{given['SPARK_CONNECT_PORT']}" in text
    )
    assert (
        f"connected to the Spark Connect server at 127.0.0.1:{given['SPARK_CONNECT_PORT']}" in text
    )
    assert f"lake: <lake {run_dir.resolve() / 'lake'}: run dates " in text
    # (After the Connect client's progress bar, on the same line.)
    assert int(re.search(r"ROWS (\d+)\r?\n", text).group(1)) > 0, text[-2000:]
    assert re.search(r"TOP [A-Z]{2}\r?\n", text), text[-2000:]


def pty_session(argv: list[str], env: dict[str, str], lines: list[str]) -> str:
    """``argv`` in a terminal; ``lines`` typed once it prints the lake's hints; its output."""
    with Terminal(argv, env) as terminal:
        terminal.read(timeout=240, until=b"lake.dates()")
        terminal.type(*lines)
        return terminal.read(timeout=240)


@pytest.mark.skipif(not REAL_SMALL.exists(), reason="no real UFO data beside the repository")
def test_a_real_file_says_its_run_date_and_what_it_replaced(two_products):
    products, env, _ = two_products
    run_dir, given = products[0]
    values = demo_env(run_dir)
    ran = make(
        "demo", dict(env, UFO_SOURCE=str(REAL_SMALL)), *variables(run_dir, given), timeout=900
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    date = values["RUN_DATE"]
    assert f"Run date {date} is loaded already ({values['UFO_SOURCE']}, loaded " in ran.stdout
    assert (
        f"UFO_SOURCE was loaded as run date {date}; it replaced that date's earlier load "
        f"({values['UFO_SOURCE']}, loaded " in ran.stdout
    )
    # The history server of `make up` runs: now the demo's link works.
    link = re.search(r"Spark application: (http\S+)", ran.stdout).group(1)
    assert link.startswith(f"http://127.0.0.1:{given['SPARK_HISTORY_PORT']}/history/")


def test_after_make_stop_the_database_message_says_how_to_bring_it_back(two_products):
    products, env, _ = two_products
    run_dir, given = products[1]
    stopped = make("stop", env, f"UFO_RUN_DIR={run_dir}")
    assert "stopped postgres" in stopped.stdout
    assert get_refused(f"http://127.0.0.1:{given['PORT']}/health")
    script = (
        f"set -a; . {shlex.quote(str(run_dir / 'demo.env'))}; set +a; "
        f'{REPO / ".venv/bin/python"} -m luigi --module etl TopStatesToDatabase --date "$RUN_DATE" '
        "--local-scheduler"
    )
    ran = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert ran.returncode != 0
    assert "it is the demo's PostgreSQL" in ran.stdout + ran.stderr
    assert "`make up` starts it again" in ran.stdout + ran.stderr
