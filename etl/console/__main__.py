"""Serve the console: ``python -m etl.console [--host 127.0.0.1] [--port 8090]``.

Without the proxy (``UFO_CONSOLE_TRUST_PROXY`` unset) it listens on a loopback address only:
its actions carry the local user's name, and only this machine's users reach it. Exit codes:
0 stopped, 2 a setting or option that cannot be used (the message says which).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

import uvicorn

from etl.adapters.lake import open_lake
from etl.console.app import create_app
from etl.console.settings import ConsoleConfigError, ConsoleSettings
from etl.errors import UfoError
from etl.settings import load_settings
from etl.worker.rundates_view import RunDatesView

DEFAULT_PORT = 8090


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.console", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to bind (default {DEFAULT_PORT})")  # fmt: skip
    parser.add_argument("--log-level", default="warning", help="uvicorn's (default warning)")
    args = parser.parse_args(argv)
    try:
        console = ConsoleSettings.from_env()
        if not console.trust_proxy and not loopback(args.host):
            raise ConsoleConfigError(
                f"--host {args.host}: without the proxy the console listens on 127.0.0.1 only "
                "(its actions would carry this machine's user for anyone who reaches it); put "
                "it behind the proxy and set UFO_CONSOLE_TRUST_PROXY=1"
            )
        settings = load_settings()
        lake = open_lake(settings.storage)
        dates = RunDatesView(lake, console.database_url, settings.timezone,
                             settings.schedule_time, settings.claim_lease)  # fmt: skip
    except (ConsoleConfigError, UfoError) as err:
        print(f"ufo: error: console: {err}", file=sys.stderr)
        return 2
    print(f"console: serving on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    uvicorn.run(create_app(lake, console, dates), host=args.host, port=args.port,
                log_level=args.log_level, proxy_headers=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
