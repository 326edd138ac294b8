"""Every setting in one place: parsed once, from the environment or luigi.cfg, with clear errors."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from etl.errors import ConfigError
from etl.settings import SETTINGS, load_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No setting in the environment, and a luigi.cfg of the test's own."""
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.variable, raising=False)
    config = tmp_path / "luigi.cfg"
    config.write_text("")
    _use_config(monkeypatch, config)
    return config


def _use_config(monkeypatch, path: Path) -> None:
    import luigi.configuration

    monkeypatch.setattr(luigi.configuration.LuigiConfigParser, "_instance", None)
    monkeypatch.setattr(luigi.configuration.LuigiConfigParser, "_config_paths", [str(path)])


def test_defaults(clean_env):
    settings = load_settings()
    assert settings.source is None and settings.database_url is None
    assert settings.storage == "lake"
    assert settings.spark_master == "local[*]"
    assert settings.stale_attempts == dt.timedelta(hours=6)
    assert settings.reject_rows == 1000
    assert settings.db_connect_timeout == 10 and settings.db_statement_timeout == 600.0
    assert settings.log_dir is None
    assert settings.jvm_archive is True
    assert settings.jvm_cache == Path.home() / ".cache" / "ufo-pipeline" / "jvm"
    assert settings.claim_lease == 120.0
    assert settings.local_scheduler is False
    assert settings.schedule_time is None
    assert settings.timezone == ZoneInfo("UTC")
    assert settings.run_dir == Path(".run")
    assert settings.ingest == "auto"
    assert (settings.ingest_cluster_size, settings.ingest_piece_size) == (8 << 30, 128 << 20)


def test_values_are_parsed_to_their_types(clean_env, monkeypatch):
    monkeypatch.setenv("UFO_STALE_ATTEMPT_HOURS", "0.5")
    monkeypatch.setenv("UFO_REJECT_ROWS", "0")
    monkeypatch.setenv("UFO_DB_STATEMENT_TIMEOUT", "2.5")
    monkeypatch.setenv("UFO_JVM_ARCHIVE", "OFF")
    monkeypatch.setenv("UFO_LOCAL_SCHEDULER", "1")
    monkeypatch.setenv("UFO_SCHEDULE_TIME", "06:15")
    monkeypatch.setenv("UFO_TIMEZONE", "America/New_York")
    monkeypatch.setenv("UFO_LOG_DIR", "~/ufo-logs")
    monkeypatch.setenv("UFO_INGEST", "Cluster")
    monkeypatch.setenv("UFO_INGEST_CLUSTER_SIZE", "1.5 GB")
    monkeypatch.setenv("UFO_INGEST_PIECE_SIZE", "4096")
    settings = load_settings()
    assert settings.ingest == "cluster"
    assert (settings.ingest_cluster_size, settings.ingest_piece_size) == (3 << 29, 4096)
    assert settings.stale_attempts == dt.timedelta(minutes=30)
    assert settings.reject_rows == 0
    assert settings.db_statement_timeout == 2.5
    assert settings.jvm_archive is False
    assert settings.local_scheduler is True
    assert settings.schedule_time == dt.time(6, 15)
    assert settings.timezone == ZoneInfo("America/New_York")
    assert settings.log_dir == Path.home() / "ufo-logs"


def test_the_environment_wins_over_luigi_cfg_which_wins_over_the_default(clean_env, monkeypatch):
    clean_env.write_text("[ufo]\nstorage = s3://from-cfg/lake\nreject_rows = 7\n")
    _use_config(monkeypatch, clean_env)
    assert load_settings().storage == "s3://from-cfg/lake"
    assert load_settings().reject_rows == 7
    monkeypatch.setenv("UFO_STORAGE", "  /from/env  ")
    assert load_settings().storage == "/from/env"  # surrounding spaces are not part of it
    monkeypatch.setenv("UFO_STORAGE", "")
    assert load_settings().storage == "s3://from-cfg/lake"  # empty is unset


