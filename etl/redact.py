"""Keep credentials out of logs and records.

``redact_source`` gives a source URI as it may be shown: the password of ``user:password@`` is
dropped (the user name stays), and the values of query or fragment parameters that carry
credentials become ``REDACTED``: every ``X-Amz-*`` and ``X-Goog-*`` parameter of a presigned
URL, and every parameter whose name contains signature, token, key, secret, password,
credential, auth or session (or is sig, pwd, pass). The names stay, so a reader still sees that
the URL was presigned. ``redact_text`` hides given secret strings, and the credentials of every
URL in it, in a blob of text such as a run's log or a request file. ``source_secrets`` lists the
secret parts of a URI, for ``redact_text`` to hide where they appear without their URL.

Every function here is total: it never raises, whatever it is given, since it sits on the
error paths that report other failures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

REDACTED = "REDACTED"

_SENSITIVE_PREFIXES = ("x-amz-", "x-goog-")
_SENSITIVE_WORDS = (
    "signature", "token", "key", "secret", "password", "passwd", "credential", "auth", "session",
)  # fmt: skip
_SENSITIVE_NAMES = frozenset({"sig", "pwd", "pass"})
# Secret parts shorter than this are not hunted for in free text: "2" or "abc" occur everywhere
# in a log, and hiding every occurrence would garble it while protecting next to nothing.
_MIN_SECRET = 4

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
# scheme://authority, the authority ending where RFC 3986 ends it (at /, ? or #)
_AUTHORITY = re.compile(rf"^(?P<scheme>{_SCHEME})(?P<authority>[^/?#]*)")
# scheme://userinfo@ up to the last @ before the query, for passwords with an unescaped "/"
_LOOSE_USERINFO = re.compile(rf"^(?P<scheme>{_SCHEME})(?P<userinfo>[^?#]*)@")
# Every pattern here is matched at one known position, never searched for: a search tries each
# start in turn, and a scheme or a parameter name can be as long as the text, so a search would
# take time in the square of the text's length (a long word in an error message did).
# A URL inside text ends at white space, quotes, and characters RFC 3986 never allows in one.
_URL_BODY = re.compile(r"[^\s\"'<>`{}|\\^]+")
# A scheme read backwards from its "://": letters, digits, + . - (its first one a letter).
_SCHEME_BACKWARDS = re.compile(r"[A-Za-z0-9+.\-]*")
_LETTER = re.compile(r"[A-Za-z]")
# A query or fragment parameter ends at & ; or #.
_PARAM_FIELD = re.compile(r"[^&;#]*")


def redact_source(uri: str) -> str:
    """``uri`` without its password and with the values of credential parameters replaced."""
    try:
        text = uri if isinstance(uri, str) else str(uri)
        scheme, userinfo, rest = _split_userinfo(text)
        if userinfo is not None and ":" in userinfo:
            text = f"{scheme}{userinfo.split(':', 1)[0]}@{rest}"
        return _redact_params(text)
    except Exception:  # whatever went wrong, showing the input could leak it
        return REDACTED


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced and every URL in it passed through redact_source.

    A secret that is itself a URL with credentials is replaced by its redacted form, so that a
    reader still sees which source was meant; any other secret by ``REDACTED``.
    """
    try:
        out = text if isinstance(text, str) else str(text)
        wanted = {s for s in secrets if isinstance(s, str) and s}
        for secret in sorted(wanted, key=len, reverse=True):  # a whole URL before its parts
            shown = redact_source(secret)
            out = out.replace(secret, shown if shown != secret else REDACTED)
        return _redact_urls(out)
    except Exception:  # see redact_source
        return REDACTED


