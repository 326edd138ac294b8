"""A ticker for a long step that says nothing while it works: the seconds go by where they can
be seen, so no wait in ``make demo`` is silent for more than ``EVERY`` seconds.

    python etl/tools/ticker.py "Installing the Python packages" -- pip install --quiet ...

runs the command and prints the message, then the time elapsed: on a terminal one line
rewritten in place, elsewhere (a CI log) a line every ``EVERY`` seconds. ``ticking()`` does
the same around a block of Python. Standard library only, and run by path: the Makefile runs
it before the virtualenv holds the project's packages.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

EVERY = 10.0  # seconds between two lines in a log; a terminal's line changes every second


@contextmanager
def ticking(message: str, out: TextIO | None = None, every: float = EVERY) -> Iterator[None]:
    """Print ``message``, then the seconds elapsed until the block ends."""
    out = out or sys.stdout
    terminal = out.isatty()
    started = time.monotonic()
    done = threading.Event()
    print(message, file=out, flush=True)

    def tick() -> None:
        while not done.wait(1.0 if terminal else every):
            seconds = time.monotonic() - started
            if terminal:
                print(f"\r  ... {seconds:.0f} s", end="", file=out, flush=True)
            else:
                print(f"  ... {seconds:.0f} s", file=out, flush=True)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if terminal and time.monotonic() - started >= 1.0:
            print("\r" + " " * 20 + "\r", end="", file=out, flush=True)  # the ticker's line


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        print('usage: python etl/tools/ticker.py "MESSAGE" -- COMMAND [ARG...]', file=sys.stderr)
        return 2
    message, command = args[0], args[2:]
    started = time.monotonic()
    with ticking(message):
        code = subprocess.call(command)
    print(f"  done in {time.monotonic() - started:.0f} s" if code == 0 else "", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