def test_settings_are_parsed_again_only_when_their_text_changed(clean_env, monkeypatch):
    first = load_settings()
    assert load_settings() is first  # nothing changed: the same settings, not parsed again
    monkeypatch.setenv("UFO_REJECT_ROWS", "5")
    assert load_settings().reject_rows == 5
    monkeypatch.setenv("UFO_REJECT_ROWS", "bad")
    for _ in range(2):  # a refused value is refused on every call
        with pytest.raises(ConfigError, match="UFO_REJECT_ROWS"):
            load_settings()
    monkeypatch.delenv("UFO_REJECT_ROWS")
    assert load_settings().reject_rows == 1000
    clean_env.write_text("[ufo]\nreject_rows = 9\n")
    _use_config(monkeypatch, clean_env)
    assert load_settings().reject_rows == 9  # luigi.cfg read again


def test_a_luigi_cfg_value_from_the_environment_follows_it(clean_env, monkeypatch):
    clean_env.write_text("[ufo]\nstorage = ${LAKE_ROOT}/lake\n")
    _use_config(monkeypatch, clean_env)
    monkeypatch.setenv("LAKE_ROOT", "/one")
    assert load_settings().storage == "/one/lake"
    monkeypatch.setenv("LAKE_ROOT", "/two")
    assert load_settings().storage == "/two/lake"


LAYOUT = """
[layouts.NAME]
columns = ["report_id", "observed_at", "region", "entered_on"]
posted = { column = "entered_on", format = "YYYY-MM-DD" }
sighting = { column = "observed_at", format = "YYYY-MM-DD" }
state = { column = "region" }
"""


def test_an_edited_layouts_file_is_read_again(clean_env, monkeypatch, tmp_path):
    declared = tmp_path / "layouts.toml"
    monkeypatch.setenv("UFO_LAYOUTS", str(declared))

    def declare(name: str) -> None:
        declared.write_text(LAYOUT.replace("NAME", name))

    declare("first")
    assert [layout.name for layout in load_settings().layouts] == ["first"]
    declare("second_one")  # another size: seen even within the file system's time resolution
    assert [layout.name for layout in load_settings().layouts] == ["second_one"]
    declared.unlink()
    with pytest.raises(ConfigError, match="there is no file"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("UFO_REJECT_ROWS", "-1", "expected a whole number of rows, 0 for none"),
        ("UFO_REJECT_ROWS", "many", "expected a whole number of rows, 0 for none"),
        ("UFO_STALE_ATTEMPT_HOURS", "six", "expected a number of hours, 0 or more"),
        ("UFO_STALE_ATTEMPT_HOURS", "-1", "expected a number of hours, 0 or more"),
        ("UFO_CLAIM_LEASE", "0", "expected a positive number of seconds"),
        ("UFO_DB_CONNECT_TIMEOUT", "2.5", "expected a positive whole number of seconds"),
        ("UFO_DB_STATEMENT_TIMEOUT", "nan", "expected a positive number of seconds"),
        ("UFO_JVM_ARCHIVE", "maybe", "expected one of 1, on, true, yes, 0, off, false, no"),
        ("UFO_SCHEDULE_TIME", "6 am", "expected a time of day, HH:MM"),
        ("UFO_TIMEZONE", "Mars/Olympus", "expected an IANA time zone"),
        ("UFO_INGEST", "spark", "expected auto, local or cluster"),
        ("UFO_INGEST_PIECE_SIZE", "0", "expected a size above 0"),
        ("UFO_INGEST_PIECE_SIZE", "64 MiB", "expected a size above 0"),
        ("UFO_INGEST_CLUSTER_SIZE", "-1GB", "expected a size above 0"),
        ("UFO_INGEST_CLUSTER_SIZE", "2PB", "expected a size above 0"),
    ],
)
def test_a_bad_value_is_refused_at_once_naming_the_variable(
    clean_env, monkeypatch, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r} (from {variable}) is not valid: ")
    assert expected in message


