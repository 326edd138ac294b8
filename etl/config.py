"""Pipeline settings: environment variables first, then the ``[ufo]`` section of luigi.cfg.

| variable            | luigi.cfg `[ufo]` | meaning                                               |
|---------------------|-------------------|-------------------------------------------------------|
| ``UFO_SOURCE``      | ``source``        | raw report file: path, file://, http(s)://, s3://     |
| ``UFO_STORAGE``     | ``storage``       | data-lake root: a local directory or s3://bucket/pfx  |
| ``UFO_DATABASE_URL``| ``database_url``  | SQLAlchemy URL of the PostgreSQL database             |
| ``SPARK_MASTER``    | ``spark_master``  | ``local[*]`` (default) or ``spark://host:7077``        |
| ``UFO_STALE_ATTEMPT_HOURS`` | ``stale_attempt_hours`` | hours after which an unpublished attempt is removed |
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
}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run."""

    source: str | None
    storage: str
    database_url: str | None
    spark_master: str
    stale_attempt_hours: str

    @property
    def stale_attempts(self) -> dt.timedelta:
        try:
            hours = float(self.stale_attempt_hours)
        except ValueError:
            raise ConfigError(
                f"UFO_STALE_ATTEMPT_HOURS={self.stale_attempt_hours!r} is not a number of hours."
            ) from None
        return dt.timedelta(hours=hours)

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
