"""ReadUFOs on the cluster (UFO_INGEST=cluster): the source cut into pieces, parsed by Spark's
executors, gives the records and counts of the reader on one machine, and the chain's results."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.support import (
    REAL_2019,
    REAL_RUN_DATE,
    new_database,
    pipeline_env,
    run_luigi,
    shared_file,
)

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAY = "2019-03-29"


def raw_manifest(lake: Path) -> dict:
    return json.loads((lake / f"raw/date={DAY}/_MANIFEST.json").read_text())


def raw_rows(lake: Path) -> list[tuple]:
    files = raw_manifest(lake)["files"]["records"]
    return sorted(tuple(r.values()) for f in files for r in pq.read_table(lake / f).to_pylist())


def read(tmp_path: Path, name: str, source: Path, ingest: str) -> Path:
    lake = tmp_path / name
    env = pipeline_env(str(lake), None, str(source), UFO_INGEST=ingest,
                       UFO_INGEST_PIECE_SIZE="1KB")  # fmt: skip
    result = run_luigi("ReadUFOs", "--date", DAY, "--local-scheduler", env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return lake


#: Quoted line breaks (bare LF and CRLF), a quote that opens no field, blank lines, ragged
#: records, a record of empty fields, Windows-1252 bytes: the reader's hard cases.
QUIRKS = (
    "Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"
    + "".join(
        f'{m}/1/18 21:00,Town {i},TX,Light,5 minutes,"it said, \n""hi"" \u201c{i}\u201d",{m}/2/18\r\n'
        f'{m}/3/18 20:00,City {i},CA,Disk,5" long,plain text,{m}/4/18\r\n'
        "\r\n"
        f"{m}/5/18,Short,NY\r\n"
        ",,,,,,\r\n"
        for i, m in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] * 3)
    )
).encode("cp1252")


def test_a_source_of_every_quirk_reads_the_same_on_the_cluster_as_here(tmp_path):
    source = tmp_path / "quirks.csv"
    source.write_bytes(QUIRKS)
    here, cluster = (
        read(tmp_path, "here", source, "local"),
        read(tmp_path, "cluster", source, "cluster"),
    )
    one, many = raw_manifest(here), raw_manifest(cluster)
    assert one["pieces"] == 1 and many["pieces"] > 4  # 1 KB pieces of 6 KB
    counts = ("records", "blank_lines", "ragged", "encoding", "layout", "columns")
    assert {k: many[k] for k in counts} == {k: one[k] for k in counts}
    assert (one["records"], one["blank_lines"], one["ragged"]) == (36 * 4, 36, 36)
    assert raw_rows(cluster) == raw_rows(here)
    # The pieces are the UTF-8 copy, cut at record boundaries.
    pieces = b"".join((cluster / p).read_bytes() for p in many["files"]["source"])
    assert pieces == (here / one["files"]["source"][0]).read_bytes()
    assert pieces == QUIRKS.decode("cp1252").encode("utf-8")


@pytest.mark.shared_data
def test_the_chain_on_the_real_index_read_on_the_cluster_matches(tmp_path, postgres, real_expected):
    source = shared_file(REAL_2019.name)
    url = new_database(postgres)
    lake = tmp_path / "lake"
    env = pipeline_env(str(lake), url, str(source), UFO_INGEST="cluster",
                       UFO_INGEST_PIECE_SIZE="4MB")  # fmt: skip
    result = run_luigi("TopStatesToDatabase", "--date", REAL_RUN_DATE.isoformat(),
                       "--local-scheduler", env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = raw_manifest(lake)
    assert manifest["pieces"] == 4 and len(manifest["files"]["records"]) > 1
    assert manifest["records"] == 119_727  # SOURCE.md's data records
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(sa.text(
            "SELECT state, sightings FROM top_states WHERE run_date = :d AND period = 'all' "
            "ORDER BY rank"), {"d": REAL_RUN_DATE})]  # fmt: skip
    engine.dispose()
    assert got == list(real_expected.top_ten())
    quality = json.loads((lake / f"aggregated/date={DAY}/_MANIFEST.json").read_text())["quality"]
    assert {k: quality[k] for k in real_expected.quality()} == real_expected.quality()
