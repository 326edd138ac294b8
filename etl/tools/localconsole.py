"""The console in the local product (``make up``): ``python -m etl.console`` on 127.0.0.1.

It reads the demo's database, lake and luigid's task history (the database luigid's config in
``RUN_DIR/luigid/luigi.cfg`` names) and links to the local servers. Its actions carry the name
of the user who runs ``make up``; with the proxy (PROXY_USERS set) the proxy's logged-in user's,
and then it is used through the proxy at ``/console/``, which proves each request its own with
the key in ``RUN_DIR/console/proxy-key`` (made once, readable by its owner only): another user
of the machine reaching the console's port directly is refused. Its log is
``RUN_DIR/logs/console.log``.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from etl.tools.ports import HOST
from etl.tools.services import Service, http_ok, run_dir

CONSOLE = Service("console", marker="etl.console")


def proxy_key() -> str:
    """The key the local proxy sends the console (X-Ufo-Proxy-Key), made the first time."""
    path: Path = run_dir() / "console" / "proxy-key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".proxy-key.{os.getpid()}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        os.replace(staged, path)
    return path.read_text().strip()


def start(
    env: dict[str, str], port: int, producto: str | None, luigid: str, history: str,
    proxied: bool,
) -> str:  # fmt: skip
    """The console at ``port`` unless it runs, over the demo in ``env``; its address."""
    address = f"http://{HOST}:{port}"
    if CONSOLE.running_pid() is None:
        CONSOLE.address = address
    given = dict(os.environ, **env)
    given.update(
        UFO_CONSOLE_LUIGID_DB=given.get("UFO_CONSOLE_LUIGID_DB") or luigid_history_url() or "",
        # Behind the proxy its links stay behind it (the console's defaults: /, /luigi,
        # /history), so that they work wherever the proxy is reached from.
        UFO_CONSOLE_PRODUCTO_URL="" if proxied else producto or "",
        UFO_CONSOLE_LUIGID_URL="" if proxied else luigid,
        UFO_CONSOLE_HISTORY_URL="" if proxied else history,
        UFO_CONSOLE_TRUST_PROXY="1" if proxied else "0",
        UFO_CONSOLE_PROXY_KEY=proxy_key() if proxied else "",
    )  # fmt: skip
    CONSOLE.start(
        [sys.executable, "-m", "etl.console", "--host", HOST, "--port", str(port)],
        given,
        lambda: http_ok(f"{address}/health"),
    )
    return CONSOLE.recorded_address() or address


def luigid_history_url() -> str | None:
    """luigid's task-history database on the demo's PostgreSQL, as its luigi.cfg names it."""
    config = run_dir() / "luigid" / "luigi.cfg"
    for line in config.read_text().splitlines() if config.exists() else []:
        if line.startswith("db_connection = "):
            return line.removeprefix("db_connection = ").strip()
    return None
