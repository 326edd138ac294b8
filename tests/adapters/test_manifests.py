"""The manifest commit protocol on a local lake: publish, read, retire, sweep (no Spark)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from etl.adapters.lake import LocalLake
from etl.adapters.manifests import Manifests, ManifestTarget
from etl.errors import StorageError

D1 = dt.date(2019, 3, 28)
D2 = dt.date(2019, 3, 29)


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    return LocalLake(str(tmp_path / "lake"))


def write_attempt(lake: LocalLake, dataset: str, dates, name: str | None = None) -> str:
    """An attempt with one data file, as a task writes it before it publishes."""
    rel = Manifests(lake).new_attempt(dataset, dates) if name is None else f"_attempts/{name}"
    if name is not None:  # an attempt made by hand, with a start time of the test's choosing
        info = {"dataset": dataset, "dates": [d.isoformat() for d in dates]}
        lake.write_text(f"{rel}/_ATTEMPT.json", json.dumps(info))
    lake.write_text(f"{rel}/{dataset}/part-0.csv", f"rows of {rel}\n")
    return rel


def test_an_attempt_is_invisible_until_its_manifest_is_published(lake, tmp_path):
    manifests = Manifests(lake)
    attempt = write_attempt(lake, "aggregated", [D1, D2])
    info = json.loads((tmp_path / "lake" / attempt / "_ATTEMPT.json").read_text())
    assert info["dataset"] == "aggregated" and info["dates"] == ["2019-03-28", "2019-03-29"]
    target = ManifestTarget(lake, "aggregated", D2)
    assert not target.exists() and manifests.read("aggregated", D2) is None

    files = {"aggregated": [f"{attempt}/aggregated/part-0.csv"]}
    assert manifests.publish("aggregated", D2, attempt, files, quality={"valid": 3}) is None

    assert target.exists()
    assert target.path == str(tmp_path / "lake" / "aggregated/date=2019-03-29/_MANIFEST.json")
    document = json.loads((tmp_path / target.path).read_text())
    assert document["run_date"] == "2019-03-29"
    assert document["attempt"] == attempt.rsplit("/", 1)[1]
    assert document["files"] == files and document["quality"] == {"valid": 3}
    assert target.files("aggregated") == files["aggregated"]
    assert target.files("rejects") == []
    assert lake.read_text(target.files("aggregated")[0]) == f"rows of {attempt}\n"
    assert not ManifestTarget(lake, "aggregated", D1).exists()  # only D2 was published


def test_a_missing_manifest_says_which_task_to_run(lake):
    with pytest.raises(StorageError, match="run the task that publishes raw for 2019-03-29"):
        ManifestTarget(lake, "raw", D2).manifest()


def test_republishing_replaces_the_files_at_once_and_retires_the_old_attempt(lake, tmp_path):
    manifests = Manifests(lake)
    first = write_attempt(lake, "raw", [D2])
    manifests.publish("raw", D2, first, {"records": [f"{first}/raw/part-0.csv"]})
    second = write_attempt(lake, "raw", [D2])

    superseded = manifests.publish("raw", D2, second, {"records": [f"{second}/raw/part-0.csv"]})

    assert superseded == first.rsplit("/", 1)[1]
    assert ManifestTarget(lake, "raw", D2).files("records") == [f"{second}/raw/part-0.csv"]
    assert manifests.retire([superseded, None]) == [superseded]
    assert not (tmp_path / "lake" / first).exists()
    assert (tmp_path / "lake" / second).is_dir()


def test_an_attempt_still_named_by_another_date_is_kept(lake, tmp_path):
    manifests = Manifests(lake)
    shared = write_attempt(lake, "raw", [D1, D2])
    for day in (D1, D2):
        manifests.publish("raw", day, shared, {"records": [f"{shared}/raw/part-0.csv"]})
    newer = write_attempt(lake, "raw", [D2])
    superseded = manifests.publish("raw", D2, newer, {"records": [f"{newer}/raw/part-0.csv"]})

    assert manifests.retire([superseded]) == []  # D1 still reads it
    assert (tmp_path / "lake" / shared).is_dir()


def test_the_sweep_removes_old_attempts_nothing_published_and_nothing_else(lake, tmp_path):
    manifests = Manifests(lake)
    now = dt.datetime.now(dt.UTC)
    old = (now - dt.timedelta(hours=7)).strftime("%Y%m%dT%H%M%SZ")
    recent = (now - dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    interrupted = write_attempt(lake, "raw", [D1], name=f"{old}-0000dead")
    running = write_attempt(lake, "raw", [D1], name=f"{recent}-0000a11e")
    published = write_attempt(lake, "raw", [D2], name=f"{old}-00000001")
    manifests.publish("raw", D2, published, {"records": [f"{published}/raw/part-0.csv"]})
    (tmp_path / "lake" / "_attempts" / "not-an-attempt").mkdir()

    removed = manifests.sweep(dt.timedelta(hours=6))

    assert removed == [f"{old}-0000dead"]
    root = tmp_path / "lake"
    assert not (root / interrupted).exists()
    assert (root / running).is_dir()  # may still be written by a run under way
    assert (root / published).is_dir()  # a manifest names it
    assert (root / "_attempts" / "not-an-attempt").is_dir()  # not named as attempts are
    assert ManifestTarget(lake, "raw", D2).files("records") == [f"{published}/raw/part-0.csv"]


def test_publishing_is_one_rename_readers_never_see_a_partial_manifest(lake, tmp_path):
    manifests = Manifests(lake)
    attempt = write_attempt(lake, "raw", [D2])
    manifests.publish("raw", D2, attempt, {"records": [f"{attempt}/raw/part-0.csv"]})
    partition = tmp_path / "lake" / "raw" / "date=2019-03-29"
    # Only the manifest is left: no temporary file of the write beside it.
    assert sorted(p.name for p in partition.iterdir()) == ["_MANIFEST.json"]
