"""Run requests through the lake: validation, exactly-once claiming by racing workers, results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from etl.worker import BadRequest, parse_request
from tests.conftest import REPO, pipeline_env
from tests.integration.test_s3 import BUCKET, CREDENTIALS, s3, s3_endpoint, s3_env  # noqa: F401

HEADER = "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"


def test_a_valid_request_becomes_an_argument_list():
    request = parse_request("task: TopStatesToDatabase\nparams: {date: 2019-03-29, force: true}\n")
    assert request.argv(["--local-scheduler"])[2:] == [
        "luigi", "--module", "etl", "TopStatesToDatabase", "--local-scheduler", "--date", "2019-03-29", "--force",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text, reason",
    [
        ("task: [unclosed", "not valid YAML"),
        ("- a list", "must be a mapping"),
        ("task: os.system\nparams: {}", "is not one of"),
        ("task: ReadUFOs\nparams: {date: 2019-02-30}", "'2019-02-30' is not valid"),
        ("task: ReadUFOs\nparams: {workers: 8}", "has no parameter 'workers'"),
        ("task: ReadUFOs\nparams: {date: [1, 2]}", "must be a single value"),
        ("task: ReadUFOs\nenv: {LD_PRELOAD: /tmp/x.so}", "'env' may only set UFO_SOURCE"),
        ("task: ReadUFOs\nrun: rm -rf /", "unknown key(s) ['run']"),
        ("!!python/object/apply:os.system ['id']", "not valid YAML"),
    ],
)
def test_malformed_requests_say_why(text, reason):
    with pytest.raises(BadRequest) as err:
        parse_request(text)
    assert reason in str(err.value)


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


def test_racing_workers_run_each_request_once(tmp_path):
    src = tmp_path / "index.csv"
    src.write_text(HEADER + "1/1/19 1:00,Town,CA,Light,1 min,x,1/2/19\r\n", newline="")
    lake = tmp_path / "lake"
    requests = lake / "requests"
    requests.mkdir(parents=True)
    for day in ("2019-03-27", "2019-03-28", "2019-03-29"):
        (requests / f"read-{day}.yaml").write_text(f"task: ReadUFOs\nparams:\n  date: {day}\n")
    (requests / "broken.yaml").write_text("task: ReadUFOs\nparams: {date: yesterday}\n")
    (requests / "missing-source.yml").write_text(
        f"task: ReadUFOs\nparams: {{date: 2019-03-26}}\nenv: {{UFO_SOURCE: {tmp_path / 'nope.csv'}}}\n"
    )
    results = race_workers(pipeline_env(str(lake), None, str(src)))
    for r in results:
        # --once exits 1 when a request it handled failed or was malformed, else 0.
        failed = "broken.yaml" in r.stdout or "missing-source.yml" in r.stdout
        assert r.returncode == (1 if failed else 0), (r.stdout[-2000:], r.stderr[-2000:])

    runs = [line for r in results for line in r.stdout.splitlines() if ": running " in line]
    assert len(runs) == 4  # every valid request ran, once, by one of the two workers
    names = sorted(p.name for p in requests.iterdir() if p.is_file())
    assert names == sorted(
        ["broken.error.yaml", "missing-source.error.yaml", "missing-source.log"]
        + [f"read-{d}.done.yaml" for d in ("2019-03-27", "2019-03-28", "2019-03-29")]
        + [f"read-{d}.log" for d in ("2019-03-27", "2019-03-28", "2019-03-29")]
    )
    assert list((requests / ".claims").iterdir()) == []
    env = pipeline_env(str(lake), None, str(src))
    assert read_ufos_complete(env, "2019-03-27", "2019-03-28", "2019-03-29", "2019-03-26") == [
        True, True, True, False,
    ]  # fmt: skip
    for day in ("2019-03-27", "2019-03-28", "2019-03-29"):
        assert yaml.safe_load((requests / f"read-{day}.done.yaml").read_text())["exit_code"] == 0
    broken = yaml.safe_load((requests / "broken.error.yaml").read_text())
    assert "'yesterday' is not valid" in broken["error"] and broken["status"] == "error"
    failed = yaml.safe_load((requests / "missing-source.error.yaml").read_text())
    assert failed["exit_code"] == 30 and "does not exist: set UFO_SOURCE" in failed["error"]
    assert "nope.csv" in (requests / "missing-source.log").read_text()


@pytest.mark.integration
def test_requests_in_an_s3_lake(s3, s3_endpoint, tmp_path):  # noqa: F811
    src = tmp_path / "index.csv"
    src.write_text(HEADER + "1/1/19 1:00,Town,CA,Light,1 min,x,1/2/19\r\n", newline="")
    for day in ("2019-03-28", "2019-03-29"):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"lake/requests/r-{day}.yaml",
            Body=f"task: ReadUFOs\nparams: {{date: {day}}}\n".encode(),
        )
    results = race_workers(s3_env(s3_endpoint, None, str(src)))
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    assert len([ln for r in results for ln in r.stdout.splitlines() if ": running " in ln]) == 2
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert [k for k in keys if k.startswith("lake/requests/")] == [
        "lake/requests/r-2019-03-28.done.yaml", "lake/requests/r-2019-03-28.log",
        "lake/requests/r-2019-03-29.done.yaml", "lake/requests/r-2019-03-29.log",
    ]  # fmt: skip
    env = s3_env(s3_endpoint, None, str(src))
    assert read_ufos_complete(env, "2019-03-28", "2019-03-29") == [True, True]


def test_the_daily_schedule_fires_once_a_day_after_its_local_time():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from etl.worker import DailySchedule

    madrid = ZoneInfo("Europe/Madrid")
    schedule = DailySchedule(dt.time(2, 30), madrid, ["--local-scheduler"])
    utc = dt.UTC
    # 01:00 UTC on 22 Nov is 02:00 in Madrid: not yet.
    assert schedule.due(dt.datetime(2026, 11, 22, 1, 0, tzinfo=utc)) is None
    # 01:45 UTC is 02:45 in Madrid: due, for yesterday in Madrid.
    assert schedule.due(dt.datetime(2026, 11, 22, 1, 45, tzinfo=utc)) == dt.date(2026, 11, 21)
    schedule.last_day = dt.date(2026, 11, 22)  # it ran
    assert schedule.due(dt.datetime(2026, 11, 22, 22, 0, tzinfo=utc)) is None
    # 23:40 UTC on 22 Nov is already 00:40 on the 23rd in Madrid, before 02:30: not yet.
    assert schedule.due(dt.datetime(2026, 11, 22, 23, 40, tzinfo=utc)) is None
    assert schedule.due(dt.datetime(2026, 11, 23, 1, 31, tzinfo=utc)) == dt.date(2026, 11, 22)


def test_the_schedule_comes_from_the_environment(monkeypatch):
    import datetime as dt

    from etl.worker import schedule_from_env

    monkeypatch.delenv("UFO_SCHEDULE_TIME", raising=False)
    assert schedule_from_env() is None
    monkeypatch.setenv("UFO_SCHEDULE_TIME", "06:15")
    monkeypatch.setenv("UFO_TIMEZONE", "America/New_York")
    schedule = schedule_from_env()
    assert (schedule.at, str(schedule.zone)) == (dt.time(6, 15), "America/New_York")


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


def run_hook(tmp_path: Path, *switches: str) -> tuple[Path, dict]:
    """A hook folder with ``switches`` (hang, grandchild, exit) on; the env entries for it."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_RUN_HOOK)
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
