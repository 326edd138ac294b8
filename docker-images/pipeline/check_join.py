#!/opt/venv/bin/python
"""Check a host that joins a stack running on another host, before it starts anything.

docker-images/several-hosts/join.yml runs this as its one-shot ``check-join`` service; the Spark
or Luigi workers of that file wait for it. It exits 1 with one line per problem, each naming the
setting to fix in join.env:

    ufo-check-join spark     # a host of Spark workers
    ufo-check-join luigi     # a host of Luigi workers (the Spark driver runs here)

It checks that every setting is given and is not a placeholder, that UFO_HOST_ADDRESS is an
address of this host that other hosts can reach (not loopback), that the fixed ports the other
hosts connect to are free here, and that every service it names answers: the Spark master, the
S3 store, and for Luigi workers the database, luigid and the Spark Connect server. Plain-text
traffic to PostgreSQL, S3 or luigid is refused unless UFO_PRIVATE_NETWORK=yes says the hosts
share a private network (docs/how-to/several-hosts.md). Standard library only.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from urllib.parse import urlsplit

TIMEOUT = 5.0  # seconds for each service to answer
MIN_SECRET = 16
#: The fixed ports other hosts connect to, by role, with their defaults (join.env.example).
PORTS = {
    "spark": {"SPARK_WORKER_PORT": 7078, "SPARK_WORKER_WEBUI_PORT": 8081},
    "luigi": {"SPARK_DRIVER_PORT": 7079, "SPARK_BLOCK_MANAGER_PORT": 7080},
}
REQUIRED = {
    "spark": (
        "UFO_HOST_ADDRESS",
        "SPARK_MASTER_URL",
        "SPARK_AUTH_SECRET",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
    ),  # fmt: skip
    "luigi": (
        "UFO_HOST_ADDRESS",
        "SPARK_MASTER_URL",
        "SPARK_AUTH_SECRET",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_BUCKET",
        "UFO_DATABASE_URL",
        "LUIGI_SCHEDULER_HOST",
    ),  # fmt: skip
}


def answers(host: str, port: int, timeout: float = TIMEOUT) -> str | None:
    """None when ``host:port`` accepts a TCP connection, else why not (a few words)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror:
        return f"the name {host} does not resolve"
    except TimeoutError:
        return f"no answer in {timeout:g} s"
    except OSError as err:
        return err.strerror or str(err)
    return None


def host_address_problems(address: str) -> list[str]:
    """UFO_HOST_ADDRESS: an address of this host, reachable from others (not loopback)."""
    try:
        resolved = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror:
        return [f"UFO_HOST_ADDRESS={address} does not resolve: give this host's IP address."]
    if ipaddress.ip_address(resolved).is_loopback:
        return [
            f"UFO_HOST_ADDRESS={address} is a loopback address, which other hosts cannot "
            "reach: give this host's address on the network the hosts share."
        ]
    family = socket.AF_INET6 if ":" in resolved else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((resolved, 0))
        except OSError:
            return [
                f"UFO_HOST_ADDRESS={address} is not an address of this host: give one of its "
                "own (`ip -brief address` lists them)."
            ]
    return []


def port_problems(role: str, env: dict[str, str], address: str) -> list[str]:
    """The fixed ports of ``role``: numbers, distinct, and free on this host."""
    found, seen = [], {}
    for name, default in PORTS[role].items():
        text = env.get(name, "").strip() or str(default)
        if not text.isdigit() or not 0 < int(text) < 65536:
            found.append(f"{name}={text!r} is not a port: give a number from 1 to 65535.")
            continue
        number = int(text)
        if number in seen:
            found.append(f"{name} and {seen[number]} are both {number}: give each its own.")
            continue
        seen[number] = name
        with socket.socket() as probe:
            try:
                probe.bind((address, number))
            except OSError:
                found.append(
                    f"port {number} ({name}) is taken on this host: stop what uses it or "
                    f"choose another {name}."
                )
    return found


