"""A deadline on every use of a database connection, that holds even when PostgreSQL is frozen.

A stopped database refuses connections at once. A frozen one (SIGSTOP, a stuck host or disk, a
paused VM) is worse: its kernel still accepts connections and acknowledges every packet, so
neither ``statement_timeout`` (the server's own clock is stopped) nor TCP keepalives ever fire,
and a query waits forever. ``bound(engine, seconds)`` gives each checkout of a pooled
connection ``seconds`` from the moment it is taken to the moment it is given back; when they
run out, the connection's socket is shut down, so whatever waits on it fails at once as a lost
connection (SQLAlchemy then discards it). A connection that was idle in the pool is tried
first (``SELECT 1``) under the same deadline, in place of SQLAlchemy's pre-ping, which has
none. New connections are bounded by libpq's ``connect_timeout``.
"""

from __future__ import annotations

import os
import socket
import threading

import sqlalchemy as sa
from sqlalchemy import event

_WATCH = "producto_deadline"
_FRESH = "producto_fresh"


class _Watch:
    """One checkout's timer: cuts the connection when it fires, unless the checkout ended."""

    def __init__(self, dbapi_connection, seconds: float) -> None:
        self._connection = dbapi_connection
        self._lock = threading.Lock()
        self._ended = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._ended:
                return
            self.fired = True
            cut(self._connection)

    def end(self) -> None:
        with self._lock:
            self._ended = True
        self._timer.cancel()


def cut(dbapi_connection) -> None:
    """Shut the connection's socket down: a read blocked on it returns, as from a lost server."""
    try:
        sock = socket.socket(fileno=os.dup(dbapi_connection.fileno()))
    except (OSError, ValueError, AttributeError):
        return  # already closed
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()  # the duplicate only; the connection's own descriptor stays its own


def bound(engine: sa.Engine, seconds: float) -> None:
    """Give every checkout of ``engine``'s pool at most ``seconds`` (see the module's doc)."""

    @event.listens_for(engine.pool, "connect")
    def fresh(dbapi_connection, record) -> None:
        record.info[_FRESH] = True  # just connected: no need to try it

    @event.listens_for(engine.pool, "checkout")
    def watch(dbapi_connection, record, proxy) -> None:
        watch = record.info[_WATCH] = _Watch(dbapi_connection, seconds)
        if record.info.pop(_FRESH, False):
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as err:
            watch.end()
            if watch.fired:  # the database does not answer: fail now, not after reconnecting
                raise sa.exc.OperationalError("SELECT 1", None, err) from None
            # Closed while it was idle (the database restarted): the pool takes a new one.
            raise sa.exc.DisconnectionError(str(err)) from err

    @event.listens_for(engine.pool, "checkin")
    def unwatch(dbapi_connection, record) -> None:
        found = record.info.pop(_WATCH, None)
        if found is not None:
            found.end()

    @event.listens_for(engine.pool, "invalidate")
    def unwatch_invalid(dbapi_connection, record, exception) -> None:
        unwatch(dbapi_connection, record)
