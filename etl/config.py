"""Pipeline settings: environment variables first, then the ``[ufo]`` section of luigi.cfg.

| variable            | luigi.cfg `[ufo]` | meaning                                               |
|---------------------|-------------------|-------------------------------------------------------|
| ``UFO_SOURCE``      | ``source``        | raw report file: path, file://, http(s)://, s3://     |
| ``UFO_STORAGE``     | ``storage``       | data-lake root: a local directory or s3://bucket/pfx  |
| ``UFO_DATABASE_URL``| ``database_url``  | SQLAlchemy URL of the PostgreSQL database             |
| ``SPARK_MASTER``    | ``spark_master``  | ``local[*]`` (default) or ``spark://host:7077``        |
| ``UFO_STALE_ATTEMPT_HOURS`` | ``stale_attempt_hours`` | hours after which an unpublished attempt is removed |
| ``UFO_REJECT_ROWS`` | ``reject_rows`` | rejected rows per reason and run date kept in the database |
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import luigi.configuration

from etl.errors import ConfigError

DEFAULT_STORAGE = "lake"
DEFAULT_SPARK_MASTER = "local[*]"
#: An attempt that nothing published after this long was interrupted: its files are removed.
#: Long enough that no run still writing it is that old.
DEFAULT_STALE_ATTEMPT_HOURS = "6"
#: Rejected rows per reason stored in the database for each run date: enough to see what is
#: wrong, while a backfill of a year does not copy every date's rejects (the lake has them all).
DEFAULT_REJECT_ROWS = "1000"

_SETTINGS = {
    # attribute: (environment variable, luigi.cfg option, default)
    "source": ("UFO_SOURCE", "source", None),
    "storage": ("UFO_STORAGE", "storage", DEFAULT_STORAGE),
    "database_url": ("UFO_DATABASE_URL", "database_url", None),
    "spark_master": ("SPARK_MASTER", "spark_master", DEFAULT_SPARK_MASTER),
    "stale_attempt_hours": (
        "UFO_STALE_ATTEMPT_HOURS",
        "stale_attempt_hours",
        DEFAULT_STALE_ATTEMPT_HOURS,
    ),  # fmt: skip
    "reject_rows": ("UFO_REJECT_ROWS", "reject_rows", DEFAULT_REJECT_ROWS),
}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run."""

    source: str | None
    storage: str
    database_url: str | None
    spark_master: str
    stale_attempt_hours: str
    reject_rows: str = DEFAULT_REJECT_ROWS

    @property
    def stale_attempts(self) -> dt.timedelta:
        try:
            hours = float(self.stale_attempt_hours)
        except ValueError:
            raise ConfigError(
                f"UFO_STALE_ATTEMPT_HOURS={self.stale_attempt_hours!r} is not a number of hours."
            ) from None
        return dt.timedelta(hours=hours)

    @property
    def reject_row_limit(self) -> int:
        """Rejected rows per reason to store for each run date (0: none)."""
        try:
            rows = int(self.reject_rows)
        except ValueError:
            rows = -1
        if rows < 0:
            raise ConfigError(
                f"UFO_REJECT_ROWS={self.reject_rows!r} is not a number of rows: give a whole "
                "number, 0 to store no rejected rows in the database."
            )
        return rows

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


def _lookup(env_var: str, option: str, default: str | None) -> str | None:
    value = os.environ.get(env_var)
    if value:
        return value.strip()
    value = luigi.configuration.get_config().get("ufo", option, None)
    if value:
        return str(value).strip()
    return default


def load_settings() -> Settings:
    """Read the settings now (never at import time)."""
    return Settings(**{name: _lookup(*spec) for name, spec in _SETTINGS.items()})
