"""The pipeline image's own scripts, run here without Docker.

``entrypoint.py`` writes Luigi's and Spark's run-time configuration from the environment;
``fetch_jars.py`` downloads the S3A jars at build time and checks their SHA-1 (here against a
small Maven-layout server on 127.0.0.1, since Maven Central is not reachable);
``check_env.py`` (the check-env service) refuses the placeholders of .env.example.
"""

from __future__ import annotations

import configparser
import functools
import hashlib
import http.server
import importlib.util
import threading
from pathlib import Path

import pytest

IMAGE_DIR = Path(__file__).resolve().parents[2] / "docker-images" / "pipeline"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"image_{name}", IMAGE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


entrypoint = _load("entrypoint")
fetch_jars = _load("fetch_jars")
check_env = _load("check_env")

ENV = {
    "LUIGI_SCHEDULER_HOST": "luigid",
    "LUIGI_SCHEDULER_PORT": "8082",
    "LUIGID_DATABASE_URL": "postgresql+psycopg2://ufo:p%40ss@postgres:5432/luigid",
    "UFO_DATABASE_URL": "postgresql+psycopg2://ufo:s3cret@postgres:5432/ufo",
    "UFO_SHELL_DATABASE_URL": "postgresql://ufo_reader:r3ader@postgres:5432/ufo",
    "AWS_ENDPOINT_URL": "http://minio:9000",
    "AWS_REGION": "us-east-1",
}


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()  # BasicInterpolation, as luigi's parser
    parser.read_string(text)
    return parser


def test_luigi_config_points_at_luigid_and_records_history():
    cfg = _ini(entrypoint.luigi_config(ENV))
    assert cfg.get("core", "scheduler_host") == "luigid"
    assert cfg.get("core", "scheduler_port") == "8082"
    assert cfg.getboolean("scheduler", "record_task_history")
    assert cfg.get("task_history", "db_connection") == ENV["LUIGID_DATABASE_URL"]  # % escaped
    assert cfg.getint("resources", "spark_applications") == 1


def test_config_leaves_logging_to_the_pipeline_and_to_luigid():
    # /app/luigi.cfg hands the runs' logging to the etl package; luigid
    # (etl/worker/luigid_server.py) sets up its own, to its --logdir.
    cfg = _ini(entrypoint.luigi_config(ENV))
    assert not cfg.has_option("core", "no_configure_logging")


