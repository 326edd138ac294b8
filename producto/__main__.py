"""Serve the web app: ``python -m producto --host 127.0.0.1 --port 8000``."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from producto.app import create_app
from producto.settings import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producto", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as err:
        print(f"producto: {err}", file=sys.stderr)
        return 2
    print(f"producto: serving on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
