"""Bad input and unreachable services: a non-zero exit, one line saying what to fix, no partial output."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, pipeline_env, run_luigi

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
    "content, message",
    [
        (None, "does not exist: set UFO_SOURCE"),
        (b"", "is empty"),
        (HEADER.encode(), "has a header but no reports"),
        (b"when,where\r\n1/1/19,CA\r\n", "missing column(s) 'Date / Time', 'City'"),
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
    assert "secret-pw" not in result.stderr + result.stdout  # never a password in a log line
    assert _files(tmp_path / "lake") == []


def test_unparsable_database_url(tmp_path):
    env = pipeline_env(str(tmp_path / "lake"), "not a url", str(tmp_path / "x.csv"))
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == SCHEDULING_ERROR
    [line] = _error_lines(result.stderr)
    assert "UFO_DATABASE_URL" in line
