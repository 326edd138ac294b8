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
import functools
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import luigi.configuration

from etl.errors import ConfigError, shown
from etl.redact import redact_text
from spark_jobs.layouts import (
    BUILT_IN_NAMES,
    DeclarationError,
    Layout,
    read_declarations,
    read_file,
)

SECTION = "ufo"


# --- parsers: text -> value, ValueError with what is expected ---------------------------------


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    return Path(value).expanduser()


def _number(value: str, kind: type, ok: Callable[[float], bool], expected: str):
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not ok(number):
        raise ValueError(f"expected {expected}")
    return number


#: sc://HOST[:PORT][/;name=value;...]: a host name, an IPv4 or a bracketed IPv6 address.
_REMOTE = re.compile(
    r"sc://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<params>(?:;[A-Za-z0-9_.-]+=[^;\s]*)*);?)?"
)
DEFAULT_CONNECT_PORT = 15002


def remote_parts(value: str) -> tuple[str, int, dict[str, str]]:
    """Host, port and parameters (``token``, ``use_ssl``, ...) of a Spark Connect address;
    ValueError for anything else, port 0 or above 65535 included."""
    match = _REMOTE.fullmatch(value)
    port = int(match["port"] or DEFAULT_CONNECT_PORT) if match else 0
    if match is None or not 1 <= port <= 65535:
        raise ValueError(
            "expected a Spark Connect address, sc://HOST:PORT with a port from 1 to 65535 "
            "(optionally followed by /;token=...)"
        )
    pairs = (p.split("=", 1) for p in (match["params"] or "").split(";") if p)
    return match["host"].strip("[]"), port, dict(pairs)


def _remote(value: str) -> str:
    remote_parts(value)
    return value


def _port(value: str) -> int:
    return _number(value, int, lambda n: 0 <= n <= 65535, "a TCP port from 0 to 65535")


def _seconds(value: str) -> float:
    return _number(value, float, lambda n: n > 0, "a positive number of seconds")


def _whole_seconds(value: str) -> int:
    return _number(value, int, lambda n: n > 0, "a positive whole number of seconds")


def _hours(value: str) -> dt.timedelta:
    return dt.timedelta(
        hours=_number(value, float, lambda n: n >= 0, "a number of hours, 0 or more")
    )


def _rows(value: str) -> int:
    return _number(value, int, lambda n: n >= 0, "a whole number of rows, 0 for none")


_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")


