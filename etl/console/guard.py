"""Who asks, and that an action was asked for on the console's own page.

Who: behind the proxy (``UFO_CONSOLE_TRUST_PROXY=1``) the user the proxy logged in, which it
names in ``X-Ufo-User`` (it never passes a client's own); otherwise the user the console runs
as (``make up``: the person at this machine). A header of that name is ignored then. Behind the
proxy, a request is the proxy's only when it carries the key the two share
(``X-Ufo-Proxy-Key``): anything else that reaches the console's port (a local user, another
container) is refused whatever user it names, pages included (``from_proxy``).

An action is a POST with a token that a page of another site cannot know: the console's
pages set a random value in a cookie (HttpOnly, SameSite=Strict, Secure behind the proxy) and
put in each form the value with its signature, a keyed hash (HMAC) of the value and the user
under a key of this process. A POST is accepted only when the form's token matches the cookie
and is signed for the user who sends it, and when the browser does not say it comes from
another site (``Sec-Fetch-Site``; ``Origin`` against ``Host`` without the proxy, which checks
it against the Host the browser used). The proxy refuses cross-site POSTs too: each check
alone suffices. A console started again has a new key: its old pages ask to be reloaded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request

from etl.worker.ops import requester
from etl.worker.requests import BadRequest

COOKIE = "ufo_console_token"
USER_HEADER = "x-ufo-user"
KEY_HEADER = "x-ufo-proxy-key"


class Refused(Exception):
    """An action that is not carried out; the message says why, for the person."""


class Guard:
    def __init__(self, trust_proxy: bool, key: bytes | None = None, proxy_key: str | None = None):
        if trust_proxy and not proxy_key:
            raise ValueError("behind the proxy the console needs the proxy's key")
        self.trust_proxy = trust_proxy
        self.key = key or secrets.token_bytes(32)
        self._proxy_key = (proxy_key or "").encode()
        self._local = None if trust_proxy else requester()

    def from_proxy(self, request: Request) -> bool:
        """Whether the request may be served: always without the proxy (the console listens on
        loopback then); behind it, only when it carries the proxy's key."""
        if not self.trust_proxy:
            return True
        given = request.headers.get(KEY_HEADER, "").encode()
        return hmac.compare_digest(given, self._proxy_key)

    def user(self, request: Request) -> str | None:
        """Who is asking, checked as a request's ``requested_by`` is; None: nobody known."""
        if not self.trust_proxy:
            return self._local
        if not self.from_proxy(request):
            return None
        name = request.headers.get(USER_HEADER, "").strip()
        if not name:
            return None
        try:
            return requester(name)
        except BadRequest:
            return None

    def cookie(self, request: Request) -> tuple[str, bool]:
        """The browser's token (a new one when it has none or a malformed one), and whether
        it is new (to be set on the answer)."""
        found = request.cookies.get(COOKIE, "")
        if len(found) == 43 and found.replace("-", "").replace("_", "").isalnum():
            return found, False
        return secrets.token_urlsafe(32), True

    def _sign(self, value: str, user: str) -> str:
        message = f"{value}|{user}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def form_token(self, value: str, user: str | None) -> str:
        """What a page's forms carry for the browser's cookie ``value``."""
        return f"{value}.{self._sign(value, user or '')}"

    def check(self, request: Request, token: str) -> str:
        """The user of an action that may be carried out; Refused (why) otherwise."""
        site = request.headers.get("sec-fetch-site", "")
        if site in ("cross-site", "same-site"):
            raise Refused("refused: the action was sent from another site")
        # Behind the proxy, the Host the console sees is the proxy's configured name, not the
        # one the browser used: the proxy compares Origin with the browser's Host itself.
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if not self.trust_proxy and origin is not None and urlsplit(origin).netloc != host:
            raise Refused("refused: the action was sent from another site")
        user = self.user(request)
        if user is None:
            raise Refused("refused: no logged-in user is known; sign in through the proxy")
        value, _, signature = token.partition(".")
        cookie = request.cookies.get(COOKIE, "")
        if not (cookie and hmac.compare_digest(value, cookie)):
            raise Refused("refused: the page's token does not match: reload the page and retry")
        if not hmac.compare_digest(signature, self._sign(value, user)):
            raise Refused("refused: the page has expired (the console restarted): reload it")
        return user
