"""OpenLineage events of a whole chain, received by a real HTTP server and checked against the
RunEvent structure of OpenLineage's spec (spec/OpenLineage.json, restated below as the
JSON Schema its required fields and types make; facets as its BaseFacet)."""

from __future__ import annotations

import csv
import datetime as dt
import time
import uuid

import jsonschema
import pytest

from etl.tools import sample
from tests.receivers import HttpSink
from tests.support import free_port, pipeline_env, run_luigi

pytestmark = pytest.mark.integration

DAYS = ("2019-03-28", "2019-03-29")
FAMILIES = ["ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"]

_FACETS = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["_producer", "_schemaURL"],
        "properties": {"_producer": {"type": "string"}, "_schemaURL": {"type": "string"}},
    },
}
_DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": {"type": "string"}, "name": {"type": "string"}, "facets": _FACETS,
        "inputFacets": _FACETS, "outputFacets": _FACETS,
    },
}  # fmt: skip
RUN_EVENT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["run", "job", "eventTime", "producer"],
    "properties": {
        "eventType": {"enum": ["START", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string"},
        "producer": {"type": "string"},
        "schemaURL": {"type": "string"},
        "run": {
            "type": "object", "required": ["runId"],
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _FACETS},
        },
        "job": {
            "type": "object", "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                           "facets": _FACETS},
        },
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
}  # fmt: skip


def _ids(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


@pytest.mark.spark
def test_a_chain_sends_start_and_complete_for_each_task_linked_by_their_datasets(
    tmp_path, database_url
):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(1500, until=dt.date(2019, 3, 29), seed=11))
    with open(source, encoding="utf-8", newline="") as f:
        records = sum(1 for row in csv.reader(f) if row) - 1  # every record but the header
    lake = tmp_path / "lake"
    with HttpSink() as sink:
        env = pipeline_env(str(lake), database_url, str(source),
                           OPENLINEAGE_URL=sink.url, OPENLINEAGE_NAMESPACE="ufo-test")  # fmt: skip
        result = run_luigi(
            "TopStatesToDatabase", "--date", ",".join(DAYS), "--local-scheduler", env=env
        )
        assert result.returncode == 0, result.stderr[-3000:]
        events = [body for path, body in sink.wait_for(10)]
    assert {path for path, _ in sink.posts} == {"/api/v1/lineage"}

    validator = jsonschema.Draft202012Validator(
        RUN_EVENT, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for event in events:
        validator.validate(event)
        dt.datetime.fromisoformat(event["eventTime"])
        uuid.UUID(event["run"]["runId"])

    runs: dict[str, list[dict]] = {}
    for event in events:
        runs.setdefault(event["job"]["name"], []).append(event)
    assert sorted(runs) == sorted([*FAMILIES, "spark_jobs.aggregate_by_state"])
    for name, its in runs.items():
        assert [e["eventType"] for e in its] == ["START", "COMPLETE"], name
        assert its[0]["run"]["runId"] == its[1]["run"]["runId"]
        assert its[0]["job"]["namespace"] == "ufo-test"
        assert its[1]["run"]["facets"]["ufo_runDates"]["dates"] == list(DAYS)  # one run, a batch
    done = {name: its[1] for name, its in runs.items()}

    # Each task's inputs are the datasets its upstream task wrote, named the same.
    read, aggregate, top, load = (done[f] for f in FAMILIES)
    assert _ids(read["inputs"]) == {("file", str(source))}
    raw = {("file", f"{lake}/raw/date={d}/_MANIFEST.json") for d in DAYS}
    assert _ids(read["outputs"]) == raw == _ids(aggregate["inputs"])
    aggregated = {("file", f"{lake}/aggregated/date={d}/_MANIFEST.json") for d in DAYS}
    assert _ids(aggregate["outputs"]) == aggregated == _ids(top["inputs"])
    tops = {("file", f"{lake}/top10/date={d}/top_states.csv") for d in DAYS}
    assert _ids(top["outputs"]) == tops and tops <= _ids(load["inputs"])
    host, port, database = _where(database_url)
    assert _ids(load["outputs"]) == {
        (f"postgres://{host}:{port}", f"{database}.public.{table}")
        for table in ("top_states", "state_sightings", "reject_samples", "ufo_runs")
    }

    # Schema and row counts where they are known.
    for output in read["outputs"]:
        assert output["outputFacets"]["outputStatistics"]["rowCount"] == records
        assert [f["name"] for f in output["facets"]["schema"]["fields"]] == sample.header_of(
            "index"
        )
    for output in top["outputs"]:
        fields = [f["name"] for f in output["facets"]["schema"]["fields"]]
        assert fields == ["period", "rank", "state", "sightings"]

    # The Spark application's run is a child of AggregateUFOsByState's.
    parent = done["spark_jobs.aggregate_by_state"]["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == aggregate["run"]["runId"]
    assert (parent["job"]["namespace"], parent["job"]["name"]) == (
        "ufo-test", "AggregateUFOsByState",
    )  # fmt: skip


def test_a_backfill_is_one_run_per_batch_listing_its_dates(tmp_path):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(300, until=dt.date(2019, 3, 29), seed=3))
    with HttpSink() as sink:
        env = pipeline_env(str(tmp_path / "lake"), None, str(source), OPENLINEAGE_URL=sink.url)
        result = run_luigi(
            "RangeDaily", "--of", "ReadUFOs", "--start", "2019-03-27", "--stop", "2019-03-30",
            "--days-back", "36500", "--local-scheduler", env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        events = [body for _, body in sink.wait_for(2)]
        time.sleep(1)  # a RangeDaily event, if any, would have arrived by now
    events = [body for _, body in sink.posts]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("ReadUFOs", "START"), ("ReadUFOs", "COMPLETE"),
    ]  # fmt: skip
    dates = ["2019-03-27", "2019-03-28", "2019-03-29"]
    assert events[1]["run"]["facets"]["ufo_runDates"]["dates"] == dates
    assert len(events[1]["outputs"]) == 3  # one manifest per date


def test_a_failed_task_sends_fail_with_its_error(tmp_path):
    with HttpSink() as sink:
        env = pipeline_env(str(tmp_path / "lake"), None, str(tmp_path / "none.csv"),
                           OPENLINEAGE_URL=sink.url)  # fmt: skip
        result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
        assert result.returncode != 0
        events = [body for _, body in sink.wait_for(2)]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert "none.csv" in events[1]["run"]["facets"]["errorMessage"]["message"]


def test_an_endpoint_that_is_down_changes_nothing(tmp_path):
    source = tmp_path / "index.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        sample.write(out, sample.generate(200, until=dt.date(2019, 3, 29), seed=2))
    env = pipeline_env(str(tmp_path / "lake"), None, str(source),
                       OPENLINEAGE_URL=f"http://127.0.0.1:{free_port()}")  # fmt: skip
    result = run_luigi("ReadUFOs", "--date", "2019-03-29", "--local-scheduler", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert out.count("lineage: an OpenLineage event could not be sent") == 1


def _where(url: str) -> tuple[str, int, str]:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    return parsed.host, parsed.port or 5432, parsed.database