def source_secrets(uri: str) -> list[str]:
    """The secret parts of ``uri`` (as written and percent-decoded), and ``uri`` if it has any."""
    try:
        text = uri if isinstance(uri, str) else str(uri)
        parts: list[str] = []
        _scheme, userinfo, _rest = _split_userinfo(text)
        if userinfo is not None and ":" in userinfo:
            parts.append(userinfo.split(":", 1)[1])
        for _start, _end, name, value in _params(_params_part(text)):
            if _sensitive(name):
                parts.append(value)
        found = [s for p in parts for s in (p, unquote(p)) if len(s) >= _MIN_SECRET]
        if redact_source(text) != text:
            found.append(text)
        return sorted(set(found), key=found.index)
    except Exception:  # see redact_source
        return []


def _split_userinfo(uri: str) -> tuple[str, str | None, str]:
    """(``scheme://``, userinfo or None, the rest after ``@``) of a URI."""
    match = _AUTHORITY.match(uri)
    if match is None:
        return "", None, uri
    scheme, authority = match["scheme"], match["authority"]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        return scheme, userinfo, host + uri[match.end() :]
    # "AKIA:wJalr/K7@bucket": RFC 3986 reads host "AKIA", port "wJalr". A port that is not a
    # number means the "/" belonged to an unescaped password, so take userinfo up to the "@".
    port = authority.rsplit(":", 1)[1] if ":" in authority else ""
    if port and not port.isdigit() and not authority.startswith("["):
        loose = _LOOSE_USERINFO.match(uri)
        if loose is not None:
            return scheme, loose["userinfo"], uri[loose.end() :]
    return scheme, None, uri


def _params_part(uri: str) -> str:
    """The query and fragment of ``uri`` (everything from the first ``?`` or ``#``); of a Spark
    Connect address (``sc://host:port/;token=...``), its parameters from the first ``;``."""
    marks = ("?", "#", ";") if uri[:5].lower() == "sc://" else ("?", "#")
    cut = min((i for i in map(uri.find, marks) if i >= 0), default=len(uri))
    return uri[cut:]


def _redact_urls(text: str) -> str:
    """``text`` with every URL in it (``scheme://`` and what follows up to a character no URL
    has) passed through redact_source, in one pass."""
    backwards = text[::-1]
    out: list[str] = []
    done = 0  # text[:done] is in out
    at = text.find("://")
    while at >= 0:
        run = _SCHEME_BACKWARDS.match(backwards, len(text) - at).end() - (len(text) - at)
        letter = _LETTER.search(text, at - run, at)
        body = _URL_BODY.match(text, at + 3)
        if letter is None or body is None:  # no scheme before it, or nothing after it
            at = text.find("://", at + 1)
            continue
        start, end = max(letter.start(), done), body.end()
        out += [text[done:start], redact_source(text[start:end])]
        done = end
        at = text.find("://", end)
    out.append(text[done:])
    return "".join(out)


def _params(part: str) -> list[tuple[int, int, str, str]]:
    """``(start, end, name, value)`` of each ``name=value`` in a query and fragment: a name
    never holds ``?`` or ``=``, a value runs to the next ``&``, ``;`` or ``#``."""
    found = []
    for field in _PARAM_FIELD.finditer(part):
        equals = field[0].find("=")
        if equals < 0:
            continue
        name_start = field[0].rfind("?", 0, equals) + 1
        name, value = field[0][name_start:equals], field[0][equals + 1 :]
        found.append((field.start() + name_start, field.end(), name, value))
    return found


def _redact_params(uri: str) -> str:
    cut = len(uri) - len(_params_part(uri))
    part, out, done = uri[cut:], [uri[:cut]], 0
    for start, end, name, value in _params(part):
        if value and _sensitive(name):
            out += [part[done:start], f"{name}={REDACTED}"]
            done = end
    out.append(part[done:])
    return "".join(out)


def _sensitive(name: str) -> bool:
    """Whether a query parameter of this name carries a credential."""
    lowered = unquote(name).strip().lower()
    return (
        lowered.startswith(_SENSITIVE_PREFIXES)
        or lowered in _SENSITIVE_NAMES
        or any(word in lowered for word in _SENSITIVE_WORDS)
    )
