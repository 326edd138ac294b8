"""Bad run requests: each ends as its own .error.yaml, and the worker service goes on.

Also what the worker refuses to read (symlinks, oversized files), what it never writes down
(credentials in a source URL), and the exit code of ``--once`` that cron sees.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from etl.adapters.lake import LocalLake
from etl.worker import service
from tests.support import BUCKET, free_port, pipeline_env, s3_env
from tests.worker.support import HEADER, lake_with_source, read_ufos_complete, run_worker

ROW = "1/1/19 1:00,Town,CA,Light,1 min,x,1/2/19\r\n"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() or p.is_symlink())


def everything_written(lake: Path) -> str:
    """The text of every file the worker left in the lake (results, logs, claims, outputs)."""
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace")
        for p in sorted(lake.rglob("*"))
        if p.is_file() and not p.is_symlink()
    )


def test_one_bad_request_does_not_stop_the_service(tmp_path):
    requests, src = lake_with_source(tmp_path)
    # A NUL byte (YAML's "\0" escape) in UFO_SOURCE made subprocess raise ValueError.
    (requests / "a-nul.yaml").write_text(
        'task: ReadUFOs\nparams: {date: 2019-03-27}\nenv: {UFO_SOURCE: "/data/a\\0b.csv"}\n'
    )
    # Latin-1, not UTF-8: reading it as text raised UnicodeDecodeError.
    (requests / "b-latin1.yaml").write_bytes(
        "task: ReadUFOs\nparams: {date: 2019-03-28}\n# r\u00e9sum\u00e9\n".encode("latin-1")
    )
    (requests / "c-good.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")

    result = run_worker(pipeline_env(str(requests.parent), None, str(src)))

    assert result.returncode == 1, result.stderr[-3000:]  # two requests failed
    assert "Traceback" not in result.stderr
    assert files_in(requests) == [
        "a-nul.error.yaml", "b-latin1.error.yaml", "c-good.done.yaml", "c-good.log",
    ]  # fmt: skip
    assert list((requests / ".claims").iterdir()) == []
    nul = yaml.safe_load((requests / "a-nul.error.yaml").read_text())
    assert nul["status"] == "error"
    assert "env 'UFO_SOURCE' must not contain a NUL byte" in nul["error"]
    latin = yaml.safe_load((requests / "b-latin1.error.yaml").read_text())
    assert "not UTF-8" in latin["error"] and "position 45" in latin["error"]
    assert "request a-nul.yaml" in result.stdout and "NUL byte" in result.stdout
    assert "request b-latin1.yaml" in result.stdout and "not UTF-8" in result.stdout
    env = pipeline_env(str(requests.parent), None, str(src))
    assert read_ufos_complete(env, "2019-03-29", "2019-03-27") == [True, False]


def test_an_unexpected_error_ends_as_the_requests_error_yaml(tmp_path, monkeypatch, caplog):
    requests, _src = lake_with_source(tmp_path)
    (requests / "a.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    (requests / "b.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-28}\n")

    def explode(text: str):
        raise RuntimeError("the parser fell over")

    monkeypatch.setattr(service, "parse_request", explode)
    runner = service.RequestRunner(LocalLake(str(requests.parent)), ["--local-scheduler"], "w1")
    outcome = runner.run_pending()

    assert outcome.failed == ["a.yaml", "b.yaml"] and outcome.done == []
    assert files_in(requests) == ["a.error.yaml", "b.error.yaml"]
    assert list((requests / ".claims").iterdir()) == []
    record = yaml.safe_load((requests / "a.error.yaml").read_text())
    assert record["error"] == (
        "the worker failed while handling the request: RuntimeError: the parser fell over"
    )
    assert record["request"] == "task: ReadUFOs\nparams: {date: 2019-03-29}\n"
    assert "RuntimeError: the parser fell over" in caplog.text  # logged, with its traceback


def test_once_exits_non_zero_when_a_request_failed(tmp_path):
    requests, src = lake_with_source(tmp_path)
    env = pipeline_env(str(requests.parent), None, str(src))

    assert run_worker(env).returncode == 0  # nothing to do
    (requests / "good.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    assert run_worker(env).returncode == 0  # all succeeded
    (requests / "malformed.yaml").write_text("task: ReadUFOs\nparams: {date: yesterday}\n")
    assert run_worker(env).returncode == 1
    (requests / "failing.yaml").write_text(
        f"task: ReadUFOs\nparams: {{date: 2019-03-28}}\nenv: {{UFO_SOURCE: {tmp_path}/nope.csv}}\n"
    )
    assert run_worker(env).returncode == 1
    assert files_in(requests) == [
        "failing.error.yaml", "failing.log", "good.done.yaml", "good.log", "malformed.error.yaml",
    ]  # fmt: skip


def test_symlinked_requests_are_refused_without_reading_them(tmp_path):
    requests, src = lake_with_source(tmp_path)
    system_file = tmp_path / "etc-shadow"
    system_file.write_text("root:$6$SECRET-HASH-7731:19000:0:99999:7:::\n")
    valid_elsewhere = tmp_path / "elsewhere.yaml"
    valid_elsewhere.write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    (requests / "shadow.yaml").symlink_to(system_file)
    (requests / "valid.yaml").symlink_to(valid_elsewhere)

    result = run_worker(pipeline_env(str(requests.parent), None, str(src)))

    assert result.returncode == 1
    assert files_in(requests) == ["shadow.error.yaml", "valid.error.yaml"]
    for name in ("shadow", "valid"):
        record = yaml.safe_load((requests / f"{name}.error.yaml").read_text())
        assert record["error"] == "requests must be regular files, not symlinks"
        assert "request" not in record
    assert "SECRET-HASH-7731" not in everything_written(requests.parent)
    assert "SECRET-HASH-7731" not in result.stdout + result.stderr
    # The links are gone, what they pointed to is untouched, and nothing ran.
    assert system_file.read_text() == "root:$6$SECRET-HASH-7731:19000:0:99999:7:::\n"
    assert valid_elsewhere.exists()
    env = pipeline_env(str(requests.parent), None, str(src))
    assert read_ufos_complete(env, "2019-03-29") == [False]


def test_requests_over_64_kib_are_refused_and_never_copied(tmp_path):
    requests, src = lake_with_source(tmp_path)
    head = "task: ReadUFOs\nparams: {date: 2019-03-29}\n# "
    (requests / "at-limit.yaml").write_text(head + "x" * (65536 - len(head) - 1) + "\n")
    (requests / "over.yaml").write_text(head + "y" * (65537 - len(head) - 1) + "\n")
    (requests / "huge.yaml").write_text(head + "z" * (30 * 2**20) + "\n")

    result = run_worker(pipeline_env(str(requests.parent), None, str(src)))

    assert result.returncode == 1
    assert files_in(requests) == ["at-limit.done.yaml", "at-limit.log", "huge.error.yaml", "over.error.yaml"]  # fmt: skip
    over = yaml.safe_load((requests / "over.error.yaml").read_text())
    assert over["error"] == "request is 65537 bytes, the limit is 64 KiB"
    assert over["size"] == 65537 and "request" not in over
    huge = yaml.safe_load((requests / "huge.error.yaml").read_text())
    assert huge["error"] == f"request is {len(head) + 30 * 2**20 + 1} bytes, the limit is 64 KiB"
    assert (requests / "huge.error.yaml").stat().st_size < 1000
    assert "z" * 100 not in everything_written(requests.parent)
    assert len(result.stdout) + len(result.stderr) < 100_000


@pytest.mark.integration
def test_the_size_limit_holds_in_an_s3_lake(s3, s3_endpoint, tmp_path):
    src = tmp_path / "index.csv"
    src.write_text(HEADER + ROW, newline="")
    body = b"task: ReadUFOs\nparams: {date: 2019-03-29}\n# " + b"q" * 70_000 + b"\n"
    s3.put_object(Bucket=BUCKET, Key="lake/requests/big.yaml", Body=body)

    result = run_worker(s3_env(s3_endpoint, None, str(src)))

    assert result.returncode == 1, result.stderr[-3000:]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["lake/requests/big.error.yaml"]
    record = yaml.safe_load(
        s3.get_object(Bucket=BUCKET, Key="lake/requests/big.error.yaml")["Body"].read()
    )
    assert record["error"] == f"request is {len(body)} bytes, the limit is 64 KiB"


class _CsvHandler(http.server.BaseHTTPRequestHandler):
    """Serves the one-report index at any path, whatever the query string."""

    def do_GET(self) -> None:
        body = (HEADER + ROW).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def csv_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the index; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CsvHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SIGNATURE = "5e1d9c0ffee0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182930"
SESSION_TOKEN = "FwoGZXIvYXdzELsessiontokenEXAMPLE"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "hunter2-db-pass"


def presigned(base: str) -> str:
    return (
        f"{base}/incoming/nuforc_index.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={ACCESS_KEY}%2F20190329%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Security-Token={SESSION_TOKEN}&X-Amz-Signature={SIGNATURE}"
    )


def test_credentials_in_a_source_never_reach_logs_or_results(tmp_path, csv_server):
    requests, src = lake_with_source(tmp_path)
    refused = f"http://alice:{PASSWORD}@127.0.0.1:{free_port()}"  # nothing listens there
    (requests / "ok.yaml").write_text(
        f"task: ReadUFOs\nparams: {{date: 2019-03-29}}\nenv: {{UFO_SOURCE: '{presigned(csv_server)}'}}\n"
    )
    (requests / "refused.yaml").write_text(
        f"task: ReadUFOs\nparams: {{date: 2019-03-28}}\nenv: {{UFO_SOURCE: '{presigned(refused)}'}}\n"
    )
    (requests / "malformed.yaml").write_text(
        f"task: ReadUFOs\nparams: {{date: someday}}\nenv: {{UFO_SOURCE: '{presigned(refused)}'}}\n"
    )

    result = run_worker(pipeline_env(str(requests.parent), None, str(src)))

    assert result.returncode == 1, result.stderr[-3000:]
    assert files_in(requests) == [
        "malformed.error.yaml", "ok.done.yaml", "ok.log", "refused.error.yaml", "refused.log",
    ]  # fmt: skip
    written = everything_written(requests.parent) + result.stdout + result.stderr
    for secret in (SIGNATURE, SESSION_TOKEN, ACCESS_KEY, PASSWORD):
        assert secret not in written
    # What remains says which source it was, and that it was presigned.
    done = yaml.safe_load((requests / "ok.done.yaml").read_text())
    assert "X-Amz-Signature=REDACTED" in done["request"]
    assert f"{csv_server}/incoming/nuforc_index.csv?X-Amz-Algorithm=REDACTED" in done["request"]
    assert "X-Amz-Credential=REDACTED" in (requests / "ok.log").read_text()
    failed = yaml.safe_load((requests / "refused.error.yaml").read_text())
    assert "Cannot download http://alice@127.0.0.1:" in failed["error"]
    assert "X-Amz-Security-Token=REDACTED" in failed["error"]
    malformed = yaml.safe_load((requests / "malformed.error.yaml").read_text())
    assert "'someday' is not valid" in malformed["error"]
    assert "http://alice@127.0.0.1:" in malformed["request"]
    # The download with the credentials really happened: the run succeeded.
    assert done["exit_code"] == 0
    env = pipeline_env(str(requests.parent), None, str(src))
    assert read_ufos_complete(env, "2019-03-29", "2019-03-28") == [True, False]
