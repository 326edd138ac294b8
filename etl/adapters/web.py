"""HTTP requests to URLs that may carry ``user:password@``: the credentials as basic auth.

urllib resolves ``user:password@host`` as a host name ("Name or service not known"). Here the
credentials leave the URL and go in an ``Authorization`` header (percent-escapes decoded),
which urllib does not carry over to where a redirect points.
``failure`` says a failed request in words, without the URL's credentials.
"""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

from etl import redact


def request(
    url: str, data: bytes | None = None, method: str | None = None,
    headers: dict[str, str] | None = None,
) -> urllib.request.Request:  # fmt: skip
    """A request for ``url``, its credentials (if any) sent as HTTP basic auth."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return urllib.request.Request(url, data=data, method=method, headers=headers or {})
    user, _, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    found = urllib.request.Request(bare, data=data, method=method, headers=headers or {})
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    found.add_unredirected_header("Authorization", f"Basic {token}")
    return found


#: What an HTTP status means and what to do; ``where`` is the setting that holds the URL.
_STATUS = {
    401: ("the server wants credentials", "give them in {where} (user:password@)"),
    403: ("access refused", "check the credentials in {where} (a presigned URL expires)"),
    404: ("no file at that address", "check the path in {where}"),
    410: ("no file at that address", "check the path in {where}"),
}
_SERVER_FAILED = ("the server failed", "try again later, or ask whoever runs it")


def failure(err: BaseException, url: str, where: str) -> str:
    """A failed request to ``url`` in words: what happened and what to do, one line, without
    the URL's credentials (``where``: the setting that holds the URL, e.g. UFO_SOURCE)."""
    host = address = "?"
    try:
        parts = urlsplit(url)
        host = address = parts.hostname or "?"
        address = f"{host}:{parts.port or (443 if parts.scheme.lower() == 'https' else 80)}"
    except ValueError:  # a URL that cannot be split, or a port that is no number: said below
        pass
    reason = getattr(err, "reason", err)
    if isinstance(err, urllib.error.HTTPError):
        meaning, todo = _STATUS.get(err.code) or (
            _SERVER_FAILED if err.code >= 500 else ("", "check the URL in {where}")
        )
        said = f"HTTP {err.code} {str(err.reason)[:60]}".strip()
        found = f"{said}{f' ({meaning})' if meaning else ''}: {todo.format(where=where)}"
    elif isinstance(reason, ConnectionRefusedError):
        found = (
            f"nothing listens at {address} (connection refused): check the host and port in "
            f"{where}, or start the server"
        )
    elif isinstance(reason, socket.gaierror):
        found = f"the host {host} is not known: check the host name in {where} and the network"
    elif isinstance(reason, TimeoutError):
        found = f"{address} did not answer in time: check the URL in {where} and the network"
    else:
        said = (str(reason).strip().splitlines() or ["no detail"])[0][:200]
        if not isinstance(reason, str):
            said = f"{said} ({type(reason).__name__})"
        network = " and the network" if isinstance(reason, OSError) else ""
        found = f"{said}: check the URL in {where}{network}"
    return redact.redact_text(found, redact.source_secrets(url))