def test_a_bad_value_in_luigi_cfg_names_the_option(clean_env, monkeypatch):
    clean_env.write_text("[ufo]\nreject_rows = lots\n")
    _use_config(monkeypatch, clean_env)
    with pytest.raises(ConfigError, match=r"from luigi.cfg \[ufo\] reject_rows"):
        load_settings()


def test_missing_source_and_database_say_what_to_set(clean_env):
    settings = load_settings()
    with pytest.raises(ConfigError, match="set UFO_SOURCE"):
        settings.require_source()
    with pytest.raises(ConfigError, match="set UFO_DATABASE_URL"):
        settings.require_database_url()


def test_a_bad_setting_stops_a_luigi_run_before_any_task_runs(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "UFO_STORAGE": str(tmp_path / "lake"),
        "UFO_SOURCE": str(tmp_path / "none.csv"),
        "UFO_STALE_ATTEMPT_HOURS": "soon",
    }
    done = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "etl", "ReadUFOs", "--date", "2019-03-29",
         "--local-scheduler", "--no-lock"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "UFO_STALE_ATTEMPT_HOURS='soon' (from UFO_STALE_ATTEMPT_HOURS) is not valid" in (
        done.stdout + done.stderr
    )
    assert not (tmp_path / "lake" / "_attempts").exists()


def settings_page_table() -> list[tuple[str, str, str]]:
    """(variable, option, default) of each row of docs/reference/settings.md's table."""
    text = (REPO / "docs" / "reference" / "settings.md").read_text()
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows.append(tuple(re.sub(r"^`|`$", "", c) for c in cells[:3]))
    return rows


def test_the_settings_page_lists_exactly_these_settings():
    # Written out from SETTINGS here, not with the generator's own table code.
    expected = [
        (s.variable, s.option or "", s.default if s.default is not None else "(none)")
        for s in SETTINGS.values()
    ]
    assert settings_page_table() == expected


def test_the_committed_settings_page_is_the_generated_one():
    from etl.tools import docs

    assert (REPO / "docs" / "reference" / "settings.md").read_text() == docs.settings_page(), (
        "docs/reference/settings.md is not current: run `python -m etl.tools.docs`"
    )


def test_no_module_reads_a_setting_past_the_settings_module():
    # Settings are read in etl/settings.py only; other UFO_ variables in etl are written, not
    # read (the demo exports its choices to the runs it starts).
    offenders = []
    for path in sorted((REPO / "etl").rglob("*.py")):
        if path.name == "settings.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(
                r"environ(\.get)?[\[(]\s*[\"'](UFO_|SPARK_MASTER)", line
            ) and not re.search(r"environ\[[^\]]+\]\s*=[^=]", line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_auto_reads_on_the_cluster_from_the_size_on(clean_env, monkeypatch):
    from etl.pipeline.ingest import on_cluster

    monkeypatch.setenv("UFO_INGEST_CLUSTER_SIZE", "1MB")
    monkeypatch.setenv("SPARK_MASTER", "spark://spark-master:7077")
    settings = load_settings()
    assert not on_cluster(settings, (1 << 20) - 1) and on_cluster(settings, 1 << 20)
    monkeypatch.setenv("SPARK_MASTER", "local[*]")  # Spark on this machine alone: never
    assert not on_cluster(load_settings(), 1 << 40)
    monkeypatch.setenv("UFO_SPARK_REMOTE", "sc://spark-connect:15002")  # a server's executors
    assert on_cluster(load_settings(), 1 << 20)
    monkeypatch.setenv("UFO_INGEST", "local")
    assert not on_cluster(load_settings(), 1 << 40)
    monkeypatch.setenv("UFO_INGEST", "cluster")
    assert on_cluster(load_settings(), 1)
