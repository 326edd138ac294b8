"""Connecting to the product database: its URL checked and shown without a password, engines
with timeouts, the engines kept for quick reads, and what a failed connection means in words."""

from __future__ import annotations

import os
import shlex
import threading

import sqlalchemy as sa

from etl.errors import DatabaseError, shown
from etl.settings import setting


def normalise_url(url: str) -> str:
    """Use psycopg2 for plain ``postgresql://`` URLs (SQLAlchemy 2.1 would pick psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs (a password may hold ``@`` or ``/``)."""
    scheme, sep, rest = normalise_url(url).partition("://")
    if not sep:
        return "<unparsable URL>"
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return f"{scheme}://{rest}"
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{hostpart}"


def _timeouts() -> dict:
    """libpq connection settings: give up on a server that accepts but never answers."""
    connect = setting("db_connect_timeout")
    statement_ms = int(setting("db_statement_timeout") * 1000)
    return {
        "connect_timeout": connect,
        "options": f"-c statement_timeout={statement_ms}",
        # A silent server after the connection: the kernel gives up on unacknowledged data.
        "tcp_user_timeout": connect * 1000,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


def engine(url: str) -> sa.Engine:
    if not normalise_url(url).startswith("postgresql+psycopg2://"):
        raise DatabaseError(
            f"UFO_DATABASE_URL={safe_url(url)} is not a PostgreSQL URL: use "
            "postgresql://user:password@host:port/database."
        )
    try:
        return sa.create_engine(normalise_url(url), pool_pre_ping=True, connect_args=_timeouts())
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as err:
        raise DatabaseError(
            f"UFO_DATABASE_URL is not a usable database URL ({type(err).__name__}): "
            "use postgresql+psycopg2://user:password@host:port/database."
        ) from err


def connect_error(url: str, err: Exception) -> DatabaseError:
    """What failed, in words, with what to do: the libpq message's first line says which."""
    detail = (str(getattr(err, "orig", err)).strip().splitlines() or ["no detail"])[0]
    try:
        parts = sa.engine.make_url(normalise_url(url))
        user, host, port = parts.username, parts.host or "localhost", parts.port or 5432
        database = parts.database
    except Exception:  # an unparsable URL fails before it connects; never show it whole
        user = host = port = database = "?"
    fix = "in UFO_DATABASE_URL"
    if "password authentication failed" in detail or "no password supplied" in detail:
        said = f"the server refused the password of user {shown(user)}: fix the password {fix}."
    elif 'database "' in detail and "does not exist" in detail:
        said = f"the server has no database {shown(database)}: create it, or fix its name {fix}."
    elif 'role "' in detail and "does not exist" in detail:
        said = f"the server has no user {shown(user)}: create it, or fix the user {fix}."
    elif "Connection refused" in detail:
        said = f"nothing listens at {host}:{port} (connection refused): {_remedy(url)}"
    elif "could not translate host name" in detail:
        said = f"the host {shown(host)} is not known: fix the host {fix}."
    elif "timeout expired" in detail:
        said = (
            f"{host}:{port} did not answer within {setting('db_connect_timeout')} s (connect "
            "timeout, UFO_DB_CONNECT_TIMEOUT): check that PostgreSQL runs there and answers."
        )
    elif "statement timeout" in detail:
        said = (
            f"a statement took longer than {setting('db_statement_timeout')} s "
            "(UFO_DB_STATEMENT_TIMEOUT): raise it, or look for what holds the tables' locks."
        )
    else:
        said = f"{detail.split(' failed: ', 1)[-1].strip()}: {_remedy(url)}"
    return DatabaseError(f"Cannot use the database {safe_url(url)}: {said}")


def _remedy(url: str) -> str:
    """What brings the database back: the demo's own (``demo.env`` in UFO_RUN_DIR names it,
    and ``make stop`` stops it) is started by ``make``; any other by whoever runs it."""
    demo_env = setting("run_dir") / "demo.env"
    try:
        lines = demo_env.read_text().splitlines()
    except OSError:
        lines = []
    if f"UFO_DATABASE_URL={shlex.quote(url)}" in lines:
        return (
            f"it is the demo's PostgreSQL ({demo_env.parent / 'postgres'}), stopped by `make "
            "stop`: `make up` starts it again on the same port with the rest of the local "
            "product; `make demo` starts it with a new demo run (then load demo.env again)."
        )
    return "start PostgreSQL or fix UFO_DATABASE_URL."


#: Engines kept for the quick reads of one process, by (process, URL, timeouts).
_READERS: dict[tuple, sa.Engine] = {}
_READERS_LOCK = threading.Lock()


def _reader_key(url: str) -> tuple:
    return (os.getpid(), url, tuple(sorted(_timeouts().items())))


def reader(url: str) -> sa.Engine:
    """An engine kept for quick reads (is a date loaded, and when): Luigi asks about every date
    of a backfill several times, and a new connection for each took longer than the query.
    Keyed by process too: a pooled connection must not cross a fork."""
    key = _reader_key(url)
    with _READERS_LOCK:
        if key not in _READERS:
            _READERS[key] = engine(url)
        return _READERS[key]


def drop_reader(url: str) -> None:
    """Forget the kept engine of ``url`` after a connection error: the next read connects anew."""
    with _READERS_LOCK:
        found = _READERS.pop(_reader_key(url), None)
    if found is not None:
        found.dispose()
