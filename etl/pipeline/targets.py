"""The pipeline's outputs in the lake, as Luigi targets that know how to load what they hold.

A task reads its inputs through ``self.input()`` and these targets' ``load_*`` methods; it
never builds another task's paths. Paths users read directly keep their names:

    raw/date=D/_MANIFEST.json          ReadUFOs: records (Parquet) and a UTF-8 copy of the source
    aggregated/date=D/_MANIFEST.json   AggregateUFOsByState: counts, rejects, quality report
    top10/date=D/top_states.csv        TopTenStates: the top ten per period
    top10/date=D/counts_by_period.parquet   beside it: every state's count per period
    top10/date=D/checks.json           beside it: the snapshot's checks (etl/pipeline/checks.py)
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from dataclasses import dataclass

import luigi
import pyarrow as pa

from etl.adapters.lake import Lake
from etl.adapters.manifests import ManifestTarget, partition
from etl.errors import DataError
from etl.pipeline import ranking

RAW = "raw"
AGGREGATED = "aggregated"
TOP10 = "top10"


def raw_records(manifest: dict) -> str:
    """The lake-relative path Spark reads a raw manifest's records at: its Parquet file, or the
    folder of its Parquet files (a source read on the cluster: every file in one folder)."""
    found = manifest["files"]["records"]
    return found[0] if len(found) == 1 else posixpath.dirname(found[0])


class RawTarget(ManifestTarget):
    """One run date's source in the raw zone: ``records`` (Parquet) and ``source`` (UTF-8 CSV)."""

    def __init__(self, lake: Lake, date: dt.date):
        super().__init__(lake, RAW, date)

    def records(self) -> str:
        """The lake-relative path of the records' Parquet file (or folder: ``raw_records``)."""
        return raw_records(self.manifest())


class AggregateTarget(ManifestTarget):
    """One run date's aggregate: ``aggregated`` (month, state, sightings) Parquet parts,
    ``rejects`` CSVs and ``report`` (the quality report), named by its manifest."""

    def __init__(self, lake: Lake, date: dt.date):
        super().__init__(lake, AGGREGATED, date)

    def load_counts(self, manifest: dict | None = None) -> pa.Table:
        """The ``month, state, sightings`` rows (of ``manifest``, its document when read)."""
        files = self.files(AGGREGATED, manifest)
        return ranking.read_aggregate(self.lake.read_bytes(rel) for rel in files)


@dataclass(frozen=True)
class TopTen:
    """What TopTenStates publishes for a run date."""

    top: pa.Table  # period, rank, state, sightings (ranking.TOP_SCHEMA)
    counts: pa.Table  # period, state, sightings: every state (ranking.COUNT_SCHEMA)


class TopTenTarget(luigi.Target):
    """``top10/date=D/top_states.csv``, and the per-period counts beside it.

    The counts are written first and the top ten last, each in one step; the target exists
    when both do (a lake written before the counts were published gets them on the next run).
    """

    def __init__(self, lake: Lake, date: dt.date):
        self.lake = lake
        self.date = date
        self.rel = f"{partition(TOP10, date)}/top_states.csv"
        self.counts_rel = f"{partition(TOP10, date)}/counts_by_period.parquet"
        self.checks_rel = f"{partition(TOP10, date)}/checks.json"

    @property
    def path(self) -> str:
        return self.lake.uri(self.rel)

    def exists(self) -> bool:
        return self.lake.exists(self.rel) and self.lake.exists(self.counts_rel)

    def modified_at(self) -> float:
        return self.lake.modified_at(self.rel)

    def dump(self, top_ten: TopTen) -> None:
        self.lake.write_bytes(self.counts_rel, ranking.write_parquet(top_ten.counts))
        self.lake.write_bytes(self.rel, ranking.write_csv(top_ten.top))

    def write_checks(self, report: dict) -> None:
        """The date's checks report (``etl/pipeline/checks.py``): written before the top ten,
        and for a held date instead of it."""
        self.lake.write_text(self.checks_rel, json.dumps(report, indent=2))

    def checks(self) -> dict | None:
        """The date's checks report; None for a date published before the checks existed."""
        text = self.lake.read_optional(self.checks_rel)
        return None if text is None else json.loads(text)

    def copy_of(self, other: TopTenTarget) -> None:
        """``other``'s files, for a date with the same snapshot (in the same order as dump)."""
        self.lake.copy(other.counts_rel, self.counts_rel)
        self.lake.copy(other.rel, self.rel)

    def read(self) -> tuple[bytes, bytes]:
        """The top ten file's and the counts' bytes, as ``parse`` takes them."""
        if not self.lake.exists(self.counts_rel):
            raise DataError(
                f"{self.lake.uri(self.counts_rel)} is missing beside {self.path}: run "
                f"TopTenStates for {self.date} again with --force."
            )
        return self.lake.read_bytes(self.rel), self.lake.read_bytes(self.counts_rel)

    @staticmethod
    def parse(top: bytes, counts: bytes) -> TopTen:
        return TopTen(top=ranking.read_top(top), counts=ranking.read_counts(counts))

    def load(self) -> TopTen:
        return self.parse(*self.read())

    def __repr__(self) -> str:
        return f"TopTenTarget({self.path})"
