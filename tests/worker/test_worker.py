"""Run requests through the lake: exactly-once claiming by racing workers, results."""

from __future__ import annotations

import pytest
import yaml

from tests.support import BUCKET, pipeline_env, s3_env
from tests.worker.support import HEADER, race_workers, read_ufos_complete


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
        failed = (
            "request broken.yaml cannot be run" in r.stdout
            or "request missing-source.yml: error" in r.stdout
        )
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
def test_requests_in_an_s3_lake(s3, s3_endpoint, tmp_path):
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
