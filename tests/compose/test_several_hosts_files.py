"""The files of a stack on several hosts (docker-images/several-hosts/), checked without Docker:

* ``main.yml`` (the main host's override of docker-compose.yml) and ``join.yml`` (a host of
  Spark workers or Luigi workers) are accepted by ``docker compose config``; every Spark
  process is in the host's network, advertises UFO_HOST_ADDRESS and fixed ports, and has the
  RPC secret; only the master, PostgreSQL, the S3 store and luigid are published on the host's
  address; no volume is shared and no secret is written in the files;
* ``ufo-check-join`` (check_join.py) refuses each wrong setting with what to fix, against real
  sockets; in a network namespace of its own with a private address (never the machine's own
  interfaces) it passes when every service answers there, and names the one that does not;
* ``ufo-check-env`` refuses a main host without the secret or the private network's word;
* the entrypoint turns SPARK_AUTH_SECRET into Spark's authentication and encryption.

The stack itself across hosts runs in tests/hosts (processes in network namespaces).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compose.test_image_scripts import IMAGE_DIR, _load, check_env, entrypoint
from tests.compose.test_static import COMPOSE_FILE, SECRETS, compose_config

REPO = Path(__file__).resolve().parents[2]
HOSTS_DIR = REPO / "docker-images" / "several-hosts"
MAIN, JOIN, JOIN_ENV = (
    HOSTS_DIR / "main.yml",
    HOSTS_DIR / "join.yml",
    HOSTS_DIR / "join.env.example",
)
ADDRESS = "10.0.0.5"  # the main host, as a user writes it
SECRET = secrets.token_hex(16)


check_join = _load("check_join")


def _config(*files: Path, env_file: Path | None = None, **env: str) -> dict:
    import json

    args = ["--format", "json"]
    if env_file is None:
        result = compose_config(*files, output=tuple(args), **env)
    else:  # join.yml has its own env file
        from tests.compose.test_static import _tool

        cmd = [_tool("docker-compose"), "--env-file", str(env_file)]
        for file in files:
            cmd += ["-f", str(file)]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        result = subprocess.run([*cmd, "config", *args], env={**clean, **env}, cwd=REPO,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def main_host() -> dict:
    return _config(
        COMPOSE_FILE, MAIN, COMPOSE_PROFILES="minio,connect,proxy", UFO_HOST_ADDRESS=ADDRESS,
        SPARK_AUTH_SECRET=SECRET, UFO_PRIVATE_NETWORK="yes", **SECRETS,
    )["services"]  # fmt: skip


def join_host(profile: str) -> dict:
    return _config(JOIN, env_file=JOIN_ENV, COMPOSE_PROFILES=profile, UFO_HOST_ADDRESS="10.0.0.6",
                   SPARK_MASTER_URL=f"spark://{ADDRESS}:7077", SPARK_AUTH_SECRET=SECRET)["services"]  # fmt: skip


SPARK_ON_MAIN = ("spark-master", "spark-worker", "spark-connect", "luigi_worker")


def test_the_main_host_runs_spark_in_its_network_with_the_secret():
    services = main_host()
    for name in SPARK_ON_MAIN:
        service = services[name]
        assert service["network_mode"] == "host", name
        assert service["environment"]["SPARK_LOCAL_IP"] == ADDRESS, name
        assert service["environment"]["SPARK_AUTH_SECRET"] == SECRET, name
        assert any(ADDRESS in entry and "postgres" in entry for entry in service["extra_hosts"])
    assert services["spark-master"]["environment"]["SPARK_MASTER_HOST"] == ADDRESS
    driver = services["luigi_worker"]["environment"]["UFO_SPARK_CONF"].split()
    assert f"spark.driver.host={ADDRESS}" in driver and "spark.driver.port=7079" in driver
    assert "spark.blockManager.port=7080" in driver
    # Spark Connect has no login: it stays on loopback, for this host's Luigi workers.
    connect = services["spark-connect"]["environment"]["UFO_SPARK_CONF"].split()
    assert "spark.connect.grpc.binding.address=127.0.0.1" in connect


def test_the_main_host_publishes_only_what_other_hosts_use_on_its_address():
    on_network = {
        (name, port["published"]): port["host_ip"]
        for name, service in main_host().items()
        for port in service.get("ports", [])
        if port["host_ip"] != "127.0.0.1"
    }
    assert on_network == {("postgres", "5432"): ADDRESS, ("minio", "9000"): ADDRESS,
                          ("luigid", "8082"): ADDRESS}  # fmt: skip


def test_a_joining_host_runs_in_its_network_behind_its_check():
    for profile, worker, check in (("spark", "spark-worker", "check-join-spark"),
                                   ("luigi", "luigi_worker", "check-join-luigi")):  # fmt: skip
        services = join_host(profile)
        assert set(services) == {worker, check}, profile
        assert services[worker]["depends_on"][check]["condition"] == (
            "service_completed_successfully"
        )
        assert services[check]["command"] == ["ufo-check-join", profile]
        for service in services.values():
            assert service["network_mode"] == "host"
            env = service["environment"]
            assert env["SPARK_LOCAL_IP"] == "10.0.0.6" and env["SPARK_AUTH_SECRET"] == SECRET
            assert env["UFO_SPARK_EVENTS"].startswith("s3a://")
            assert not service.get("ports")
            for volume in service.get("volumes", []):  # only this host's own
                assert volume["type"] == "volume" or volume.get("read_only"), volume
    worker = join_host("spark")["spark-worker"]["command"]
    assert worker[worker.index("--host") + 1] == "10.0.0.6"
    assert worker[worker.index("--port") + 1] == "7078"
    assert worker[-1] == f"spark://{ADDRESS}:7077"
    driver = join_host("luigi")["luigi_worker"]["environment"]["UFO_SPARK_CONF"].split()
    assert "spark.driver.host=10.0.0.6" in driver and "spark.driver.port=7079" in driver


def test_the_several_host_files_hold_no_secret():
    for path in (MAIN, JOIN, JOIN_ENV):
        text = path.read_text()
        assert SECRET not in text
    for line in JOIN_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#") and ("SECRET" in name or "DATABASE_URL" in name):
            assert "change-me" in value, line


def test_the_entrypoint_turns_the_secret_into_sparks_authentication_and_encryption():
    conf = entrypoint.spark_defaults({"SPARK_AUTH_SECRET": SECRET}).splitlines()
    assert "spark.authenticate true" in conf
    assert f"spark.authenticate.secret {SECRET}" in conf
    assert "spark.network.crypto.enabled true" in conf
    assert not any("authenticate" in line for line in entrypoint.spark_defaults({}).splitlines())


def test_check_env_wants_the_secret_and_a_private_network_on_a_main_host():
    good = {"POSTGRES_PASSWORD": "x7Gq-2Lp_9", "UFO_READONLY_PASSWORD": "Rr8_kk-00z",
            "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}  # fmt: skip
    assert check_env.problems(good) == []  # one host: nothing asked
    main = {**good, "UFO_HOST_ADDRESS": ADDRESS, "SPARK_AUTH_SECRET": SECRET,
            "UFO_PRIVATE_NETWORK": "yes"}  # fmt: skip
    assert check_env.problems(main) == []
    found = check_env.problems({**main, "SPARK_AUTH_SECRET": "short", "UFO_PRIVATE_NETWORK": ""})
    assert [line.split(" ", 1)[0] for line in found] == [
        "SPARK_AUTH_SECRET",
        "UFO_HOST_ADDRESS=10.0.0.5",
    ]
    assert "UFO_PRIVATE_NETWORK=yes" in found[1]
    [loopback] = check_env.problems({**main, "UFO_HOST_ADDRESS": "127.0.0.1"})
    assert "loopback" in loopback


# --- ufo-check-join against real sockets ---


def _join_env(**over: str) -> dict[str, str]:
    env = {
        "UFO_HOST_ADDRESS": "127.0.0.1", "SPARK_MASTER_URL": "spark://127.0.0.1:1",
        "SPARK_AUTH_SECRET": SECRET, "S3_ACCESS_KEY_ID": "ufo", "S3_SECRET_ACCESS_KEY": "s3-secret-x",
        "S3_BUCKET": "ufo-lake", "AWS_ENDPOINT_URL": "",
        "UFO_DATABASE_URL": "postgresql+psycopg2://ufo:pw@127.0.0.1:1/ufo",
        "LUIGI_SCHEDULER_HOST": "127.0.0.1", "LUIGI_SCHEDULER_PORT": "1",
    }  # fmt: skip
    return {**env, **over}


def test_check_join_names_each_missing_or_placeholder_setting():
    found = check_join.problems(
        "luigi", _join_env(SPARK_AUTH_SECRET="change-me", UFO_DATABASE_URL="")
    )
    assert found == [
        "SPARK_AUTH_SECRET still holds a change-me placeholder: set it in join.env.",
        "UFO_DATABASE_URL is not set: set it in join.env.",
    ]
    # join.env.example as copied: every placeholder refused, nothing reached for.
    values = {}
    for line in JOIN_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name] = value
    found = check_join.problems("luigi", values)
    assert [line.split(" ", 1)[0] for line in found] == [
        "UFO_HOST_ADDRESS", "SPARK_MASTER_URL", "SPARK_AUTH_SECRET", "S3_SECRET_ACCESS_KEY",
        "UFO_DATABASE_URL", "LUIGI_SCHEDULER_HOST",
    ]  # fmt: skip
    assert not any("ufo:change-me@" in line for line in found)  # a URL is never echoed


def test_check_join_refuses_a_loopback_or_foreign_address_and_a_short_secret():
    [loopback] = check_join.problems("spark", _join_env())[:1]
    assert loopback.startswith("UFO_HOST_ADDRESS=127.0.0.1 is a loopback address")
    found = check_join.problems(
        "spark", _join_env(UFO_HOST_ADDRESS="192.0.2.77", SPARK_AUTH_SECRET="x" * 8)
    )
    assert found[0].startswith("SPARK_AUTH_SECRET must have at least 16 characters")
    assert found[1].startswith("UFO_HOST_ADDRESS=192.0.2.77 is not an address of this host")
    [unknown] = check_join.host_address_problems("no-such-host.invalid")
    assert "does not resolve" in unknown


def test_check_join_refuses_plain_text_unless_the_network_is_private():
    with _listener("127.0.0.1") as port:
        env = _join_env(SPARK_MASTER_URL=f"spark://127.0.0.1:{port}",
                        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                        UFO_DATABASE_URL=f"postgresql+psycopg2://u:p@127.0.0.1:{port}/ufo",
                        LUIGI_SCHEDULER_PORT=str(port))  # fmt: skip
        plain = check_join.service_problems("luigi", env)
        assert [line.split(" ", 1)[0] for line in plain] == [
            f"AWS_ENDPOINT_URL=http://127.0.0.1:{port}",
            "UFO_DATABASE_URL",
            "luigid",
        ]
        assert check_join.service_problems("luigi", {**env, "UFO_PRIVATE_NETWORK": "yes"}) == []
        tls = {**env, "AWS_ENDPOINT_URL": f"https://127.0.0.1:{port}",
               "UFO_DATABASE_URL": env["UFO_DATABASE_URL"] + "?sslmode=require"}  # fmt: skip
        assert check_join.service_problems("spark", tls) == []


def test_check_join_names_a_service_that_does_not_answer():
    from etl.tools.ports import free_port

    closed = free_port()
    with _listener("127.0.0.1") as port:
        env = _join_env(SPARK_MASTER_URL=f"spark://127.0.0.1:{closed}", UFO_PRIVATE_NETWORK="yes",
                        UFO_DATABASE_URL=f"postgresql+psycopg2://u:p@127.0.0.1:{port}/ufo",
                        LUIGI_SCHEDULER_PORT=str(port), UFO_SPARK_REMOTE=f"sc://127.0.0.1:{closed}")  # fmt: skip
        found = check_join.service_problems("luigi", env)
    assert [line.split(":", 1)[0] for line in found] == ["SPARK_MASTER_URL", "UFO_SPARK_REMOTE"]
    assert "Connection refused" in found[0] and f"spark://127.0.0.1:{closed}" in found[0]
    [bad] = check_join.service_problems("spark", {**env, "SPARK_MASTER_URL": "10.0.0.5:7077"})
    assert "is not spark://HOST:PORT" in bad


def test_check_join_refuses_a_taken_fixed_port():
    with _listener("127.0.0.1") as port:
        found = check_join.port_problems("spark", {"SPARK_WORKER_PORT": str(port)}, "127.0.0.1")
    assert found == [f"port {port} (SPARK_WORKER_PORT) is taken on this host: stop what uses it "
                     "or choose another SPARK_WORKER_PORT."]  # fmt: skip
    same = check_join.port_problems(
        "luigi", {"SPARK_DRIVER_PORT": "7079", "SPARK_BLOCK_MANAGER_PORT": "7079"}, "127.0.0.1"
    )
    assert same == [
        "SPARK_BLOCK_MANAGER_PORT and SPARK_DRIVER_PORT are both 7079: give each its own."
    ]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and `ip`")
def test_check_join_passes_on_a_host_of_its_own_when_every_service_answers(tmp_path):
    """A network namespace with a private address stands for the joining host: the check runs
    there as the container runs it, against listeners on that address."""
    name = f"ufo-join-{secrets.token_hex(3)}"
    address = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.2"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run = ["ip", "netns", "exec", name]
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        # A veth pair with both ends inside: an interface with a private address of its own.
        subprocess.run([*run, "ip", "link", "add", "ufo0", "type", "veth", "peer", "name", "ufo1"],
                       check=True)  # fmt: skip
        subprocess.run([*run, "ip", "addr", "add", f"{address}/24", "dev", "ufo0"], check=True)
        for end in ("ufo0", "ufo1"):
            subprocess.run([*run, "ip", "link", "set", end, "up"], check=True)
        # The main host's services: one listener stands for each, on this namespace's address.
        server = subprocess.Popen(
            [*run, sys.executable, "-c",
             "import socket, sys, time\n"
             "socks = []\n"
             "for port in (7077, 9000, 5432, 8082):\n"
             "    s = socket.socket(); s.bind((sys.argv[1], port)); s.listen(); socks.append(s)\n"
             "print('up', flush=True); time.sleep(60)\n", address],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout.readline().strip() == "up"
            env = {"PATH": os.environ["PATH"], **_join_env(
                UFO_HOST_ADDRESS=address, SPARK_MASTER_URL=f"spark://{address}:7077",
                AWS_ENDPOINT_URL=f"http://{address}:9000", UFO_PRIVATE_NETWORK="yes",
                UFO_DATABASE_URL=f"postgresql+psycopg2://u:p@{address}:5432/ufo",
                LUIGI_SCHEDULER_HOST=address, LUIGI_SCHEDULER_PORT="8082")}  # fmt: skip
            script = [*run, sys.executable, str(IMAGE_DIR / "check_join.py")]
            for role in ("spark", "luigi"):
                ok = subprocess.run(
                    [*script, role], env=env, capture_output=True, text=True, timeout=60
                )
                assert ok.returncode == 0, ok.stderr
                assert f"joins spark://{address}:7077 as {address}" in ok.stdout
                assert SECRET not in ok.stdout + ok.stderr
            cut = {**env, "LUIGI_SCHEDULER_PORT": "8083"}
            failed = subprocess.run(
                [*script, "luigi"], env=cut, capture_output=True, text=True, timeout=60
            )
            assert failed.returncode == 1
            assert (
                f"ufo-check-join: error: LUIGI_SCHEDULER_HOST: {address}:8083 does not answer"
                in failed.stderr
            )
            assert SECRET not in failed.stderr
        finally:
            server.kill()
            server.wait(timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextlib.contextmanager
def _listener(host: str):
    with socket.socket() as sock:
        sock.bind((host, 0))
        sock.listen()
        yield sock.getsockname()[1]
