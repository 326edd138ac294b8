"""The ports the local product opens on 127.0.0.1: one make variable (or environment variable)
for each server, read here and nowhere else.

    PORT                producto (the web app)             8000
    LUIGID_PORT         luigid (Luigi's scheduler and UI)  8082
    SPARK_HISTORY_PORT  Spark's history server             18080
    SPARK_CONNECT_PORT  the Spark Connect server           15002
    PROXY_PORT          the proxy, when PROXY_USERS is set 8443
    CONSOLE_PORT        the console (run dates and fixes) 8090

The Spark servers' names are docker-compose.yml's (``.env``), so one name means one server in
both. ``make up`` checks every port before it starts anything; the demo's PostgreSQL is not
here: it takes a free port of its own, kept in ``demo.env``. A new server is one more line in
``PORTS`` and its variable in the Makefile's ``export`` line.
"""

from __future__ import annotations

import os
import random
import shlex
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from etl.tools.services import LocalStackError

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Port:
    """One server's port: its service name (pid file), variable, default and what it serves."""

    service: str
    variable: str
    default: int
    serves: str


PORTS = (
    Port("producto", "PORT", 8000, "producto, the web app"),
    Port("luigid", "LUIGID_PORT", 8082, "luigid, Luigi's scheduler and UI"),
    Port("history", "SPARK_HISTORY_PORT", 18080, "Spark's history server"),
    Port("connect", "SPARK_CONNECT_PORT", 15002, "the Spark Connect server"),
    Port("proxy", "PROXY_PORT", 8443, "the proxy (started when PROXY_USERS is set)"),
    Port("console", "CONSOLE_PORT", 8090, "the console: run dates, their runs and fixes"),
)
BY_SERVICE = {p.service: p for p in PORTS}


def wanted(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Each service's port from its variable (default when unset or empty)."""
    env = os.environ if env is None else env
    found = {}
    for port in PORTS:
        text = env.get(port.variable, "").strip()
        try:
            number = int(text) if text else port.default
        except ValueError:
            number = 0
        if not 0 < number < 65536:
            raise LocalStackError(
                f"{port.variable}={text!r} is not a port: give a number from 1 to 65535."
            )
        found[port.service] = number
    return found


def port(service: str, env: Mapping[str, str] | None = None) -> int:
    """The port in force for one service."""
    return wanted(env)[service]


def changed(env: Mapping[str, str] | None = None) -> str:
    """The port variables that differ from their defaults, as make arguments (`` PORT=9000``),
    so that a printed hint repeats them."""
    ports = wanted(env)
    return "".join(
        f" {p.variable}={ports[p.service]}" for p in PORTS if ports[p.service] != p.default
    )


def make_args(env: Mapping[str, str] | None = None) -> str:
    """The make arguments a printed hint repeats: a run directory other than ``.run`` and the
    ports in force, so that the command it shows reaches what this one started."""
    env = os.environ if env is None else env
    given = env.get("UFO_RUN_DIR", "")
    run_dir = f" UFO_RUN_DIR={shlex.quote(given)}" if given and Path(given) != Path(".run") else ""
    return run_dir + changed(env)


_HANDED_OUT: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux's default when it
    cannot be read)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port(host: str = HOST) -> int:
    """A port nothing holds on ``host`` now, for a server that binds it a moment later.

    Taken below the kernel's ephemeral range (from 20000 up, clear of every default above): a
    port the kernel hands out itself (``bind(0)``) comes from the range it also numbers outgoing
    connections from, so any client connecting in the moment between (a database driver, a
    Spark executor) can take it first. Not the same port twice in one process."""
    low, high = 20000, ephemeral_range()[0]
    if high - low < 1000:  # an unusual kernel setting: fall back to the kernel's choice
        with socket.socket() as probe:
            probe.bind((host, 0))
            return probe.getsockname()[1]
    pick = random.SystemRandom()
    for _ in range(200):
        number = pick.randrange(low, high)
        if number in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, number))
            except OSError:
                continue
        _HANDED_OUT.add(number)
        return number
    raise LocalStackError(f"no free port found on {host} between {low} and {high}")


def taken(number: int) -> bool:
    """Whether a program already listens on 127.0.0.1:``number``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, number)) == 0


def check(ports: Mapping[str, int], running: Iterable[str] = (), command: str = "make up") -> None:
    """Refuse, naming each variable to change, when two servers share a port or a port of a
    server that is not ``running`` yet is taken; nothing is started before this passes."""
    chosen = [(BY_SERVICE[service], number) for service, number in ports.items()]
    for i, (first, number) in enumerate(chosen):
        for second, other in chosen[i + 1 :]:
            if number == other:
                raise LocalStackError(
                    f"nothing started: {first.variable} and {second.variable} are both {number}: "
                    f"give each server a port of its own, e.g. {command} {second.variable}=N."
                )
    busy = [(p, n) for p, n in chosen if p.service not in set(running) and taken(n)]
    if len(busy) == 1:
        [(first, number)] = busy
        raise LocalStackError(
            f"nothing started: port {number} ({first.variable}, {first.serves}) is taken by "
            f"another program: stop it, or choose a free port: {command} {first.variable}=N."
        )
    if busy:
        listed = "".join(f"\n  {p.variable}={n}  ({p.serves})" for p, n in busy)
        raise LocalStackError(
            f"nothing started: these ports are taken by other programs:{listed}\n"
            f"Stop them, or choose free ports, e.g. {command} "
            + " ".join(f"{p.variable}=N{i}" for i, (p, _) in enumerate(busy, start=1))
        )
