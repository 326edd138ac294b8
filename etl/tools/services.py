"""The local product's background processes, each known by a pid file in the run directory.

A ``Service`` starts its process in a session of its own (so stopping it ends its children, a
running Luigi task and spark-submit included), waits, bounded, until it answers, and stops it
with SIGTERM, then SIGKILL. Its pid file (JSON: pid, address, log) is in ``pids/``, its log in
``logs/``; a pid whose command line lacks the service's marker is never taken for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etl.errors import UfoError
from etl.settings import setting

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # seconds for a service to answer on a busy 2-core machine
STOP_TIMEOUT = 20.0


class LocalStackError(UfoError):
    """The local product cannot be started or stopped; the message says what to do."""


def run_dir() -> Path:
    """The demo's run directory (UFO_RUN_DIR, else ``.run``), absolute."""
    return setting("run_dir").resolve()


def say(message: str) -> None:
    print(message, flush=True)


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200: a server of the local product is up."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclass
class Service:
    """One background process of the local product, known by its pid file."""

    name: str
    marker: str  # a word of its command line, so a reused pid is never taken for it
    address: str = ""

    @property
    def pid_file(self) -> Path:
        return run_dir() / "pids" / f"{self.name}.json"

    @property
    def log(self) -> Path:
        return run_dir() / "logs" / f"{self.name}.log"

    def running_pid(self) -> int | None:
        """Its pid when the pid file names a live process of this service."""
        try:
            pid = int(json.loads(self.pid_file.read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, KeyError):
            return None
        return pid if self.marker in cmdline else None

    def recorded_address(self) -> str:
        try:
            return str(json.loads(self.pid_file.read_text()).get("address", ""))
        except (OSError, ValueError):
            return ""

    def start(self, argv: list[str], env: dict[str, str], ready: Callable[[], bool]) -> None:
        """Start it in the background unless it runs; wait (bounded) until ``ready()``."""
        pid = self.running_pid()
        if pid is not None:
            say(f"{self.name}: already running (pid {pid}) {self.recorded_address()}".rstrip())
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        record = {"pid": process.pid, "address": self.address, "log": str(self.log)}
        self.pid_file.write_text(json.dumps(record) + "\n")
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {process.returncode}" if process.poll() is not None else (
                    f"did not answer within {START_TIMEOUT:.0f} s")  # fmt: skip
                self.stop(quiet=True)
                tail = self.log.read_text(errors="replace")[-2000:]
                raise LocalStackError(f"{self.name} {why}; its log {self.log} ends:\n{tail}")
            time.sleep(0.3)
        say(f"{self.name}: started (pid {process.pid}) {self.address}".rstrip())

    def stop(self, quiet: bool = False) -> bool:
        """Stop it and its children (SIGTERM, then SIGKILL); True when it was running."""
        pid = self.running_pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not quiet:
            say(f"stopped {self.name} (pid {pid})")
        return True


def _reap(pid: int) -> None:
    # A child of this very process (a failed start) stays a zombie until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
