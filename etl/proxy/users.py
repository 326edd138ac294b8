"""The proxy's users: ``PROXY_USERS`` parsed, every entry checked, bcrypt hashes parsed.

An entry is ``NAME:HASH``; entries are separated by white space. A refusal names the entry by
its user name and says what to fix, and never prints a hash or what may be a password.
"""

from __future__ import annotations

import re

#: Letters, digits and . _ @ -: a name that needs no quoting in a log line or a header.
NAME = re.compile(r"[A-Za-z0-9._@-]+")
#: bcrypt's own base64 alphabet (not RFC 4648's).
ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
MAKE_ONE = "make one with: python -m etl.tools.proxyuser {name}"


class UsersError(ValueError):
    """PROXY_USERS cannot be used as it is; the message says which entry and what to fix."""


def bcrypt_problem(hashed: str) -> str | None:
    """What is wrong with ``hashed`` as a bcrypt hash, or None when it is one.

    ``$2b$`` (or 2a, 2y), a two-digit cost from 04 to 31, ``$``, 22 characters of salt and 31
    of hash in bcrypt's alphabet; the last character of each carries unused bits that must be
    zero, so a hash whose end was edited is refused too."""
    if len(hashed) != 60:
        if hashed.startswith("$2") and len(hashed) < 60:
            return (
                f"is cut short ({len(hashed)} characters, a bcrypt hash has 60): quote the whole "
                "value in single quotes, so that compose leaves its $ signs alone"
            )
        if hashed.startswith("$2"):
            return f"is too long ({len(hashed)} characters, a bcrypt hash has 60)"
        return "is not a bcrypt hash ($2b$...)"
    match = re.fullmatch(r"\$(2[aby])\$(\d\d)\$(.{22})(.{31})", hashed)
    if not match:
        return "is not a bcrypt hash: it must start with $2b$ (or $2a$, $2y$) and a two-digit cost"
    version, cost, salt, digest = match.groups()
    if not 4 <= int(cost) <= 31:
        return f"has the cost {cost}: bcrypt's cost is 04 to 31 (12 is usual)"
    if any(c not in ALPHABET for c in salt + digest):
        return "holds characters that are not in bcrypt's alphabet (./A-Za-z0-9)"
    if ALPHABET.index(salt[-1]) % 16 or ALPHABET.index(digest[-1]) % 4:
        return "is not a bcrypt hash: its salt or hash does not end as bcrypt's do (was it edited?)"
    return None


def parse(text: str) -> dict[str, bytes]:
    """``{name: hash}`` of PROXY_USERS; UsersError naming the first entry that is wrong."""
    found = problems(text)
    if found:
        raise UsersError(found[0])
    return {name: hashed.encode("ascii") for name, hashed in _pairs(text)}


def problems(text: str) -> list[str]:
    """What is wrong with PROXY_USERS, one sentence an entry; empty when every entry is right."""
    if not text.split():
        return [
            "PROXY_USERS is empty: give at least one user as NAME:BCRYPT-HASH ("
            + MAKE_ONE.format(name="NAME")
            + ")"
        ]
    found, seen = [], set()
    for number, entry in enumerate(text.split(), start=1):
        problem = _entry_problem(number, entry)
        name = entry.partition(":")[0]
        if problem is None and name in seen:
            problem = f"PROXY_USERS: user {name} is listed twice: keep one entry per user"
        if problem:
            found.append(problem)
        seen.add(name)
    return found


def _pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(entry.partition(":")[::2]) for entry in text.split()]


def _entry_problem(number: int, entry: str) -> str | None:
    """What is wrong with entry ``number``; never quotes what follows the name."""
    name, colon, hashed = entry.partition(":")
    if name.startswith("$"):
        return f"PROXY_USERS: entry {number} starts with a '$', not a user name: write NAME:HASH"
    if not colon or not hashed:
        return (
            f"PROXY_USERS: entry {number} has no ':HASH' after the user name: entries are "
            "NAME:HASH separated by spaces, so a user name may not hold a space"
        )
    if ":" in hashed and not hashed.startswith("$"):
        return (
            f"PROXY_USERS: entry {number}: a user name may not hold ':' (it separates the name "
            "from the hash); a user name may hold letters, digits and . _ @ - only"
        )
    if not NAME.fullmatch(name):
        return f"PROXY_USERS: entry {number}: a user name may hold letters, digits and . _ @ - only"
    problem = bcrypt_problem(hashed)
    if problem:
        return (
            f"PROXY_USERS: the password hash of user {name} {problem} ("
            + MAKE_ONE.format(name=name)
            + ")"
        )
    return None
