"""The daily chain as a user runs it on the local product: ``make up``, then a Luigi command.

``make up`` runs in a run directory of its own, on free ports, with every service it starts
(luigid, the worker service, Spark's history and Spark Connect servers with their event logs,
producto, the console) and the ``demo.env`` it writes. Each round then runs
``python -m luigi --module etl TopStatesToDatabase --date D --scheduler-port LUIGID_PORT`` with
that ``demo.env`` loaded, as the local product's docs show it: luigid schedules it and its
Spark step runs warm on the Connect server, on the real index, for a run date not loaded yet
(a new one each round, as a day brings). The first round is not timed: the server's first
query compiles its engine once, as in the benchmark's own warm measure.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PORTS = ("PORT", "LUIGID_PORT", "SPARK_HISTORY_PORT", "SPARK_CONNECT_PORT", "CONSOLE_PORT")


def _make(target: str, env: dict[str, str], *args: str, timeout: float) -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", target, *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"make {target} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@contextmanager
def local_product(tmp: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """``make up`` in ``tmp``, stopped afterwards: (a user's environment with its demo.env
    loaded, the ports it was given)."""
    from etl.tools.ports import free_port
    from tests.support import demo_env

    run_dir = tmp / "product" / ".run"
    ports = {name: str(free_port()) for name in PORTS}
    shell = {k: v for k, v in os.environ.items()
             if not k.startswith(("UFO_", "PRODUCTO_", "SPARK_")) and k not in PORTS}  # fmt: skip
    shell.pop("PROXY_USERS", None)
    given = [f"UFO_RUN_DIR={run_dir}", *(f"{k}={v}" for k, v in ports.items())]
    try:
        _make("up", shell, *given, timeout=1200)
        yield {**shell, **demo_env(run_dir)}, ports
    finally:
        subprocess.run(["make", "--no-print-directory", "stop", f"UFO_RUN_DIR={run_dir}"],
                       cwd=REPO, env=shell, capture_output=True, timeout=300)  # fmt: skip


def warm_chain_under_make_up(tmp: Path, source: Path, first: dt.date, rounds: int) -> list[float]:
    """Seconds of ``rounds`` daily chains run as a user runs them on the local product (see
    the module's doc), for run dates not loaded yet, ending the day before ``first``."""
    timed = []
    with local_product(tmp) as (env, ports):
        env = {**env, "UFO_SOURCE": str(source)}
        for i in range(rounds + 1):
            day = first - dt.timedelta(days=rounds + 1 - i)
            argv = [sys.executable, "-m", "luigi", "--module", "etl",
                    "TopStatesToDatabase", "--date", day.isoformat(),
                    "--scheduler-port", ports["LUIGID_PORT"]]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=900)  # fmt: skip
            seconds = time.perf_counter() - start
            if done.returncode != 0 or "(on the Spark Connect server" not in done.stdout + (
                done.stderr
            ):
                raise SystemExit(
                    f"the chain under make up failed or ran cold:\n{done.stderr[-3000:]}"
                )
            if i:
                timed.append(seconds)
    return timed
