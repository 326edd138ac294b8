"""Every setting the product reads: the environment variable first, then luigi.cfg's ``[ufo]``.

Each setting is declared once in ``SETTINGS``: its variable, its luigi.cfg option (if it has
one), its default, how its text is parsed and what it means. ``load_settings()`` reads them all
at once (never at import) and raises ConfigError naming the variable for a value it cannot
parse, so a bad setting stops a run at its start instead of halfway. The settings reference,
docs/reference/settings.md, is generated from ``SETTINGS`` (``python -m etl.tools.docs``); a
test keeps the two the same.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import luigi.configuration

from etl import parsers
from etl.errors import ConfigError, shown
from etl.redact import redact_text
from spark_jobs.layouts import Layout

SECTION = "ufo"


# --- the settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: where it is read from, its default (as text) and how it is parsed."""

    variable: str
    option: str | None  # in luigi.cfg's [ufo] section; None: the environment only
    default: str | None  # None: unset unless given
    parse: Callable[[str], Any]
    meaning: str


SETTINGS: dict[str, Setting] = {
    "source": Setting(
        "UFO_SOURCE", "source", None, parsers.text,
        "the raw report file: a path, `file://`, `http(s)://` or `s3://` URL; plain or gzip; "
        "a local file is read in place and must not change meanwhile (the run fails, saying so)",
    ),
    "storage": Setting(
        "UFO_STORAGE", "storage", "lake", parsers.text,
        "the data-lake root: a local directory, or `s3://bucket/prefix`",
    ),
    "database_url": Setting(
        "UFO_DATABASE_URL", "database_url", None, parsers.text,
        "SQLAlchemy URL of the PostgreSQL database (`postgresql://` uses psycopg2)",
    ),
    "layouts": Setting(
        "UFO_LAYOUTS", "layouts", None, parsers.layouts,
        "a TOML file declaring more source layouts (see the data contract); the built-in "
        "`index`, `export` and `kaggle` layouts are always known",
    ),
    "spark_master": Setting(
        "SPARK_MASTER", "spark_master", "local[*]", parsers.text,
        "where AggregateUFOsByState runs: `local[*]` or `spark://host:7077`",
    ),
    "ingest": Setting(
        "UFO_INGEST", "ingest", "auto", parsers.ingest,
        "where ReadUFOs parses the source: `local` (on this machine), `cluster` (cut into "
        "pieces at record boundaries, the pieces parsed by Spark's executors in parallel) or "
        "`auto` (the cluster for a source of `UFO_INGEST_CLUSTER_SIZE` or more, unless Spark runs "
        "on this machine alone: a local `SPARK_MASTER` and no `UFO_SPARK_REMOTE`)",
    ),
    "ingest_cluster_size": Setting(
        "UFO_INGEST_CLUSTER_SIZE", "ingest_cluster_size", "8GB", parsers.size,
        "the size of a (decompressed) source from which `auto` parses it on the cluster",
    ),
    "ingest_piece_size": Setting(
        "UFO_INGEST_PIECE_SIZE", "ingest_piece_size", "128MB", parsers.size,
        "the size of a piece of a source parsed on the cluster: one Spark task, one Parquet file",
    ),
    "spark_remote": Setting(
        "UFO_SPARK_REMOTE", "spark_remote", None, parsers.remote,
        "run AggregateUFOsByState against this long-running Spark Connect server "
        "(`sc://host:15002`) instead of a new Spark application per run (see \"Cold and warm "
        "Spark\")",
    ),
    "spark_ui_port": Setting(
        "UFO_SPARK_UI_PORT", "spark_ui_port", "4040", parsers.port,
        "the port of a cold Spark step's web UI while it runs (Spark takes the next free one "
        "when it is taken; `0`: any free port)",
    ),
    "spark_events": Setting(
        "UFO_SPARK_EVENTS", "spark_events", None, parsers.text,
        "keep each Spark application's event log (rolled at 64 MB) in this directory or URI "
        "(`file:`, `s3a://`), where Spark's history server reads them",
    ),
    "spark_history": Setting(
        "UFO_SPARK_HISTORY_URL", "spark_history_url", None, parsers.text,
        "the address of that history server: a finished Spark step's link (luigid's tracking "
        "URL, the `done:` line) points at its application there",
    ),
    "console_url": Setting(
        "UFO_CONSOLE_URL", "console_url", None, parsers.text,
        "the operations console's address (`http://127.0.0.1:8090`; `/console` behind the "
        "proxy): luigid's page of a running task links to its run date there (its tracking "
        "URL; AggregateUFOsByState's links to its Spark application instead)",
    ),
    "stale_attempts": Setting(
        "UFO_STALE_ATTEMPT_HOURS", "stale_attempt_hours", "6", parsers.hours,
        "hours after which an attempt directory nothing published (an interrupted run) is "
        "removed by the next run",
    ),
    "reject_rows": Setting(
        "UFO_REJECT_ROWS", "reject_rows", "1000", parsers.rows,
        "rejected rows of each reason stored in the database per run date "
        "(`reject_samples`); `0` stores none; the lake keeps all of them",
    ),
    "checks": Setting("UFO_CHECKS", "checks", None, parsers.text, "the snapshot checks' thresholds, "
                      "`NAME=VALUE,...`: see [snapshot checks](../concepts/snapshot-checks.md)"),
    "db_connect_timeout": Setting(
        "UFO_DB_CONNECT_TIMEOUT", "db_connect_timeout", "10", parsers.whole_seconds,
        "seconds to wait for a connection to PostgreSQL",
    ),
    "db_statement_timeout": Setting(
        "UFO_DB_STATEMENT_TIMEOUT", "db_statement_timeout", "600", parsers.seconds,
        "seconds one database statement may take",
    ),
    "log_dir": Setting(
        "UFO_LOG_DIR", "log_dir", None, parsers.path,
        "also write the log to `$UFO_LOG_DIR/pipeline.log` and keep each spark-submit's "
        "output in `$UFO_LOG_DIR/spark/`",
    ),
    "spark_log_dir": Setting(
        "UFO_SPARK_LOG_DIR", "spark_log_dir", None, parsers.path,
        "keep each spark-submit's output here instead of `$UFO_LOG_DIR/spark/` (the worker "
        "service gives each request's run a folder of its own)",
    ),
    "verbose": Setting(
        "UFO_VERBOSE", "verbose", "off", parsers.switch,
        "`1`: the terminal shows everything the log file has (Luigi's scheduler lines, "
        "spark-submit's command line and output); by default it shows each task's start and "
        "end, progress, warnings and errors",
    ),
    "progress_seconds": Setting(
        "UFO_PROGRESS_SECONDS", "progress_seconds", "5", parsers.seconds,
        "at most one progress line this often while a long step works (the Spark step, a "
        "batch's publishing and loading); the worker uploads a running request's log this "
        "often (at least 2 s apart)",
    ),
    "jvm_archive": Setting(
        "UFO_JVM_ARCHIVE", "jvm_archive", "on", parsers.switch,
        "start Spark's driver with the class archive of `python -m etl.tools.jvmcache` when "
        "one exists for the installed Spark and Java; `off` never does",
    ),
    "jvm_cache": Setting(
        "UFO_JVM_CACHE", "jvm_cache", "~/.cache/ufo-pipeline/jvm", parsers.path,
        "where that archive is kept (about 160 MB)",
    ),
    "claim_lease": Setting(
        "UFO_CLAIM_LEASE", "claim_lease", "120", parsers.seconds,
        "the worker: seconds without a heartbeat after which another worker takes a claimed "
        "request over",
    ),
    "local_scheduler": Setting(
        "UFO_LOCAL_SCHEDULER", "local_scheduler", "off", parsers.switch,
        "the worker: run without luigid (`1`)",
    ),
    "schedule_time": Setting(
        "UFO_SCHEDULE_TIME", "schedule_time", None, parsers.time_of_day,
        "the worker: run the pipeline for yesterday once a day after this time (`HH:MM`)",
    ),
    "timezone": Setting(
        "UFO_TIMEZONE", "timezone", "UTC", parsers.zone,
        "the worker: the time zone of `UFO_SCHEDULE_TIME`",
    ),
    "alert_email": Setting(
        "UFO_ALERT_EMAIL", "alert_email", None, parsers.addresses,
        "e-mail failure alerts to these addresses (comma-separated), through luigi.cfg's "
        "`[email]` and `[smtp]`",
    ),
    "smtp_password": Setting(
        "UFO_SMTP_PASSWORD", None, None, parsers.text,
        "the password of luigi.cfg's `[smtp] username` for alert e-mails",
    ),
    "alert_webhook": Setting(
        "UFO_ALERT_WEBHOOK", None, None, parsers.web_url,
        "POST failure alerts as JSON (`text`, which Slack and similar tools show) to this URL; "
        "a secret: never logged",
    ),
    "run_dir": Setting(
        "UFO_RUN_DIR", None, ".run", parsers.path,
        "where `make demo` and `make up` keep their lake, database, logs and processes",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The parsed settings of one run."""

    source: str | None
    storage: str
    database_url: str | None
    layouts: tuple[Layout, ...] | None
    spark_master: str
    ingest: str
    ingest_cluster_size: int
    ingest_piece_size: int
    spark_remote: str | None
    spark_ui_port: int
    spark_events: str | None
    spark_history: str | None
    console_url: str | None
    stale_attempts: dt.timedelta
    reject_rows: int
    checks: str | None
    db_connect_timeout: int
    db_statement_timeout: float
    log_dir: Path | None
    spark_log_dir: Path | None
    verbose: bool
    progress_seconds: float
    jvm_archive: bool
    jvm_cache: Path
    claim_lease: float
    local_scheduler: bool
    schedule_time: dt.time | None
    timezone: ZoneInfo
    alert_email: tuple[str, ...] | None
    smtp_password: str | None
    alert_webhook: str | None
    run_dir: Path

    def require_source(self) -> str:
        if not self.source:
            raise ConfigError(
                "No source given: set UFO_SOURCE to the raw NUFORC report file "
                "(a path or a file://, http(s):// or s3:// URL)."
            )
        return self.source

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "No database given: set UFO_DATABASE_URL to a PostgreSQL URL, "
                "e.g. postgresql+psycopg2://user@127.0.0.1:5432/ufo."
            )
        return self.database_url


def _luigi_section() -> dict[str, str]:
    """luigi.cfg's ``[ufo]`` options, read in one go (tasks load their settings often: every
    date of a backfill asks whether it is complete)."""
    try:
        section = luigi.configuration.get_config()[SECTION]
    except KeyError:
        return {}
    return {option: str(value) for option, value in dict(section).items()}


def _raw(setting: Setting, section: dict[str, str]) -> tuple[str | None, str]:
    """The setting's text and where it came from (for error messages)."""
    value = os.environ.get(setting.variable, "").strip()
    if value:
        return value, setting.variable
    if setting.option:
        value = section.get(setting.option, "").strip()
        if value:
            return value, f"luigi.cfg [{SECTION}] {setting.option}"
    return setting.default, "its default"


def _parse(setting: Setting, section: dict[str, str]) -> Any:
    text, where = _raw(setting, section)
    if text is None:
        return None
    try:
        return setting.parse(text)
    except ValueError as err:
        raise ConfigError(
            f"{setting.variable}={_shown(setting, text)} (from {where}) is not valid: {err}."
        ) from None


def _shown(setting: Setting, text: str) -> str:
    """A refused value as an error message may show it: no secret, not a megabyte of it."""
    if setting.variable in ("UFO_ALERT_WEBHOOK", "UFO_SMTP_PASSWORD"):
        return "(a secret, not shown)"
    return shown(redact_text(text, ()), limit=200)


def load_settings() -> Settings:
    """Read every setting now (never at import time).

    Parsed again only when their text changed since the last call: a variable, luigi.cfg's
    ``[ufo]`` section or the layouts file (a ten-year backfill asks some 33,000 times, and
    parsing them all takes 90 us). A section that refers to the environment (``${VAR}``) is
    parsed every time."""
    global _last
    config = luigi.configuration.get_config()
    section = tuple(config.items(SECTION, raw=True)) if config.has_section(SECTION) else ()
    if any("$" in value for _, value in section):
        return _parsed()
    key = (tuple(map(os.environ.get, _VARIABLES)), section, _layouts_stamp(section))
    if _last is None or _last[0] != key:
        _last = (key, _parsed())
    return _last[1]


def _parsed() -> Settings:
    section = _luigi_section()
    return Settings(**{name: _parse(SETTINGS[name], section) for name in _FIELDS})


def _layouts_stamp(section: tuple[tuple[str, str], ...]) -> tuple[int, int] | None:
    """The layouts file's change time and size, if one is named: an edited file is new text."""
    named, _ = _raw(SETTINGS["layouts"], dict(section))
    try:
        found = os.stat(os.path.expanduser(named)) if named else None
    except OSError:
        return None
    return found and (found.st_mtime_ns, found.st_size)


#: The last settings parsed, with the text they were parsed from.
_last: tuple[tuple, Settings] | None = None


def setting(name: str) -> Any:
    """One setting, parsed: for code that needs only it (logging, the class archive)."""
    return _parse(SETTINGS[name], _luigi_section())


_FIELDS = [f.name for f in fields(Settings)]
_VARIABLES = [s.variable for s in SETTINGS.values()]
assert _FIELDS == list(SETTINGS), "Settings and SETTINGS must declare the same settings"
