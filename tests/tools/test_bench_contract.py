"""The benchmark's DuckDB baseline (bench/contract.py) computes the data contract exactly: its
quality figures and counts per (month, state) equal tests/reference.py's independent reading,
from the CSV (DuckDB's own reader) and from the raw zone's Parquet, on a file of every date and
whitespace quirk of the index layout and on a generated sample. A faster query that drifted from
the contract would make every ratio of `make bench` meaningless."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pytest

from bench.contract import csv_records, duckdb_contract, parquet_records
from etl.adapters import source
from etl.tools import sample
from tests import reference

HEADER = ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]
WHITESPACE = ["", " ", "\t", "\v", "\f", "  "]
DATES = ["1/2/19", "12/31/99", "2/29/20", "2/29/19", "13/1/19", "0/5/19", "1/2/69", "1/2/70",
         "01/02/03", "1/2/2019", "x", "", "4/31/18", "3/29/19", "3/30/19", "12/1/00"]  # fmt: skip
TIMES = ["", " 10:30", " 24:00", " 25:00", " 0:59", " 1:60", "  10:30", " 10:5"]
STATES = ["CA", "ca", " wa ", "ZZ", "", "DC", "PR", "\tTX\v"]


def quirks(rows: int = 5000) -> bytes:
    """Index rows built from every quirk above, a few headers repeated in other spellings, and
    exact duplicates."""
    pick = random.Random(7).choice
    body = [
        [pick(WHITESPACE) + pick(DATES) + pick(TIMES) + pick(WHITESPACE), "c", pick(STATES),
         "s", "d", "x", pick(WHITESPACE) + pick(DATES) + pick(WHITESPACE)]
        for _ in range(rows)
    ]  # fmt: skip
    body += [[pick(WHITESPACE) + "date / time", "CITY ", " State", "shape", "Duration\t",
              "summary", pick(["Posted", " posted ", "POSTED\v", "Posted x"])] for _ in range(20)]  # fmt: skip
    body += body[:100]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([HEADER, *body])
    return text.getvalue().encode()


@pytest.mark.parametrize("run_date", [dt.date(2019, 3, 29), dt.date(2001, 5, 5)])
@pytest.mark.parametrize("kind", ["quirks", "generated"])
def test_the_duckdb_baseline_equals_the_reference(tmp_path, kind, run_date):
    path = tmp_path / f"{kind}.csv"
    if kind == "quirks":
        path.write_bytes(quirks())
    else:
        with open(path, "w", encoding="utf-8", newline="") as out:
            sample.write(out, sample.generate(20000, until=dt.date(2019, 3, 29), seed=11))
    expected = reference.classify(path.read_bytes(), run_date)
    want = (expected.quality(), dict(expected.by_month_state))
    assert expected.counts["valid"] > 0 and len(expected.counts) >= 4  # the file has variety
    assert duckdb_contract(csv_records(str(path)), run_date) == want
    parquet = tmp_path / "records.parquet"
    source.ingest(str(path), str(tmp_path / "copy.csv"), str(parquet), kind)
    assert duckdb_contract(parquet_records(str(parquet)), run_date) == want
