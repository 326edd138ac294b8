"""The console's settings, from the environment (besides the pipeline's, ``etl.settings``).

| variable                     | meaning                                                      |
|------------------------------|--------------------------------------------------------------|
| ``UFO_CONSOLE_DATABASE_URL`` | the product database, read only (default: ``PRODUCTO_DATABASE_URL``, then ``UFO_DATABASE_URL``) |
| ``UFO_CONSOLE_LUIGID_DB``    | luigid's task-history database (each task's runs), read only; empty: not shown |
| ``UFO_CONSOLE_TRUST_PROXY``  | ``1``: behind the proxy, which names the logged-in user in ``X-Ufo-User``; the console may then listen on other addresses than 127.0.0.1 |
| ``UFO_CONSOLE_PROXY_KEY``    | with ``UFO_CONSOLE_TRUST_PROXY=1``, required: the secret the proxy sends in ``X-Ufo-Proxy-Key`` (its ``PROXY_CONSOLE_KEY``); a request without it is refused, whoever it names |
| ``UFO_CONSOLE_PRODUCTO_URL`` | producto, for the links to a date's figures (default ``/`` behind the proxy) |
| ``UFO_CONSOLE_LUIGID_URL``   | luigid's UI (default ``/luigi`` behind the proxy)            |
| ``UFO_CONSOLE_HISTORY_URL``  | Spark's history server (default ``/history`` behind the proxy, else ``UFO_SPARK_HISTORY_URL``) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from etl.adapters.database.connection import normalise_url
from etl.proxy.config import CONSOLE_KEY as PROXY_KEY
from etl.proxy.config import CONSOLE_KEY_RULE as PROXY_KEY_RULE


class ConsoleConfigError(ValueError):
    """A console setting that cannot be used; the message says what to set."""


@dataclass(frozen=True)
class ConsoleSettings:
    database_url: str
    luigid_db: str | None
    trust_proxy: bool
    proxy_key: str | None
    producto_url: str | None
    luigid_url: str | None
    history_url: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if environ is None else environ

        def given(*names: str) -> str | None:
            return next((env[n].strip() for n in names if env.get(n, "").strip()), None)

        url = given("UFO_CONSOLE_DATABASE_URL", "PRODUCTO_DATABASE_URL", "UFO_DATABASE_URL")
        if not url:
            raise ConsoleConfigError(
                "no database: set UFO_CONSOLE_DATABASE_URL to the product database (a read-only "
                "role is enough), e.g. postgresql://ufo_reader:PASSWORD@127.0.0.1:5432/ufo"
            )
        trust = given("UFO_CONSOLE_TRUST_PROXY") or "0"
        if trust not in ("0", "1"):
            raise ConsoleConfigError(f"UFO_CONSOLE_TRUST_PROXY={trust!r}: give 1 or 0")
        proxied = trust == "1"
        key = given("UFO_CONSOLE_PROXY_KEY")
        if proxied and not (key and PROXY_KEY.fullmatch(key)):
            raise ConsoleConfigError(
                "UFO_CONSOLE_TRUST_PROXY=1 needs UFO_CONSOLE_PROXY_KEY: the secret the proxy "
                f"sends in X-Ufo-Proxy-Key (its PROXY_CONSOLE_KEY), {PROXY_KEY_RULE}"
            )
        luigid_db = given("UFO_CONSOLE_LUIGID_DB")

        def link(name: str, behind_proxy: str, *fallbacks: str) -> str | None:
            # Behind the proxy, its route before another address of the service (the
            # pipeline's UFO_SPARK_HISTORY_URL names the server itself, not its route).
            found = (given(name) or behind_proxy) if proxied else given(name, *fallbacks)
            return found.rstrip("/") if found else None

        return cls(
            database_url=normalise_url(url),
            luigid_db=normalise_url(luigid_db) if luigid_db else None,
            trust_proxy=proxied,
            proxy_key=key if proxied else None,
            producto_url=link("UFO_CONSOLE_PRODUCTO_URL", "/"),
            luigid_url=link("UFO_CONSOLE_LUIGID_URL", "/luigi"),
            history_url=link("UFO_CONSOLE_HISTORY_URL", "/history", "UFO_SPARK_HISTORY_URL"),
        )
