"""Bad input and unreachable services: a non-zero exit, one line saying what to fix, no partial output."""

from __future__ import annotations

import pytest

from tests.support import free_port, pipeline_env, run_luigi

pytestmark = pytest.mark.integration

HEADER = "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"
TASK_FAILED, SCHEDULING_ERROR = 30, 35


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ufo: error: ")]


def _files(root) -> list[str]:
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


@pytest.mark.parametrize(
    "path, message",
    [("/dev/zero", "is not a regular file (a device, pipe or socket)"), (".", "is a directory")],
)
def test_a_source_that_is_no_file_says_what_it_is(tmp_path, path, message):
    source = str(tmp_path) if path == "." else path
    env = pipeline_env(str(tmp_path / "lake"), None, source)
    result = run_luigi(
        "ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env, timeout=120
    )
    assert result.returncode == TASK_FAILED, result.stderr[-3000:]
    [line] = _error_lines(result.stderr)
    assert message in line and "does not exist" not in line


def test_a_run_date_in_the_future_is_refused(tmp_path):
    env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "x.csv"))
    result = run_luigi(
        "ReadUFOs", "--date", "2100-01-01", "--local-scheduler", env=env, timeout=120
    )
    assert result.returncode != 0
    [line] = _error_lines(result.stderr)
    assert "2100-01-01 is in the future" in line
    assert not (tmp_path / "lake").exists()


@pytest.mark.spark
def test_a_run_date_before_every_report_loads_an_empty_snapshot_and_says_so(tmp_path, database_url):
    """A backfill that starts before the source does is no failure: the early dates are empty."""
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from producto.app import create_app
    from producto.settings import Settings

    src = tmp_path / "source.csv"
    src.write_text(HEADER + "1/1/19 1:00,Town,CA,Light,1 min,x,1/2/19\r\n", newline="")
    env = pipeline_env(str(tmp_path / "lake"), database_url, str(src))
    result = run_luigi("TopStatesToDatabase", "--date", "1899-12-31", "--local-scheduler", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _error_lines(result.stderr) == []
    logged = result.stdout + result.stderr
    assert (
        "every one of the source's 1 reports was posted after it: its snapshot is empty" in logged
    )
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        run = conn.execute(sa.text("SELECT input, after_run_date, valid FROM ufo_runs")).one()
        tops = conn.execute(sa.text("SELECT count(*) FROM top_states")).scalar_one()
    engine.dispose()
    assert tuple(run) == (1, 1, 0) and tops == 0
    client = TestClient(create_app(Settings(database_url)))
    assert client.get("/api/v1/runs/1899-12-31/top-states").json()["states"] == []
    assert client.get("/?run_date=1899-12-31").status_code == 200


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist: set UFO_SOURCE"),
        (b"", "is empty"),
        (HEADER.encode(), "has a header but no reports"),
        (
            b"when,where\r\n1/1/19,CA\r\n",
            "header 'when', 'where': no known layout; the NUFORC "
            "report index needs 'Date / Time', 'City', 'State', 'Shape', 'Duration', 'Summary', "
            "'Posted'. Give such a file, or declare your layout in UFO_LAYOUTS",
        ),
    ],
)
def test_bad_sources(tmp_path, database_url, content, message):
    src = tmp_path / "source.csv"
    if content is not None:
        src.write_bytes(content)
    lake = tmp_path / "lake"
    env = pipeline_env(str(lake), database_url, str(src))
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == TASK_FAILED, result.stderr[-3000:]
    [line] = _error_lines(result.stderr)
    assert message in line
    assert _files(lake) == []  # nothing a later run would take as complete


def test_no_source_configured(tmp_path, database_url):
    env = pipeline_env(str(tmp_path / "lake"), database_url, None)
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == TASK_FAILED
    [line] = _error_lines(result.stderr)
    assert "set UFO_SOURCE" in line


def test_unreachable_database(tmp_path):
    url = f"postgresql://nobody:secret-pw@127.0.0.1:{free_port()}/ufo"
    env = pipeline_env(str(tmp_path / "lake"), url, str(tmp_path / "x.csv"))
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == SCHEDULING_ERROR
    [line] = _error_lines(result.stderr)
    assert "Cannot use the database" in line and "fix UFO_DATABASE_URL" in line
    assert "postgresql+psycopg2://nobody:***@127.0.0.1:" in line
    assert "nothing listens at 127.0.0.1:" in line and "(connection refused)" in line
    assert "secret-pw" not in result.stderr + result.stdout  # never a password in a log line
    assert _files(tmp_path / "lake") == []


