"""Settings of the web app, from the environment; missing configuration fails at start-up.

| variable                | meaning                                                      |
|-------------------------|--------------------------------------------------------------|
| ``PRODUCTO_DATABASE_URL`` | SQLAlchemy URL of the product database (a read-only role)  |
| ``UFO_DATABASE_URL``    | used when ``PRODUCTO_DATABASE_URL`` is not set               |
| ``PRODUCTO_CONSOLE_URL`` | the operations console, linked from every page (optional) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(Exception):
    """The app cannot start with the configuration it was given."""


def normalise_url(url: str) -> str:
    """Use psycopg2 for plain ``postgresql://`` URLs (SQLAlchemy 2.1 would pick psycopg 3).

    The same rule as ``etl.adapters.database.normalise_url``, repeated so that the web app's image does not
    need the pipeline (Luigi, PySpark) installed.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    """The resolved settings of the app."""

    database_url: str
    console_url: str | None = None  # http(s)://... or a path on the same site, e.g. /console

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        url = (env.get("PRODUCTO_DATABASE_URL") or env.get("UFO_DATABASE_URL") or "").strip()
        if not url:
            raise ConfigError(
                "No database configured: set PRODUCTO_DATABASE_URL (or UFO_DATABASE_URL) to the "
                "product database, e.g. postgresql://producto_ro:PASSWORD@127.0.0.1:5432/ufo."
            )
        console = (env.get("PRODUCTO_CONSOLE_URL") or "").strip().rstrip("/") or None
        if console and not (
            console.startswith(("http://", "https://", "/")) and console.isprintable()
            and not console.startswith("//") and '"' not in console
        ):  # fmt: skip
            raise ConfigError(
                f"PRODUCTO_CONSOLE_URL={console!r}: give the console's address, "
                "http://HOST:PORT or a path such as /console"
            )
        return cls(database_url=normalise_url(url), console_url=console)