def _switch(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def _time_of_day(value: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise ValueError("expected a time of day, HH:MM") from None


@functools.lru_cache(maxsize=8)
def _declared(path: Path, stamp: tuple[int, int]) -> tuple[Layout, ...]:
    del stamp  # part of the cache key only: an edited file is read again
    return read_declarations(read_file(path), str(path), taken=BUILT_IN_NAMES)


def _layouts(value: str) -> tuple[Layout, ...]:
    """The layouts declared in the TOML file at ``value``, checked (read again when it changes)."""
    path = Path(value).expanduser()
    try:
        found = path.stat()
        if not stat.S_ISREG(found.st_mode):
            raise ValueError(f"{path} is not a regular file")
        return _declared(path, (found.st_mtime_ns, found.st_size))
    except FileNotFoundError:
        raise ValueError(f"there is no file {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} cannot be read ({err})") from None
    except DeclarationError as err:
        raise ValueError(str(err)) from None


def _addresses(value: str) -> tuple[str, ...]:
    found = tuple(a.strip() for a in value.split(",") if a.strip())
    if not found or not all("@" in a and " " not in a for a in found):
        raise ValueError("expected e-mail addresses, comma-separated")
    return found


def _web_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("expected an http:// or https:// URL")  # the value is a secret
    return value


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as UTC or Europe/Madrid") from None


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
        "UFO_SOURCE", "source", None, _text,
        "the raw report file: a path, `file://`, `http(s)://` or `s3://` URL; plain or gzip",
    ),
    "storage": Setting(
        "UFO_STORAGE", "storage", "lake", _text,
        "the data-lake root: a local directory, or `s3://bucket/prefix`",
    ),
    "database_url": Setting(
        "UFO_DATABASE_URL", "database_url", None, _text,
        "SQLAlchemy URL of the PostgreSQL database (`postgresql://` uses psycopg2)",
    ),
    "layouts": Setting(
        "UFO_LAYOUTS", "layouts", None, _layouts,
        "a TOML file declaring more source layouts (see the data contract); the built-in "
        "`index`, `export` and `kaggle` layouts are always known",
    ),
    "spark_master": Setting(
        "SPARK_MASTER", "spark_master", "local[*]", _text,
        "where AggregateUFOsByState runs: `local[*]` or `spark://host:7077`",
    ),
    "spark_remote": Setting(
        "UFO_SPARK_REMOTE", "spark_remote", None, _remote,
        "run AggregateUFOsByState against this long-running Spark Connect server "
        "(`sc://host:15002`) instead of a new Spark application per run (see \"Cold and warm "
        "Spark\")",
    ),
    "spark_ui_port": Setting(
        "UFO_SPARK_UI_PORT", "spark_ui_port", "4040", _port,
        "the port of a cold Spark step's web UI while it runs (Spark takes the next free one "
        "when it is taken; `0`: any free port)",
    ),
    "spark_events": Setting(
        "UFO_SPARK_EVENTS", "spark_events", None, _text,
        "keep each Spark application's event log (rolled at 64 MB) in this directory or URI "
        "(`file:`, `s3a://`), where Spark's history server reads them",
    ),
    "spark_history": Setting(
        "UFO_SPARK_HISTORY_URL", "spark_history_url", None, _text,
        "the address of that history server: a finished Spark step's link (luigid's tracking "
        "URL, the `done:` line) points at its application there",
    ),
    "stale_attempts": Setting(
        "UFO_STALE_ATTEMPT_HOURS", "stale_attempt_hours", "6", _hours,
        "hours after which an attempt directory nothing published (an interrupted run) is "
        "removed by the next run",
    ),
    "reject_rows": Setting(
        "UFO_REJECT_ROWS", "reject_rows", "1000", _rows,
        "rejected rows of each reason stored in the database per run date "
        "(`reject_samples`); `0` stores none; the lake keeps all of them",
    ),
    "checks": Setting("UFO_CHECKS", "checks", None, _text, "the snapshot checks' thresholds, "
                      "`NAME=VALUE,...`: see [snapshot checks](../concepts/snapshot-checks.md)"),
    "db_connect_timeout": Setting(
        "UFO_DB_CONNECT_TIMEOUT", "db_connect_timeout", "10", _whole_seconds,
        "seconds to wait for a connection to PostgreSQL",
    ),
    "db_statement_timeout": Setting(
        "UFO_DB_STATEMENT_TIMEOUT", "db_statement_timeout", "600", _seconds,
        "seconds one database statement may take",
    ),
    "log_dir": Setting(
        "UFO_LOG_DIR", "log_dir", None, _path,
        "also write the log to `$UFO_LOG_DIR/pipeline.log` and keep each spark-submit's "
        "output in `$UFO_LOG_DIR/spark/`",
    ),
    "jvm_archive": Setting(
        "UFO_JVM_ARCHIVE", "jvm_archive", "on", _switch,
        "start Spark's driver with the class archive of `python -m etl.tools.jvmcache` when "
        "one exists for the installed Spark and Java; `off` never does",
    ),
    "jvm_cache": Setting(
        "UFO_JVM_CACHE", "jvm_cache", "~/.cache/ufo-pipeline/jvm", _path,
        "where that archive is kept (about 160 MB)",
    ),
    "claim_lease": Setting(
        "UFO_CLAIM_LEASE", "claim_lease", "120", _seconds,
        "the worker: seconds without a heartbeat after which another worker takes a claimed "
        "request over",
    ),
    "local_scheduler": Setting(
        "UFO_LOCAL_SCHEDULER", "local_scheduler", "off", _switch,
        "the worker: run without luigid (`1`)",
    ),
    "schedule_time": Setting(
        "UFO_SCHEDULE_TIME", "schedule_time", None, _time_of_day,
        "the worker: run the pipeline for yesterday once a day after this time (`HH:MM`)",
    ),
    "timezone": Setting(
        "UFO_TIMEZONE", "timezone", "UTC", _zone,
        "the worker: the time zone of `UFO_SCHEDULE_TIME`",
    ),
    "alert_email": Setting(
        "UFO_ALERT_EMAIL", "alert_email", None, _addresses,
        "e-mail failure alerts to these addresses (comma-separated), through luigi.cfg's "
        "`[email]` and `[smtp]`",
    ),
    "smtp_password": Setting(
        "UFO_SMTP_PASSWORD", None, None, _text,
        "the password of luigi.cfg's `[smtp] username` for alert e-mails",
    ),
    "alert_webhook": Setting(
        "UFO_ALERT_WEBHOOK", None, None, _web_url,
        "POST failure alerts as JSON (`text`, which Slack and similar tools show) to this URL; "
        "a secret: never logged",
    ),
    "run_dir": Setting(
        "UFO_RUN_DIR", None, ".run", _path,
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
    spark_remote: str | None
    spark_ui_port: int
    spark_events: str | None
    spark_history: str | None
    stale_attempts: dt.timedelta
    reject_rows: int
    checks: str | None
    db_connect_timeout: int
    db_statement_timeout: float
    log_dir: Path | None
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
    """Read and parse every setting now (never at import time)."""
    section = _luigi_section()
    return Settings(**{name: _parse(SETTINGS[name], section) for name in _FIELDS})


def setting(name: str) -> Any:
    """One setting, parsed: for code that needs only it (logging, the class archive)."""
    return _parse(SETTINGS[name], _luigi_section())


_FIELDS = [f.name for f in fields(Settings)]
assert _FIELDS == list(SETTINGS), "Settings and SETTINGS must declare the same settings"