def test_unparsable_database_url(tmp_path):
    env = pipeline_env(str(tmp_path / "lake"), "not a url", str(tmp_path / "x.csv"))
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == SCHEDULING_ERROR
    [line] = _error_lines(result.stderr)
    assert "UFO_DATABASE_URL" in line


@pytest.mark.parametrize("date", ["2019-13-45", "1553817600", "yesterday"])
def test_an_invalid_date_ends_with_what_to_give(tmp_path, date):
    env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "x.csv"))
    result = run_luigi("ReadUFOs", "--date", date, "--local-scheduler", env=env)
    assert result.returncode != 0
    assert result.stderr.rstrip().splitlines()[-1] == (
        f"ufo: error: --date {date!r} is not a date: give YYYY-MM-DD, e.g. 2019-03-29."
    )


def test_a_database_url_that_is_not_postgresql_says_so_last(tmp_path):
    env = pipeline_env(
        str(tmp_path / "lake"), "mysql://u:pw@127.0.0.1/ufo", str(tmp_path / "x.csv")
    )
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == SCHEDULING_ERROR
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith("ufo: error: ") and "is not a PostgreSQL URL" in last
    assert "pw" not in last


def test_a_password_with_at_signs_never_shows(tmp_path):
    secret = "p@ss/w@rd"
    url = f"postgresql://nobody:{secret}@127.0.0.1:{free_port()}/ufo"
    env = pipeline_env(str(tmp_path / "lake"), url, str(tmp_path / "x.csv"))
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == SCHEDULING_ERROR
    output = result.stdout + result.stderr
    for part in ("p@ss", "ss/w", "w@rd", "rd@127"):
        assert part not in output


def test_a_database_that_never_answers_times_out_with_a_message(tmp_path):
    import socket
    import time

    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        env = pipeline_env(str(tmp_path / "lake"), f"postgresql://u@127.0.0.1:{port}/ufo",
                           str(tmp_path / "x.csv"), UFO_DB_CONNECT_TIMEOUT="2")  # fmt: skip
        start = time.monotonic()
        result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler",
                           env=env, timeout=120)  # fmt: skip
    assert time.monotonic() - start < 60
    assert result.returncode == SCHEDULING_ERROR
    [line] = _error_lines(result.stderr)
    assert "Cannot use the database" in line and "timeout" in line


def test_no_luigid_is_one_error_line_saying_what_to_do(tmp_path):
    env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "x.csv"))
    port = str(free_port())  # nothing listens there
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--scheduler-port", port, env=env,
                       timeout=120)  # fmt: skip
    assert result.returncode != 0
    [line] = _error_lines(result.stderr)
    assert "when connecting to remote scheduler" in line and "start luigid" in line


def test_a_full_disk_is_said_with_what_to_do_not_a_bare_oserror():
    from etl.pipeline import reporting

    with pytest.raises(OSError) as err:  # a real ENOSPC, from the kernel's always-full device
        with open("/dev/full", "w") as full:
            full.write("x" * 65536)
    advice = reporting._disk_advice(err.value)
    assert advice.startswith("No space left on device")
    assert "UFO_STORAGE" in advice and "free space" in advice
    found = OSError(13, "Permission denied", "/lake/_attempts/a/raw/records.parquet")
    assert reporting._disk_advice(found).startswith(
        "Permission denied writing /lake/_attempts/a/raw/records.parquet: the lake"
    )
    assert reporting._disk_advice(OSError(2, "No such file or directory")) is None


def test_rangedaily_with_start_after_stop_is_one_error_line(tmp_path):
    env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "x.csv"))
    result = run_luigi(
        "RangeDaily", "--of", "ReadUFOs", "--start", "2019-03-30", "--stop", "2019-03-20",
        "--days-back", "36500", "--local-scheduler", env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == SCHEDULING_ERROR
    [line] = _error_lines(result.stderr)
    assert line.startswith("ufo: error: RangeDaily(") and "Can't have start > stop" in line
    assert result.stderr.rstrip().endswith(line)  # the last line
