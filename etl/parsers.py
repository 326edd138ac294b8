"""How a setting's text becomes its value: one parser per kind, each raising ValueError that says
what it expected (``etl.settings`` names the variable around it)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import stat
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spark_jobs.layouts import (
    BUILT_IN_NAMES,
    DeclarationError,
    Layout,
    read_declarations,
    read_file,
)


def text(value: str) -> str:
    return value


def path(value: str) -> Path:
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


def remote(value: str) -> str:
    remote_parts(value)
    return value


def port(value: str) -> int:
    return _number(value, int, lambda n: 0 <= n <= 65535, "a TCP port from 0 to 65535")


def seconds(value: str) -> float:
    return _number(value, float, lambda n: n > 0, "a positive number of seconds")


def whole_seconds(value: str) -> int:
    return _number(value, int, lambda n: n > 0, "a positive whole number of seconds")


def hours(value: str) -> dt.timedelta:
    return dt.timedelta(
        hours=_number(value, float, lambda n: n >= 0, "a number of hours, 0 or more")
    )


def rows(value: str) -> int:
    return _number(value, int, lambda n: n >= 0, "a whole number of rows, 0 for none")


_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[KMGT]?B?)", re.I)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(value: str) -> int:
    """A size in bytes: ``64MB``, ``4 GB``, ``1.5G`` (powers of 1024) or plain bytes."""
    match = _SIZE.fullmatch(value.strip())
    number = int(float(match["number"]) * _UNITS[match["unit"].upper().rstrip("B")]) if match else 0
    if number <= 0:
        raise ValueError("expected a size above 0: bytes, or a number with KB, MB, GB or TB")
    return number


def ingest(value: str) -> str:
    lowered = value.lower()
    if lowered not in ("auto", "local", "cluster"):
        raise ValueError("expected auto, local or cluster")
    return lowered


_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")


def switch(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def time_of_day(value: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise ValueError("expected a time of day, HH:MM") from None


@functools.lru_cache(maxsize=8)
def _declared(path: Path, stamp: tuple[int, int]) -> tuple[Layout, ...]:
    del stamp  # part of the cache key only: an edited file is read again
    return read_declarations(read_file(path), str(path), taken=BUILT_IN_NAMES)


def layouts(value: str) -> tuple[Layout, ...]:
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


def addresses(value: str) -> tuple[str, ...]:
    found = tuple(a.strip() for a in value.split(",") if a.strip())
    if not found or not all("@" in a and " " not in a for a in found):
        raise ValueError("expected e-mail addresses, comma-separated")
    return found


def web_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("expected an http:// or https:// URL")  # the value is a secret
    return value


def zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as UTC or Europe/Madrid") from None
