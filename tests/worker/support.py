"""Helpers of the worker's tests: a lake with requests, worker processes, and a run hook.

The hook (a ``sitecustomize`` on a run's PYTHONPATH) makes the runs a worker starts hang, fork
a stand-in for spark-submit, or end at once as a stand-in for the pipeline, so that the lease,
streaming, timeout and schedule tests need neither Spark nor a database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import REPO

HEADER = "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"


def lake_with_source(tmp_path: Path) -> tuple[Path, Path]:
    """(the ``requests/`` folder of a new local lake, a one-report source file)."""
    src = tmp_path / "index.csv"
    src.write_text(HEADER + "1/1/19 1:00,Town,CA,Light,1 min,x,1/2/19\r\n", newline="")
    requests = tmp_path / "lake" / "requests"
    requests.mkdir(parents=True)
    return requests, src


def read_ufos_complete(env: dict, *days: str) -> list[bool]:
    """Whether ReadUFOs is complete for each date in the lake of ``env``, as Luigi judges it."""
    code = (
        "import sys, datetime, etl; print(*(etl.ReadUFOs(date=datetime.date.fromisoformat(day))"
        ".complete() for day in sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *days],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return [word == "True" for word in result.stdout.splitlines()[-1].split()]


def run_worker(env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m etl.worker --once ARGS`` with the local scheduler, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "etl.worker", "--once", *args],
        env=dict(env, UFO_LOCAL_SCHEDULER="1"), cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def race_workers(env, n: int = 2, args: tuple[str, ...] = ()) -> list[subprocess.CompletedProcess]:
    """``n`` workers started at once, each handling the pending requests once."""
    env = dict(env, UFO_LOCAL_SCHEDULER="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "etl.worker", "--once", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


# --------------------------------------------------------------------------------------------
# Runs that hang, print or fork on demand, for the lease, streaming and timeout tests.

_RUN_HOOK = '''\
"""Test hook, imported by every Python start-up: acts only in a run the worker started."""
import os, subprocess, sys, time
from pathlib import Path

_dir = os.environ.get("UFO_TEST_HOOK_DIR")
if _dir and sys.orig_argv[1:3] == ["-m", "luigi"]:
    _dir = Path(_dir)
    (_dir / f"run-{os.getpid()}.pid").write_text(str(os.getpid()))
    if (_dir / "grandchild").exists():  # a stand-in for spark-submit
        _child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (_dir / f"grandchild-{_child.pid}.pid").write_text(str(_child.pid))
    try:  # only the first run takes the "hang" file
        os.rename(_dir / "hang", _dir / f"hang.{os.getpid()}")
    except FileNotFoundError:
        pass
    else:
        print("HOOK-HANGING", flush=True)
        _end = time.monotonic() + 120
        while not (_dir / "release").exists() and time.monotonic() < _end:
            time.sleep(0.1)
        print("HOOK-RELEASED", flush=True)
    if (_dir / "exit").exists():  # a stand-in for the pipeline: the run ends here, done
        sys.stdout.flush()
        os._exit(0)
'''


def run_hook(tmp_path: Path, *switches: str, text: str | None = None) -> tuple[Path, dict]:
    """A hook folder with ``switches`` (hang, grandchild, exit) on; the env entries for it.
    ``text``: another hook than the default one (it finds its folder in UFO_TEST_HOOK_DIR)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_RUN_HOOK if text is None else text)
    for switch in switches:
        (hook / switch).touch()
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    return hook, {"UFO_TEST_HOOK_DIR": str(hook), "PYTHONPATH": path}


def hook_pids(hook: Path, kind: str) -> list[int]:
    """Pids the hook recorded: ``run`` (luigi runs) or ``grandchild``."""
    return [int(p.read_text()) for p in hook.glob(f"{kind}-*.pid")]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(condition, what: str, timeout: float = 60, proc: subprocess.Popen | None = None):
    """Poll ``condition`` until true; fail saying ``what`` after ``timeout`` s or if proc ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


class LiveWorker:
    """A worker process whose stdout lines are collected as they come."""

    def __init__(self, env: dict, *args: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "etl.worker", *args],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def line_with(self, *parts: str) -> str | None:
        return next((ln for ln in list(self.lines) if all(p in ln for p in parts)), None)

    def wait(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
