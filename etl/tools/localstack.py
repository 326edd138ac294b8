"""The local product without Docker: luigid, the worker service, producto, Spark's history server
and a Spark Connect server (the worker's warm Spark steps) as background processes.

    python -m etl.tools.localstack up
    python -m etl.tools.localstack luigid
    python -m etl.tools.localstack check-ports [SERVICE...]  # exit 1 (saying which) if a port is taken
    python -m etl.tools.localstack postgres        # start the demo's PostgreSQL again if it is stopped
    python -m etl.tools.localstack stop            # stop everything above and the demo's PostgreSQL
    python -m etl.tools.localstack check-stopped   # exit 1 (saying what runs) while anything runs

Ports come from PORT, LUIGID_PORT, SPARK_HISTORY_PORT, SPARK_CONNECT_PORT and, when PROXY_USERS
is set (the proxy in front of it all, ``localproxy.py``), PROXY_PORT (``ports.py``);
``up`` checks them all before it starts anything and writes the history server's and the Spark
Connect server's addresses into ``demo.env`` (UFO_SPARK_HISTORY_URL, UFO_SPARK_REMOTE).

Everything lives in the run directory of ``make demo`` (UFO_RUN_DIR, else ``.run``) and uses its
``demo.env``: pid files in ``pids/`` (JSON: pid, address, log), logs in ``logs/``, luigid's
state in ``luigid/state.pickle`` and its task history in a ``luigid`` database on the demo's
PostgreSQL (luigid 3.8.1's task history on SQLite crashes). Every server binds to 127.0.0.1.
Each process leads its own process group, so ``stop`` ends it with its children (a running
Luigi task, spark-submit); SIGTERM first, since luigid writes its state then.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from etl.adapters import spark
from etl.errors import UfoError
from etl.settings import setting
from etl.tools import connect, history, localconsole, localproxy, ports
from etl.tools.localpg import LocalPostgres
from etl.tools.orphans import MARKER, leftover_runs, stop_leftover_runs
from etl.tools.ports import HOST
from etl.tools.services import REPO, LocalStackError, Service, http_ok, run_dir, say


def read_env(path: Path) -> dict[str, str]:
    """The variables of a ``demo.env`` (``NAME=value`` lines, values shell-quoted)."""
    if not path.exists():
        raise LocalStackError(f"{path} is missing: run `make demo` first.")
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = " ".join(shlex.split(value))
    return values


def follow_ports(env: dict[str, str], wanted: dict[str, int]) -> dict[str, str]:
    """``demo.env``'s history server and Spark Connect addresses at the ports in force (a
    running server's own), written back when they changed, so later commands find them."""
    path = run_dir() / "demo.env"
    history.check_local(env.get("UFO_SPARK_HISTORY_URL"))
    connect.check_local(env.get("UFO_SPARK_REMOTE"))
    addresses = {
        "UFO_SPARK_HISTORY_URL": HISTORY.recorded_address() if HISTORY.running_pid() else "",
        "UFO_SPARK_REMOTE": CONNECT.recorded_address() if CONNECT.running_pid() else "",
    }
    addresses["UFO_SPARK_HISTORY_URL"] = (
        addresses["UFO_SPARK_HISTORY_URL"] or f"http://{HOST}:{wanted['history']}"
    )
    addresses["UFO_SPARK_REMOTE"] = (
        addresses["UFO_SPARK_REMOTE"] or f"sc://{HOST}:{wanted['connect']}"
    )
    changed = {k: v for k, v in addresses.items() if env.get(k) != v}
    if changed:
        lines = path.read_text().splitlines()
        kept = [line for line in lines if line.split("=", 1)[0].strip() not in changed]
        kept += [f"{name}={shlex.quote(value)}" for name, value in changed.items()]
        path.write_text("\n".join(kept) + "\n")
        say(f"{path}: " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    return {**env, **addresses}


LUIGID = Service("luigid", marker="luigid")
WORKER = Service("worker", marker="etl.worker")
PRODUCTO = Service("producto", marker="producto")
CONSOLE = localconsole.CONSOLE
HISTORY = Service("history", marker="HistoryServer")
CONNECT = Service("connect", marker="Spark Connect server")  # its --name, however started
PROXY = localproxy.PROXY
# In the order they are stopped.
SERVICES = (PROXY, CONSOLE, PRODUCTO, WORKER, CONNECT, HISTORY, LUIGID)


def demo_postgres(env: dict[str, str]) -> LocalPostgres | None:
    """The demo's private PostgreSQL, started again if stopped; None when the demo used another."""
    directory = run_dir() / "postgres"
    url = env.get("UFO_DATABASE_URL", "")
    server = LocalPostgres(directory)
    if not (server.data_dir / "PG_VERSION").exists():
        return None  # the demo ran against UFO_DATABASE_URL given by the user
    if not server.running():
        # Same port as before, so the URLs in demo.env stay right.
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        if ports.taken(port):
            raise LocalStackError(
                f"port {port} of the demo's PostgreSQL is taken by another program: stop it, "
                "or run `make stop clean demo` for a new one."
            )
        server.port = port
        say(f"postgres: starting the demo's PostgreSQL on {HOST}:{port}")
    return server.start()


def _luigi_configs(env: dict[str, str], port: int) -> tuple[Path, Path]:
    """luigid's config (task history, state, logging) and the workers' (where luigid is)."""
    directory = run_dir() / "luigid"
    directory.mkdir(parents=True, exist_ok=True)
    server = demo_postgres(env)
    lines = [
        "# Written by `make luigid` (etl/tools/localstack.py); read after ./luigi.cfg.",
        "[scheduler]",
        f"state_path = {directory / 'state.pickle'}",
    ]
    if server is not None:
        history = server.create_database("luigid")
        lines += ["record_task_history = True", "[task_history]", f"db_connection = {history}"]
    luigid_cfg = directory / "luigi.cfg"
    luigid_cfg.write_text("\n".join(lines) + "\n")
    client_cfg = directory / "client.cfg"
    client_cfg.write_text(
        "# Written by `make up` (etl/tools/localstack.py): the workers' scheduler is the local luigid.\n"
        f"[core]\nscheduler_host = {HOST}\nscheduler_port = {port}\n"
    )
    return luigid_cfg, client_cfg


def start_luigid(env: dict[str, str], port: int) -> str:
    """luigid on 127.0.0.1:``port`` with task history in the demo's PostgreSQL; its address."""
    address = f"http://{HOST}:{port}"
    pid = LUIGID.running_pid()
    if pid is not None:
        say(f"luigid: already running (pid {pid}) {LUIGID.recorded_address()}")
        return LUIGID.recorded_address() or address
    ports.check({"luigid": port}, command="make luigid")
    luigid_cfg, _ = _luigi_configs(env, port)
    # Our luigid (etl/worker/luigid_server.py): Luigi's, with a history true to batches; its
    # log lines go to its log beside the other services'.
    argv = [sys.executable, "-m", "etl.worker.luigid_server", "--address", HOST, "--port", str(port),
            "--state-path", str(run_dir() / "luigid" / "state.pickle"), "--log-file", str(LUIGID.log)]  # fmt: skip
    LUIGID.address = address
    LUIGID.start(
        argv,
        dict(os.environ, **env, LUIGI_CONFIG_PATH=str(luigid_cfg)),
        lambda: http_ok(f"{address}/api/task_list"),
    )
    show_demo(env, port)
    return address


def show_demo(env: dict[str, str], port: int) -> None:
    """Put the demo's run (made before luigid ran) in the new luigid's task list, in the
    background: ``etl/tools/showdemo.py`` only tells luigid what is complete."""
    if not env.get("RUN_DATE"):
        return
    log = run_dir() / "logs" / "showdemo.log"
    # Its lines go to its own log, not to pipeline.log (UFO_LOG_DIR), which has the runs'.
    show_env = {k: v for k, v in dict(os.environ, **env).items() if k != "UFO_LOG_DIR"}
    show_env["UFO_VERBOSE"] = "1"  # all of its lines in showdemo.log
    with open(log, "wb") as out:
        subprocess.Popen(
            [sys.executable, "-m", "etl.tools.showdemo", str(port), env["RUN_DATE"]], cwd=REPO,
            env=show_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    say(f"luigid: adding the demo's run of {env['RUN_DATE']} to its task list in the background")


def start_history(env: dict[str, str], port: int) -> str:
    """Spark's history server on 127.0.0.1:``port``, over the demo's event logs; its address."""
    events = env.get("UFO_SPARK_EVENTS") or str(run_dir() / "spark-events")
    address = f"http://{HOST}:{port}"
    argv, extra = history.command(events, port, HOST)
    _start_server(HISTORY, address, argv, dict(env, **extra),
                  lambda: http_ok(f"{address}/api/v1/applications"))  # fmt: skip
    return HISTORY.recorded_address() or address


def start_connect(env: dict[str, str], port: int) -> str:
    """A Spark Connect server on 127.0.0.1:``port`` for the worker's warm runs; its address."""
    address = f"sc://{HOST}:{port}"
    ui_port = ports.free_port(HOST)
    argv, extra = connect.command(port, HOST, env.get("UFO_SPARK_EVENTS"), ui_port)
    _start_server(CONNECT, address, argv, dict(env, **extra),
                  lambda: spark.connect_answers(address, timeout=1))  # fmt: skip
    return CONNECT.recorded_address() or address


def _start_server(service: Service, address: str, argv: list[str], env: dict[str, str],
                  ready: Callable[[], bool]) -> None:  # fmt: skip
    if service.running_pid() is None:
        service.address = address
    service.start(argv, dict(os.environ, **env), ready)


def luigid_port() -> int:
    """The running luigid's port, from its pid file."""
    return int(LUIGID.recorded_address().rsplit(":", 1)[1])


def up(wanted: dict[str, int]) -> None:
    """luigid, the worker service, the history and Spark Connect servers and producto, each
    started unless it runs already, at the ports ``wanted`` (checked before anything starts);
    on an error, what this `up` started is stopped."""
    before = {s.name for s in SERVICES if s.running_pid() is not None}
    ports.check(wanted, running=before)
    env = follow_ports(read_env(run_dir() / "demo.env"), wanted)
    _check_settings(dict(os.environ, **env))
    demo_postgres(env)
    try:
        _start_all(env, wanted)
    except UfoError:
        for service in SERVICES:  # what this `up` started, not what ran
            if service.name not in before:
                service.stop(quiet=True)
        raise


def _check_settings(env: dict[str, str]) -> None:
    """Refuse to start anything with a setting the worker could not parse."""
    check = [sys.executable, "-c", "from etl.settings import load_settings; load_settings()"]
    found = subprocess.run(check, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    if found.returncode != 0:
        lines = found.stderr.strip().splitlines() or ["(no output)"]
        raise LocalStackError(f"nothing started: {lines[-1].split(': ', 1)[-1]}")


def _start_all(env: dict[str, str], wanted: dict[str, int]) -> None:
    luigid_address = start_luigid(env, wanted["luigid"])
    history_address = start_history(env, wanted["history"])
    connect_address = start_connect(env, wanted["connect"])
    client_cfg = run_dir() / "luigid" / "client.cfg"
    if not client_cfg.exists():
        _luigi_configs(env, luigid_port())
    worker_env = dict(os.environ, **env, LUIGI_CONFIG_PATH=str(client_cfg))
    worker_env.pop("UFO_LOCAL_SCHEDULER", None)  # this worker uses the luigid started above
    worker_env.setdefault("UFO_SPARK_HISTORY_URL", history_address)
    worker_env.setdefault("UFO_SPARK_REMOTE", connect_address)  # its Spark steps run warm
    console = "/console" if "proxy" in wanted else f"http://{HOST}:{wanted['console']}"
    worker_env.setdefault("UFO_CONSOLE_URL", console)  # luigid's task pages link to it
    worker_env[MARKER] = str(run_dir().resolve())  # inherited by its runs: see leftover_runs
    requests = f"{env.get('UFO_STORAGE', 'lake')}/requests/"
    if "://" not in requests:  # a local lake: the folder the README writes requests into
        Path(requests).mkdir(parents=True, exist_ok=True)
    WORKER.address = f"watching {requests}"
    # Ready once this start's lines (after what the log held before) say it watches.
    seen = WORKER.log.stat().st_size if WORKER.log.exists() else 0
    WORKER.start(
        [sys.executable, "-m", "etl.worker"],
        worker_env,
        lambda: b"watching" in WORKER.log.read_bytes()[seen:],
    )
    producto_address = f"http://{HOST}:{wanted['producto']}"
    if PRODUCTO.running_pid() is None:
        PRODUCTO.address = producto_address
    PRODUCTO.start(
        [sys.executable, "-m", "producto", "--host", HOST, "--port", str(wanted["producto"])],
        dict(os.environ, **env, PRODUCTO_CONSOLE_URL=console),
        lambda: http_ok(f"{producto_address}/health"),
    )
    console_address = localconsole.start(
        env, wanted["console"], PRODUCTO.recorded_address(), luigid_address, history_address,
        proxied="proxy" in wanted,
    )  # fmt: skip
    proxy_address = ""
    if "proxy" in wanted:
        proxy_address = localproxy.start(
            wanted["proxy"], PRODUCTO.recorded_address(), luigid_address, history_address,
            console=console_address,
        )  # fmt: skip
    say("")
    if proxy_address:
        say(f"proxy (HTTPS, a login)  {proxy_address}/ (producto, /console/, /luigi/, /history/)")
    say(f"producto (the web app)  {PRODUCTO.recorded_address()}/")
    # Behind the proxy its actions need the proxy's login: who asked.
    console = f"{proxy_address}/console" if proxy_address else console_address
    say(f"console (run dates)     {console}/ (re-run and backfill from there)")
    say(f"luigid (Luigi's UI)     {luigid_address}/")
    say(
        f"Spark history server    {history_address}/ (the Spark Connect server: "
        f"{history_address}/?showIncomplete=true)"
    )
    say(f"Spark Connect server    {connect_address} (UFO_SPARK_REMOTE: warm Spark steps)")
    ui = connect.live_ui(CONNECT.log)
    if ui:
        say(f"  its live UI           {ui}/connect/ (each run's session, its statements and jobs)")
    say(f"run requests            {requests} (YAML, see the README)")
    say(f"logs                    {run_dir() / 'logs'}/")
    say(f"stop with: {stop_command()}")


def stop_command() -> str:
    """`make stop` for this run directory (it needs no ports)."""
    given = setting("run_dir")
    return "make stop" + ports.make_args(
        {"UFO_RUN_DIR": "" if given == Path(".run") else str(given)}
    )


def check_ports(wanted: dict[str, int], services: list[str]) -> None:
    """All ports as `make up` will (a running server of this run directory keeps its own), or
    those of ``services`` for a target that starts them itself (`make producto`)."""
    ours = {s.name: s.recorded_address() for s in SERVICES if s.running_pid() is not None}
    if not services:
        ports.check(wanted, running=ours)
        return
    for name in services:
        address = ours.get(name, "")
        if address.endswith(f":{wanted[name]}"):
            raise LocalStackError(
                f"`make up`'s {name} already serves {address}/ from {run_dir()}: use it, or run "
                "`make stop` first."
            )
    ports.check({n: wanted[n] for n in services}, command=f"make {services[0]}")


def stop() -> None:
    """Stop producto, the worker (which stops its run), luigid and the demo's PostgreSQL, and
    any process of a run the worker left; say what was stopped."""
    stopped = [s.name for s in SERVICES if s.stop()]
    left = leftover_runs(run_dir())
    if left:
        stop_leftover_runs(run_dir())
        stopped.append("a pipeline run")
        say(f"stopped a pipeline run the worker had left (pids {', '.join(map(str, left))})")
    server = LocalPostgres(run_dir() / "postgres")
    if server.running():
        server.stop()
        stopped.append("postgres")
        say(f"stopped postgres (pg_ctl stop, data in {server.data_dir})")
    if not stopped:
        say(f"nothing was running from {run_dir()}")


def running() -> list[str]:
    """What of the local product runs from the run directory now."""
    names = [s.name for s in SERVICES if s.running_pid() is not None]
    left = leftover_runs(run_dir())
    if left:
        names.append(f"a pipeline run of the worker (pids {', '.join(map(str, left))})")
    if LocalPostgres(run_dir() / "postgres").running():
        names.append("postgres")
    return names


def main(argv: list[str] | None = None) -> int:
    """Command line of the local product."""
    parser = argparse.ArgumentParser(
        prog="python -m etl.tools.localstack", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "command",
        choices=["up", "luigid", "check-ports", "postgres", "stop", "check-stopped"],
    )
    parser.add_argument(
        "services", nargs="*", help="check-ports: the servers whose ports to check (default: all)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(ports.BY_SERVICE)
    if unknown:
        parser.error(
            f"no such server: {', '.join(sorted(unknown))} (one of {', '.join(ports.BY_SERVICE)})"
        )
    try:
        wanted = ports.wanted()
        if not localproxy.wanted():  # the proxy runs only with users
            wanted.pop("proxy")
        if args.command == "up":
            up(wanted)
        elif args.command == "luigid":
            address = start_luigid(read_env(run_dir() / "demo.env"), wanted["luigid"])
            say(f"luigid: {address}/ (stop with: {stop_command()})")
        elif args.command == "check-ports":
            check_ports(wanted, args.services)
        elif args.command == "postgres":
            demo_postgres(read_env(run_dir() / "demo.env"))
        elif args.command == "stop":
            stop()
        else:
            names = running()
            if names:
                say(f"running from {run_dir()}: {', '.join(names)}; run `make stop` first.")
                return 1
    except UfoError as err:
        label = args.command if args.command != "check-ports" else (args.services or ["up"])[0]
        print(f"{label}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
