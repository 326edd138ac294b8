#!/opt/venv/bin/python
"""Container entrypoint: write the run-time configuration from the environment, then exec.

Secrets reach the containers as environment variables only; this writes them into files under
the user's home at start-up (never into an image layer):

* ``$LUIGI_CONFIG_PATH``: the scheduler address, luigid's task-history database and state path;
  read after ``/app/luigi.cfg``, so it overrides it.
* ``$SPARK_CONF_DIR/spark-defaults.conf``: the image's defaults plus the S3A endpoint and region
  (from ``AWS_ENDPOINT_URL``, ``AWS_REGION``), the event log (``UFO_SPARK_EVENTS``, which the
  history server reads), ``spark.ufo.jdbc.*`` for the interactive shell
  (from ``UFO_SHELL_DATABASE_URL`` only: compose gives it the read-only role, never the owner
  that ``UFO_DATABASE_URL`` carries) and any ``key=value`` pairs listed (one per line or
  separated by spaces) in ``UFO_SPARK_CONF``; with ``SPARK_AUTH_SECRET`` (a stack on several
  hosts), Spark's authentication and encryption of its RPC, the same secret on every host.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

IMAGE_SPARK_DEFAULTS = Path("/etc/ufo/spark-defaults.conf")


def _ini(value: str) -> str:
    return value.replace("%", "%%")  # luigi's config parser interpolates %(...)s


def luigi_config(env: dict[str, str]) -> str:
    lines = [
        "# Written at container start by ufo-entrypoint from the environment.",
        "[core]",
        f"scheduler_host = {env.get('LUIGI_SCHEDULER_HOST', 'luigid')}",
        f"scheduler_port = {env.get('LUIGI_SCHEDULER_PORT', '8082')}",
        "[spark]",
        "spark-submit = /opt/venv/bin/spark-submit",
        "deploy-mode = client",
        "[scheduler]",
        "record_task_history = true",
        f"state_path = {env.get('LUIGID_STATE_PATH', '/var/lib/luigid/luigi-state.pickle')}",
        "[resources]",
        "spark_applications = 1",
    ]
    history = env.get("LUIGID_DATABASE_URL")
    if history:
        lines += ["[task_history]", f"db_connection = {_ini(history)}"]
    return "\n".join(lines) + "\n"


def spark_defaults(env: dict[str, str]) -> str:
    lines = [IMAGE_SPARK_DEFAULTS.read_text() if IMAGE_SPARK_DEFAULTS.exists() else ""]
    lines.append("# From the environment at container start:")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        lines.append(f"spark.hadoop.fs.s3a.endpoint {endpoint}")
        ssl = "false" if endpoint.startswith("http://") else "true"
        lines.append(f"spark.hadoop.fs.s3a.connection.ssl.enabled {ssl}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        lines.append(f"spark.hadoop.fs.s3a.endpoint.region {region}")
    # Not UFO_DATABASE_URL: this file is readable by every Spark application of the container,
    # and the pipeline's own jobs never use JDBC.
    database = env.get("UFO_SHELL_DATABASE_URL")
    if database:
        url = urlsplit(database)
        if url.hostname:
            port = f":{url.port}" if url.port else ""
            lines.append(f"spark.ufo.jdbc.url jdbc:postgresql://{url.hostname}{port}{url.path}")
            lines.append("spark.ufo.jdbc.driver org.postgresql.Driver")
        if url.username:
            lines.append(f"spark.ufo.jdbc.user {url.username}")
        if url.password:
            # Spark redacts keys containing "password" in its UI and logs.
            lines.append(f"spark.ufo.jdbc.password {url.password}")
    secret = env.get("SPARK_AUTH_SECRET")
    if secret:  # several hosts: Spark's RPC between them is authenticated and encrypted
        lines.append("spark.authenticate true")
        lines.append(f"spark.authenticate.secret {secret}")  # redacted in Spark's UI and logs
        lines.append("spark.network.crypto.enabled true")
    events = env.get("UFO_SPARK_EVENTS")
    if events:  # every Spark application of the container: the pipeline's, Connect's, a shell's
        lines.append("spark.eventLog.enabled true")
        lines.append(f"spark.eventLog.dir {events}")
        lines.append("spark.eventLog.rolling.enabled true")
        lines.append("spark.eventLog.rolling.maxFileSize 64m")
    for pair in env.get("UFO_SPARK_CONF", "").split():
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("spark."):
            raise SystemExit(f"ufo-entrypoint: UFO_SPARK_CONF: {pair!r} is not spark.key=value")
        lines.append(f"{key} {value}")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def main(argv: list[str]) -> None:
    env = dict(os.environ)
    if not argv:
        argv = ["ufo-run-pipeline"]
    config = luigi_config(env)
    write_private(Path(env.get("LUIGI_CONFIG_PATH", "/home/ufo/conf/luigi.cfg")), config)
    conf_dir = Path(env.get("SPARK_CONF_DIR", "/home/ufo/conf/spark"))
    write_private(conf_dir / "spark-defaults.conf", spark_defaults(env))
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