def service_problems(role: str, env: dict[str, str]) -> list[str]:
    """Each service the role uses, reached over the network; plain text only when allowed."""
    private = env.get("UFO_PRIVATE_NETWORK", "").strip().lower() in ("yes", "1", "true")
    allow = "set UFO_PRIVATE_NETWORK=yes if the hosts share a private network"
    targets: list[tuple[str, str, str | None, int | None]] = []  # setting, shown, host, port
    master = urlsplit(env["SPARK_MASTER_URL"])
    if master.scheme != "spark" or not master.hostname:
        return [f"SPARK_MASTER_URL={env['SPARK_MASTER_URL']!r} is not spark://HOST:PORT."]
    targets.append(("SPARK_MASTER_URL", env["SPARK_MASTER_URL"], master.hostname,
                    master.port or 7077))  # fmt: skip
    found = []
    endpoint = env.get("AWS_ENDPOINT_URL", "").strip()
    if endpoint:  # empty: AWS S3 itself, over HTTPS
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            return [f"AWS_ENDPOINT_URL={endpoint!r} is not an http(s):// URL."]
        if url.scheme == "http" and not private:
            found.append(f"AWS_ENDPOINT_URL={endpoint} is plain HTTP: use https://, or {allow}.")
        default = 443 if url.scheme == "https" else 80
        targets.append(("AWS_ENDPOINT_URL", endpoint, url.hostname, url.port or default))
    if role == "luigi":
        database = urlsplit(env["UFO_DATABASE_URL"])
        if not database.hostname:
            return found + ["UFO_DATABASE_URL has no host: give postgresql+psycopg2://USER:"
                            "PASSWORD@HOST:5432/DB."]  # fmt: skip
        if "sslmode=require" not in database.query and "sslmode=verify" not in database.query:
            if not private:
                found.append(
                    f"UFO_DATABASE_URL reaches {database.hostname} without TLS: add "
                    f"?sslmode=require (or verify-full), or {allow}."
                )
        targets.append(("UFO_DATABASE_URL", f"{database.hostname}:{database.port or 5432}",
                        database.hostname, database.port or 5432))  # fmt: skip
        luigid = env["LUIGI_SCHEDULER_HOST"]
        if not private:
            found.append(f"luigid ({luigid}) speaks plain HTTP and has no login: {allow}.")
        luigid_port = int(env.get("LUIGI_SCHEDULER_PORT") or 8082)
        targets.append(("LUIGI_SCHEDULER_HOST", f"{luigid}:{luigid_port}", luigid, luigid_port))
        remote = env.get("UFO_SPARK_REMOTE", "").strip()
        if remote:
            url = urlsplit(remote)
            targets.append(("UFO_SPARK_REMOTE", remote, url.hostname, url.port or 15002))
    for name, shown, host, port in targets:
        why = answers(host, port)
        if why:
            found.append(f"{name}: {shown} does not answer ({why}): check the address, that "
                         "it is up, and that the main host opens that port to this one.")  # fmt: skip
    return found


def problems(role: str, env: dict[str, str]) -> list[str]:
    """Everything wrong with ``env`` for a host of ``role``; empty when it may start."""
    found = []
    for name in REQUIRED[role]:
        value = env.get(name, "").strip()
        if not value:
            found.append(f"{name} is not set: set it in join.env.")
        elif "change-me" in value.lower():  # never echoed: a URL may hold a real password
            found.append(f"{name} still holds a change-me placeholder: set it in join.env.")
    if found:
        return found
    secret = env["SPARK_AUTH_SECRET"]
    if len(secret) < MIN_SECRET:
        found.append(f"SPARK_AUTH_SECRET must have at least {MIN_SECRET} characters "
                     "(the same on every host of the stack).")  # fmt: skip
    address_problems = host_address_problems(env["UFO_HOST_ADDRESS"])
    found += address_problems
    if not address_problems:
        found += port_problems(role, env, env["UFO_HOST_ADDRESS"])
    return found + service_problems(role, env)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in REQUIRED:
        print("usage: ufo-check-join spark|luigi", file=sys.stderr)
        return 2
    role = argv[0]
    found = problems(role, dict(os.environ))
    for line in found:
        print(f"ufo-check-join: error: {line}", file=sys.stderr)
    if found:
        print(f"ufo-check-join: this host's {role} workers are not started; fix join.env and "
              "run `docker compose ... up -d` again.", file=sys.stderr)  # fmt: skip
        return 1
    print(f"ufo-check-join: {env_summary(role, os.environ)}")
    return 0


def env_summary(role: str, env) -> str:
    """One line of what this host joins (no secret in it)."""
    joined = f"joins {env['SPARK_MASTER_URL']} as {env['UFO_HOST_ADDRESS']}"
    return f"{role} host {joined}; every service it needs answers"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
