"""HTTP requests to URLs that may carry ``user:password@``: the credentials as basic auth.

urllib resolves ``user:password@host`` as a host name ("Name or service not known"). Here the
credentials leave the URL and go in an ``Authorization`` header (percent-escapes decoded),
which urllib does not carry over to where a redirect points.
"""

from __future__ import annotations

import base64
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit


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
