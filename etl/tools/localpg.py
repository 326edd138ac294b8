"""A private PostgreSQL server under a run directory, for the demo and the tests.

It listens on 127.0.0.1 only, on a free port, with trust authentication for local clients
(nothing else can reach it). As root, ``initdb`` and the server run as the ``postgres`` user,
since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from etl.errors import DatabaseError
from etl.tools.ports import free_port

DATABASE = "ufo"


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise DatabaseError(
        f"PostgreSQL's {name} is not installed: install the PostgreSQL server "
        "(e.g. `apt-get install postgresql`) or set UFO_DATABASE_URL to an existing database."
    )


def _postgres_can_enter(path: Path) -> bool:
    probe = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(path)], check=False
    )
    return probe.returncode == 0


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in ``directory``; ``start()`` then ``url``; ``stop()`` when done."""

    directory: Path
    port: int = 0

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).resolve()
        if os.geteuid() == 0 and not _postgres_can_enter(self.directory.parent):
            # Root's private directories (e.g. /root, pytest's temp root) are closed to the
            # postgres user: keep the cluster in a world-traversable place instead.
            digest = hashlib.sha1(str(self.directory).encode()).hexdigest()[:12]
            self.directory = Path(tempfile.gettempdir()) / f"ufo-postgres-{digest}"

    @property
    def user(self) -> str:
        return "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> LocalPostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        try:
            if not (self.data_dir / "PG_VERSION").exists():
                self._run(_bin("initdb"), "-D", str(self.data_dir), "-U", self.user,
                          "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
            if self.running():
                # Already up (an earlier demo left it running): its port is in postmaster.pid.
                self.port = int((self.data_dir / "postmaster.pid").read_text().splitlines()[3])
            else:
                self.port = self.port or free_port()
                self._run(
                    _bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.directory / "postgres.log"),
                    "-w", "-t", "60", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.directory}",
                    "start",
                )  # fmt: skip
            self.create_database(DATABASE)
        except subprocess.CalledProcessError as err:
            log = self.directory / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise DatabaseError(
                f"Could not start a private PostgreSQL in {self.directory}: {err.stderr.strip()} {tail}"
            ) from err
        return self

    def create_database(self, name: str) -> str:
        """Create database ``name`` on the running server unless it exists; its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise DatabaseError(f"{name!r} is not a plain database name (a-z, 0-9, _)")
        exists = self._run(_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                           "-d", "postgres", "-tAc",
                           f"SELECT 1 FROM pg_database WHERE datname='{name}'").stdout.strip()  # fmt: skip
        if not exists:
            self._run(_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)  # fmt: skip
        return self.url.rsplit("/", 1)[0] + "/" + name

    def running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data_dir), "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def stop(self) -> None:
        if self.running():
            self._run(_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def discard(self) -> None:
        """Stop the server and remove its cluster: for a throwaway one (a test's, a benchmark's).

        A cluster moved out of a directory closed to the postgres user lives in the system's temp
        directory, which removing the directory it was asked for does not clean.
        """
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