def _spark_conf(text: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def test_spark_defaults_point_s3a_at_the_store_and_jdbc_at_the_database():
    conf = _spark_conf(entrypoint.spark_defaults(ENV))
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "us-east-1"
    assert conf["spark.ufo.jdbc.url"] == "jdbc:postgresql://postgres:5432/ufo"
    assert conf["spark.ufo.jdbc.user"] == "ufo_reader"  # the shell's role, not the owner
    assert conf["spark.ufo.jdbc.password"] == "r3ader"
    assert not any("access.key" in k or "secret.key" in k for k in conf)  # S3 keys: env only


def test_spark_defaults_never_carry_the_database_owner():
    text = entrypoint.spark_defaults({k: v for k, v in ENV.items() if "SHELL" not in k})
    assert "s3cret" not in text and "spark.ufo.jdbc" not in text
    assert "s3cret" not in entrypoint.spark_defaults(ENV)


def test_spark_defaults_log_events_for_the_history_server_only_when_asked():
    assert "spark.eventLog" not in entrypoint.spark_defaults(ENV)
    conf = _spark_conf(entrypoint.spark_defaults({**ENV, "UFO_SPARK_EVENTS": "file:///ev"}))
    assert conf["spark.eventLog.enabled"] == "true"
    assert conf["spark.eventLog.dir"] == "file:///ev"
    assert conf["spark.eventLog.rolling.enabled"] == "true"


def test_spark_defaults_for_aws_s3_use_tls():
    env = {**ENV, "AWS_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com"}
    conf = _spark_conf(entrypoint.spark_defaults(env))
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"


def test_extra_spark_conf_is_appended_and_checked():
    conf = _spark_conf(entrypoint.spark_defaults({"UFO_SPARK_CONF": "spark.a=1 spark.b=x=y"}))
    assert conf["spark.a"] == "1" and conf["spark.b"] == "x=y"
    with pytest.raises(SystemExit, match="not spark.key=value"):
        entrypoint.spark_defaults({"UFO_SPARK_CONF": "oops"})


@pytest.fixture
def maven(tmp_path):
    """A Maven-layout HTTP server on 127.0.0.1 with one artifact; yields (url, root)."""
    root = tmp_path / "repo"
    jar_dir = root / "org" / "example" / "thing" / "1.2.3"
    jar_dir.mkdir(parents=True)
    data = b"not really a jar" * 1000
    (jar_dir / "thing-1.2.3.jar").write_bytes(data)
    (jar_dir / "thing-1.2.3.jar.sha1").write_text(hashlib.sha1(data).hexdigest() + "\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", jar_dir
    server.shutdown()
    server.server_close()


def test_fetch_jars_downloads_and_checks_sha1(maven, tmp_path):
    url, _ = maven
    dest = tmp_path / "jars"
    assert fetch_jars.main(["--repo", url, "--dest", str(dest), "org.example:thing:1.2.3"]) == 0
    assert (dest / "thing-1.2.3.jar").read_bytes().startswith(b"not really a jar")


def test_fetch_jars_refuses_a_corrupt_download(maven, tmp_path):
    url, jar_dir = maven
    (jar_dir / "thing-1.2.3.jar.sha1").write_text("0" * 40)
    dest = tmp_path / "jars"
    with pytest.raises(SystemExit, match="does not match"):
        fetch_jars.main(["--repo", url, "--dest", str(dest), "org.example:thing:1.2.3"])
    assert not (dest / "thing-1.2.3.jar").exists()


EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def _example_values() -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in EXAMPLE.read_text().splitlines() if "=" in ln[:40])
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_check_env_refuses_every_placeholder_of_env_example():
    found = check_env.problems(_example_values())
    # The console's two: its S3 secret is set, so both are checked.
    names = [*check_env.CHECKED, "CONSOLE_S3_SECRET_ACCESS_KEY", "CONSOLE_PROXY_KEY"]
    assert len(found) == len(names)
    for name, line in zip(names, found):
        assert line.startswith(f"{name} is still the placeholder 'change-me"), line


def test_check_env_accepts_real_secrets_and_names_each_problem():
    good = {"POSTGRES_PASSWORD": "x7Gq-2Lp_9", "UFO_READONLY_PASSWORD": "Rr8_kk-00z",
            "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}  # fmt: skip
    assert check_env.problems(good) == []
    bad = {**good, "POSTGRES_PASSWORD": "pa ss@word", "UFO_READONLY_PASSWORD": "short"}
    del bad["S3_SECRET_ACCESS_KEY"]
    assert check_env.problems(bad) == [
        "POSTGRES_PASSWORD may contain only letters, digits, '-' and '_'.",
        "UFO_READONLY_PASSWORD must have at least 8 characters.",
        "S3_SECRET_ACCESS_KEY is not set: set it in .env.",
    ]


def test_check_env_wants_bcrypt_users_for_the_proxy():
    from etl.tools.proxyuser import entry

    good = {"POSTGRES_PASSWORD": "x7Gq-2Lp_9", "UFO_READONLY_PASSWORD": "Rr8_kk-00z",
            "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}  # fmt: skip
    alice, bob = entry("alice", "a long passphrase"), entry("bob.k", "another passphrase")
    with_proxy = {**good, "COMPOSE_PROFILES": "minio,proxy",
                  "CONSOLE_S3_SECRET_ACCESS_KEY": "k3y-of-the-console",
                  "CONSOLE_PROXY_KEY": "Qe0-kp_4" * 5}  # fmt: skip
    assert check_env.problems({**with_proxy, "PROXY_USERS": f"{alice} {bob}"}) == []
    assert check_env.problems({**good, "PROXY_USERS": ""}) == []  # no proxy: no users needed
    [empty] = check_env.problems({**with_proxy, "PROXY_USERS": " "})
    assert empty.startswith("PROXY_USERS is empty but COMPOSE_PROFILES has `proxy`")
    # A plain password, or a hash that compose cut at a $ sign, is refused; never echoed.
    for wrong in ("alice:my-Secret-pw", alice[:20]):
        [line] = check_env.problems({**with_proxy, "PROXY_USERS": f"{wrong} {bob}"})
        assert "the password hash of user alice" in line and "proxyuser alice" in line
        assert wrong.split(":", 1)[1] not in line


@pytest.mark.parametrize("value,said", [
    ("", "CONSOLE_S3_SECRET_ACCESS_KEY is empty but COMPOSE_PROFILES has `proxy`"),
    ("change-me-console", "still the placeholder"),
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "must differ from S3_SECRET_ACCESS_KEY"),
    ("short", "at least 8 characters"),
])  # fmt: skip
def test_check_env_wants_a_secret_of_its_own_for_the_consoles_s3_user(value, said):
    from etl.tools.proxyuser import entry

    env = {"POSTGRES_PASSWORD": "x7Gq-2Lp_9", "UFO_READONLY_PASSWORD": "Rr8_kk-00z",
           "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "COMPOSE_PROFILES": "minio,proxy", "PROXY_USERS": entry("alice", "a passphrase"),
           "CONSOLE_S3_SECRET_ACCESS_KEY": value, "CONSOLE_PROXY_KEY": "Qe0-kp_4" * 5}  # fmt: skip
    [line] = check_env.problems(env)
    assert said in line
    without_proxy = {**env, "COMPOSE_PROFILES": "minio", "CONSOLE_S3_SECRET_ACCESS_KEY": ""}
    assert check_env.problems(without_proxy) == []


@pytest.mark.parametrize("value,said", [
    ("", "CONSOLE_PROXY_KEY must be 32 to 256"),
    ("change-me-console-proxy-key", "still the placeholder"),
    ("short-key", "CONSOLE_PROXY_KEY must be 32 to 256"),
    ("x" * 40 + '";\n  proxy_pass http://evil', "CONSOLE_PROXY_KEY must be 32 to 256"),
])  # fmt: skip
def test_check_env_wants_a_key_between_the_proxy_and_the_console(value, said):
    from etl.tools.proxyuser import entry

    env = {"POSTGRES_PASSWORD": "x7Gq-2Lp_9", "UFO_READONLY_PASSWORD": "Rr8_kk-00z",
           "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "COMPOSE_PROFILES": "minio,proxy", "PROXY_USERS": entry("alice", "a passphrase"),
           "CONSOLE_S3_SECRET_ACCESS_KEY": "k3y-of-the-console", "CONSOLE_PROXY_KEY": value}  # fmt: skip
    [line] = check_env.problems(env)
    assert said in line and (not value or value not in line or value.startswith("change-me"))
    assert check_env.problems({**env, "CONSOLE_PROXY_KEY": "Qe0-kp_4" * 5}) == []


def test_check_env_exits_1_with_the_reasons(monkeypatch, capsys):
    for name, value in _example_values().items():
        monkeypatch.setenv(name, value)
    assert check_env.main() == 1
    err = capsys.readouterr().err
    assert "ufo-check-env: error: POSTGRES_PASSWORD is still the placeholder" in err
    assert "refusing to start" in err
