"""A user of the proxy (compose profile ``proxy``): ``python -m etl.tools.proxyuser NAME``.

Asks for the password twice (never on the command line, so never in the shell's history) and
prints the ``NAME:HASH`` entry to add to ``PROXY_USERS`` in ``.env``, with a bcrypt hash: the
proxy keeps no password, and its login verifier (etl/proxy/verifier.py) checks a login against
the hash.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import bcrypt

from etl.proxy.users import NAME

MIN_LENGTH = 12
ROUNDS = 12  # about a quarter of a second per login check: slow for guessing, fine for people


def entry(name: str, password: str) -> str:
    """``NAME:HASH`` for PROXY_USERS; ValueError saying what is wrong with either."""
    if not NAME.fullmatch(name):
        raise ValueError("a user name may hold letters, digits and . _ @ - only")
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password.encode("utf-8")) > 72:
        raise ValueError("bcrypt reads 72 bytes of a password at most: choose a shorter one")
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=ROUNDS))
    return f"{name}:{hashed.decode('ascii')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl.tools.proxyuser", description=__doc__)
    parser.add_argument("name", help="the user's login name")
    args = parser.parse_args(argv)
    password = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("the same again: ") != password:
        print("proxyuser: error: the two passwords differ", file=sys.stderr)
        return 1
    try:
        line = entry(args.name, password)
    except ValueError as err:
        print(f"proxyuser: error: {err}", file=sys.stderr)
        return 1
    print(line)
    print(
        "Add it to PROXY_USERS in .env, the whole value in single quotes (compose would read "
        "its $ signs), entries separated by spaces; then: docker compose up -d proxy",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
