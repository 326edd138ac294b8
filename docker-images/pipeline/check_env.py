#!/opt/venv/bin/python
"""Refuse to start the environment on the placeholders of .env.example.

Compose's ``${VAR:?}`` only refuses unset or empty values, and a copied .env.example is neither:
its ``change-me`` passwords would become the real ones. docker-compose.yml runs this as the
one-shot ``check-env`` service that every other service waits for, with the secrets in its
environment; it exits 1 with one line per problem, and ``docker compose up`` stops there.

    ufo-check-env            # checks the variables listed in CHECKED
"""

from __future__ import annotations

import os
import re
import sys

# The proxy's users are parsed by the proxy's own code (etl/proxy/users.py), which this image
# carries under /app with the rest of etl.
sys.path.append("/app")
from etl.proxy import users as proxy_users  # noqa: E402

#: The secrets of .env.example: compose passes each to this check.
CHECKED = ("POSTGRES_PASSWORD", "UFO_READONLY_PASSWORD", "S3_SECRET_ACCESS_KEY")
#: These go into database URLs as they are (.env.example says so); AWS secret keys may hold '/'.
IN_URLS = ("POSTGRES_PASSWORD", "UFO_READONLY_PASSWORD")
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
MIN_LENGTH = 8  # MinIO refuses shorter root passwords


def problems(env: dict[str, str]) -> list[str]:
    """What is wrong with the secrets in ``env``, one sentence each; empty when all is well."""
    found = []
    for name in CHECKED:
        value = env.get(name, "")
        if not value:
            found.append(f"{name} is not set: set it in .env.")
        elif value.lower().startswith("change-me"):
            found.append(
                f"{name} is still the placeholder {value!r} from .env.example: "
                "set a secret of your own in .env."
            )
        elif name in IN_URLS and not URL_SAFE.match(value):
            found.append(f"{name} may contain only letters, digits, '-' and '_'.")
        elif len(value) < MIN_LENGTH:
            found.append(f"{name} must have at least {MIN_LENGTH} characters.")
    return found + proxy_problems(env) + console_problems(env) + several_hosts_problems(env)


def proxy_problems(env: dict[str, str]) -> list[str]:
    """PROXY_USERS: required with the `proxy` profile, and bcrypt hashes, never passwords."""
    text = env.get("PROXY_USERS", "")
    profiles = [p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",")]
    if not text.split():
        if "proxy" not in profiles:
            return []
        return [
            "PROXY_USERS is empty but COMPOSE_PROFILES has `proxy`: add a user as NAME:HASH "
            "(python -m etl.tools.proxyuser NAME)."
        ]
    return proxy_users.problems(text)


def console_problems(env: dict[str, str]) -> list[str]:
    """CONSOLE_S3_SECRET_ACCESS_KEY and CONSOLE_PROXY_KEY: required with the `proxy` profile,
    which runs the console."""
    profiles = [p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",")]
    value = env.get("CONSOLE_S3_SECRET_ACCESS_KEY", "")
    if "proxy" not in profiles and not value:
        return []
    return _console_s3_problems(env, value) + console_key_problems(env)


def _console_s3_problems(env: dict[str, str], value: str) -> list[str]:
    if not value:
        return [
            "CONSOLE_S3_SECRET_ACCESS_KEY is empty but COMPOSE_PROFILES has `proxy`, which runs "
            "the console: set a secret of its own (its S3 user may use lake/requests/ only)."
        ]
    if value.lower().startswith("change-me"):
        return [
            f"CONSOLE_S3_SECRET_ACCESS_KEY is still the placeholder {value!r} from .env.example: "
            "set a secret of your own in .env."
        ]
    if value == env.get("S3_SECRET_ACCESS_KEY"):
        return ["CONSOLE_S3_SECRET_ACCESS_KEY must differ from S3_SECRET_ACCESS_KEY."]
    if len(value) < MIN_LENGTH:
        return [f"CONSOLE_S3_SECRET_ACCESS_KEY must have at least {MIN_LENGTH} characters."]
    return []


#: The console's key from the proxy (etl/proxy/config.py CONSOLE_KEY: the same rule).
CONSOLE_KEY = re.compile(r"^[A-Za-z0-9_-]{32,256}$")


def console_key_problems(env: dict[str, str]) -> list[str]:
    """CONSOLE_PROXY_KEY: with the console, what the proxy proves its requests with."""
    value = env.get("CONSOLE_PROXY_KEY", "")
    if value.lower().startswith("change-me"):
        return [
            f"CONSOLE_PROXY_KEY is still the placeholder {value!r} from .env.example: set a "
            "key of your own in .env (e.g. `openssl rand -hex 24`)."
        ]
    if not CONSOLE_KEY.match(value):
        return [
            "CONSOLE_PROXY_KEY must be 32 to 256 letters, digits, '-' or '_' (e.g. `openssl "
            "rand -hex 24`): the proxy sends it to the console, which refuses requests without it."
        ]
    return []


def several_hosts_problems(env: dict[str, str]) -> list[str]:
    """The main host of several (UFO_HOST_ADDRESS set, docker-images/several-hosts/main.yml):
    Spark's RPC needs its secret, and the services it publishes speak plain text, which only a
    private network between the hosts may carry."""
    address = env.get("UFO_HOST_ADDRESS", "").strip()
    if not address:
        return []
    found = []
    secret = env.get("SPARK_AUTH_SECRET", "")
    if len(secret) < 16 or secret.lower().startswith("change-me"):
        found.append(
            "SPARK_AUTH_SECRET must be a secret of at least 16 characters, the same on every "
            "host (e.g. `openssl rand -hex 24`)."
        )
    if address.startswith("127.") or address in ("localhost", "::1"):
        found.append(f"UFO_HOST_ADDRESS={address} is loopback: give this host's network address.")
    if env.get("UFO_PRIVATE_NETWORK", "").strip().lower() not in ("yes", "1", "true"):
        found.append(
            f"UFO_HOST_ADDRESS={address} publishes PostgreSQL, the S3 store and luigid in plain "
            "text: set UFO_PRIVATE_NETWORK=yes only if the hosts share a private network "
            "(docs/how-to/several-hosts.md)."
        )
    return found


def main() -> int:
    found = problems(dict(os.environ))
    for line in found:
        print(f"ufo-check-env: error: {line}", file=sys.stderr)
    if found:
        print("ufo-check-env: refusing to start; fix .env and run `docker compose up -d` again.",
              file=sys.stderr)  # fmt: skip
        return 1
    print("ufo-check-env: the secrets in .env are set and are not the placeholders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
